"""Disclosure control for row-level deliveries: the agreement's detail, then k-anonymity.

Pseudonyms alone do not make a row anonymous: whoever knows that a 25-34-year-old woman was
robbed at 23:14 by Stortorget finds her row, and through her pseudonym every other incident she
was in. So a row-level recipient gets times cut down to the agreement's slot (15 minutes, the
hour, the day) and places to its cell (coordinates rounded to 100 m or 1 km, or the area only;
columns finer than that are refused when the agreement is loaded), and every delivery is then
measured: each delivered person row's quasi-identifiers (age band, sex, the incident's time slot
and place, as delivered) put it in a group, and k is the size of the smallest group. A delivery
below the agreement's k (default 5) is refused, unless the agreement names an exception and why;
either way k goes into the manifest and the disclosure register.

Without person rows (an incidents-only grant) the incidents themselves are measured on time
and place.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from samverkan.privacy.pseudonymise import round_coordinate
from samverkan.sharing.agreements import Agreement, Detail

log = logging.getLogger(__name__)

LOCAL_TZ = "Europe/Stockholm"
TIME_COLUMNS = ("occurred_at_utc", "occurred_at_local", "reported_at_utc")
COORDINATE_COLUMNS = ("coord_n", "coord_e")
PERSON_QUASI_IDENTIFIERS = ("age_band", "gender")
TIME_QUASI_IDENTIFIERS = ("occurred_at_local", "occurred_at_utc")  # the first delivered one
PLACE_QUASI_IDENTIFIERS = ("area", "place", "stop_id", "coord_n", "coord_e")


class KAnonymityError(ValueError):
    """A row-level delivery would single people out; the message has the figures, no values."""


# --- generalisation ------------------------------------------------------------------------------


def generalise(tables: dict[str, pa.Table], detail: Detail | None) -> dict[str, pa.Table]:
    """Times down to the slot's start, coordinates to the cell; other datasets unchanged."""
    if detail is None or "incidents" not in tables:
        return tables
    incidents = tables["incidents"]
    for name in incidents.column_names:
        if name in TIME_COLUMNS:
            incidents = _replace(incidents, name, _floor_time(incidents.column(name), detail.slot_minutes))
        elif name in COORDINATE_COLUMNS and detail.cell_metres:
            column = incidents.column(name)
            incidents = _replace(incidents, name, round_coordinate(column, detail.cell_metres).cast(column.type))
    return {**tables, "incidents": incidents}


def _replace(table: pa.Table, name: str, values: pa.Array | pa.ChunkedArray) -> pa.Table:
    return table.set_column(table.column_names.index(name), name, values)


def _floor_time(values: pa.ChunkedArray, minutes: int) -> pa.ChunkedArray:
    """Floored on the Swedish wall clock (a day is a local day), returned in the column's type."""
    zoned = values.type.tz is not None
    local = values.cast(pa.timestamp(values.type.unit, tz=LOCAL_TZ)) if zoned else values
    floored = pc.floor_temporal(local, multiple=minutes, unit="minute")
    return floored.cast(values.type) if zoned else floored


# --- k-anonymity ------------------------------------------------------------------------------------


def quasi_identified_rows(tables: dict[str, pa.Table]) -> tuple[pa.Table, list[str]]:
    """The delivered rows a person could be recognised in (in their delivered order), with the
    quasi-identifier columns a recipient holds for them: a person row takes its incident's."""
    incidents = tables.get("incidents")
    place_time: list[str] = []
    if incidents is not None:
        time = next((c for c in TIME_QUASI_IDENTIFIERS if c in incidents.column_names), None)
        place_time = ([time] if time else []) + [c for c in PLACE_QUASI_IDENTIFIERS if c in incidents.column_names]
    people = tables.get("involvements")
    if people is None:
        return (incidents.select(place_time), place_time) if incidents is not None else (pa.table({}), [])
    person = [c for c in PERSON_QUASI_IDENTIFIERS if c in people.column_names]
    columns = {c: people.column(c) for c in person}
    if incidents is not None and place_time:
        at = pc.index_in(people.column("incident_id"), value_set=incidents.column("incident_id").combine_chunks())
        columns.update({c: pc.take(incidents.column(c), at) for c in place_time})
    return pa.table(columns) if columns else pa.table({"_": pa.nulls(people.num_rows)}).select([]), list(columns)


def group_sizes(rows: pa.Table, columns: list[str]) -> tuple[pa.Array, int]:
    """Per row, how many rows share its quasi-identifiers; and how many groups there are. A null
    is a value of its own (an unknown age band is one group, not a wildcard)."""
    parts = [pc.fill_null(pc.cast(rows.column(c), pa.string()), "\x00") for c in columns]
    key = pc.binary_join_element_wise(*parts, "\x1f") if columns else pa.array([""] * rows.num_rows)
    counts = pc.value_counts(key)
    at = pc.index_in(key, value_set=counts.field("values"))
    return pc.take(counts.field("counts"), at), len(counts)


def measure(tables: dict[str, pa.Table], required: int) -> dict[str, Any]:
    """k (the smallest group), and how many rows sit in groups smaller than ``required``."""
    rows, columns = quasi_identified_rows(tables)
    if rows.num_rows == 0:
        return {
            "k": None,
            "required": required,
            "rows": 0,
            "rows_below_k": 0,
            "groups": 0,
            "quasi_identifiers": columns,
        }
    sizes, groups = group_sizes(rows, columns)
    return {
        "k": pc.min(sizes).as_py(),
        "required": required,
        "rows": rows.num_rows,
        "rows_below_k": pc.sum(pc.less(sizes, required)).as_py(),
        "groups": groups,
        "quasi_identifiers": columns,
    }


def suppress(tables: dict[str, pa.Table], steps: tuple[str, ...], required: int) -> tuple[dict[str, pa.Table], int]:
    """Local suppression, step by step, on the person rows still in a group smaller than
    ``required`` (the other rows keep everything): a step naming a column withholds (nulls) it;
    ``rows`` withholds the remaining such rows whole. Returns the tables and how many rows lost
    something."""
    people = tables.get("involvements")
    if people is None or not steps:
        return tables, 0
    touched = pa.array([False] * people.num_rows)
    for step in steps:
        rows, qis = quasi_identified_rows({**tables, "involvements": people})
        small = pc.less(group_sizes(rows, qis)[0], required)
        if not pc.any(small).as_py():
            break
        touched = pc.or_(touched, small)
        if step == "rows":
            people, touched = people.filter(pc.invert(small)), touched.filter(pc.invert(small))
            return {**tables, "involvements": people}, _count(touched) + _count(small)
        if step in people.column_names:
            values = people.column(step)
            people = people.set_column(
                people.column_names.index(step), step, pc.if_else(small, pa.scalar(None, values.type), values)
            )
    return {**tables, "involvements": people}, _count(touched)


def _count(mask: pa.Array) -> int:
    return pc.sum(mask.cast(pa.int64())).as_py() or 0


def enforce(
    agreement: Agreement, night: date, tables: dict[str, pa.Table]
) -> tuple[dict[str, pa.Table], dict[str, Any] | None]:
    """The tables after the agreement's suppression, and the k figures for the manifest and the
    register; KAnonymityError when k stays below the agreement's and it names no exception."""
    detail = agreement.detail
    if detail is None:
        return tables, None
    suppressed, rows_suppressed = suppress(tables, detail.suppress, detail.k)
    figures = {
        **measure(suppressed, detail.k),
        "time": detail.time,
        "place": detail.place,
        "exception": detail.exception,
        "rows_suppressed": rows_suppressed,
    }
    if figures["k"] is None or figures["k"] >= detail.k:
        return suppressed, figures
    summary = (
        f"{agreement.label}: night {night}: k = {figures['k']} on {', '.join(figures['quasi_identifiers'])} "
        f"(time {detail.time}, place {detail.place}): {figures['rows_below_k']} of {figures['rows']} rows "
        f"in groups smaller than {detail.k}"
    )
    if detail.exception is None:
        raise KAnonymityError(
            f"{summary}; refused: coarsen detail.time or detail.place in "
            f"{agreement.path.name}, or name an exception and why (detail.k_anonymity.exception)"
        )
    log.warning("%s; delivered under the agreement's exception", summary)
    return suppressed, figures
