"""Alerts go through Airflow's SmtpNotifier to a real SMTP server, once per alert, without data."""

from __future__ import annotations

import email

import pytest

from samverkan.quality import alerts
from samverkan.core.contracts import load_contracts
from samverkan.connectors.sshd import free_port
from tests.support.mail import ALERT_TO, smtp_connection
from samverkan.core.ledger import Ledger

pytestmark = pytest.mark.unit


@pytest.fixture
def ledger(tmp_path):
    return Ledger(tmp_path / "ledger.sqlite")


def test_a_late_feed_mails_once_with_a_link_to_the_run(smtp, ledger):
    police = load_contracts()["police"]
    for _ in range(3):  # three runs of the same morning (retry, re-run, manual trigger)
        alerts.feed_late(ledger, police, "2026-11-20", "2026-11-21T06:00+01:00", dag_id="samverkan_police",
                         run_id="scheduled__2026-11-21T05:30:00+00:00")
    [body] = smtp.bodies()
    assert "police: night 2026-11-20 is late" in body
    assert "/dags/samverkan_police/runs/scheduled__2026-11-21T05%3A30%3A00%2B00%3A00" in body
    assert email.message_from_bytes(smtp.messages[0])["To"] == ALERT_TO


def test_another_night_or_kind_is_a_new_alert(smtp, ledger):
    police = load_contracts()["police"]
    alerts.feed_late(ledger, police, "2026-11-20", "x", dag_id="d", run_id="r")
    alerts.feed_late(ledger, police, "2026-11-21", "x", dag_id="d", run_id="r")
    alerts.file_rejected(ledger, police, {"name": "polisen_handelser_20261121.csv", "night": "2026-11-21",
                                          "sha256": "ab" * 32, "reason": "missing required column(s) Roll", "rows_received": 0},
                         dag_id="d", run_id="r")
    bodies = smtp.bodies()
    assert len(bodies) == 3
    assert "Reason: missing required column(s) Roll" in bodies[2]


def test_a_failed_send_gives_the_claim_back_so_a_retry_sends_it(monkeypatch, ledger):
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", smtp_connection(free_port(), timeout=2))
    monkeypatch.setenv("AIRFLOW_VAR_SAMVERKAN_ALERT_TO", "engineers@samverkan.invalid")
    with pytest.raises(Exception):
        alerts.send(ledger, feed="police", night="2026-11-20", kind="late", title="t", lines=[], link=None)
    assert ledger.alerts("police") == []
    assert ledger.claim_alert("police", "2026-11-20", "late")


def test_without_recipients_nothing_is_claimed(monkeypatch, ledger):
    monkeypatch.delenv("AIRFLOW_VAR_SAMVERKAN_ALERT_TO", raising=False)
    assert alerts.send(ledger, feed="police", night="n", kind="late", title="t", lines=[], link=None) is False
    assert ledger.alerts() == []


def test_message_text_is_escaped_and_not_a_template(smtp, ledger):
    alerts.send(ledger, feed="police", night="n", kind="k", title="file {{ 7*7 }}",
                lines=["<script>x</script>"], link="http://h/dags/a")
    [body] = smtp.bodies()
    assert "{{ 7*7 }}" in body and "49" not in body
    assert "&lt;script&gt;" in body and "<script>" not in body
