"""Builds one Airflow DAG per feed contract; the only module that knows about Airflow.

Building a DAG reads the contract (versioned configuration) and nothing else: no connection,
variable, partner file or Great Expectations context is touched until a task runs, so the DAG
file parses in well under a second. The tasks are thin wrappers around ``samverkan.ingest.pipeline``.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from typing import Any

import pendulum
from airflow.sdk import DAG, Asset, CronTriggerTimetable, Param, dag, get_current_context, task

from samverkan.core import nights
from samverkan.core.contracts import Contract
from samverkan.core.settings import CONFIG_ROOT

URL_PREFIX = "samverkan-reports"  # as samverkan.quality.reports.URL_PREFIX; not imported: DAG parsing stays light

log = logging.getLogger(__name__)

EXPECTATIONS_DIR = CONFIG_ROOT / "expectations"
START_DATE = pendulum.datetime(2026, 1, 1, tz=nights.HUB_TIMEZONE)


def _on_failure(context: dict[str, Any]) -> None:
    """After the last retry: one alert e-mail (samverkan.quality.alerts, via Airflow's SmtpNotifier)."""
    from samverkan.quality.alerts import on_task_failure

    on_task_failure(context)


DEFAULT_ARGS = {
    "owner": "samverkan",
    "on_failure_callback": _on_failure,
    "retries": 3,
    "retry_delay": timedelta(minutes=2),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=30),
}


def dataset_asset(name: str) -> Asset:
    """The published dataset as an Airflow Asset, so the UI shows feed → dataset lineage."""
    return Asset(name=f"samverkan.{name}", uri=f"samverkan://published/{name}", group="samverkan")


def night_param(what: str) -> Param:
    """The trigger form's night field: empty means the night before the run (the scheduled case)."""
    return Param(
        None,
        type=["null", "string"],
        format="date",
        description=f"{what} (YYYY-MM-DD); default: the night before the run",
    )


def run_night(logical_date: datetime | None, params: dict[str, Any]) -> date:
    """The night a run covers: a `night` param when given, else the local date before the run."""
    if params.get("night"):
        return date.fromisoformat(params["night"])
    return nights.night_of_run(logical_date or pendulum.now("UTC"))


def _personal_row(personal: dict[str, Any]) -> str:
    detail = personal.get("domain") or personal.get("method")
    return f"{personal['handling']}{f' ({detail})' if detail else ''}"


def _doc_md(contract: Contract) -> str:
    personal = "\n".join(
        f"| `{c.source}` | {_personal_row(c.personal)} |" for c in contract.personal_columns() if c.personal
    )
    rule = contract.completeness
    reports_url = f"/{URL_PREFIX}/samverkan_{contract.id}/"
    deadline = (
        f"{contract.raw['delivery']['deadline']} {contract.timezone}, "
        f"{contract.raw['delivery'].get('deadline_days_after_night', 1)} day(s) after the night"
        if contract.deadline
        else "none"
    )
    return f"""
### {contract.title}

{contract.raw.get("description", "")}

**Source:** `{contract.directory}/` on the partner's SFTP server (Airflow connection
`{contract.connection_id}`, pinned host key in its `host_key` extra).
**File pattern:** `{contract.raw["file"]["pattern"]}` · **complete when:** `{rule}` ·
**look-back:** {contract.lookback_days} night(s).

**Steps:** `discover_files` lists the server and applies the completeness rule and the ledger →
`fetch_file` (mapped, one per file) lands it with a SHA-256 → `process_file` (mapped) parses in
batches, validates with the Great Expectations suite `expectations/{contract.id}.json`,
quarantines failing rows with the failed expectation, pseudonymises and publishes Parquet →
`write_manifest` records what was received, published and quarantined → `render_data_docs`
rebuilds the Data Docs page of each night the run processed (after the data is published).

**Personal data handling** (contract `schemas/{contract.id}.yaml`):

| column | handling |
|---|---|
{personal}

**Data quality:** every run rebuilds the Great Expectations Data Docs page of each night it
touched ([this feed's nights]({reports_url}), sample values masked; the run's page is also in the
run's *Data Docs* tab), writes the expectation outcomes as Parquet, and leaves a receipt (JSON +
text, no personal values) for each file in the partner's `{contract.receipts_directory}/`.
Quarantined records: `python -m samverkan.quality.quarantine list --feed {contract.id} --night YYYY-MM-DD`.
**Deadline:** {deadline}; a late night, a rejected file or a failed task sends one alert e-mail.

Trigger with config `{{"night": "YYYY-MM-DD"}}` to re-run one night; a re-run ingests nothing twice.
After a partner re-sends a corrected file, the next run (or `python -m samverkan.quality.quarantine reprocess
--feed {contract.id} --night YYYY-MM-DD`) replaces that night's partition and resolves its quarantine;
`"reprocess": true` processes the night's files again even when unchanged.
"""


def build_feed_dag(contract: Contract) -> DAG:
    schedule = CronTriggerTimetable(contract.raw["schedule"]["cron"], timezone=contract.raw["schedule"]["timezone"])
    outlets = [dataset_asset(name) for name in contract.datasets]  # what this feed kind publishes

    @dag(
        dag_id=f"samverkan_{contract.id}",
        description=contract.title,
        schedule=schedule,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=["samverkan", "ingest", f"feed:{contract.id}", f"partner:{contract.raw['partner']['id']}"],
        doc_md=_doc_md(contract),
        params={
            "night": night_param("Night to process"),
            "reprocess": Param(
                False, type="boolean", description="Process the night's files again even if the ledger settled them"
            ),
        },
    )
    def feed_dag():
        @task
        def discover_files() -> list[dict[str, Any]]:
            from samverkan.orchestration import feed_runtime as runtime

            context = get_current_context()
            night = run_night(context.get("logical_date"), context["params"])
            return runtime.discover(
                contract,
                night,
                run_id=context["run_id"],
                logical_date=context.get("logical_date"),
                reprocess=bool(context["params"].get("reprocess")),
                context=context,
            )

        @task(map_index_template="{{ candidate['name'] }}")
        def fetch_file(candidate: dict[str, Any]) -> dict[str, Any]:
            from samverkan.orchestration import feed_runtime as runtime

            context = get_current_context()
            return runtime.fetch(
                contract, candidate, context["run_id"], reprocess=bool(context["params"].get("reprocess"))
            )

        @task(outlets=outlets, map_index_template="{{ landed['name'] }}")
        def process_file(landed: dict[str, Any]) -> dict[str, Any]:
            from samverkan.orchestration import feed_runtime as runtime

            context = get_current_context()
            return runtime.process(contract, landed, context["run_id"], EXPECTATIONS_DIR, context=context)

        @task(trigger_rule="all_done")
        def write_manifest(landed: list[dict[str, Any]], results: list[dict[str, Any]] | None) -> dict[str, Any]:
            from samverkan.orchestration import feed_runtime as runtime

            context = get_current_context()
            night = run_night(context.get("logical_date"), context["params"])
            return runtime.summarise(contract, list(landed or []), list(results or []), context["run_id"], night)

        @task(trigger_rule="all_done")
        def render_data_docs(results: list[dict[str, Any]] | None) -> dict[str, str]:
            """Off the critical path: the published data and the manifest do not wait for GE's page
            renderer; runs even when the manifest task failed, since the files' records exist."""
            from samverkan.orchestration import feed_runtime as runtime

            return runtime.render_data_docs(contract, list(results or []), get_current_context()["run_id"])

        @task(trigger_rule="one_failed", retries=0, on_failure_callback=None)
        def fail_run() -> None:
            """The manifest runs even after a failure (all_done), and a DAG run's state comes from
            its leaves: without this leaf a run whose discovery was refused would show green. It
            sends no mail of its own: the task that failed has sent one already."""
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException("a task of this run failed; see its log (the manifest records what was done)")

        candidates = discover_files()
        landed = fetch_file.expand(candidate=candidates)
        results = process_file.expand(landed=landed)
        manifest = write_manifest(landed, results)  # type: ignore[arg-type]  # TaskFlow passes XComArgs
        docs = render_data_docs(results)  # type: ignore[arg-type]
        manifest >> docs
        [candidates, landed, results, manifest, docs] >> fail_run()

    return feed_dag()
