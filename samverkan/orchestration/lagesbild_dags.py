"""The lägesbild DAG: rebuilt when a published dataset changes, and every Monday morning anyway.

Scheduled on the Assets the ingest DAGs update (either of them is enough) or weekly at 06:00
local time, whichever comes first, so the report follows late files and still appears every week
when nothing arrived. It updates an Asset of its own (``samverkan.lagesbild``), which the UI shows
beside the published datasets. The work happens in ``samverkan.analysis.lagesbild``; the task
returns only the release id, where it is and each measure's verdict (no counts of people).
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, Asset, AssetOrTimeSchedule, CronTriggerTimetable, dag, task

from samverkan.core import nights
from samverkan.orchestration.feed_dags import DEFAULT_ARGS, START_DATE, dataset_asset

DAG_ID = "samverkan_lagesbild"
WEEKLY = "0 6 * * 1"  # Mondays 06:00, after the Sunday night's files are in
REPORT_ASSET = Asset(name="samverkan.lagesbild", uri="samverkan://reports/lagesbild", group="samverkan")

DOC_MD = """
### Lägesbild: the partnership's shared picture of the bus square

Builds the weekly report from the published datasets: incidents per week per source, weekday ×
time-of-day heatmaps, the category mix and its change, a 100 m cell map with the areas' outlines,
where two or more partners report at the same time, repeat involvement, the SSPF youth view, and
for every measure in `measures/` a before/after rate ratio with a 95 % interval.

Every number follows the small-count rule (fewer than 5 withheld, with complementary suppression),
audited with the LP attacker against the previous release as well. Output:
`$SAMVERKAN_DATA_ROOT/reports/lagesbild/<ISO week>/` (HTML, figures, released numbers); the delivery
DAGs copy the newest release to every agreement that grants `lagesbild`. Read it in the UI under
**Browse → Lägesbild**. See docs/lagesbild.md.
"""


def build_lagesbild_dag() -> DAG:
    @dag(
        dag_id=DAG_ID,
        description="Weekly lägesbild report (bus square and central area), small counts suppressed",
        schedule=AssetOrTimeSchedule(
            timetable=CronTriggerTimetable(WEEKLY, timezone=nights.HUB_TIMEZONE),
            assets=(dataset_asset("incidents") | dataset_asset("involvements")),
        ),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=["samverkan", "report", "lagesbild"],
        doc_md=DOC_MD,
    )
    def lagesbild_dag():
        @task(outlets=[REPORT_ASSET])
        def build_report() -> dict[str, Any]:
            from samverkan.orchestration import lagesbild_runtime

            return lagesbild_runtime.build()

        build_report()

    return lagesbild_dag()
