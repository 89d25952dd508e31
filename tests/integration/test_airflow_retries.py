"""Airflow itself retries a feed task whose partner server is down, with growing waits, and after
the last try the failure e-mail reaches a real SMTP server, once.

The real feed DAG (``build_feed_dag`` with the project's ``DEFAULT_ARGS``) is run by Airflow's own
runner (`airflow dags test`, which honours retries) against the police partner's OpenSSH server,
stopped; only the waits are shortened (1 s instead of 2 min, the same exponential back-off), in a
DAG file written for the test."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from datetime import date, datetime
from itertools import pairwise

import pytest

from devkit.embedded import EmbeddedHub
from samverkan.connectors.sshd import free_port, sshd_available
from samverkan.core.contracts import load_contracts
from samverkan.orchestration.feed_dags import DEFAULT_ARGS
from tests.support.mail import Mailbox

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NIGHT = date(2026, 11, 20)
DAG_FILE = '''# An Airflow DAG file (Airflow's safe mode parses only files that say so).
from datetime import timedelta
from samverkan.core.contracts import load_contracts
from samverkan.orchestration import feed_dags

feed_dags.DEFAULT_ARGS.update(retry_delay=timedelta(seconds=1), max_retry_delay=timedelta(seconds=30))
samverkan_police = feed_dags.build_feed_dag(load_contracts()["police"])
'''


@pytest.fixture
def mailbox():
    from aiosmtpd.controller import Controller

    box, port = Mailbox(), free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    box.port = port
    yield box
    controller.stop()


def test_a_task_whose_server_is_down_is_retried_with_back_off_then_mailed_once(tmp_path, mailbox):
    if not sshd_available():
        pytest.skip("OpenSSH server not installed; scripts/setup installs it")
    assert (DEFAULT_ARGS["retries"], DEFAULT_ARGS["retry_exponential_backoff"]) == (3, True)
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "retry_police.py").write_text(DAG_FILE)
    with EmbeddedHub(tmp_path / "hub", smtp_port=mailbox.port) as hub:
        hub.start_servers()
        hub.migrate()
        env = {**os.environ, **hub.env(), "AIRFLOW__CORE__DAGS_FOLDER": str(dags)}
        hub.servers["police"].stop()  # the partner's server is down: connection refused
        logical = load_contracts()["police"].run_time_for(NIGHT).isoformat()
        done = subprocess.run([os.path.join(os.path.dirname(sys.executable), "airflow"), "dags", "test",
                               "samverkan_police", logical], env=env, capture_output=True, text=True, timeout=600, check=False)
        db = hub.airflow_home / "airflow.db"
    assert done.returncode != 0, "the run must fail while the server is down"
    tries = _tries(db, "samverkan_police", "discover_files")
    assert [state for _, _, state in tries] == ["failed"] * 4  # the first try and 3 retries, each failed
    waits = [(start - end).total_seconds() for (_, end, _), (start, _, _) in pairwise(tries)]
    assert waits[0] >= 1 and waits[1] >= 2 and waits[2] >= 4, waits  # 1 s doubled each try (and jitter)
    # One mail for the task, after its last try (not one per try), and none from the run's
    # fail_run leaf, which only turns the run red.
    [body] = [b for b in mailbox.bodies() if "task discover_files" in b]
    assert "samverkan_police: task discover_files failed" in body and "try 4" in body
    assert not [b for b in mailbox.bodies() if "task fail_run" in b]
    assert tries[-1][2] == "failed" and _tries(db, "samverkan_police", "fail_run")[-1][2] == "failed"


def _tries(db, dag_id: str, task_id: str) -> list[tuple[datetime, datetime, str]]:
    """(start, end, state) of every try, oldest first: earlier tries are kept in the history table."""
    with sqlite3.connect(db) as con:
        rows = con.execute(
            """SELECT try_number, start_date, end_date, state FROM task_instance_history
               WHERE dag_id = ? AND task_id = ?
               UNION ALL
               SELECT try_number, start_date, end_date, state FROM task_instance WHERE dag_id = ? AND task_id = ?
               ORDER BY try_number""", (dag_id, task_id, dag_id, task_id)).fetchall()
    return [(datetime.fromisoformat(s), datetime.fromisoformat(e), state) for _, s, e, state in rows]
