"""Great Expectations suites derived from the contracts, and running them without leaking data.

The contract is the only place a rule is written down, so the suites in ``expectations/`` are
generated from it; a partner-facing reason travels with every expectation so a quarantined
record can be explained in the partner's own column names. Checks the contract language cannot
express are added to the same files by hand (``meta.source: handwritten``) and survive
regeneration.

Great Expectations copies offending values into its results (``unexpected_list``,
``unexpected_index_list``, ...). Those values are personal data, so a result never leaves
``Validator.validate``: only record numbers, labels and counts do.

Great Expectations is imported lazily: it takes seconds, and DAG parsing must not pay for it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from samverkan.core.contracts import Column, Contract, load_contracts
from samverkan.core.settings import CONFIG_ROOT

log = logging.getLogger(__name__)

EXPECTATIONS_DIR = CONFIG_ROOT / "expectations"
SUITE_PREFIX = "samverkan"
ROW = "_row"
ITEM = "_item"
CONTRACT = "contract"
HANDWRITTEN = "handwritten"
TABLE_COLUMNS = "expect_table_columns_to_match_set"
# ASCII digits: Python's \d also takes other scripts' digits ("２", "٣"), which no parser downstream reads.
INTEGER_REGEX = r"^-?[0-9]+\Z"
STRFTIME_WORDS = {"%Y": "YYYY", "%m": "MM", "%d": "DD", "%H": "hh", "%M": "mm", "%S": "ss", "%z": "+hhmm"}

# --- building suites from contracts ---------------------------------------------------------


def parts(contract: Contract) -> list[str]:
    """Array columns become frames of their own (one row per item), so each gets its own suite."""
    return ["rows"] + [c.name for c in contract.columns if c.type == "array"]


def suite_name(contract: Contract, part: str = "rows") -> str:
    return f"{SUITE_PREFIX}.{contract.id}" if part == "rows" else f"{SUITE_PREFIX}.{contract.id}.{part}"


def suite_path(directory: Path, contract: Contract, part: str = "rows") -> Path:
    return Path(directory) / (f"{contract.id}.json" if part == "rows" else f"{contract.id}.{part}.json")


def index_columns(part: str) -> list[str]:
    """Array items share their parent's record number, so ``_item`` makes them addressable."""
    return [ROW] if part == "rows" else [ROW, ITEM]


def _part_columns(contract: Contract, part: str) -> tuple[Column, ...]:
    if part == "rows":
        return tuple(c for c in contract.columns if c.type != "array")
    column = contract.column(part)
    if column.type != "array":
        raise ValueError(f"{contract.id}: {part!r} is not an array column")
    return column.fields


def _source(contract: Contract, part: str, column: Column) -> str:
    return column.source if part == "rows" else f"{contract.column(part).source}.{column.source}"


def _end_anchored(pattern: str) -> str:
    r"""Python's ``$`` also matches before a final newline, which a quoted CSV field can carry."""
    if pattern.endswith("$") and not pattern.endswith(r"\$"):
        return pattern[:-1] + r"\Z"
    return pattern


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def _range_words(column: Column) -> str:
    if column.min is not None and column.max is not None:
        return f"outside the allowed range {_number(column.min)}–{_number(column.max)}"
    if column.min is not None:
        return f"below the minimum {_number(column.min)}"
    if column.max is None:
        raise ValueError(f"column {column.name!r} has neither min nor max: there is no range to describe")
    return f"above the maximum {_number(column.max)}"


def _format_words(fmt: str) -> str:
    for directive, words in STRFTIME_WORDS.items():
        fmt = fmt.replace(directive, words)
    return fmt


def _expectation(type_: str, reason: str, **kwargs: Any) -> dict[str, Any]:
    return {"type": type_, "kwargs": kwargs, "meta": {"source": CONTRACT, "reason": reason}}


# The column expectations contracts are turned into (GE's names).
NOT_NULL = "expect_column_values_to_not_be_null"
MATCH_REGEX = "expect_column_values_to_match_regex"
IN_SET = "expect_column_values_to_be_in_set"
BETWEEN = "expect_column_values_to_be_between"
STRFTIME = "expect_column_values_to_match_strftime_format"


def _on(column: Column, type_: str, reason: str, suffix: str = "", **kwargs: Any) -> dict[str, Any]:
    """An expectation on the column (or on its ``<name><suffix>`` twin the caller adds)."""
    return _expectation(type_, reason, column=f"{column.name}{suffix}", **kwargs)


def _integer(column: Column, name: str) -> list[dict[str, Any]]:
    """The text must be a whole number; the range is checked on the caller's numeric ``__int`` twin."""
    found = [_on(column, MATCH_REGEX, f"{name} is not a whole number", regex=INTEGER_REGEX)]
    bounds = {k: _number(v) for k, v in (("min_value", column.min), ("max_value", column.max)) if v is not None}
    if bounds:
        found.append(_on(column, BETWEEN, f"{name} is {_range_words(column)}", "__int", **bounds))
    return found


def _boolean(column: Column, name: str) -> list[dict[str, Any]]:
    values = list(column.true_values) + list(column.false_values)
    return [_on(column, IN_SET, f"{name} is not a yes/no value ({', '.join(values)})", value_set=values)]


def _temporal(column: Column, name: str) -> list[dict[str, Any]]:
    """strptime, unlike a regex, also rejects dates that do not exist (30 February)."""
    if not column.format:
        return []
    what = "date and time" if column.type == "timestamp" else column.type
    reason = f"{name} is not a valid {what} written as {_format_words(column.format)}"
    return [_on(column, STRFTIME, reason, strftime_format=column.format)]


def _personnummer(column: Column, name: str) -> list[dict[str, Any]]:
    """Luhn and date rules are beyond GE; the caller's ``__status`` column carries their verdict."""
    reason = f"{name} is not a valid personnummer (format, date or check digit)"
    return [_on(column, IN_SET, reason, "__status", value_set=["valid"])]


TYPE_EXPECTATIONS = {
    "integer": _integer,
    "boolean": _boolean,
    "timestamp": _temporal,
    "date": _temporal,
    "time": _temporal,
    "personnummer": _personnummer,
}


def column_expectations(column: Column, name: str) -> list[dict[str, Any]]:
    """Every rule the contract states for one column; ``name`` is the partner's own column name."""
    found = []
    if not column.nullable:
        found.append(_on(column, NOT_NULL, f"{name} is empty"))
    if column.pattern:
        found.append(
            _on(column, MATCH_REGEX, f"{name} does not have the expected format", regex=_end_anchored(column.pattern))
        )
    if column.allowed:
        found.append(_on(column, IN_SET, f"{name} is not one of the allowed values", value_set=list(column.allowed)))
    by_type = TYPE_EXPECTATIONS.get(column.type)
    return found + (by_type(column, name) if by_type else [])


def _table_expectation(contract: Contract, part: str, columns: tuple[Column, ...]) -> dict[str, Any]:
    required = [c for c in columns if c.required]
    names = ", ".join(_source(contract, part, c) for c in required)
    return _expectation(
        TABLE_COLUMNS,
        f"The file lacks one or more required columns ({names})",
        column_set=index_columns(part) + [c.name for c in required],
        exact_match=False,
    )


def contract_expectations(contract: Contract, part: str = "rows") -> list[dict[str, Any]]:
    columns = _part_columns(contract, part)
    found = [_table_expectation(contract, part, columns)]
    for column in columns:
        found.extend(column_expectations(column, _source(contract, part, column)))
    return found


def build_suite(contract: Contract, part: str = "rows", *, handwritten: Iterable[Mapping[str, Any]] = ()) -> dict:
    """The suite as GE serialises it, so what is committed is exactly what GE will load."""
    from great_expectations.core.expectation_suite import ExpectationSuite

    configs = contract_expectations(contract, part) + [_as_handwritten(e) for e in handwritten]
    meta = {
        "samverkan": {
            "feed": contract.id,
            "part": part,
            "contract_version": contract.version,
            "index_columns": index_columns(part),
        }
    }
    suite = ExpectationSuite(name=suite_name(contract, part), expectations=configs, meta=meta)
    _check_nothing_dropped(suite, configs)
    return suite.to_json_dict()


def _as_handwritten(expectation: Mapping[str, Any]) -> dict[str, Any]:
    if (expectation.get("meta") or {}).get("source") != HANDWRITTEN:
        raise ValueError(f"not a hand-written expectation (meta.source must be {HANDWRITTEN!r}): {expectation}")
    return {k: v for k, v in expectation.items() if k != "id"}


def _check_nothing_dropped(suite: Any, configs: list) -> None:
    """GE logs an invalid expectation and leaves it out of the suite; a missing check must be loud."""
    if len(suite.expectations) != len(configs):
        dropped = len(configs) - len(suite.expectations)
        raise ValueError(f"suite {suite.name}: {dropped} expectation(s) are not valid GE configurations")


def render(suite: Mapping[str, Any]) -> str:
    """Sorted keys, fixed indent, trailing newline: regenerating an unchanged suite changes no byte."""
    return json.dumps(suite, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def handwritten_expectations(path: Path) -> list[dict[str, Any]]:
    if not Path(path).exists():
        return []
    suite = json.loads(Path(path).read_text(encoding="utf-8"))
    return [e for e in suite.get("expectations", []) if (e.get("meta") or {}).get("source") == HANDWRITTEN]


def _part_of(contract: Contract, path: Path) -> str:
    stem = Path(path).name.removesuffix(".json")
    return "rows" if stem == contract.id else stem.removeprefix(f"{contract.id}.")


def suite_text(contract: Contract, path: Path) -> str:
    """What the file at ``path`` should contain: the contract's part plus the file's own hand-written part."""
    return render(build_suite(contract, _part_of(contract, path), handwritten=handwritten_expectations(path)))


def suite_is_current(contract: Contract, path: Path) -> bool:
    path = Path(path)
    return path.exists() and path.read_text(encoding="utf-8") == suite_text(contract, path)


def write_suites(directory: Path = EXPECTATIONS_DIR, contracts: Mapping[str, Contract] | None = None) -> list[Path]:
    """Regenerate every suite; a file is rewritten only when its content changes. Returns the rewritten ones."""
    written = []
    for contract in (contracts if contracts is not None else load_contracts()).values():
        for part in parts(contract):
            path = suite_path(directory, contract, part)
            text = suite_text(contract, path)
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
                written.append(path)
    return written


# --- outcomes: what is kept of a validation (labels, record numbers, counts; never values) ----


@dataclass(frozen=True)
class ExpectationOutcome:
    label: str
    expectation_type: str
    column: str | None
    success: bool
    element_count: int
    unexpected_count: int


@dataclass
class BatchOutcome:
    failures: dict[int, list[str]] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    expectations: list[ExpectationOutcome] = field(default_factory=list)
    table_failures: list[str] = field(default_factory=list)


def _merge_failures(into: dict[int, list[str]], more: Mapping[int, list[str]]) -> None:
    for row, labels in more.items():
        known = into.setdefault(row, [])
        known.extend(label for label in labels if label not in known)


def _sum(a: ExpectationOutcome, b: ExpectationOutcome) -> ExpectationOutcome:
    return ExpectationOutcome(
        a.label,
        a.expectation_type,
        a.column,
        a.success and b.success,
        a.element_count + b.element_count,
        a.unexpected_count + b.unexpected_count,
    )


def combine(outcomes: Iterable[BatchOutcome]) -> BatchOutcome:
    """One outcome for a whole file validated batch by batch (and part by part)."""
    total = BatchOutcome()
    by_label: dict[str, ExpectationOutcome] = {}
    for outcome in outcomes:
        _merge_failures(total.failures, outcome.failures)
        total.reasons.update(outcome.reasons)
        for e in outcome.expectations:
            by_label[e.label] = _sum(by_label[e.label], e) if e.label in by_label else e
        total.table_failures.extend(t for t in outcome.table_failures if t not in total.table_failures)
    total.expectations = list(by_label.values())
    return total


def outcome_to_records(outcome: BatchOutcome, feed: str, night: str, file: str) -> list[dict[str, Any]]:
    return [
        {
            "feed": feed,
            "night": str(night),
            "file": file,
            "expectation": e.label,
            "column": e.column,
            "success": e.success,
            "element_count": e.element_count,
            "unexpected_count": e.unexpected_count,
        }
        for e in outcome.expectations
    ]


# --- running suites ---------------------------------------------------------------------------


def _columns_of(config: Mapping[str, Any]) -> list[str]:
    kwargs = config["kwargs"]
    if "column" in kwargs:
        return [kwargs["column"]]
    if "column_A" in kwargs:
        return [kwargs["column_A"], kwargs["column_B"]]
    return list(kwargs.get("column_list", []))


def _base_column(column: str) -> str:
    """``koord_n__int`` is derived from ``koord_n``: it is absent exactly when its source is."""
    return column.split("__", 1)[0]


@dataclass(frozen=True)
class _Check:
    label: str
    type: str
    columns: tuple[str, ...]  # as named in the check frame
    column: str | None  # as reported: an array's fields carry the array's name
    reason: str
    config: dict[str, Any]


def _labelled(suite: Mapping[str, Any], part: str) -> list[_Check]:
    """Stable, human-readable labels; array fields carry their array's name (``persons.role``)."""
    checks: list[_Check] = []
    seen: dict[str, int] = {}
    for config in suite["expectations"]:
        columns = _columns_of(config)
        shown = ",".join(c if part == "rows" else f"{part}.{c}" for c in columns) or None
        inner = shown or ("" if part == "rows" else part)
        label = f"{config['type']}({inner})" if inner else config["type"]
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1:
            label = f"{label}#{seen[label]}"
        reason = (config.get("meta") or {}).get("reason") or label
        checks.append(_Check(label, config["type"], tuple(columns), shown, reason, dict(config)))
    return checks


@dataclass
class _CompiledSuite:
    name: str
    part: str
    index: list[str]
    checks: list[_Check]
    gx_suites: dict[Any, Any] = field(default_factory=dict)  # (mode, skipped labels) → GE suite


def _compile(suite: Mapping[str, Any]) -> _CompiledSuite:
    meta = (suite.get("meta") or {}).get("samverkan") or {}
    name = suite["name"]
    part = meta.get("part") or ("rows" if name.count(".") < 2 else name.split(".", 2)[2])
    return _CompiledSuite(name, part, list(meta.get("index_columns") or index_columns(part)), _labelled(suite, part))


def _quiet_great_expectations() -> None:
    """No telemetry, and nothing from GE in our logs: its warnings quote metric errors verbatim."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    logging.getLogger("great_expectations").setLevel(logging.CRITICAL)


def _ephemeral_context() -> Any:
    _quiet_great_expectations()
    import great_expectations as gx
    from great_expectations.execution_engine import pandas_execution_engine

    # GE fingerprints every batch it is given (a hash of every value: a fifth of validation time
    # on a million police rows) for a batch marker nothing here reads; it leaves frames above
    # HASH_THRESHOLD bytes unfingerprinted, so a threshold of 0 turns the fingerprint off.
    pandas_execution_engine.HASH_THRESHOLD = 0
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
    )
    return gx.get_context(project_config=config, mode="ephemeral")


class Validator:
    """One GE context per task (it is slow to create); one dataframe asset per suite."""

    def __init__(self, directory: Path = EXPECTATIONS_DIR) -> None:
        self.directory = Path(directory)
        self._context = _ephemeral_context()
        self._source = self._context.data_sources.add_pandas("samverkan")
        self._batch_definitions: dict[str, Any] = {}
        self._suites: dict[str, tuple[str, _CompiledSuite]] = {}
        self._memo = _VerdictMemo()

    def validate(self, suite: str | Mapping[str, Any], frame: Any) -> BatchOutcome:
        """Validate one batch; the GE result is reduced to record numbers, labels and counts at once."""
        compiled = self._compiled(suite)
        runnable = self._runnable(compiled, frame)
        skipped = frozenset(c.label for c in compiled.checks) - {c.label for c in runnable}
        return _reduce(runnable, self._run(compiled, ("rows", skipped), runnable, frame))

    def validate_table(self, suite: str | Mapping[str, Any], table: Any) -> BatchOutcome:
        """Validate one batch given as an Arrow table; same outcome as ``validate(suite, table.to_pandas())``.

        Checks whose verdict for a record depends only on that record's values in the checked
        columns (``ROW_WISE``) are run by GE once per distinct value, or distinct combination for
        multi-column checks, and the verdicts are spread back to every record holding that value.
        Counts are those of the records, not of the distinct values. Any other check (uniqueness,
        aggregates, ``mostly``, ``row_condition``) runs on the whole batch as before.
        """
        compiled = self._compiled(suite)
        runnable = self._runnable(compiled, table.schema)
        skipped = frozenset(c.label for c in compiled.checks) - {c.label for c in runnable}
        by_values = [c for c in runnable if _distinct_safe(c)]
        whole = [c for c in runnable if not _distinct_safe(c)]
        reduced: dict[str, tuple[ExpectationOutcome, list[int], bool]] = {}
        seen: dict[tuple[str, tuple[str, ...]], Any] = {}  # what recall worked out, for remember
        values: dict[tuple[str, ...], Any] = {}  # base columns → distinct_rows, shared by the frames
        small = table.num_rows <= MEMO_MAX_ROWS
        memo = {c.label for c in by_values if small or _few_values(table, c, values)}
        if memo:
            known, _ = self._memo.recall(compiled.name, table, [c for c in by_values if c.label in memo], seen)
            reduced.update(known)
            by_values = [c for c in by_values if c.label not in known]
        for group in _frames(by_values, lambda key: len(_distinct_of(table, key, values)[1])):
            plan = _DistinctPlan(table, group, compiled.index, values)
            # Which checks, on which frame columns: two checks may share kwargs ({"column": x}).
            layout = tuple((c.label, json.dumps(c.config["kwargs"], sort_keys=True, default=str)) for c in plan.checks)
            result = self._run(compiled, ("distinct", skipped, layout), plan.checks, plan.frame())
            fresh = plan.reduce(result)
            if remembered := [c for c in group if c.label in memo]:
                self._memo.remember(compiled.name, table, remembered, plan, fresh, seen)
            reduced.update(fresh)
        if whole:
            result = self._run(compiled, ("whole", skipped), whole, table.to_pandas())
            by_label = {c.label: c for c in whole}
            for r in result.results:
                check = by_label[r.expectation_config.meta["samverkan_label"]]
                reduced[check.label] = _reduce_one(check, r)
        return _assemble(runnable, reduced)

    # -- suites

    def _compiled(self, suite: str | Mapping[str, Any]) -> _CompiledSuite:
        if isinstance(suite, str):
            suite = self._load(suite)
        key = json.dumps(suite, sort_keys=True)
        cached = self._suites.get(suite["name"])
        if cached is None or cached[0] != key:
            cached = (key, _compile(suite))
            self._suites[suite["name"]] = cached
        return cached[1]

    def _load(self, name: str) -> dict[str, Any]:
        stem = name.removeprefix(f"{SUITE_PREFIX}.")
        return json.loads((self.directory / f"{stem}.json").read_text(encoding="utf-8"))

    @staticmethod
    def _runnable(compiled: _CompiledSuite, frame: Any) -> list[_Check]:
        """An optional column the file lacks is not checked; a missing required one fails the table check."""
        present = set(frame.names if hasattr(frame, "names") else frame.columns)
        return [c for c in compiled.checks if all(_base_column(col) in present for col in c.columns)]

    def _gx_suite(self, compiled: _CompiledSuite, key: tuple, runnable: list[_Check]) -> Any:
        if key not in compiled.gx_suites:
            from great_expectations.core.expectation_suite import ExpectationSuite

            configs = [_with_label(c) for c in runnable]
            gx_suite = ExpectationSuite(name=compiled.name, expectations=configs)
            _check_nothing_dropped(gx_suite, configs)
            compiled.gx_suites[key] = gx_suite
        return compiled.gx_suites[key]

    def _batch_definition(self, name: str) -> Any:
        if name not in self._batch_definitions:
            asset = self._source.add_dataframe_asset(name)
            self._batch_definitions[name] = asset.add_batch_definition_whole_dataframe(name)
        return self._batch_definitions[name]

    # -- running

    def _run(self, compiled: _CompiledSuite, key: tuple, runnable: list[_Check], frame: Any) -> Any:
        """``Batch.validate``, not a ValidationDefinition: that one keeps every result (values included) in a store."""
        missing = [c for c in compiled.index if c not in frame.columns]
        if missing:
            raise ValueError(f"check frame for {compiled.name} lacks index column(s) {missing}")
        result_format = {"result_format": "COMPLETE", "unexpected_index_column_names": compiled.index}
        batch = self._batch_definition(compiled.name).get_batch(batch_parameters={"dataframe": frame})
        return batch.validate(self._gx_suite(compiled, key, runnable), result_format=result_format)


def _with_label(check: _Check) -> dict[str, Any]:
    """The label rides in the expectation's meta, so each result finds its check without relying on order."""
    config = {k: v for k, v in check.config.items() if k != "id"}
    config["meta"] = {**(config.get("meta") or {}), "samverkan_label": check.label}
    return config


def _raised(result: Any) -> bool:
    info = result.exception_info or {}
    if "raised_exception" in info:
        return bool(info["raised_exception"])
    return any(isinstance(v, Mapping) and v.get("raised_exception") for v in info.values())


def _reduce(checks: list[_Check], suite_result: Any) -> BatchOutcome:
    """Keep labels, counts and record numbers; everything GE copied out of the frame is dropped here."""
    by_label = {c.label: c for c in checks}
    reduced = {}
    for result in suite_result.results:
        check = by_label[result.expectation_config.meta["samverkan_label"]]
        reduced[check.label] = _reduce_one(check, result)
    return _assemble(checks, reduced)


def _assemble(checks: list[_Check], reduced: Mapping[str, tuple[ExpectationOutcome, list[int], bool]]) -> BatchOutcome:
    outcome = BatchOutcome(reasons={c.label: c.reason for c in checks})
    for check in checks:  # suite order, so each record's labels come in a stable order
        summary, rows, file_level = reduced[check.label]
        outcome.expectations.append(summary)
        if file_level:
            outcome.table_failures.append(check.label)
        _merge_failures(outcome.failures, {row: [check.label] for row in rows})
    return outcome


def _reduce_one(check: _Check, result: Any) -> tuple[ExpectationOutcome, list[int], bool]:
    """A failure without record numbers (table checks, errors) is a failure of the whole file."""
    details = result.result or {}
    raised = _raised(result)
    success = bool(result.success) and not raised
    if raised:
        log.warning("expectation %s could not be evaluated; treated as a file-level failure", check.label)
    rows = [] if success or raised else sorted({int(e[ROW]) for e in details.get("unexpected_index_list") or ()})
    file_level = not success and (raised or "unexpected_index_list" not in details)
    summary = ExpectationOutcome(
        check.label,
        check.type,
        check.column,
        success,
        int(details.get("element_count") or 0),
        int(details.get("unexpected_count") or 0),
    )
    return summary, rows, file_level


# --- distinct values: GE sees each value once, records get its verdict ------------------------

# Row-wise checks: the verdict for a record is a function of that record's values in the checked
# columns alone, so GE may see each distinct value (combination) once. Uniqueness, ordering and
# aggregate checks depend on other records and are not here.
ROW_WISE = frozenset(
    {
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_null",
        "expect_column_values_to_match_regex",
        "expect_column_values_to_not_match_regex",
        "expect_column_values_to_match_regex_list",
        "expect_column_values_to_not_match_regex_list",
        "expect_column_values_to_be_in_set",
        "expect_column_values_to_not_be_in_set",
        "expect_column_values_to_be_between",
        "expect_column_values_to_match_strftime_format",
        "expect_column_value_lengths_to_be_between",
        "expect_column_value_lengths_to_equal",
        "expect_column_values_to_be_dateutil_parseable",
        "expect_column_values_to_be_json_parseable",
        "expect_column_values_to_match_json_schema",
        "expect_column_pair_values_a_to_be_greater_than_b",
        "expect_column_pair_values_to_be_equal",
        "expect_column_pair_values_to_be_in_set",
        "expect_multicolumn_sum_to_equal",
        "expect_select_column_values_to_be_unique_within_record",
    }
)
# Checks on the frame's shape, which the distinct frame shares (same columns, same order).
TABLE_SHAPE = frozenset(
    {
        TABLE_COLUMNS,
        "expect_table_columns_to_match_ordered_list",
        "expect_column_to_exist",
        "expect_table_column_count_to_equal",
        "expect_table_column_count_to_be_between",
    }
)


NULL_SENSITIVE = frozenset({"expect_column_values_to_not_be_null", "expect_column_values_to_be_null"})
SHAPE_BY_NAME = frozenset({TABLE_COLUMNS, "expect_column_to_exist"})  # unaffected by extra columns


SHARED_FRAME_MAX_VALUES = 2_000  # a key with more distinct values gets a GE frame of its own


def _frames(checks: list[_Check], distinct_count: Callable[[tuple[str, ...]], int]) -> list[list[_Check]]:
    """The checks split into GE frames: those of a key (the columns a check reads) with more than
    ``SHARED_FRAME_MAX_VALUES`` distinct values get a frame of their own, the rest share one.

    GE filters the whole frame for every metric it computes, so in one frame for all checks each
    check paid for every other check's columns, padded to the longest value list (in a 100k-row
    police batch 92,077 (registrerad, handelsetid) pairs, 22 columns): validating such a batch
    took 0.60 s, 0.46 s with a frame per key. But each frame is a GE call of its own, and on a
    demo night of 400 rows a call per key made validation a tenth slower; there all keys are
    small and share one frame, as before (issue 13)."""
    shared: list[_Check] = []
    own: dict[tuple[str, ...], list[_Check]] = {}
    for check in checks:
        key = () if _by_names(check) else _key_of(check)
        if key and distinct_count(key) > SHARED_FRAME_MAX_VALUES:
            own.setdefault(key, []).append(check)
        else:
            shared.append(check)
    return [group for group in (shared, *own.values()) if group]


def _by_names(check: _Check) -> bool:
    """A shape check, or one naming no column: judged on the frame's column names, not on values."""
    return check.type in SHAPE_BY_NAME or not check.columns


def _key_of(check: _Check) -> tuple[str, ...]:
    """The base columns a check reads, in order: a derived column (``koord_n__int``) goes with its source."""
    return tuple(dict.fromkeys(_base_column(c) for c in check.columns))


def _distinct_of(table: Any, key: tuple[str, ...], known: dict[tuple[str, ...], Any]) -> Any:
    """``distinct_rows`` of a key's columns, worked out once per batch."""
    from samverkan.core.arrowops import distinct_rows

    if key not in known:
        known[key] = distinct_rows([table.column(column) for column in key])
    return known[key]


def _distinct_safe(check: _Check) -> bool:
    kwargs = check.config.get("kwargs") or {}
    if kwargs.get("row_condition") or kwargs.get("mostly") not in (None, 1, 1.0):
        return False
    if check.type in SHAPE_BY_NAME:
        return not kwargs.get("exact_match") and kwargs.get("column_index") is None
    return check.type in ROW_WISE


class _DistinctPlan:
    """Which records share which values, for each set of columns a check reads.

    Each check sees the distinct values (combinations, for a multi-column check) of its own
    columns in the first rows of one small frame; a derived column (``koord_n__int``) goes with
    its source. Shorter value lists are padded to the frame's length, and verdicts on padding
    rows are ignored: a single-column check that skips nulls gets null padding (no work for GE),
    any other check a repeat of its first real value. A column needed with two different
    paddings appears twice, the second time under an alias, and the check reads the alias.
    """

    def __init__(self, table: Any, checks: list[_Check], index: list[str], known: dict[tuple[str, ...], Any]) -> None:
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        self._np, self._pa, self._pc = np, pa, pc
        self.table = table
        self._known = known  # distinct_rows per key, shared with the batch's other frames
        self.index = index
        self.rows = np.asarray(table.column(ROW).to_numpy(zero_copy_only=False))
        self.keys: dict[tuple[str, ...], tuple[Any, Any]] = {}  # base columns → (row → value id, value id → first row)
        for check in checks:
            if not _by_names(check):
                key = _key_of(check)
                if key not in self.keys:
                    self.keys[key] = self._distinct(key)
        self.size = max([len(first) for _, first in self.keys.values()] + [1])
        self.columns: dict[tuple[str, tuple[str, ...], str], str] = {}  # (column, key, padding) → frame column
        self.checks: list[_Check] = []  # the checks as run, reading frame columns
        self.key_of: dict[str, tuple[str, ...]] = {}
        taken = set(table.column_names)
        for check in checks:
            if _by_names(check):
                self.checks.append(check)
                continue
            key = _key_of(check)
            self.key_of[check.label] = key
            padding = "null" if len(check.columns) == 1 and check.type not in NULL_SENSITIVE else "repeat"
            if len(self.keys[key][1]) == self.size:
                padding = "none"
            renamed = {}
            for column in check.columns:
                slot = (column, key, padding)
                if slot not in self.columns:
                    used = column in self.columns.values()
                    name = column
                    while used and name in taken:
                        name = f"{name}__v"
                    taken.add(name)
                    self.columns[slot] = name
                renamed[column] = self.columns[slot]
            self.checks.append(_renamed(check, renamed))

    def _distinct(self, columns: tuple[str, ...]):
        return _distinct_of(self.table, columns, self._known)

    def frame(self) -> Any:
        """Only the columns some check names (GE filters every column of the frame per metric)."""
        np, pa, pc = self._np, self._pa, self._pc
        named = set(self.index) | {column for column, _, _ in self.columns}
        for check in self.checks:
            kwargs = check.config.get("kwargs") or {}
            named.update(kwargs.get("column_set") or ())
            named.update(kwargs.get("column_list") or ())
            named.update(k for k in (kwargs.get("column"),) if k)
        columns = {}
        for name in self.table.column_names:
            values = self.table.column(name)
            if name not in named:
                continue
            if name == ROW:
                columns[name] = pa.array(np.arange(self.size), values.type)
            else:
                columns[name] = pa.nulls(self.size, values.type)  # replaced below when a check reads it
        for (column, key, padding), name in self.columns.items():
            first = self.keys[key][1]
            pad = self.size - len(first)
            if padding == "null":
                take = pa.array(np.concatenate([first, np.zeros(pad, np.int64)]), pa.int64())
                take = pc.if_else(pa.array(np.arange(self.size) < len(first)), take, pa.scalar(None, pa.int64()))
            else:
                take = pa.array(np.concatenate([first, np.full(pad, first[0] if len(first) else 0)]), pa.int64())
            values = self.table.column(column)
            columns[name] = pc.take(values, take) if len(self.rows) else pa.nulls(self.size, values.type)
        return pa.table(columns).to_pandas()

    def reduce(self, suite_result: Any) -> dict[str, tuple[ExpectationOutcome, list[int], bool]]:
        by_label = {c.label: c for c in self.checks}
        reduced = {}
        self.failed_values: dict[str, list[int]] = {}  # label → positions (value ids) GE found failing
        for result in suite_result.results:
            check = by_label[result.expectation_config.meta["samverkan_label"]]
            details = result.result or {}
            key = self.key_of.get(check.label)
            raised = _raised(result)
            if key is None or raised or "unexpected_index_list" not in details:
                summary, rows, file_level = _reduce_one(check, result)
                if key is not None:  # counts of the records, not of the distinct values
                    summary = dataclasses.replace(summary, element_count=len(self.rows))
                reduced[check.label] = (summary, rows, file_level)
                continue
            inverse, first = self.keys[key]
            failed = [p for p in {int(e[ROW]) for e in details.get("unexpected_index_list") or ()} if p < len(first)]
            self.failed_values[check.label] = failed
            reduced[check.label] = _spread(check, self.rows, inverse, failed)
        return reduced


def _spread(check: _Check, rows: Any, inverse: Any, failed: list[int]) -> tuple[ExpectationOutcome, list[int], bool]:
    """Verdicts on distinct values (``failed``: the value ids that fail) back to the records."""
    import numpy as np

    hit = np.isin(inverse, np.asarray(failed, dtype=np.int64)) if failed else np.zeros(len(inverse), bool)
    failing = sorted({int(r) for r in rows[hit]})
    summary = ExpectationOutcome(check.label, check.type, check.column, not failing, len(rows), int(hit.sum()))
    return summary, failing, False


def _renamed(check: _Check, names: Mapping[str, str]) -> _Check:
    if all(k == v for k, v in names.items()):
        return check
    kwargs = dict(check.config["kwargs"])
    for field_ in ("column", "column_A", "column_B"):
        if field_ in kwargs:
            kwargs[field_] = names[kwargs[field_]]
    if "column_list" in kwargs:
        kwargs["column_list"] = [names[c] for c in kwargs["column_list"]]
    return dataclasses.replace(check, config={**check.config, "kwargs": kwargs})


# --- verdicts remembered across batches: GE is not asked twice about the same value -----------

MEMO_MAX_ROWS = 20_000  # up to here every row-wise check takes part; beyond, only those on few values
MEMO_MAX_VALUES = 500_000  # per check; the memo starts afresh beyond it (bounded memory)


class _VerdictMemo:
    """GE's verdict per distinct value (combination) of each row-wise check, kept for the process.

    A row-wise check's verdict on a record depends only on the record's values in the checked
    columns (``ROW_WISE``), so a value GE has judged once need not be sent again. A small night
    brings few new values for most checks (categories, roles, statuses, ages), and GE's cost per
    call grows with the checks it runs, not the rows: a check whose every value is known is left
    out of the call, and a batch with no new values skips GE altogether. A shape check is
    remembered by the frame's column names. In a batch of more than ``MEMO_MAX_ROWS`` records only
    the checks on few values take part (``_few_values``): those that would share GE's one small
    frame, each call of which cost 0.086 s for 1,400 rows (on a 1M-row police file 0.86 s of 11.7),
    almost all of it GE's fixed cost per check. Checks on many values (a pair of times, an id)
    bring new values in every batch, and hashing them would cost more than GE does.

    Values are remembered as keyed BLAKE2 digests (a random key per memo), never the values
    themselves, so nothing personal outlives the batch in memory in a readable form.
    """

    def __init__(self) -> None:
        self._key = os.urandom(16)
        self._values: dict[tuple[str, str], dict[bytes, bool]] = {}  # (suite, check) → digest → failed
        self._shapes: dict[tuple[str, str, tuple[str, ...]], tuple[ExpectationOutcome, list[int], bool]] = {}

    def recall(
        self, suite: str, table: Any, checks: list[_Check], distinct: dict[tuple[str, tuple[str, ...]], Any]
    ) -> tuple[dict[str, Any], list[_Check]]:
        """Outcomes of the checks fully answered by earlier verdicts, and the checks left to run;
        ``distinct`` is filled with each judged key's (record → value id, first records, digests)."""
        known: dict[str, Any] = {}
        rest: list[_Check] = []
        names = tuple(sorted(table.column_names))
        rows = table.column(ROW).to_numpy(zero_copy_only=False) if table.num_rows else None
        for check in checks:
            if _by_names(check):
                shape = self._shapes.get((suite, _identity(check), names))
                (rest.append(check) if shape is None else known.__setitem__(check.label, shape))
                continue
            key = _judged(check)
            if rows is None:
                rest.append(check)
                continue
            inverse, _, digests = self._distinct(table, key, distinct)
            verdicts = self._values.get((suite, _identity(check)), {})
            if not all(d in verdicts for d in digests):
                rest.append(check)
                continue
            known[check.label] = _spread(check, rows, inverse, [i for i, d in enumerate(digests) if verdicts[d]])
        return known, rest

    def remember(
        self,
        suite: str,
        table: Any,
        checks: list[_Check],
        plan: _DistinctPlan,
        reduced: Mapping[str, tuple[ExpectationOutcome, list[int], bool]],
        distinct: dict[tuple[str, tuple[str, ...]], Any],
    ) -> None:
        """Keep what GE just found; a check that raised or failed the file, or a large batch, teaches nothing."""
        import numpy as np

        names = tuple(sorted(table.column_names))
        for check in checks:
            if _by_names(check):
                if check.label in reduced and reduced[check.label][0].success:
                    self._shapes[(suite, _identity(check), names)] = reduced[check.label]
                continue
            failed = plan.failed_values.get(check.label)
            if failed is None:
                continue
            _, first, digests = self._distinct(table, _judged(check), distinct)
            # GE judged the values of the check's source columns; each value of the checked
            # columns is derived from one of them, so it shares that verdict.
            row_failed = np.isin(plan.keys[plan.key_of[check.label]][0], np.asarray(failed, dtype=np.int64))
            verdicts = self._values.setdefault((suite, _identity(check)), {})
            if len(verdicts) + len(first) > MEMO_MAX_VALUES:
                verdicts.clear()
            for position, digest in zip(first, digests):
                verdicts[digest] = bool(row_failed[position])

    def _distinct(self, table: Any, key: tuple[str, tuple[str, ...]], known: dict) -> tuple[Any, Any, list[bytes]]:
        """(record → value id, each value's first record, each value's digest) of one judged key,
        worked out once per batch whether recall or remember asks first."""
        from samverkan.core.arrowops import distinct_rows

        if key not in known:
            arrays = _judged_arrays(table, key)
            inverse, first = distinct_rows(arrays)
            known[key] = (inverse, first, self._digests(arrays, first))
        return known[key]

    def _digests(self, arrays: list[Any], first: Any) -> list[bytes]:
        import hashlib

        values = zip(*(array.take(first).to_pylist() for array in arrays))
        return [hashlib.blake2b(repr(v).encode(), key=self._key, digest_size=16).digest() for v in values]


def _few_values(table: Any, check: _Check, values: dict[tuple[str, ...], Any]) -> bool:
    """Whether a large batch remembers GE's verdicts on this check: a shape check, a (not-)null
    check (two values: missing or not), or one whose columns hold few distinct values (categories,
    roles, ages; counted on the source columns, as the frames count them, and a derived value has
    no more distinct values than its source)."""
    if _by_names(check) or _judged(check)[0] == "missing":
        return True
    return len(_distinct_of(table, _key_of(check), values)[1]) <= SHARED_FRAME_MAX_VALUES


def _value_key(check: _Check) -> tuple[str, ...]:
    """The columns a row-wise check reads, derived ones included: a derived value may depend on
    more than its source (a personnummer's status on the night), so it is the value judged."""
    return tuple(dict.fromkeys(check.columns))


def _judged(check: _Check) -> tuple[str, tuple[str, ...]]:
    """What a row-wise check's verdict is a function of: for a (not-)null check only whether the
    value is missing, so its verdicts are known after the first batch and it never goes to GE
    again (on a small night it was a third of the checks of each call); else the values."""
    how = "missing" if check.type in NULL_SENSITIVE and len(check.columns) == 1 else "values"
    return how, _value_key(check)


def _judged_arrays(table: Any, judged: tuple[str, tuple[str, ...]]) -> list[Any]:
    """The arrays ``_judged`` names; missing as pandas and GE see it, where NaN is null too."""
    import pyarrow.compute as pc

    how, columns = judged
    arrays = [table.column(c) for c in columns]
    return [pc.is_null(a, nan_is_null=True) for a in arrays] if how == "missing" else arrays


def _identity(check: _Check) -> str:
    return json.dumps([check.label, check.config], sort_keys=True, default=str)


# --- command line -----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m samverkan.quality.validation")
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build-suites", help="regenerate expectations/*.json from the contracts")
    build.add_argument("--directory", type=Path, default=EXPECTATIONS_DIR)
    build.add_argument("--check", action="store_true", help="only report suites that are out of date (exit 1)")
    args = parser.parse_args(argv)
    if args.check:
        stale = [
            suite_path(args.directory, c, p)
            for c in load_contracts().values()
            for p in parts(c)
            if not suite_is_current(c, suite_path(args.directory, c, p))
        ]
        for path in stale:
            print(f"out of date: {path}")
        return 1 if stale else 0
    for path in write_suites(args.directory):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
