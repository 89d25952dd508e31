"""A missing file is late only from the contract's deadline on: the feed's discover task (the
hub's own runtime, against a real OpenSSH server holding no file) sends no alert before the
deadline, and one e-mail to a real SMTP server from the deadline on, once."""

from __future__ import annotations

import json
import os
from datetime import date, timedelta

import pytest

from samverkan.core.contracts import load_contracts

pytestmark = pytest.mark.integration


@pytest.fixture
def police_without_a_file(tmp_path, sftp_server, client_key, monkeypatch):
    """The police partner's server, with its directory but no file; the hub's data root in tmp."""
    police = load_contracts()["police"]
    (sftp_server.root / police.directory.lstrip("/")).mkdir(parents=True)
    monkeypatch.setenv(f"AIRFLOW_CONN_{police.connection_id.upper()}", json.dumps({
        "conn_type": "sftp", "host": sftp_server.host, "port": sftp_server.port, "login": sftp_server.username,
        "extra": {"host_key": sftp_server.host_key_line, "key_file": str(client_key[0]),
                  "path_prefix": sftp_server.path_prefix}}))
    monkeypatch.setenv("SAMVERKAN_DATA_ROOT", str(tmp_path / "data"))
    return police


@pytest.fixture
def feed_runtime():
    """The task runtime; importing it sets the process umask to the hub's (it is meant to run
    inside tasks only), so the test gives the umask back afterwards."""
    old = os.umask(0o022)
    os.umask(old)
    from samverkan.orchestration import feed_runtime

    yield feed_runtime
    os.umask(old)


def test_no_alert_before_the_deadline_and_one_from_it_on(police_without_a_file, smtp, feed_runtime):
    police = police_without_a_file
    night = date.today() + timedelta(days=30)  # a deadline still ahead of the real clock
    due = police.deadline_for(night)
    run = f"scheduled__{night}"

    for minutes_before in (180, 1):
        assert feed_runtime.discover(police, night, run_id=run, logical_date=due - timedelta(minutes=minutes_before)) == []
    assert smtp.messages == []

    feed_runtime.discover(police, night, run_id=run, logical_date=due)  # at the deadline: late
    assert len(smtp.messages) == 1
    for minutes_after in (1, 60):  # later runs of the same morning: no second mail
        feed_runtime.discover(police, night, run_id=run, logical_date=due + timedelta(minutes=minutes_after))
    [body] = smtp.bodies()
    assert f"police: night {night} is late" in body
    assert f"Deadline: {due.isoformat(timespec='minutes')}" in body
