"""Mapping valid raw records onto the common incident model, with personal data handled.

This is where each contract's ``model:`` section and each column's ``personal:`` handling take
effect. The output schemas below are the published datasets; nothing else leaves the hub.
Personal values are transformed while still in Arrow arrays, per distinct value where the work
is expensive (normalising personnummer, keyed hashing), so a million rows cost a pass, not a
Python loop per row.

Local times are Europe/Stockholm wall-clock times. The two DST nights resolve by rule rather
than failing: a time in the repeated hour of the autumn night is taken as its first occurrence
(summer time, +02:00); a time in the skipped hour of the spring night is read with the offset in
force just before the gap (+01:00), so 02:30 becomes 03:30 summer time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cached_property
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from samverkan.core import nights
from samverkan.core.arrowops import SortedRuns, distinct_rows, encoded, row_codes
from samverkan.core.contracts import Column, Contract, category_kinds, common_model
from samverkan.privacy import personnummer
from samverkan.privacy.pseudonymise import Pseudonymiser, age_band, round_coordinate, scrub_text, street_only

LOCAL_TZ = nights.HUB_TIMEZONE
TS_UTC = pa.timestamp("us", tz="UTC")
TS_LOCAL = pa.timestamp("us")

# The feed id is also the `source=` partition directory; readers that discover hive partitions
# (pyarrow, pandas) read it as a dictionary, and a plain string column of the same name would
# then refuse to merge. Same type in the file and the path: the dataset root reads as one table.
SOURCE_TYPE = pa.dictionary(pa.int32(), pa.string())

INCIDENTS_SCHEMA = pa.schema(
    [
        ("incident_id", pa.string()),
        ("source", SOURCE_TYPE),
        ("source_file", pa.string()),
        ("occurred_at_utc", TS_UTC),
        ("occurred_at_local", TS_LOCAL),
        ("reported_at_utc", TS_UTC),
        ("place", pa.string()),
        ("area", pa.string()),
        ("coord_n", pa.int32()),
        ("coord_e", pa.int32()),
        ("stop_id", pa.string()),
        ("line", pa.string()),
        ("vehicle_id", pa.string()),
        ("category", pa.string()),
        ("category_kind", pa.string()),
        ("source_category", pa.string()),
        ("severity", pa.int8()),
        ("police_notified", pa.bool_()),
        ("staff_pseudonym", pa.string()),
        ("staff_role", pa.string()),
        ("description", pa.string()),
    ]
)

INVOLVEMENTS_SCHEMA = pa.schema(
    [
        ("incident_id", pa.string()),
        ("source", SOURCE_TYPE),
        ("person_pseudonym", pa.string()),
        ("role", pa.string()),
        ("source_role", pa.string()),
        ("age_band", pa.string()),
        ("gender", pa.string()),
        ("person_flag", pa.string()),  # why person values are missing (see person_fields); null when none are
    ]
)

PERSON_FLAG = "_person_flag"  # the pipeline's column of a record's person faults, read by involvements()


CANONICAL = "__canonical"  # beside a personnummer column in the batch: its canonical form (null unless valid)
PNR_STATUS = "__pnr_status"  # and its status (personnummer.STATUSES)
PUBLISHED_ID = "__incident_id"  # beside the batch's rows: each row's published incident id (with_incident_ids)


def with_personnummer(contract: Contract, table: pa.Table, night: date) -> pa.Table:
    """The batch with each personnummer column's canonical form and status beside it.

    Validation needs the status and the model the canonical form; normalising is Python once
    per distinct value, so it is done once per batch here and both read the result
    (``normalised``). The columns ride along to the model only: nothing writes a table's
    columns by name except through the published schemas, and the quarantine keeps only the
    contract's columns.
    """
    for c in contract.columns:
        if c.type == "personnummer" and c.name in table.column_names:
            canonical, status = personnummer.normalise_array(table.column(c.name), night)
            table = table.append_column(c.name + CANONICAL, canonical).append_column(c.name + PNR_STATUS, status)
    return table


def normalised(table: pa.Table, name: str, night: date) -> tuple[pa.Array, pa.Array]:
    """(canonical, status) of the personnummer column ``name``: as ``with_personnummer`` left
    them, else normalised now (a caller with a bare batch, such as a test)."""
    if name + CANONICAL in table.column_names:
        return table.column(name + CANONICAL).combine_chunks(), table.column(name + PNR_STATUS).combine_chunks()
    return personnummer.normalise_array(table.column(name), night)


def person_fields(contract: Contract) -> dict[str, str]:
    """The columns that describe an involved person, as validation names them (``persons.approx_age``
    for an array's field), each with the ``person_flag`` its fault sets.

    A record whose only faults are in these (a mistyped personnummer, an impossible age) still
    publishes its incident; its involvement is published without the faulty values and flagged
    (issue 14, item 10). The name is never published, so its fault only flags the involvement.
    """
    spec = contract.model.get("involvements")
    if not spec:
        return {}
    prefix = "" if spec["from"] == "rows" else f"{spec['from']}."
    flags = {
        prefix + spec[key]: flag
        for key, flag in (("person", "invalid_identifier"), ("age", "invalid_age"), ("gender", "invalid_gender"))
        if spec.get(key)
    }
    if "column" in spec["role"]:
        flags[prefix + spec["role"]["column"]] = "invalid_role"
    flags.update({c.name: "invalid_name" for c in contract.columns if (c.personal or {}).get("name_order")})
    return flags


OBSERVATIONS_SCHEMA = pa.schema(
    [
        ("source", SOURCE_TYPE),
        ("source_file", pa.string()),
        ("slot_start_utc", TS_UTC),
        ("slot_start_local", TS_LOCAL),
        ("slot_end_local", TS_LOCAL),
        ("place", pa.string()),
        ("area", pa.string()),
        ("measure", pa.string()),
        ("count", pa.int32()),
    ]
)

SCHEMAS = {"incidents": INCIDENTS_SCHEMA, "involvements": INVOLVEMENTS_SCHEMA, "observations": OBSERVATIONS_SCHEMA}

# Partners' own incident keys (a diarienummer is printed on a complainant's receipt) are keyed
# with the hub's key before publication, in a domain of their own (no person domain is named
# this); the way back, for corrections, is a private table (``incident_id_map``).
INCIDENT_ID_DOMAIN = "incident_id"
INCIDENT_IDS_SCHEMA = pa.schema(
    [("incident_id", pa.string()), ("source", SOURCE_TYPE), ("partner_incident_id", pa.string())]
)


# --- typed values from raw text ---------------------------------------------------------


def local_to_utc(naive: pa.Array) -> pa.Array:
    """Europe/Stockholm wall-clock times to UTC instants, DST nights resolved by the rule above."""
    chosen = pc.assume_timezone(naive, timezone=LOCAL_TZ, ambiguous="earliest", nonexistent="latest")
    round_trip = pc.local_timestamp(chosen)
    in_gap = pc.fill_null(pc.not_equal(round_trip, naive), False)
    if not pc.any(in_gap).as_py():
        return chosen.cast(TS_UTC)
    before_gap = pc.assume_timezone(naive, timezone=LOCAL_TZ, ambiguous="earliest", nonexistent="earliest")
    offset = pc.subtract(pc.local_timestamp(before_gap), before_gap.cast(TS_UTC).cast(TS_LOCAL))
    shifted = pc.subtract(naive, offset).cast(TS_UTC)
    return pc.if_else(in_gap, shifted, chosen.cast(TS_UTC))


def utc_to_local(utc: pa.Array) -> pa.Array:
    return pc.local_timestamp(utc.cast(pa.timestamp("us", tz=LOCAL_TZ)))


def parse_timestamp(raw: pa.Array, column: Column) -> pa.Array:
    """UTC instants from the column's text, per its format and time-zone convention."""
    parsed = pc.strptime(raw, format=column.format, unit="us", error_is_null=True)
    if column.timezone == "offset":
        return parsed.cast(TS_UTC)
    return local_to_utc(parsed)


def parse_integer(raw: pa.Array) -> pa.Array:
    return pc.cast(pc.utf8_trim_whitespace(raw), pa.int64())


def parse_boolean(raw: pa.Array, column: Column) -> pa.Array:
    truthy = pc.is_in(raw, value_set=pa.array(list(column.true_values)))
    return pc.if_else(pc.is_null(raw), pa.scalar(None, pa.bool_()), truthy)


def map_values(raw: pa.Array, mapping: dict[str, str]) -> pa.Array:
    keys = pa.array(list(mapping.keys()), pa.string())
    values = pa.array(list(mapping.values()), pa.string())
    return pc.take(values, pc.index_in(raw, value_set=keys))


def kind_of(categories: pa.Array) -> pa.Array:
    """The kind (crime, disorder, environment, care) of each shared category; null stays null."""
    return map_values(categories, category_kinds())


def constant(value: Any, n: int, type_: pa.DataType = pa.string()) -> pa.Array:
    return pa.nulls(n, type_) if value is None else pa.array([value] * n, type_)


# --- areas ----------------------------------------------------------------------------------


def _area_key(text: str) -> str:
    return re.sub(r"\s+", " ", text.split(",")[0]).strip().casefold()


@dataclass(frozen=True)
class _Areas:
    keys: pa.Array
    ids: pa.Array


def _areas() -> _Areas:
    pairs = [(_area_key(alias), area) for area, aliases in common_model()["areas"].items() for alias in aliases]
    return _Areas(pa.array([k for k, _ in pairs]), pa.array([a for _, a in pairs]))


def area_of(places: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Shared area ids for place texts, matched on the text before the first comma; worked out
    once per distinct place (a file has few: places are generalised)."""
    areas = _areas()
    places = encoded(places)
    key = pc.utf8_lower(pc.utf8_trim_whitespace(pc.replace_substring_regex(places.dictionary, r",.*$", "")))
    key = pc.replace_substring_regex(key, r"\s+", " ")
    return pc.take(pc.take(areas.ids, pc.index_in(key, value_set=areas.keys)), places.indices)


# --- incident keys -------------------------------------------------------------------------


def _first_of_each(index: np.ndarray) -> np.ndarray:
    mask = np.zeros(len(index), bool)
    mask[np.unique(index, return_index=True)[1]] = True
    return mask


def first_in_batch(keys: pa.Array | pa.ChunkedArray) -> pa.Array:
    """True for the first row of each key in ``keys`` alone (a null key counts as one key): what
    ``FeedModel.first_occurrences`` keeps of a file's first batch, a superset of it for a later one."""
    return pa.array(_first_of_each(row_codes(encoded(keys))) if len(keys) else np.zeros(0, bool))


# --- the mapping ---------------------------------------------------------------------------


class FeedModel:
    """Turns one file's valid raw batches into incident and involvement tables."""

    def __init__(self, contract: Contract, pseudonymiser: Pseudonymiser, night: date, source_file: str):
        self.contract = contract
        self.pseudonymiser = pseudonymiser
        self.night = night
        self.source_file = source_file
        self._seen_hashes = SortedRuns(np.int64)  # see first_occurrences
        self._seen_null = False

    @cached_property
    def _bands(self) -> list[dict[str, Any]]:
        return common_model()["age_bands"]

    # columns ----------------------------------------------------------------------------
    def _typed(self, table: pa.Table, column: Column) -> pa.Array:
        raw = table.column(column.name).combine_chunks()
        if column.type == "timestamp":
            return parse_timestamp(raw, column)
        if column.type == "integer":
            return parse_integer(raw)
        if column.type == "boolean":
            return parse_boolean(raw, column)
        return raw

    def _ref(self, table: pa.Table, ref: Any, n: int, type_: pa.DataType = pa.string()) -> pa.Array:
        if ref is None:
            return pa.nulls(n, type_)
        if isinstance(ref, dict) and "value" in ref:
            return constant(ref["value"], n, type_)
        return self._typed(table, self.contract.column(ref)).cast(type_)

    def _generalised(self, table: pa.Table, name: str | None, n: int, type_: pa.DataType) -> pa.Array:
        if name is None:
            return pa.nulls(n, type_)
        column = self.contract.column(name)
        values = self._typed(table, column)
        method = (column.personal or {}).get("method")
        if method == "round_100m":
            values = round_coordinate(values, 100)
        elif method == "street_only":
            values = street_only(values)
        return values.cast(type_)

    def _pseudonym(self, table: pa.Table, name: str | None, n: int) -> pa.Array:
        if name is None:
            return pa.nulls(n, pa.string())
        column = self.contract.column(name)
        raw = table.column(name).combine_chunks()
        domain = column.domain
        if column.type == "personnummer":
            canonical, _ = normalised(table, name, self.night)
            return self.pseudonymiser.pseudonymise_array(domain, canonical)
        return self.pseudonymiser.pseudonymise_array(domain, raw)

    def _occurred(self, table: pa.Table, ref: Any, n: int) -> pa.Array:
        if ref is None:
            return pa.nulls(n, TS_UTC)
        if isinstance(ref, str):
            return self._typed(table, self.contract.column(ref))
        return local_to_utc(self._wall_clock(table, ref))

    def _wall_clock(self, table: pa.Table, ref: dict[str, str]) -> pa.Array:
        """Local wall-clock times from a date column and a time column."""
        text = pc.binary_join_element_wise(table.column(ref["date"]), table.column(ref["time"]), " ")
        date_fmt = self.contract.column(ref["date"]).format
        time_fmt = self.contract.column(ref["time"]).format
        return pc.strptime(text, format=f"{date_fmt} {time_fmt}", unit="us", error_is_null=True)

    def _scrubbed(self, table: pa.Table, name: str | None, n: int) -> pa.Array:
        if name is None:
            return pa.nulls(n, pa.string())
        names, extras = [], []
        for c in self.contract.columns:
            personal = c.personal or {}
            if c.type == "array" or c.name == name or personal.get("handling") in (None, "scrub", "generalise"):
                continue
            if "name_order" in personal:
                names.append(table.column(c.name).combine_chunks())
            elif c.type != "personnummer":
                extras.append(table.column(c.name).combine_chunks())
        texts = table.column(name).combine_chunks()
        if not names and not extras:
            return scrub_text(texts)
        # A row's scrubbed text depends on its text and its own values only, and rows repeat
        # them (one event, several people; the same person twice): scrub each combination once.
        inverse, first = distinct_rows([texts, *names, *extras])
        if len(first) > 0.8 * len(texts):
            return scrub_text(texts, names=names or None, extra_values=extras or None)
        pick = pa.array(first, pa.int64())
        scrubbed = scrub_text(
            pc.take(texts, pick),
            names=[pc.take(a, pick) for a in names] or None,
            extra_values=[pc.take(a, pick) for a in extras] or None,
        )
        return pc.take(scrubbed, pa.array(inverse, pa.int64()))

    # datasets ---------------------------------------------------------------------------
    def outputs(self) -> dict[str, tuple[pa.Schema, Any]]:
        """Published dataset → (schema, the function making its rows from valid raw rows), for
        the datasets of this feed's kind only: an incident-only feed has no involvements at all."""
        makers = {"incidents": self.incidents, "involvements": self.involvements, "observations": self.observations}
        return {name: (SCHEMAS[name], makers[name]) for name in self.contract.datasets}

    def _slot(self, table: pa.Table, start: Any, end: Any, n: int) -> tuple[pa.Array, pa.Array]:
        """A slot's start and end instants; an end on the wall clock at or before the start is
        the next day's (the day is added before the time zone, so a DST night stays right)."""
        if isinstance(start, str) or isinstance(end, str):
            return self._occurred(table, start, n), self._occurred(table, end, n)
        first, last = self._wall_clock(table, start), self._wall_clock(table, end)
        wraps = pc.fill_null(pc.less_equal(last, first), False)
        last = pc.if_else(wraps, pc.add(last, pa.scalar(timedelta(days=1), pa.duration("us"))), last)
        return local_to_utc(first), local_to_utc(last)

    def observations(self, table: pa.Table) -> pa.Table:
        """One row per place, slot and measure of an aggregate feed (counts, no identities). A slot
        ending at or before its start ends the next day (22:00-00:00)."""
        spec = self.contract.model["observations"]
        n = table.num_rows
        start_utc, end_utc = self._slot(table, spec["slot_start"], spec["slot_end"], n)
        place = self._generalised(table, spec["place"], n, pa.string())
        common = {
            "source": constant(self.contract.id, n),
            "source_file": constant(self.source_file, n),
            "slot_start_utc": start_utc,
            "slot_start_local": utc_to_local(start_utc),
            "slot_end_local": utc_to_local(end_utc),
            "place": place,
            "area": area_of(place),
        }
        parts = [
            pa.Table.from_pydict(
                {
                    **common,
                    "measure": constant(measure, n),
                    "count": parse_integer(table.column(column).combine_chunks()).cast(pa.int32()),
                },
                schema=OBSERVATIONS_SCHEMA,
            )
            for column, measure in spec["counts"].items()
        ]
        counted = pa.concat_tables(parts)
        return counted.filter(pc.is_valid(counted.column("count")))

    def incidents(self, table: pa.Table, first: pa.Array | None = None) -> pa.Table:
        """One row per incident; later rows of an incident already seen in this file are skipped.

        ``first`` (rows to keep) lets a worker of the parallel path map a batch on its own: it
        keeps ``first_in_batch`` and the file's run drops what earlier batches had (the rows
        are mapped one by one, so filtering before or after mapping gives the same rows)."""
        spec = self.contract.model["incident"]
        keys = table.column(spec["key"]).combine_chunks()
        first = self.first_occurrences(keys) if first is None else first
        table = table.filter(first)
        n = table.num_rows
        occurred = self._occurred(table, spec.get("occurred_at"), n)
        place = self._generalised(table, spec.get("place"), n, pa.string())
        category_raw = table.column(spec["category"]["column"]).combine_chunks()
        category = map_values(category_raw, spec["category"]["map"])
        columns = {
            "incident_id": self._ids(table),
            "source": constant(self.contract.id, n),
            "source_file": constant(self.source_file, n),
            "occurred_at_utc": occurred,
            "occurred_at_local": utc_to_local(occurred),
            "reported_at_utc": self._ref(table, spec.get("reported_at"), n, TS_UTC),
            "place": place,
            "area": area_of(place),
            "coord_n": self._generalised(table, spec.get("coord_n"), n, pa.int32()),
            "coord_e": self._generalised(table, spec.get("coord_e"), n, pa.int32()),
            "stop_id": self._ref(table, spec.get("stop_id"), n),
            "line": self._ref(table, spec.get("line"), n),
            "vehicle_id": self._ref(table, spec.get("vehicle_id"), n),
            "category": category,
            "category_kind": kind_of(category),
            "source_category": category_raw,
            "severity": self._ref(table, spec.get("severity"), n, pa.int8()),
            "police_notified": self._ref(table, spec.get("police_notified"), n, pa.bool_()),
            "staff_pseudonym": self._pseudonym(table, spec.get("staff"), n),
            "staff_role": self._ref(table, spec.get("staff_role"), n),
            "description": self._scrubbed(table, spec.get("description"), n),
        }
        return pa.Table.from_pydict(columns, schema=INCIDENTS_SCHEMA)

    def first_occurrences(self, keys: pa.Array) -> pa.Array:
        """True for the first row of each key in the file so far (a null key counts as one key).

        Keys of earlier batches are kept as sorted runs of 64-bit hashes (``SortedRuns``; Python's
        keyed SipHash, so 8 bytes per incident instead of a string object): memory stays small when a
        file has millions of incidents. Two different keys sharing a hash would drop the later
        incident row; at 10 million incidents in one file the chance is below 3 in a million.
        """
        if len(keys) == 0:
            return pa.array(np.zeros(0, bool))
        codes = encoded(keys)
        index = row_codes(codes)
        mask = _first_of_each(index)
        hashes = np.fromiter((hash(v) for v in codes.dictionary.to_pylist()), np.int64, len(codes.dictionary))
        known, _ = self._seen_hashes.lookup(hashes)
        valued = index >= 0
        mask[valued] &= ~known[index[valued]]
        if self._seen_null:
            mask[~valued] = False
        self._seen_null = self._seen_null or bool((~valued).any())
        self._seen_hashes.add(np.unique(hashes[~known]))
        return pa.array(mask)

    def with_incident_ids(self, table: pa.Table) -> pa.Table:
        """The batch with each row's published incident id beside it (``PUBLISHED_ID``): the
        incidents, the involvements and the private id map all need them, so a batch's keys
        are hashed once, not three times. Like ``with_personnummer``'s, the column is read by
        the model only."""
        if "incident" not in self.contract.model:
            return table
        return table.append_column(PUBLISHED_ID, self._ids(table))

    def _ids(self, table: pa.Table) -> pa.Array:
        if PUBLISHED_ID in table.column_names:
            return table.column(PUBLISHED_ID).combine_chunks()
        return self._published_ids(table.column(self.contract.model["incident"]["key"]))

    def _published_ids(self, keys: pa.Array | pa.ChunkedArray) -> pa.Array:
        """The published incident id: HMAC of ``<feed>:<partner key>``, so two feeds' keys never meet."""
        partner = pc.binary_join_element_wise(constant(self.contract.id, len(keys)), keys, ":")
        return self.pseudonymiser.pseudonymise_array(INCIDENT_ID_DOMAIN, partner)

    def incident_id_map(self, table: pa.Table) -> pa.Table:
        """Private: partner key ↔ published id, one row per incident key of the batch."""
        name = self.contract.model["incident"]["key"]
        keys = table.column(name)
        needed = table.select([c for c in table.column_names if c in (name, PUBLISHED_ID)])  # not the free text
        first = needed.filter(pc.and_(first_in_batch(keys), pc.is_valid(keys)))  # each key once, as it first appears
        keys = first.column(name).combine_chunks()
        return pa.Table.from_pydict(
            {
                "incident_id": self._ids(first),
                "source": constant(self.contract.id, len(keys)),
                "partner_incident_id": keys,
            },
            schema=INCIDENT_IDS_SCHEMA,
        )

    def involvements(self, table: pa.Table) -> pa.Table:
        spec = self.contract.model["involvements"]
        incident_ids = self._ids(table)
        if spec["from"] == "rows":
            people = self._person_columns(table, spec).append_column("_incident_id", incident_ids)
            people = self._rows_with_people(people, spec)
            return self._involvement_table(people, spec, self.contract.columns)
        array_col = self.contract.column(spec["from"])
        lists = table.column(spec["from"]).combine_chunks()
        parent = pc.list_parent_indices(lists)
        flat = pc.list_flatten(lists)
        items = pa.Table.from_arrays(
            [pc.take(incident_ids, parent)] + [flat.field(f.name) for f in array_col.fields],
            names=["_incident_id"] + [f.name for f in array_col.fields],
        )
        if PERSON_FLAG in table.column_names:
            items = items.append_column(PERSON_FLAG, pc.take(table.column(PERSON_FLAG), parent))
        return self._involvement_table(items, spec, array_col.fields)

    @staticmethod
    def _person_columns(table: pa.Table, spec: dict[str, Any]) -> pa.Table:
        """Only the columns ``_involvement_table`` reads, so the filter that follows copies
        those and not the free text (filtering every column was 4 % of a police file)."""
        names = [spec["role"].get("column"), spec.get("age"), spec.get("gender"), PERSON_FLAG]
        if person := spec.get("person"):
            names += [person, person + CANONICAL, person + PNR_STATUS]
        return table.select([n for n in table.column_names if n in names])

    def _rows_with_people(self, table: pa.Table, spec: dict[str, Any]) -> pa.Table:
        """A row describes a person when its role column is filled (a fixed role: every row), or
        when it has a person fault (its role may be the faulty value, cleared)."""
        role = spec["role"]
        if "column" not in role:
            return table
        person = pc.is_valid(table.column(role["column"]))
        if PERSON_FLAG in table.column_names:
            person = pc.or_(person, pc.is_valid(table.column(PERSON_FLAG)))
        return table.filter(person)

    def _involvement_table(self, table: pa.Table, spec: dict[str, Any], columns: tuple[Column, ...]) -> pa.Table:
        n = table.num_rows
        by_name = {c.name: c for c in columns}
        role = spec["role"]
        source_role = table.column(role["column"]).combine_chunks() if "column" in role else constant(None, n)
        shared_role = map_values(source_role, role["map"]) if "column" in role else constant(role["value"], n)
        person = spec.get("person")
        pseudonyms = pa.nulls(n, pa.string())
        ages = pa.nulls(n, pa.int64())
        if person:
            canonical, _ = normalised(table, person, self.night)
            pseudonyms = self.pseudonymiser.pseudonymise_array(by_name[person].domain, canonical)
            ages = personnummer.ages_on(canonical, self.night).cast(pa.int64())
        if spec.get("age"):
            stated = parse_integer(table.column(spec["age"]).combine_chunks())
            ages = pc.coalesce(stated, ages)
        gender = table.column(spec["gender"]).combine_chunks() if spec.get("gender") else constant(None, n)
        data = {
            "incident_id": table.column("_incident_id"),
            "source": constant(self.contract.id, n),
            "person_pseudonym": pseudonyms,
            "role": shared_role,
            "source_role": source_role,
            "age_band": age_band(ages, self._bands),
            "gender": gender,
            "person_flag": table.column(PERSON_FLAG) if PERSON_FLAG in table.column_names else constant(None, n),
        }
        return pa.Table.from_pydict(data, schema=INVOLVEMENTS_SCHEMA)
