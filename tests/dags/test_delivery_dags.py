"""Delivery DAG integrity: one DAG per agreement, asset-scheduled, documented, tagged, retried."""

import subprocess
import sys
from pathlib import Path

import pytest

from samverkan.sharing.agreements import load_agreements

pytestmark = pytest.mark.dags

REPO = Path(__file__).resolve().parents[2]
DAG_FILE = REPO / "dags" / "samverkan_deliveries.py"


@pytest.fixture(scope="module")
def dags():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAG_FILE))
    assert bag.import_errors == {}
    return bag.dags


def test_one_delivery_dag_per_agreement(dags):
    assert sorted(dags) == sorted(f"samverkan_deliver_{a}" for a in load_agreements())


@pytest.mark.parametrize("recipient", sorted(load_agreements()))
def test_delivery_dag_is_scheduled_on_the_published_assets(dags, recipient):
    dag = dags[f"samverkan_deliver_{recipient}"]
    agreement = load_agreements()[recipient]
    assert {"samverkan", "delivery", f"recipient:{recipient}", f"mode:{agreement.mode}"} <= set(dag.tags)
    assert agreement.title in dag.doc_md and f"version {agreement.version}" in dag.doc_md
    condition = dag.timetable.asset_condition
    assert type(condition).__name__ == "AssetAll"  # both datasets updated, not either
    scheduled_on = {a.uri for a in condition.objects}
    assert scheduled_on == {"samverkan://published/incidents", "samverkan://published/involvements"}
    assert set(dag.task_ids) == {"plan_nights", "deliver_night", "apply_retention"}
    assert {a.uri for a in dag.get_task("deliver_night").outlets} == {f"samverkan://outbox/{recipient}"}
    for task in dag.tasks:
        assert task.retries >= 2, task.task_id


def test_parsing_the_delivery_dag_file_does_no_work(tmp_path):
    code = (
        "import sys, runpy; runpy.run_path(sys.argv[1]);"
        "heavy = [m for m in ('great_expectations', 'paramiko', 'pandas', 'duckdb', 'pyarrow', 'scipy',"
        " 'samverkan.ingest.pipeline', 'samverkan.sharing.outbox') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(DAG_FILE)], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin",
                              "AIRFLOW_HOME": str(tmp_path / "airflow-home")})
    assert out.stdout.strip().splitlines()[-1:] in ([], [""]), out.stdout
