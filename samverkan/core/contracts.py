"""Feed data contracts: versioned YAML in ``schemas/``, checked when loaded.

A contract is the single description of a partner feed. The DAG factory, the parser, the
Great Expectations suite, the pseudonymiser and the mapping onto the common incident model all
read it, so adding a partner means adding a contract, not code. Loading is strict: the JSON
schema catches shape errors, and the cross-checks below catch references that a schema cannot
see (a model field naming a column that does not exist, a category outside the taxonomy).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as dt_time
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from samverkan.core import nights
from samverkan.core.settings import CONFIG_ROOT
from samverkan.core.yamlconfig import ConfigFile, RawField, load_mapping

SCHEMAS_DIR = CONFIG_ROOT / "schemas"
CONTRACT_SCHEMA = SCHEMAS_DIR / "contract.schema.json"
COMMON_MODEL = SCHEMAS_DIR / "common_model.yaml"
NON_CONTRACT_FILES = {"common_model.yaml"}
DEFAULT_RECEIPTS_DIRECTORY = "/receipts"
DEFAULT_QUARANTINE_RETENTION_DAYS = 90

# What a feed publishes (``model.kind``): incidents with the people involved (the default, so
# existing contracts keep their meaning), incidents with no people at all (a fault report names
# no one; inventing a "reporter" row would put fake people into every count), or counts per place
# and time slot with no identities (the outreach team's observations).
KIND_INCIDENTS = "incidents"
KIND_INCIDENTS_ONLY = "incidents_only"
KIND_AGGREGATE = "aggregate"
DATASETS_OF_KIND = {
    KIND_INCIDENTS: ("incidents", "involvements"),
    KIND_INCIDENTS_ONLY: ("incidents",),
    KIND_AGGREGATE: ("observations",),
}


@dataclass(frozen=True)
class Limits:
    """How much a partner file may make the hub read (``limits:`` in the contract).

    Bounds that keep a worker's memory and time bounded whatever a file holds (a decompression
    bomb, a line without end); a file beyond them is refused whole. The defaults are far above
    any real export of these feeds (see docs/resilience.md) and a contract may lower or raise them.
    """

    max_decompressed_bytes: int = 8 << 30
    max_compression_ratio: float = 100.0  # decompressed ÷ stored bytes, once past RATIO_FLOOR_BYTES
    max_line_bytes: int = 4 << 20  # a JSON line, or a whole CSV record (with its quoted line breaks)


class ContractError(ValueError):
    """A contract file is invalid; the message names the file and the field."""


@dataclass(frozen=True)
class Column:
    name: str
    source: str
    type: str
    nullable: bool = True
    required: bool = True
    pattern: str | None = None
    allowed: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None
    format: str | None = None
    timezone: str | None = None
    true_values: tuple[str, ...] = ("true",)
    false_values: tuple[str, ...] = ("false",)
    fields: tuple[Column, ...] = ()
    personal: dict[str, Any] | None = None

    @property
    def handling(self) -> str | None:
        return self.personal["handling"] if self.personal else None

    @property
    def domain(self) -> str:
        """The pseudonym domain of a personal column; asking it of any other column is a bug."""
        if self.personal is None:
            raise ContractError(f"column {self.name!r} is not personal: it has no pseudonym domain")
        return self.personal["domain"]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Column:
        return cls(
            name=d["name"],
            source=d["source"],
            type=d["type"],
            nullable=d.get("nullable", True),
            required=d.get("required", True),
            pattern=d.get("pattern"),
            allowed=tuple(d["allowed"]) if "allowed" in d else None,
            min=d.get("min"),
            max=d.get("max"),
            format=d.get("format"),
            timezone=d.get("timezone"),
            true_values=tuple(d.get("true_values", ("true",))),
            false_values=tuple(d.get("false_values", ("false",))),
            fields=tuple(cls.from_dict(f) for f in d.get("fields", ())),
            personal=d.get("personal"),
        )


@dataclass(frozen=True)
class Contract(ConfigFile):
    """One feed's contract; ``raw`` keeps the YAML as loaded for the parts read ad hoc."""

    columns: tuple[Column, ...] = field(repr=False)

    # --- file naming and arrival -------------------------------------------------------
    title = RawField[str]("title")
    connection_id = RawField[str]("partner", "connection_id")
    directory = RawField[str]("file", "directory")
    completeness = RawField[dict[str, Any]]("file", "completeness")
    lookback_days = RawField[int]("file", "lookback_days")

    @property
    def file_regex(self) -> re.Pattern[str]:
        return re.compile(r"\A" + self.raw["file"]["pattern"] + r"\Z")

    def night_of(self, filename: str) -> date | None:
        """The night a file name carries, or None when the name is not this feed's."""
        m = self.file_regex.match(filename)
        if not m:
            return None
        try:
            return datetime.strptime(m.group("night"), self.raw["file"]["night_format"]).date()
        except ValueError:
            return None

    # --- format and columns -------------------------------------------------------------
    format = RawField[dict[str, Any]]("format")
    model = RawField[dict[str, Any]]("model")

    @property
    def kind(self) -> str:
        """``incidents`` (with involvements), ``incidents_only`` or ``aggregate``."""
        return self.model.get("kind", KIND_INCIDENTS)

    @property
    def datasets(self) -> tuple[str, ...]:
        """The published datasets this feed writes, in the order they are written."""
        return DATASETS_OF_KIND[self.kind]

    max_invalid_row_fraction = RawField[float]("quality", "max_invalid_row_fraction", default=1.0)
    # ``warn``: a column the contract does not know is reported and ignored; ``reject``: the file is refused.
    unexpected_columns_policy = RawField[str]("quality", "unexpected_columns", default="warn")

    @property
    def limits(self) -> Limits:
        return Limits(**self.raw.get("limits", {}))

    @property
    def quarantine_retention_days(self) -> int:
        return int(self.raw.get("quality", {}).get("quarantine_retention_days", DEFAULT_QUARANTINE_RETENTION_DAYS))

    # --- delivery: deadline and receipts ------------------------------------------------
    timezone = RawField[str]("schedule", "timezone")
    cron = RawField[str]("schedule", "cron")

    def run_time_for(self, night: date) -> datetime:
        """The scheduled run of this feed that covers ``night``."""
        return nights.run_time(night, self.cron, self.timezone)

    @property
    def deadline(self) -> dt_time | None:
        """Local time by which the night's file is due; None when the contract sets no deadline."""
        text = self.raw.get("delivery", {}).get("deadline")
        return dt_time.fromisoformat(text) if text else None

    def deadline_for(self, night: date) -> datetime | None:
        """When the file for ``night`` is due, as an aware datetime in the feed's time zone."""
        due = self.deadline
        if due is None:
            return None
        days = self.raw.get("delivery", {}).get("deadline_days_after_night", 1)
        return datetime.combine(night + timedelta(days=days), due, tzinfo=ZoneInfo(self.timezone))

    receipts_directory = RawField[str]("delivery", "receipts_directory", default=DEFAULT_RECEIPTS_DIRECTORY)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def all_columns(self) -> Iterator[tuple[Column | None, Column]]:
        """Every column with its parent (for fields of array columns)."""
        for c in self.columns:
            yield None, c
            for f in c.fields:
                yield c, f

    def personal_columns(self) -> list[Column]:
        return [c for _, c in self.all_columns() if c.personal]


def _load_yaml(path: Path) -> dict[str, Any]:
    return load_mapping(path, ContractError)


@cache
def _validator():
    import jsonschema

    schema = json.loads(CONTRACT_SCHEMA.read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


@cache
def common_model() -> dict[str, Any]:
    model = _load_yaml(COMMON_MODEL)
    _check_category_kinds(model)
    return model


def _check_category_kinds(model: dict[str, Any]) -> None:
    """Every shared category has exactly one known kind, so a group-by on kind loses nothing."""
    kinds, of = model.get("category_kinds") or {}, model.get("category_kind") or {}
    problems = [f"category_kind.{c}: missing (every category needs a kind)" for c in model["categories"] if c not in of]
    problems += [f"category_kind.{c}: not a category" for c in of if c not in model["categories"]]
    problems += [
        f"category_kind.{c}: {k!r} is not one of category_kinds ({', '.join(kinds)})"
        for c, k in of.items()
        if k not in kinds
    ]
    if problems:
        raise ContractError("\n".join(f"{COMMON_MODEL.name}: {p}" for p in problems))


def category_kinds() -> dict[str, str]:
    """Shared category → its kind (crime, disorder, environment, care), from the common model."""
    return dict(common_model()["category_kind"])


SCHEMA_HINTS = {
    "'involvements' is a required property": " (a feed that names no people declares kind: incidents_only; counts only: kind: aggregate)"
}


def _check_schema(path: Path, data: dict[str, Any]) -> None:
    errors = sorted(_validator().iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        lines = []
        for e in errors[:10]:
            where = ".".join(str(p) for p in e.absolute_path) or "(top level)"
            lines.append(f"{path.name}: {where}: {e.message}{SCHEMA_HINTS.get(e.message, '')}")
        raise ContractError("\n".join(lines))


def _check_references(path: Path, data: dict[str, Any], columns: tuple[Column, ...]) -> None:
    """Cross-references the JSON schema cannot express."""
    problems: list[str] = []
    top = {c.name: c for c in columns}
    nested = {f"{c.name}.{f.name}": f for c in columns for f in c.fields}
    names = [c.name for c in columns]
    if len(set(names)) != len(names):
        problems.append("columns: duplicate column names")
    try:
        re.compile(data["file"]["pattern"])
    except re.error as exc:
        problems.append(f"file.pattern: not a valid regular expression: {exc}")
    problems += _check_model(data["model"], top, nested)
    for c in [*columns, *(f for column in columns for f in column.fields)]:
        if c.personal:
            for target in c.personal.get("scrub_from", []):
                if target not in top or (top[target].personal or {}).get("handling") != "scrub":
                    problems.append(f"columns.{c.name}.personal.scrub_from: {target!r} is not a scrubbed column")
        if c.pattern:
            try:
                re.compile(c.pattern)
            except re.error as exc:
                problems.append(f"columns.{c.name}.pattern: {exc}")
    try:
        ZoneInfo(data["schedule"]["timezone"])
    except (KeyError, ValueError):
        problems.append(f"schedule.timezone: {data['schedule']['timezone']!r} is not a known time zone")
    receipts = data.get("delivery", {}).get("receipts_directory")
    if receipts and receipts.rstrip("/") == data["file"]["directory"].rstrip("/"):
        problems.append("delivery.receipts_directory: must differ from file.directory (receipts are not partner files)")
    if problems:
        raise ContractError("\n".join(f"{path.name}: {p}" for p in problems))


def _column_refs(value: Any) -> list[str]:
    """Column names a model field refers to: a name, a mapped column, or a date + time pair."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict) and "column" in value:
        return [value["column"]]
    if isinstance(value, dict) and "date" in value:
        return [value["date"], value["time"]]
    return []


def _check_model(model: dict[str, Any], top: dict[str, Column], nested: dict[str, Column]) -> list[str]:
    """The sections a feed's kind needs and no others (an incident-only feed with an involvements
    section would be a contract that says two things), each checked against the columns."""
    kind = model.get("kind", KIND_INCIDENTS)
    not_allowed = {
        KIND_INCIDENTS: ("observations",),
        KIND_INCIDENTS_ONLY: ("observations", "involvements"),
        KIND_AGGREGATE: ("incident", "involvements"),
    }[kind]
    problems = [
        f"model.{section}: not allowed in a feed of kind {kind!r}" for section in not_allowed if section in model
    ]
    if "incident" in model:
        problems += _check_incident(model["incident"], top)
    if "involvements" in model:
        problems += _check_involvements(model["involvements"], top, nested)
    if "observations" in model:
        problems += _check_observations(model["observations"], top)
    return problems


def _check_incident(inc: dict[str, Any], top: dict[str, Column]) -> list[str]:
    problems = [
        f"model.incident.{key}: unknown column {ref!r}"
        for key, value in inc.items()
        for ref in _column_refs(value)
        if ref not in top
    ]
    taxonomy = common_model()
    for src, dst in inc["category"]["map"].items():
        if dst not in taxonomy["categories"]:
            problems.append(f"model.incident.category.map.{src}: {dst!r} is not a shared category")
    cat_col = top.get(inc["category"]["column"])
    if cat_col and cat_col.allowed and set(cat_col.allowed) - set(inc["category"]["map"]):
        missing = sorted(set(cat_col.allowed) - set(inc["category"]["map"]))
        problems.append(f"model.incident.category.map: no mapping for {missing}")
    return problems


def _check_involvements(inv: dict[str, Any], top: dict[str, Column], nested: dict[str, Column]) -> list[str]:
    problems = []
    taxonomy = common_model()
    source = inv["from"]
    if source != "rows" and (source not in top or top[source].type != "array"):
        problems.append(f"model.involvements.from: must be 'rows' or an array column, got {source!r}")
    scope = (
        top if source == "rows" else {k.split(".", 1)[1]: v for k, v in nested.items() if k.startswith(source + ".")}
    )
    for key in ("person", "age", "gender"):
        if key in inv and inv[key] not in scope:
            problems.append(f"model.involvements.{key}: unknown column {inv[key]!r}")
    role = inv["role"]
    if "column" in role:
        if role["column"] not in scope:
            problems.append(f"model.involvements.role: unknown column {role['column']!r}")
        for src, dst in role["map"].items():
            if dst not in taxonomy["roles"]:
                problems.append(f"model.involvements.role.map.{src}: {dst!r} is not a shared role")
    elif role["value"] not in taxonomy["roles"]:
        problems.append(f"model.involvements.role.value: {role['value']!r} is not a shared role")
    return problems


def _non_negative(bound: float | None) -> bool:
    """True when a declared minimum exists and rules out negative counts."""
    return bound is not None and bound >= 0


def _check_observations(obs: dict[str, Any], top: dict[str, Column]) -> list[str]:
    """Slots are local date + time columns; every count is a non-negative whole-number column
    onto a shared measure. No column of an aggregate feed may describe a person."""
    problems = [
        f"model.observations.{key}: unknown column {ref!r}"
        for key in ("slot_start", "slot_end", "place")
        for ref in _column_refs(obs[key])
        if ref not in top
    ]
    for key in ("slot_start", "slot_end"):
        if isinstance(obs[key], str) and obs[key] in top and top[obs[key]].type != "timestamp":
            problems.append(
                f"model.observations.{key}: {obs[key]!r} must be a timestamp column (or give date and time)"
            )
    measures = common_model()["observation_measures"]
    for column, measure in obs["counts"].items():
        if column not in top:
            problems.append(f"model.observations.counts.{column}: unknown column {column!r}")
        elif top[column].type != "integer" or not _non_negative(top[column].min):
            problems.append(f"model.observations.counts.{column}: must be an integer column with min: 0")
        if measure not in measures:
            problems.append(
                f"model.observations.counts.{column}: {measure!r} is not a shared measure ({', '.join(measures)})"
            )
    for c in top.values():
        if (c.personal or {}).get("handling") not in (None, "drop"):
            problems.append(
                f"columns.{c.name}.personal: an aggregate feed publishes no personal data; "
                "only handling: drop is allowed"
            )
    return problems


def load_contract(path: Path | str) -> Contract:
    path = Path(path)
    data = _load_yaml(path)
    _check_schema(path, data)
    columns = tuple(Column.from_dict(c) for c in data["columns"])
    _check_references(path, data, columns)
    if path.stem != data["contract"]:
        raise ContractError(f"{path.name}: contract: id {data['contract']!r} must match the file name")
    return Contract(id=data["contract"], version=data["version"], path=path, raw=data, columns=columns)


def contract_paths(directory: Path = SCHEMAS_DIR) -> list[Path]:
    return sorted(p for p in directory.glob("*.yaml") if p.name not in NON_CONTRACT_FILES)


@cache
def load_contracts(directory: Path = SCHEMAS_DIR) -> dict[str, Contract]:
    return {c.id: c for c in (load_contract(p) for p in contract_paths(directory))}
