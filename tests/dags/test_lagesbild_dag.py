"""The lägesbild DAG: parses from dags/, runs on either published dataset or weekly, updates its Asset."""

from pathlib import Path

import pytest

pytestmark = pytest.mark.dags

DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS / "samverkan_lagesbild.py"))
    assert bag.import_errors == {}
    return bag.dags["samverkan_lagesbild"]


def test_scheduled_on_either_published_dataset_and_at_least_weekly(dag):
    timetable = dag.timetable
    assert type(timetable).__name__ == "AssetOrTimeSchedule"  # the SDK's class, not the core one
    assert timetable.timetable.expression == "0 6 * * 1" and str(timetable.timetable.timezone) == "Europe/Stockholm"
    names = {a.name for a in timetable.asset_condition.objects}
    assert type(timetable.asset_condition).__name__ == "AssetAny"  # either one, not both, triggers a run
    assert names == {"samverkan.incidents", "samverkan.involvements"}


def test_documented_tagged_and_updates_the_report_asset(dag):
    assert {"samverkan", "report", "lagesbild"} <= set(dag.tags) and "docs/lagesbild.md" in dag.doc_md
    (task,) = dag.tasks
    assert [o.name for o in task.outlets] == ["samverkan.lagesbild"]
    assert dag.default_args["retries"] >= 1
