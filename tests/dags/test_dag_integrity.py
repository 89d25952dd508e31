"""DAG integrity: every feed contract yields a DAG that imports cleanly and is set up to operate."""

import subprocess
import sys
from pathlib import Path

import pytest

from samverkan.core.contracts import load_contracts

pytestmark = pytest.mark.dags

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


def test_one_ingest_dag_per_contract(dagbag):
    ingest = [dag_id for dag_id, dag in dagbag.dags.items() if "ingest" in dag.tags]
    assert sorted(ingest) == sorted(f"samverkan_{c}" for c in load_contracts())


@pytest.mark.parametrize("feed", sorted(load_contracts()))
def test_dag_is_documented_tagged_and_retries(dagbag, feed):
    dag = dagbag.dags[f"samverkan_{feed}"]
    assert {"samverkan", "ingest", f"feed:{feed}"} <= set(dag.tags)
    assert dag.doc_md and load_contracts()[feed].title in dag.doc_md
    contract = load_contracts()[feed]
    assert dag.timetable.expression == contract.raw["schedule"]["cron"]
    assert str(dag.timetable.timezone) == "Europe/Stockholm"
    for task in dag.tasks:
        if task.task_id == "fail_run":  # only raises; retrying it would delay the red run
            continue
        assert task.retries >= 2, task.task_id
        assert task.retry_exponential_backoff, task.task_id


@pytest.mark.parametrize("feed", sorted(load_contracts()))
def test_pipeline_shape(dagbag, feed):
    dag = dagbag.dags[f"samverkan_{feed}"]
    assert set(dag.task_ids) == {
        "discover_files", "fetch_file", "process_file", "write_manifest", "render_data_docs", "fail_run"}
    fail_run = dag.get_task("fail_run")
    assert fail_run.trigger_rule == "one_failed" and fail_run.retries == 0
    assert not fail_run.on_failure_callback  # the failed task has mailed; the leaf only turns the run red
    assert dag.get_task("discover_files").on_failure_callback  # ...while the others keep the alert
    assert fail_run.upstream_task_ids == {
        "discover_files", "fetch_file", "process_file", "write_manifest", "render_data_docs"}
    # Data Docs are rendered after the manifest, off the path from landed file to published data.
    docs = dag.get_task("render_data_docs")
    assert docs.upstream_task_ids == {"process_file", "write_manifest"} and docs.trigger_rule == "all_done"
    assert docs.downstream_task_ids == {"fail_run"}
    assert not fail_run.downstream_task_ids  # a leaf: the run's state follows it
    assert dag.get_task("fetch_file").upstream_task_ids == {"discover_files"}
    outlets = {a.uri for a in dag.get_task("process_file").outlets}
    # The datasets of the feed's kind only: an incident-only feed has no involvements asset.
    assert outlets == {f"samverkan://published/{d}" for d in load_contracts()[feed].datasets}
    assert outlets <= {f"samverkan://published/{d}" for d in ("incidents", "involvements", "observations")}


def test_parsing_the_dag_file_does_no_work(tmp_path):
    """Parse time touches configuration only: no GE, no SSH, no data libraries, no connections."""
    code = (
        "import sys, runpy; runpy.run_path(sys.argv[1]);"
        "heavy = [m for m in ('great_expectations', 'paramiko', 'pandas', 'duckdb', 'samverkan.ingest.pipeline') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(DAGS / "samverkan_feeds.py")], capture_output=True, text=True,
                         check=True, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin",
                                          "AIRFLOW_HOME": str(tmp_path / "airflow-home")})
    assert out.stdout.strip().splitlines()[-1:] in ([], [""]), out.stdout
