"""A real SMTP server on 127.0.0.1 (aiosmtpd) that keeps what it receives, and the Airflow
connection and Variable that send the hub's alerts to it (the ``smtp`` fixture, tests/conftest.py)."""

from __future__ import annotations

import email
import json
from collections.abc import Iterator

import pytest

from samverkan.connectors.sshd import free_port

ALERT_TO = "engineers@samverkan.invalid, oncall@samverkan.invalid"


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd's hook name
        self.messages.append(envelope.content)
        return "250 OK"

    def bodies(self) -> list[str]:
        out = []
        for raw in self.messages:
            msg = email.message_from_bytes(raw)
            out.append(msg["Subject"] + "\n" + "".join(
                (p.get_payload(decode=True) or b"").decode() for p in msg.walk() if not p.is_multipart()))
        return out


def smtp_connection(port: int, **extra) -> str:
    """``AIRFLOW_CONN_SMTP_DEFAULT`` for a plain SMTP server on 127.0.0.1:``port``."""
    return json.dumps({"conn_type": "smtp", "host": "127.0.0.1", "port": port,
                       "extra": {"from_email": "hub@samverkan.invalid", "disable_ssl": True, "disable_tls": True,
                                 "retry_limit": 0, **extra}})


def serve(monkeypatch: pytest.MonkeyPatch) -> Iterator[Mailbox]:
    from aiosmtpd.controller import Controller

    box, port = Mailbox(), free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", smtp_connection(port))
    monkeypatch.setenv("AIRFLOW_VAR_SAMVERKAN_ALERT_TO", ALERT_TO)
    try:
        yield box
    finally:
        controller.stop()
