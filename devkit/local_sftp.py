"""The hub's side of the dev kit's own partner servers (OpenSSH on 127.0.0.1, one per feed).

One way to reach them, host key pinned as in production, for everything in the dev kit that
talks to them outside Airflow: the demo's history import and the benchmark's transfer and
history measurements.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from samverkan.connectors.sftp import SFTPConnector, SFTPSettings
from samverkan.connectors.sshd import SFTPServer
from samverkan.core.contracts import Contract

if TYPE_CHECKING:  # the history import pulls in the whole pipeline; the transfer benchmark needs none of it
    from samverkan.ingest.history import Connect


def settings_for(server: SFTPServer, private_key: Path) -> SFTPSettings:
    """The settings that reach ``server`` with the hub's key, trusting only its own host key."""
    return SFTPSettings(
        host=server.host,
        port=server.port,
        username=server.username,
        key_file=str(private_key),
        host_key=server.host_key_line,
        path_prefix=server.path_prefix,
    )


def connect_to(servers: Mapping[str, SFTPServer], private_key: Path) -> Connect:
    """``connect`` for ``import_history``: each feed's contract to its own server; the connector
    opens on entering its ``with`` and closes on leaving it."""

    def connect(contract: Contract) -> SFTPConnector:
        return SFTPConnector(settings_for(servers[contract.id], private_key))

    return connect
