"""Validation reports people can read without seeing personal data: Data Docs and outcome tables.

Great Expectations puts the offending values themselves into its results (``partial_unexpected_list``
and friends), and its Data Docs render them. Here the values never reach GE's result objects: the
pipeline collects a few failing values per expectation while the batch is still in memory and
replaces each by its *shape* (``9`` for a digit, ``a``/``A`` for a letter, punctuation kept), so an
engineer still sees "a date written 9999-99-99" or "a nine-letter word" but never the value.
The masked result is what is stored (JSON, one per partner file) and what GE renders (one page
per feed and night). Everything here lives under ``$SAMVERKAN_DATA_ROOT/reports/``: value-free,
for the hub's engineers, served in the Airflow UI by ``plugins/samverkan_reports.py``.

Outcome tables (feed, night, file, expectation, success, counts) are written per run and feed as
small Parquet files, so quality over time is a DuckDB query away.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from samverkan.core.contracts import Contract
from samverkan.core.publishing import write_json_atomic, write_text_atomic
from samverkan.core.settings import Paths
from samverkan.quality import assets

log = logging.getLogger(__name__)

ROW = "_row"
SAMPLE_VALUES = 20  # distinct masked values kept per expectation and file, as GE's partial lists
SAMPLE_ROWS = 20  # record numbers kept per expectation and file for the page
MAX_MASK_LENGTH = 40
REPORT_VERSION = 1
URL_PREFIX = "samverkan-reports"
TABLE_COLUMNS = "expect_table_columns_to_match_set"  # where the Airflow plugin serves the reports

OUTCOMES_SCHEMA = pa.schema(
    [
        ("feed", pa.string()),
        ("night", pa.string()),
        ("file", pa.string()),
        ("sha256", pa.string()),
        ("run_id", pa.string()),
        ("file_status", pa.string()),
        ("expectation", pa.string()),
        ("expectation_type", pa.string()),
        ("column", pa.string()),
        ("success", pa.bool_()),
        ("element_count", pa.int64()),
        ("unexpected_count", pa.int64()),
    ]
)


# --- masking --------------------------------------------------------------------------------


def mask_value(value: Any) -> str:
    """The shape of a value, never the value: digits → 9, letters → a/A, other characters kept.

    Long values are cut; an empty value says so. A masked personnummer ``99999999-9999`` or a
    masked name ``Aaaaaaaa, Aaaa`` cannot be turned back into the person.
    """
    if value is None or (isinstance(value, float) and value != value):
        return "(empty)"
    text = str(value)
    if not text.strip():
        return "(blank)"
    shaped = []
    for ch in text[:MAX_MASK_LENGTH]:
        if ch.isdigit():
            shaped.append("9")
        elif ch.isalpha():
            shaped.append("A" if ch.isupper() else "a")
        elif ch in "\r\n\t":
            shaped.append("⏎" if ch != "\t" else "⇥")
        else:
            shaped.append(ch)
    return "".join(shaped) + ("…" if len(text) > MAX_MASK_LENGTH else "")


# --- collecting masked samples while a file is validated -------------------------------------


def _frame_columns(part: str, shown: str | None) -> list[str]:
    """Frame columns behind a reported column (``persons.role`` → ``role``; ``alder__int`` → ``alder``)."""
    if not shown:
        return []
    names = []
    for name in shown.split(","):
        if part != "rows" and name.startswith(f"{part}."):
            name = name[len(part) + 1 :]
        names.append(name.split("__", 1)[0])
    return names


def _names(frame: Any) -> list[str]:
    return list(frame.column_names) if isinstance(frame, pa.Table) else list(frame.columns)


def _values(frame: Any, columns: list[str], rows: list[int]) -> list[list[Any]]:
    """The raw values of ``columns`` in the given records; the check frame is Arrow or pandas."""
    if isinstance(frame, pa.Table):
        import pyarrow.compute as pc

        picked = frame.filter(pc.is_in(frame.column(ROW), value_set=pa.array(rows, frame.schema.field(ROW).type)))
        return [picked.column(c).to_pylist() for c in columns]
    picked = frame[frame[ROW].isin(rows)]
    return [picked[c].tolist() for c in columns]


@dataclass
class _Samples:
    values: Counter = field(default_factory=Counter)
    rows: list[int] = field(default_factory=list)


class SampleCollector:
    """Masked failing values and record numbers per expectation, for one partner file.

    Only failing records are touched and only up to the sample limits, so the cost is nil on a
    clean batch and bounded on a bad one.
    """

    def __init__(self, value_limit: int = SAMPLE_VALUES, row_limit: int = SAMPLE_ROWS) -> None:
        self.value_limit = value_limit
        self.row_limit = row_limit
        self.samples: dict[str, _Samples] = {}

    def add(self, part: str, outcome: Any, frame: Any) -> None:
        failing: dict[str, list[int]] = {}
        for row, labels in outcome.failures.items():
            for label in labels:
                failing.setdefault(label, []).append(int(row))
        if not failing:
            return
        columns = {e.label: _frame_columns(part, e.column) for e in outcome.expectations}
        for label, rows in failing.items():
            sample = self.samples.setdefault(label, _Samples())
            room = self.row_limit - len(sample.rows)
            if room > 0:
                sample.rows.extend(sorted(rows)[:room])
            cols = [c for c in columns.get(label, []) if c in _names(frame)]
            if not cols or len(sample.values) >= self.value_limit:
                continue
            for values in zip(*_values(frame, cols, sorted(rows)[: self.value_limit])):
                masked = " | ".join(mask_value(v) for v in values)
                if masked in sample.values or len(sample.values) < self.value_limit:
                    sample.values[masked] += 1

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {label: {"values": dict(s.values.most_common()), "rows": s.rows} for label, s in self.samples.items()}


# --- the masked validation result of one file ------------------------------------------------


def _suite_configs(contract: Contract, suites: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Expectation configuration per label, with array fields shown under their array's name."""
    from samverkan.quality.validation import _labelled  # the labels the Validator reports; one definition

    configs = {}
    for part, suite in suites.items():
        for check in _labelled(suite, part):
            config = {k: v for k, v in check.config.items() if k != "id"}
            kwargs = dict(config.get("kwargs") or {})
            if part != "rows" and "column" in kwargs:
                kwargs["column"] = f"{part}.{kwargs['column']}"
            config["kwargs"] = kwargs
            configs[check.label] = config
    return configs


def file_validation(
    contract: Contract,
    suites: Mapping[str, Mapping[str, Any]],
    file: Mapping[str, Any],
    expectations: Iterable[Mapping[str, Any]],
    samples: Mapping[str, Mapping[str, Any]],
    *,
    missing_columns: Iterable[str] = (),
) -> dict[str, Any]:
    """The value-free record of one file's validation: what each expectation found, masked samples.

    ``file`` carries name, night, sha256, status, reason and row counts; ``expectations`` are the
    pipeline's outcome records (labels and counts only). A file rejected before validation (a
    required column missing) gets a failed table-columns expectation naming the missing columns,
    which are the contract's names, not the file's.
    """
    configs = _suite_configs(contract, suites)
    checks = []
    for e in expectations:
        config = configs.get(e["expectation"])
        if config is None:
            continue
        sample = samples.get(e["expectation"], {})
        checks.append(
            {
                "label": e["expectation"],
                "config": config,
                "success": bool(e["success"]),
                "element_count": int(e["element_count"]),
                "unexpected_count": int(e["unexpected_count"]),
                "masked_values": dict(sample.get("values", {})),
                "sample_rows": list(sample.get("rows", [])),
            }
        )
    missing = list(missing_columns)
    if missing:
        table = next((c for c in checks if c["config"]["type"] == TABLE_COLUMNS), None)
        if table is None:
            label = next((name for name, c in configs.items() if c["type"] == TABLE_COLUMNS), None)
            table = {
                "label": label,
                "config": configs.get(label) if label is not None else None,
                "element_count": 0,
                "unexpected_count": 0,
                "masked_values": {},
                "sample_rows": [],
            }
            if label:
                checks.insert(0, table)
        table.update(success=False, missing_columns=missing)
    return {
        "report_version": REPORT_VERSION,
        "feed": contract.id,
        "contract_version": contract.version,
        "file": {
            k: file.get(k)
            for k in (
                "name",
                "night",
                "sha256",
                "status",
                "rows_received",
                "rows_published",
                "rows_quarantined",
                "run_id",
                "reason",
            )
        },
        "checks": checks,
    }


def reports_root(data_root: Path) -> Path:
    return Paths(Path(data_root)).reports


def validation_path(data_root: Path, feed: str, night: str, name: str) -> Path:
    return reports_root(data_root) / "validation" / feed / night / f"{_safe(name)}.json"


def data_docs_page(data_root: Path, feed: str, night: str) -> Path:
    return reports_root(data_root) / "data_docs" / feed / night / "index.html"


def data_docs_url(feed: str, night: str) -> str:
    """Where the page is served inside the Airflow UI (relative to the API server's base URL)."""
    return f"{URL_PREFIX}/samverkan_{feed}/nights/{night}/"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def store_file_validation(data_root: Path, record: Mapping[str, Any]) -> Path:
    """One JSON per partner file and night; a re-sent file under the same name replaces it."""
    f = record["file"]
    return write_json_atomic(validation_path(data_root, record["feed"], f["night"], f["name"]), record)


# --- Data Docs ----------------------------------------------------------------------------


def _gx_result(check: Mapping[str, Any]) -> Any:
    from great_expectations.core.expectation_validation_result import ExpectationValidationResult
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    config = check["config"]
    element, unexpected = check["element_count"], check["unexpected_count"]
    counts = [{"value": v, "count": n} for v, n in check["masked_values"].items()]
    result: dict[str, Any] = {
        "element_count": element,
        "unexpected_count": unexpected,
        "unexpected_percent": (100.0 * unexpected / element) if element else 0.0,
        "partial_unexpected_list": [c["value"] for c in counts for _ in range(c["count"])][:SAMPLE_VALUES],
        "partial_unexpected_counts": counts,
        "partial_unexpected_index_list": [{ROW: r} for r in check["sample_rows"]],
        "missing_count": 0,
    }
    if check.get("missing_columns"):
        result = {
            "observed_value": [f"missing: {c}" for c in check["missing_columns"]],
            "details": {"mismatched": {"missing": list(check["missing_columns"])}},
        }
    meta = dict(config.get("meta") or {})
    return ExpectationValidationResult(
        success=check["success"],
        expectation_config=ExpectationConfiguration(type=config["type"], kwargs=config["kwargs"], meta=meta),
        result=result,
    )


def night_result(feed: str, night: str, records: list[Mapping[str, Any]], run: Mapping[str, Any]) -> Any:
    """One GE suite result for a feed and night: every file of the night, counts summed per check."""
    from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResult

    merged: dict[str, dict[str, Any]] = {}
    for record in records:
        for check in record["checks"]:
            into = merged.get(check["label"])
            if into is None:
                merged[check["label"]] = {
                    **check,
                    "masked_values": dict(check["masked_values"]),
                    "sample_rows": list(check["sample_rows"]),
                }
                continue
            into["success"] = into["success"] and check["success"]
            into["element_count"] += check["element_count"]
            into["unexpected_count"] += check["unexpected_count"]
            for v, n in check["masked_values"].items():
                into["masked_values"][v] = into["masked_values"].get(v, 0) + n
            into["sample_rows"] = (into["sample_rows"] + check["sample_rows"])[:SAMPLE_ROWS]
            if check.get("missing_columns"):
                into["missing_columns"] = sorted(set(into.get("missing_columns", [])) | set(check["missing_columns"]))
    results = [_gx_result(c) for c in merged.values()]
    successful = sum(1 for r in results if r.success)
    files = {r["file"]["name"]: {k: v for k, v in r["file"].items() if k != "name" and v is not None} for r in records}
    return ExpectationSuiteValidationResult(
        success=successful == len(results) and all(r["file"]["status"] == "published" for r in records),
        results=results,
        suite_name=f"samverkan.{feed}",
        statistics={
            "evaluated_expectations": len(results),
            "successful_expectations": successful,
            "unsuccessful_expectations": len(results) - successful,
            "success_percent": (100.0 * successful / len(results)) if results else 100.0,
        },
        meta={
            "run_id": {"run_name": f"{feed} night {night}", "run_time": run.get("run_time")},
            "batch_markers": {
                "feed": feed,
                "night": night,
                "airflow_run_id": run.get("run_id"),
                "values_shown": "masked: 9 = digit, a/A = letter",
            },
            "batch_spec": {"files": files},
        },
    )


@functools.lru_cache(maxsize=1)
def _page_renderer() -> tuple[Any, Any]:
    """GE's page renderer and Jinja view, once per process.

    Each new view builds its own Jinja environment, which compiles every template again on its
    first use: about 0.3 s a page, most of a small night's Data Docs time. The view keeps no
    state between renders, so one per process renders the same pages.
    """
    from great_expectations.render.renderer.page_renderer import ValidationResultsPageRenderer
    from great_expectations.render.view.view import DefaultJinjaPageView

    return ValidationResultsPageRenderer(), DefaultJinjaPageView()


def render_night(data_root: Path, feed: str, night: str, run: Mapping[str, Any]) -> Path | None:
    """(Re)build the feed's Data Docs page for ``night`` from the stored, masked file results."""
    directory = reports_root(data_root) / "validation" / feed / night
    records = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(directory.glob("*.json"))]
    if not records:
        return None
    logging.getLogger("great_expectations").setLevel(logging.CRITICAL)
    result = night_result(feed, night, records, run)
    renderer, view = _page_renderer()
    html = view.render(renderer.render(result))
    page = data_docs_page(data_root, feed, night)
    write_text_atomic(page, assets.localise_beside(html, page, reports_root(data_root) / "data_docs"))
    write_json_atomic(page.with_name("validation_result.json"), result.to_json_dict())
    render_index(data_root, feed)
    return page


def render_index(data_root: Path, feed: str) -> Path:
    """A plain list of the feed's nights, newest first, for reading the pages straight from disk."""
    import html as html_lib

    root = reports_root(data_root) / "data_docs" / feed
    nights = sorted((p.name for p in root.iterdir() if (p / "index.html").exists()), reverse=True)
    items = "\n".join(f'<li><a href="{html_lib.escape(n)}/index.html">{html_lib.escape(n)}</a></li>' for n in nights)
    page = root / "index.html"
    html = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Data Docs: {html_lib.escape(feed)}</title>"
        f"</head><body><h1>Validation results: {html_lib.escape(feed)}</h1>"
        f"<p>One page per night; sample values are masked (9 = digit, a/A = letter).</p>"
        f"<ul>\n{items}\n</ul>\n</body></html>\n"
    )
    return write_text_atomic(page, assets.localise_beside(html, page, root.parent))  # with its policy


# --- validation outcomes as data -------------------------------------------------------------


def outcomes_path(data_root: Path, feed: str, run_id: str) -> Path:
    return reports_root(data_root) / "expectation_outcomes" / f"feed={feed}" / f"{_safe(run_id)}.parquet"


def write_outcomes(data_root: Path, feed: str, run_id: str, files: Sequence[Mapping[str, Any]]) -> Path | None:
    """One small Parquet per run and feed: one row per (file, expectation); no values, only counts."""
    import pyarrow.parquet as pq

    rows = []
    for f in files:
        for e in f.get("expectations") or []:
            rows.append(
                {
                    "feed": feed,
                    "night": e["night"],
                    "file": e["file"],
                    "sha256": f.get("sha256"),
                    "run_id": run_id,
                    "file_status": f.get("status"),
                    "expectation": e["expectation"],
                    "expectation_type": e["expectation"].split("(", 1)[0].split("#", 1)[0],
                    "column": e.get("column"),
                    "success": bool(e["success"]),
                    "element_count": int(e["element_count"]),
                    "unexpected_count": int(e["unexpected_count"]),
                }
            )
    if not rows:
        return None
    path = outcomes_path(data_root, feed, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".parquet.part")
    pq.write_table(pa.Table.from_pylist(rows, schema=OUTCOMES_SCHEMA), tmp, compression="zstd")
    tmp.replace(path)
    return path
