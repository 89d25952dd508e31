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
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as dt_time
from functools import cache
from pathlib import Path
from typing import Any, Iterator
from zoneinfo import ZoneInfo

from samverkan.core.yamlconfig import load_mapping
from samverkan.core.settings import CONFIG_ROOT

SCHEMAS_DIR = CONFIG_ROOT / "schemas"
CONTRACT_SCHEMA = SCHEMAS_DIR / "contract.schema.json"
COMMON_MODEL = SCHEMAS_DIR / "common_model.yaml"
NON_CONTRACT_FILES = {"common_model.yaml"}
DEFAULT_RECEIPTS_DIRECTORY = "/receipts"
DEFAULT_QUARANTINE_RETENTION_DAYS = 90


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
    fields: tuple["Column", ...] = ()
    personal: dict[str, Any] | None = None

    @property
    def handling(self) -> str | None:
        return self.personal["handling"] if self.personal else None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Column":
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
class Contract:
    """One feed's contract; ``raw`` keeps the YAML as loaded for the parts read ad hoc."""

    id: str
    version: int
    path: Path
    raw: dict[str, Any] = field(repr=False)
    columns: tuple[Column, ...] = field(repr=False)

    # --- file naming and arrival -------------------------------------------------------
    @property
    def title(self) -> str:
        return self.raw["title"]

    @property
    def connection_id(self) -> str:
        return self.raw["partner"]["connection_id"]

    @property
    def directory(self) -> str:
        return self.raw["file"]["directory"]

    @property
    def completeness(self) -> dict[str, Any]:
        return self.raw["file"]["completeness"]

    @property
    def lookback_days(self) -> int:
        return self.raw["file"]["lookback_days"]

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
    @property
    def format(self) -> dict[str, Any]:
        return self.raw["format"]

    @property
    def model(self) -> dict[str, Any]:
        return self.raw["model"]

    @property
    def max_invalid_row_fraction(self) -> float:
        return self.raw.get("quality", {}).get("max_invalid_row_fraction", 1.0)

    @property
    def unexpected_columns_policy(self) -> str:
        """``warn``: a column the contract does not know is reported and ignored; ``reject``: the file is refused."""
        return self.raw.get("quality", {}).get("unexpected_columns", "warn")

    @property
    def quarantine_retention_days(self) -> int:
        return int(self.raw.get("quality", {}).get("quarantine_retention_days", DEFAULT_QUARANTINE_RETENTION_DAYS))

    # --- delivery: deadline and receipts ------------------------------------------------
    @property
    def timezone(self) -> str:
        return self.raw["schedule"]["timezone"]

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

    @property
    def receipts_directory(self) -> str:
        return self.raw.get("delivery", {}).get("receipts_directory", DEFAULT_RECEIPTS_DIRECTORY)

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
    return _load_yaml(COMMON_MODEL)


def _check_schema(path: Path, data: dict[str, Any]) -> None:
    errors = sorted(_validator().iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        lines = []
        for e in errors[:10]:
            where = ".".join(str(p) for p in e.absolute_path) or "(top level)"
            lines.append(f"{path.name}: {where}: {e.message}")
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
    taxonomy = common_model()
    inc = data["model"]["incident"]
    for key, value in inc.items():
        refs = []
        if isinstance(value, str):
            refs = [value]
        elif isinstance(value, dict) and "column" in value:
            refs = [value["column"]]
        elif isinstance(value, dict) and "date" in value:
            refs = [value["date"], value["time"]]
        for ref in refs:
            if ref not in top:
                problems.append(f"model.incident.{key}: unknown column {ref!r}")
    for src, dst in inc["category"]["map"].items():
        if dst not in taxonomy["categories"]:
            problems.append(f"model.incident.category.map.{src}: {dst!r} is not a shared category")
    cat_col = top.get(inc["category"]["column"])
    if cat_col and cat_col.allowed and set(cat_col.allowed) - set(inc["category"]["map"]):
        missing = sorted(set(cat_col.allowed) - set(inc["category"]["map"]))
        problems.append(f"model.incident.category.map: no mapping for {missing}")
    inv = data["model"]["involvements"]
    source = inv["from"]
    if source != "rows" and (source not in top or top[source].type != "array"):
        problems.append(f"model.involvements.from: must be 'rows' or an array column, got {source!r}")
    scope = top if source == "rows" else {k.split(".", 1)[1]: v for k, v in nested.items() if k.startswith(source + ".")}
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
    for _, c in [(None, c) for c in columns] + [(None, f) for c in columns for f in c.fields]:
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
