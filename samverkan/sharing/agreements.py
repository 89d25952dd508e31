"""Data-sharing agreements: versioned YAML in ``agreements/``, one per recipient, checked on load.

An agreement is the only place that decides what a recipient may see: which incidents (scope),
which datasets and columns, at what granularity, for how long, and how it is delivered. The
delivery code reads it and nothing else, so a change of policy is a reviewed change of one file
with a new version number, and every delivery records the version it followed.

Loading is strict, like the feed contracts: the JSON schema catches shape errors, and the
cross-checks catch what a schema cannot see (a column the published dataset does not have, a
source that is no feed, a row dataset in an aggregates-only agreement). Every error names the
file and the field.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

from samverkan.core.settings import CONFIG_ROOT
from samverkan.core.yamlconfig import ConfigFile, RawField, load_mapping
from samverkan.sharing import legal_basis

AGREEMENTS_DIR = CONFIG_ROOT / "agreements"
AGREEMENT_SCHEMA = AGREEMENTS_DIR / "agreement.schema.json"

ROW_DATASETS = ("incidents", "involvements")
AGGREGATE_DATASETS = ("incident_counts", "observation_counts")
REPORT_DATASETS = ("lagesbild",)  # built and protected elsewhere (samverkan.analysis); the outbox copies them
DEFAULT_SUPPRESSION_THRESHOLD = 5
DEFAULT_LOOKBACK_NIGHTS = 7
DEFAULT_K = 5
TIME_SLOT_MINUTES = {"15min": 15, "hour": 60, "day": 24 * 60}
PLACE_CELL_METRES = {"100m": 100, "1km": 1000, "area": None}
# Columns that say where more precisely than a 1 km cell (a street, a stop) or than an area.
FINER_THAN_1KM = ("place", "stop_id")
FINER_THAN_AREA = FINER_THAN_1KM + ("coord_n", "coord_e")


class AgreementError(ValueError):
    """An agreement file is invalid; the message names the file and the field."""


@dataclass(frozen=True)
class DatasetGrant:
    """One dataset an agreement grants: its columns (row datasets) or suppression (aggregates)."""

    name: str
    columns: tuple[str, ...] = ()
    where: dict[str, Any] | None = None
    threshold: int | None = None

    @property
    def aggregate(self) -> bool:
        return self.name in AGGREGATE_DATASETS

    @property
    def report(self) -> bool:
        return self.name in REPORT_DATASETS

    @property
    def suppression(self) -> int:
        """The threshold of an aggregate; a row dataset has none, so asking for it is a bug."""
        if self.threshold is None:
            raise ValueError(f"dataset {self.name!r} is not an aggregate: it has no suppression threshold")
        return self.threshold


@dataclass(frozen=True)
class Detail:
    """What a row-level recipient may learn of when and where, and the k-anonymity to reach."""

    time: str
    place: str
    k: int = DEFAULT_K
    exception: str | None = None
    suppress: tuple[str, ...] = ()

    @property
    def slot_minutes(self) -> int:
        return TIME_SLOT_MINUTES[self.time]

    @property
    def cell_metres(self) -> int | None:
        return PLACE_CELL_METRES[self.place]


@dataclass(frozen=True)
class Agreement(ConfigFile):
    """One recipient's data-sharing agreement; ``raw`` keeps the YAML as loaded."""

    @property
    def recipient(self) -> str:
        """The recipient id; the agreement file is named after it."""
        return self.id

    title = RawField[str]("title")
    recipient_name = RawField[str]("recipient", "name")
    granularity = RawField[str]("granularity")

    @property
    def detail(self) -> Detail | None:
        """None for aggregates-only agreements (a row-level agreement must state it)."""
        spec = self.raw.get("detail")
        if spec is None:
            return None
        k = spec.get("k_anonymity") or {}
        return Detail(
            spec["time"], spec["place"], k.get("k", DEFAULT_K), k.get("exception"), tuple(k.get("suppress", ()))
        )

    retention_days = RawField[int]("retention_days")
    pseudonym_epoch = RawField[int]("pseudonyms", "epoch")

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(self.raw["scope"]["sources"])

    scope_where = RawField[dict[str, Any] | None]("scope", "where", default=None)
    delivery = RawField[dict[str, Any]]("delivery")
    mode = RawField[str]("delivery", "mode")
    lookback_nights = RawField[int]("delivery", "lookback_nights", default=DEFAULT_LOOKBACK_NIGHTS)

    @property
    def label(self) -> str:
        """``<id> v<version>``: how logs, manifests and the register name the agreement."""
        return f"{self.id} v{self.version}"

    def datasets(self) -> list[DatasetGrant]:
        grants = []
        for name, spec in self.raw["datasets"].items():
            spec = spec or {}
            threshold = None
            if name in AGGREGATE_DATASETS:
                threshold = (spec.get("suppression") or {}).get("threshold", DEFAULT_SUPPRESSION_THRESHOLD)
            grants.append(DatasetGrant(name, tuple(spec.get("columns", ())), spec.get("where"), threshold))
        return grants

    def grant(self, name: str) -> DatasetGrant | None:
        return next((g for g in self.datasets() if g.name == name), None)

    def required_grant(self, name: str) -> DatasetGrant:
        """The grant of a dataset being delivered or described: its absence is a bug, not a choice."""
        grant = self.grant(name)
        if grant is None:
            raise ValueError(f"agreement {self.label} grants no dataset {name!r}")
        return grant


def describe_condition(cond: dict[str, Any] | None) -> str:
    """An agreement condition in words, e.g. ``area is one of gustav_iii_torg, resecentrum``."""
    if not cond:
        return "all"
    if "any_of" in cond:
        return "(" + " or ".join(describe_condition(c) for c in cond["any_of"]) + ")"
    if "all_of" in cond:
        return "(" + " and ".join(describe_condition(c) for c in cond["all_of"]) + ")"
    if "not" in cond:
        return f"not {describe_condition(cond['not'])}"
    column = f"`{cond['column']}`"
    if "in" in cond:
        return f"{column} is one of {', '.join(str(v) for v in cond['in'])}"
    if "starts_with" in cond:
        return f"{column} starts with `{cond['starts_with']}`"
    return f"{column} is {'empty' if cond['is_null'] else 'filled in'}"


# --- loading ---------------------------------------------------------------------------------


def _load_yaml(path: Path) -> dict[str, Any]:
    return load_mapping(path, AgreementError)


@cache
def _validator():
    import jsonschema

    return jsonschema.Draft202012Validator(json.loads(AGREEMENT_SCHEMA.read_text(encoding="utf-8")))


def _where(error) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "(top level)"


def _check_schema(path: Path, data: dict[str, Any]) -> None:
    """Errors in document order; for a oneOf mismatch the most specific inner error is shown."""
    errors = sorted(_validator().iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])
    if not errors:
        return
    lines = []
    for e in errors[:10]:
        best = _best_match(e)
        lines.append(f"{path.name}: {_where(best)}: {best.message}")
    raise AgreementError("\n".join(lines))


def _best_match(error):
    """A oneOf error says only 'is not valid under any of the given schemas'; the deepest
    context error (e.g. 'account is a required property') tells the author what to fix."""
    from jsonschema.exceptions import best_match

    if not error.context:
        return error
    # Branches whose discriminator (e.g. delivery.mode) does not match are not what the author meant.
    wrong_branch = {e.schema_path[0] for e in error.context if e.validator == "const"}
    meant = [e for e in error.context if e.schema_path[0] not in wrong_branch]
    return best_match(meant or error.context)


def published_columns() -> dict[str, tuple[str, ...]]:
    """Columns of the published row datasets, from the common model (the contracts' target)."""
    from samverkan.core.contracts import common_model

    datasets = common_model()["datasets"]
    return {name: tuple(datasets[name]["columns"]) for name in ROW_DATASETS}


def _conditions(cond: dict[str, Any], where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every leaf condition with its field path, for the column cross-check."""
    for key in ("any_of", "all_of"):
        if key in cond:
            for i, sub in enumerate(cond[key]):
                yield from _conditions(sub, f"{where}.{key}.{i}")
            return
    if "not" in cond:
        yield from _conditions(cond["not"], f"{where}.not")
        return
    yield where, cond


def _check_references(path: Path, data: dict[str, Any]) -> None:
    """What the schema cannot see: names that must exist in the contracts and the common model."""
    from samverkan.core.contracts import load_contracts

    problems: list[str] = []
    columns = published_columns()
    feeds = set(load_contracts())
    for i, source in enumerate(data["scope"]["sources"]):
        if source not in feeds:
            problems.append(f"scope.sources.{i}: unknown source {source!r} (feeds: {', '.join(sorted(feeds))})")
    if "where" in data["scope"]:
        problems += _unknown_filter_columns(data["scope"]["where"], "scope.where", columns["incidents"])
    for name, spec in data["datasets"].items():
        spec = spec or {}
        for i, column in enumerate(spec.get("columns", ())):
            if column not in columns[name]:
                problems.append(f"datasets.{name}.columns.{i}: unknown column {column!r} in {name}")
        if "where" in spec:
            problems += _unknown_filter_columns(spec["where"], f"datasets.{name}.where", columns[name])
    if data["granularity"] == "aggregates_only":
        for name in data["datasets"]:
            if name not in AGGREGATE_DATASETS + REPORT_DATASETS:
                problems.append(f"datasets.{name}: a row-level dataset in an aggregates_only agreement")
    problems += _detail_problems(data)
    problems += legal_basis.problems(data)  # every granted column names its basis and purpose
    if "observation_counts" in data["datasets"]:
        problems += _observation_scope(data)
    if "involvements" in data["datasets"] and "incident_id" not in (data["datasets"]["involvements"] or {}).get(
        "columns", ()
    ):
        problems.append("datasets.involvements.columns: must include incident_id (rows are meaningless without it)")
    if problems:
        raise AgreementError("\n".join(f"{path.name}: {p}" for p in problems))


def _detail_problems(data: dict[str, Any]) -> list[str]:
    """A row-level agreement states how precisely it tells when and where (a recipient's k-anonymity
    depends on it), and grants no column finer than it states."""
    detail = data.get("detail")
    if data["granularity"] != "row_level":
        return ["detail: only a row_level agreement has row detail"] if detail else []
    if detail is None:
        return [
            "detail: a row_level agreement must state detail.time (15min, hour, day) and detail.place (100m, 1km, area)"
        ]
    finer = {"1km": FINER_THAN_1KM, "area": FINER_THAN_AREA}.get(detail["place"], ())
    return [
        f"datasets.{name}.columns: {column!r} is finer than detail.place {detail['place']}"
        for name, spec in data["datasets"].items()
        for column in (spec or {}).get("columns", ())
        if column in finer
    ]


def _observation_scope(data: dict[str, Any]) -> list[str]:
    """Observation counts need an aggregate feed in scope, and a scope condition they can apply
    (one on an incident-only column, e.g. category, would silently grant every observation)."""
    from samverkan.core.contracts import KIND_AGGREGATE, common_model, load_contracts

    contracts = load_contracts()
    problems = []
    if not any(contracts[s].kind == KIND_AGGREGATE for s in data["scope"]["sources"] if s in contracts):
        problems.append("datasets.observation_counts: no aggregate feed in scope.sources")
    if "where" in data["scope"]:
        observed = tuple(common_model()["datasets"]["observations"]["columns"])
        problems += [
            f"{at}.column: {leaf['column']!r} is not a column of observations, which observation_counts is built from"
            for at, leaf in _conditions(data["scope"]["where"], "scope.where")
            if leaf["column"] not in observed
        ]
    return problems


def _unknown_filter_columns(cond: dict[str, Any], where: str, allowed: tuple[str, ...]) -> list[str]:
    return [
        f"{at}.column: unknown column {leaf['column']!r}"
        for at, leaf in _conditions(cond, where)
        if leaf["column"] not in allowed
    ]


def load_agreement(path: Path | str) -> Agreement:
    path = Path(path)
    data = _load_yaml(path)
    if isinstance(data.get("valid_from"), date):
        data["valid_from"] = data["valid_from"].isoformat()  # YAML reads an unquoted date as a date
    _check_schema(path, data)
    _check_references(path, data)
    if path.stem != data["agreement"]:
        raise AgreementError(f"{path.name}: agreement: id {data['agreement']!r} must match the file name")
    return Agreement(id=data["agreement"], version=data["version"], path=path, raw=data)


def agreement_paths(directory: Path = AGREEMENTS_DIR) -> list[Path]:
    return sorted(Path(directory).glob("*.yaml"))


@cache
def load_agreements(directory: Path = AGREEMENTS_DIR) -> dict[str, Agreement]:
    """Every agreement in ``directory``; pull accounts must be distinct (one chroot each)."""
    agreements = {a.id: a for a in (load_agreement(p) for p in agreement_paths(directory))}
    accounts: dict[str, str] = {}
    for a in agreements.values():
        if a.mode == "pull":
            other = accounts.setdefault(a.delivery["account"], a.id)
            if other != a.id:
                raise AgreementError(
                    f"{a.path.name}: delivery.account: {a.delivery['account']!r} is already "
                    f"{other}'s account; each recipient needs its own"
                )
    return agreements
