"""The human-readable data dictionary that travels with every delivery.

A recipient's analyst opens ``DATA_DICTIONARY.md`` next to the Parquet files and learns what each
column means, which rows were included and why, how pseudonyms behave, how small counts are
suppressed and when the data must be deleted, without asking the hub. It is generated from the
same sources the hub enforces (the common model and the agreement), so it cannot drift from
what was actually delivered.
"""

from __future__ import annotations

from datetime import date, timedelta

import pyarrow as pa

from samverkan.core.contracts import common_model
from samverkan.sharing import aggregates
from samverkan.sharing.agreements import AGGREGATE_DATASETS, Agreement, describe_condition
from samverkan.sharing.recipient_pseudonyms import IDENTIFIER_COLUMNS, recipient_domain


def _column_doc(dataset: str, column: str) -> str:
    if dataset in AGGREGATE_DATASETS:
        return aggregates.COLUMN_DOCS.get(column, "")
    text = str(common_model()["datasets"][dataset]["columns"].get(column, ""))
    text = text.split(" — ", 1)[-1]  # the model writes "type — meaning"; the type has its own column
    if column in IDENTIFIER_COLUMNS:
        text += " — re-keyed for you: stable across your deliveries, meaningless anywhere else"
    return text


def _dataset_section(agreement: Agreement, name: str, table: pa.Table) -> list[str]:
    grant = agreement.required_grant(name)
    lines = [f"## `{name}.parquet` — {table.num_rows} rows", ""]
    if name == "incident_counts":
        lines += [
            f"Incidents per week × area × category × hour of day, with totals. Counts from 1 to "
            f"{grant.suppression - 1} are withheld (`suppressed` = true, `incidents` null), and further "
            "counts are withheld wherever a small count could otherwise be worked out from the totals. "
            "Incidents without a known time are not counted.",
            "",
        ]
    elif name == "observation_counts":
        lines += [
            f"People counted by observers (e.g. the outreach team) per week × area × measure × hour the "
            f"time slot began, summed, with totals. Sums from 1 to {grant.suppression - 1} are withheld "
            "(`suppressed` = true, `people` null), and further sums wherever a small one could otherwise be "
            "worked out from the totals.",
            "",
        ]
    else:
        desc = common_model()["datasets"][name]["description"]
        lines += [desc, ""]
        if grant.where:
            lines += [f"Rows: only where {describe_condition(grant.where)}.", ""]
        if name == "involvements":
            lines += ["Only people involved in incidents included in this delivery.", ""]
    lines += ["| column | type | meaning |", "|---|---|---|"]
    lines += [f"| `{f.name}` | {f.type} | {_column_doc(name, f.name)} |" for f in table.schema]
    return lines + [""]


def data_dictionary(agreement: Agreement, night: date, tables: dict[str, pa.Table]) -> str:
    model = common_model()
    delete_by = night + timedelta(days=agreement.retention_days)
    lines = [
        f"# Delivery {night.isoformat()} for {agreement.recipient_name}",
        "",
        f"Under data-sharing agreement **{agreement.id}, version {agreement.version}** ({agreement.title}).",
        "",
        f"**Purpose:** {agreement.raw['recipient']['purpose'].strip()}",
        "",
        f"**Period:** incidents published for the night of {night.isoformat()}.",
        "",
        f"**Included:** incidents from {', '.join(agreement.sources)} where {describe_condition(agreement.scope_where)}.",
        "",
        f"**Granularity:** {agreement.granularity.replace('_', ' ')}.",
        "",
        f"**Retention:** delete these files by {delete_by.isoformat()} ({agreement.retention_days} days after the night).",
        "",
        "**Pseudonyms:** `incident_id`, `person_pseudonym` and `staff_pseudonym` are keyed pseudonyms in your own "
        f"domain (`{recipient_domain(agreement.id, agreement.pseudonym_epoch)}`). The same person keeps the same "
        "pseudonym in all your deliveries under this epoch; other recipients see different, unrelated values, so "
        "files from two recipients cannot be joined. Names, personnummer, phone numbers and free text are never "
        "delivered.",
        "",
        "`manifest.json` lists every file with its SHA-256; check them before use.",
        "",
    ]
    for name, table in tables.items():
        lines += _dataset_section(agreement, name, table)
    lines += ["## Shared codes", "", "**Categories:**", ""]
    lines += [f"- `{k}` ({model['category_kind'][k]}): {v}" for k, v in model["categories"].items()]
    lines += ["", "**Kinds of category** (`category_kind`):", ""]
    lines += [f"- `{k}`: {v}" for k, v in model["category_kinds"].items()]
    lines += ["", "**Roles:**", ""] + [f"- `{k}`: {v}" for k, v in model["roles"].items()]
    lines += ["", "**Areas:**", ""] + [f"- `{k}`: {', '.join(v)}" for k, v in model["areas"].items()]
    lines += ["", "**Age bands:** " + ", ".join(b["label"] for b in model["age_bands"]), ""]
    return "\n".join(lines)
