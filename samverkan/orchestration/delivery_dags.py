"""One Airflow delivery DAG per data-sharing agreement, scheduled on the published datasets.

The DAG is triggered by the Assets the ingest DAGs update (``samverkan.incidents`` and
``samverkan.involvements``) and updates an Asset of its own (``samverkan.outbox.<recipient>``),
so the Airflow UI shows the lineage feed → dataset → recipient. Building it reads the agreement
and nothing else; the work happens in ``samverkan.sharing.delivery`` when a task runs.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import DAG, Asset, dag, get_current_context, task

from samverkan.orchestration.feed_dags import DEFAULT_ARGS, START_DATE, dataset_asset, night_param, run_night
from samverkan.sharing.agreements import Agreement, describe_condition


def outbox_asset(recipient: str) -> Asset:
    return Asset(name=f"samverkan.outbox.{recipient}", uri=f"samverkan://outbox/{recipient}", group="samverkan")


def _describe_datasets(agreement: Agreement) -> str:
    rows = []
    for g in agreement.datasets():
        what = f"suppressed counts (threshold {g.threshold})" if g.aggregate else ", ".join(f"`{c}`" for c in g.columns)
        rows.append(f"| `{g.name}` | {what} |")
    return "\n".join(rows)


def _doc_md(agreement: Agreement) -> str:
    d = agreement.delivery
    how = (
        f"**pull**: the recipient logs in to the hub's SFTP service as `{d['account']}` and sees only its outbox"
        if agreement.mode == "pull"
        else f"**push**: uploaded to `{d['directory']}/<night>/` over Airflow connection `{d['connection_id']}` "
        "(temporary name, rename, size and SHA-256 verified; manifest last)"
    )
    return f"""
### {agreement.title}

Recipient: **{agreement.recipient_name}**, under agreement `agreements/{agreement.id}.yaml`
**version {agreement.version}** ({agreement.granularity.replace("_", " ")}).

**Scope:** incidents from {", ".join(agreement.sources)} where {describe_condition(agreement.scope_where)}.

| dataset | columns |
|---|---|
{_describe_datasets(agreement)}

**Pseudonyms:** every identifier re-keyed into `recipient:{agreement.id}:epoch{agreement.pseudonym_epoch}`.
**Delivery:** {how}. **Retention:** {agreement.retention_days} days, then removed from the outbox.

**Steps:** `plan_nights` finds nights (look-back {agreement.lookback_nights}) whose published data changed since
they were delivered → `deliver_night` (mapped) builds the outbox delivery (Parquet + `manifest.json` +
`DATA_DICTIONARY.md`), hands it over and appends to the disclosure register → `apply_retention` removes
expired deliveries and records that too.

Trigger with config `{{"night": "YYYY-MM-DD"}}` to deliver one night's window.
"""


def build_delivery_dag(agreement: Agreement) -> DAG:
    @dag(
        dag_id=f"samverkan_deliver_{agreement.id}",
        description=agreement.title,
        schedule=[dataset_asset("incidents"), dataset_asset("involvements")],
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=[
            "samverkan",
            "delivery",
            f"recipient:{agreement.id}",
            f"mode:{agreement.mode}",
            f"agreement:v{agreement.version}",
        ],
        doc_md=_doc_md(agreement),
        params={"night": night_param("Latest night to deliver")},
    )
    def delivery_dag():
        @task
        def plan_nights() -> list[str]:
            from samverkan.orchestration import delivery_runtime as runtime

            context = get_current_context()
            night = run_night(context.get("logical_date"), context["params"])
            return runtime.plan(agreement, night, today=night + timedelta(days=1))

        @task(outlets=[outbox_asset(agreement.id)], map_index_template="{{ night }}")
        def deliver_night(night: str) -> dict[str, Any]:
            from samverkan.orchestration import delivery_runtime as runtime

            return runtime.deliver(agreement, night, get_current_context()["run_id"])

        @task(trigger_rule="all_done")
        def apply_retention(delivered: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
            from samverkan.orchestration import delivery_runtime as runtime

            context = get_current_context()
            night = run_night(context.get("logical_date"), context["params"])
            return runtime.apply_retention(agreement, night + timedelta(days=1), context["run_id"])

        apply_retention(deliver_night.expand(night=plan_nights()))  # type: ignore[arg-type]  # TaskFlow passes XComArgs

    return delivery_dag()
