"""The production stack without Docker: CeleryExecutor with two workers, PostgreSQL, Redis.

Starts what docker-compose.yml runs, from packages on 127.0.0.1 (devkit/stack.py, the same
deploy/airflow.env), triggers the nightly DAGs through Airflow's REST API, and checks that every
run succeeds, that tasks ran on both workers (task instance hostnames, cross-checked against
Celery's own result records) and that the metadata DB is PostgreSQL. Then backfills two more
nights with ``python -m samverkan.ops.commands backfill``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest

from samverkan.connectors.sshd import sshd_available
from devkit.stack import LocalStack, _synthetic, logical_date_for, task_report

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
# Well before today, so the scheduled run Airflow makes when a DAG is unpaused (for last night)
# never sees these files in its look-back window.
BASE = date.today() - timedelta(days=60)
TRIGGERED = [BASE, BASE + timedelta(days=1)]
BACKFILLED = [BASE + timedelta(days=d) for d in (2, 3)]
SIZES = {"police": 60, "transit": 30, "guards": 20}
# The stack is proven on the feeds it generates nights for; the other contracts' DAGs stay paused.
FEEDS = sorted(SIZES)


def _missing() -> list[str]:
    missing = [] if sshd_available() else ["openssh-server"]
    missing += [] if shutil.which("redis-server") else ["redis-server"]
    missing += [] if list(Path("/usr/lib/postgresql").glob("*/bin/initdb")) else ["postgresql"]
    return missing


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> LocalStack:
    if _missing():
        pytest.skip(f"not installed: {', '.join(_missing())} (scripts/setup installs them)")
    root = tmp_path_factory.mktemp("celery-stack")
    _synthetic(root / "partners", TRIGGERED + BACKFILLED, SIZES)
    local = LocalStack(root, workers=2)
    request.addfinalizer(local.stop)
    local.start(timeout=300)
    return local


@pytest.fixture(scope="module")
def triggered(stack: LocalStack) -> list[tuple[str, str]]:
    api = stack.api()
    for feed in FEEDS:
        api.unpause(f"samverkan_{feed}")
    runs = [(f"samverkan_{feed}", api.trigger(f"samverkan_{feed}", logical_date_for(night, feed)))
            for night in TRIGGERED for feed in FEEDS]
    api.wait_for_runs(runs, timeout=900)
    return runs


def test_every_triggered_run_succeeds(stack, triggered):
    api = stack.api()
    assert {api.run(*r)["state"] for r in triggered} == {"success"}
    # Including the run Airflow scheduled itself when the DAGs were unpaused.
    for feed in FEEDS:
        states = [r["state"] for r in api.runs(f"samverkan_{feed}") if r["run_type"] != "backfill"]
        assert len(states) >= len(TRIGGERED) and set(states) <= {"success", "running", "queued"}, (feed, states)


def test_tasks_ran_on_both_workers(stack, triggered):
    report = task_report(stack.api(), triggered)
    assert set(report["states"]) <= {"success", "skipped"}, report  # skipped: tasks for what a run did not need
    assert set(report["per_host"]) == set(stack.worker_names()), report
    # Celery's own record of each task (result_extended, from deploy/airflow.env) names the same worker.
    rows = stack.query(
        "SELECT ti.hostname, tm.worker FROM task_instance ti JOIN celery_taskmeta tm "
        "ON tm.task_id = ti.external_executor_id WHERE ti.dag_id LIKE 'samverkan_%%' AND ti.state = 'success'")
    assert len(rows) >= report["ran"]
    assert all(worker.split("@")[0] == hostname for hostname, worker in rows), rows
    assert {worker.split("@")[0] for _, worker in rows} == set(stack.worker_names())


def test_metadata_db_is_postgresql(stack, triggered):
    assert stack.env()["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    assert stack.query("SELECT version()")[0][0].startswith("PostgreSQL ")
    api = stack.api()
    through_api = sum(len(api.runs(f"samverkan_{feed}")) for feed in FEEDS)
    in_postgres = stack.query("SELECT count(*) FROM dag_run WHERE dag_id LIKE 'samverkan_%%'")[0][0]
    assert in_postgres == through_api > 0


def _published_nights(stack: LocalStack, feed: str) -> set[str]:
    incidents = stack.data_root / "published" / "incidents"
    return {p.parent.parent.name.removeprefix("night=") for p in incidents.glob(f"night=*/source={feed}/*.parquet")}


def test_every_triggered_night_is_published_with_a_manifest(stack, triggered):
    for feed in FEEDS:
        assert {n.isoformat() for n in TRIGGERED} <= _published_nights(stack, feed), feed
        assert len(list((stack.data_root / "published" / "_manifests" / feed).glob("*.json"))) >= len(TRIGGERED)


def test_backfill_command_runs_a_range_of_nights(stack, triggered):
    env = {**os.environ, "PYTHONPATH": str(REPO), "GX_ANALYTICS_ENABLED": "False"}
    done = subprocess.run(
        [sys.executable, "-m", "samverkan.ops.commands", "backfill", "--from", BACKFILLED[0].isoformat(),
         "--to", BACKFILLED[-1].isoformat(), "--api-url", stack.api_url,
         "--password-file", str(stack.files.passwords_file), "--wait", "--timeout", "900",
         *(arg for feed in FEEDS for arg in ("--feed", feed))],
        env=env, capture_output=True, text=True, timeout=1000)
    assert done.returncode == 0, done.stdout + done.stderr
    api = stack.api()
    for feed in FEEDS:
        backfill_runs = [r for r in api.runs(f"samverkan_{feed}") if r["run_type"] == "backfill"]
        assert len(backfill_runs) == len(BACKFILLED), feed
        assert {r["state"] for r in backfill_runs} == {"success"}, feed
        assert f"samverkan_{feed}: {len(BACKFILLED)} run(s), {len(BACKFILLED)} succeeded" in done.stdout
        assert {n.isoformat() for n in BACKFILLED} <= _published_nights(stack, feed), feed
