"""Fixed costs of a small file cut (issue 13) without changing a verdict, a record or a page.

Each saving is checked against the straightforward path: a (not-)null check sent to GE with every
value, GE over every record; a DuckDB opened per file for the duplicate check; the Data Docs page
rendered inside the manifest step.
"""

import json
import multiprocessing
import os
from datetime import date, timedelta

import duckdb
import pyarrow as pa
import pytest

from devkit.synthetic import Faults, Population, write_night
from samverkan.ingest import duplicates
from samverkan.ingest.parsing import ROW, read_batches
from samverkan.ingest.pipeline import array_check_frame, check_frame
from samverkan.quality.validation import EXPECTATIONS_DIR, NULL_SENSITIVE, Validator, suite_path

pytestmark = pytest.mark.unit

FIRST = date(2026, 4, 6)
FAULTS = {
    "police": Faults(bad_checksum_pnr=3, impossible_date=2, unknown_category=2),
    "transit": Faults(impossible_date=2, unknown_category=1),
    "guards": Faults(bad_checksum_pnr=2, impossible_date=1),
}


def suite(contract, part="rows"):
    return json.loads(suite_path(EXPECTATIONS_DIR, contract, part).read_text(encoding="utf-8"))


def outcome_of(outcome):
    return outcome.failures, outcome.table_failures, outcome.reasons, outcome.expectations


def frames(contract, path, night):
    table = next(read_batches(contract, path)).table
    found = {"rows": check_frame(contract, table, night, arrow=True)}
    found.update({c.name: array_check_frame(contract, table, c.name, arrow=True)
                  for c in contract.columns if c.type == "array"})
    return found


def ge_calls(validator, monkeypatch):
    """Each GE call's checks and result, as ``Validator._run`` made them."""
    calls = []
    run = validator._run

    def recording(compiled, key, runnable, frame):
        result = run(compiled, key, runnable, frame)
        calls.append((runnable, result))
        return result

    monkeypatch.setattr(validator, "_run", recording)
    return calls


def _null_checked_columns(contract):
    return list(dict.fromkeys(e["kwargs"]["column"] for e in suite(contract)["expectations"]
                              if e["type"] == "expect_column_values_to_not_be_null"))


def _with_nulls(frame, column, rows):
    values = frame.column(column).to_pylist()
    for r in rows:
        values[r] = None
    return frame.set_column(frame.column_names.index(column), column, pa.array(values, frame.schema.field(column).type))


def test_a_not_null_check_is_answered_from_whether_values_are_missing(contracts, tmp_path, monkeypatch):
    contract = contracts["police"]
    seen, unseen = _null_checked_columns(contract)[:2]
    population = Population(seed=4, size=80)
    nights = [FIRST + timedelta(days=n) for n in range(3)]
    tables = [frames(contract, write_night("police", n, tmp_path / str(n), rows=90, population=population, seed=7,
                                           faults=FAULTS["police"]).path, n)["rows"] for n in nights]
    tables[0] = _with_nulls(tables[0], seen, [0])  # both kinds of value seen in the first night
    tables[1] = _with_nulls(tables[1], seen, [1, 2])
    tables[2] = _with_nulls(tables[2], unseen, [3])  # a missing value this check has not met yet
    memo = Validator()
    calls = ge_calls(memo, monkeypatch)
    outcomes = [memo.validate_table(suite(contract), t) for t in tables]
    straight = Validator()  # GE over every record, nothing remembered
    for table, outcome in zip(tables, outcomes):
        assert outcome_of(outcome) == outcome_of(straight.validate(suite(contract), table.to_pandas()))
    asked = [{(c.type, c.columns[0]) for c in runnable if c.columns} for runnable, _ in calls]
    null_checks = {("expect_column_values_to_not_be_null", seen), ("expect_column_values_to_not_be_null", unseen)}
    assert null_checks <= asked[0]  # the first night teaches the verdicts
    assert not {t for t, _ in asked[1]} & NULL_SENSITIVE  # new values, none new in missingness: no null check in GE
    assert ("expect_column_values_to_not_be_null", unseen) in asked[2]
    assert ("expect_column_values_to_not_be_null", seen) not in asked[2]
    (label,) = [c.label for c in memo._compiled(suite(contract)).checks
                if c.type == "expect_column_values_to_not_be_null" and list(c.columns) == [seen]]
    missing = [tables[1].column(ROW)[r].as_py() for r in (1, 2)]
    assert all(label in outcomes[1].failures[row] for row in missing)  # the missing values did fail


def _tables():
    rng = [f"v{i % 7}" for i in range(40)]
    return [pa.table({ROW: pa.array(range(start, start + 40), pa.int64()), "a": pa.array(rng[k:] + rng[:k]),
                      "b": pa.array([None if i % 5 == 0 else str(i % 3) for i in range(40)])})
            for k, start in ((0, 1), (3, 41), (5, 81))]


def _originals(first, second):
    """Two files' batches interleaved, as two runs in one process would send them."""
    a, b = first(), second()
    t1, t2, t3 = _tables()
    return [a.originals(t1).tolist(), b.originals(t1).tolist(), a.originals(t2).tolist(), b.originals(t3).tolist(),
            a.originals(t3).tolist()]


def test_duplicate_check_on_one_database_per_process_finds_what_a_database_per_file_does(monkeypatch):
    shared = _originals(duplicates.Repeats, duplicates.Repeats)
    assert duplicates._database() is duplicates._database()
    monkeypatch.setattr(duplicates, "_database", duckdb.connect)  # the straightforward path: one per file
    assert shared == _originals(duplicates.Repeats, duplicates.Repeats)
    assert any(any(row) for row in shared)  # repeats were found


def _database_of_child(queue):
    duplicates._database()
    queue.put(sorted(duplicates._DATABASES) == sorted({os.getppid(), os.getpid()}))


def test_a_forked_process_opens_its_own_database():
    duplicates._database()
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_database_of_child, args=(queue,))
    child.start()
    child.join(60)
    assert queue.get(timeout=5)


def test_data_docs_are_named_by_the_manifest_and_rendered_after_it(contracts, tmp_path, monkeypatch):
    """The task functions in the DAG's order: ``process_file`` and ``write_manifest`` publish and
    name the night's page without rendering it; ``render_data_docs`` renders what was named."""
    from devkit.benchmark import land
    from samverkan.core.ledger import Ledger
    from samverkan.core.settings import Paths
    from samverkan.orchestration import feed_runtime
    from samverkan.privacy.pseudonymise import Pseudonymiser
    from samverkan.quality import reports

    monkeypatch.setenv("SAMVERKAN_DATA_ROOT", str(tmp_path / "root"))
    contract, paths = contracts["guards"], Paths(tmp_path / "root").ensure()
    source = write_night("guards", FIRST, tmp_path / "in", rows=60, population=Population(seed=4, size=40), seed=7,
                         faults=FAULTS["guards"]).path
    landed = land(paths, Ledger(paths.ledger), "guards", FIRST.isoformat(), source, "r1")
    result = feed_runtime.process_landed(contract, landed, "r1", EXPECTATIONS_DIR, lambda: Pseudonymiser(bytes(32)))
    assert result["status"] == "published" and result["rows_quarantined"]
    earlier = (FIRST - timedelta(days=1)).isoformat()  # a file skipped as unchanged: its night is not rebuilt
    skipped = {"name": "guards_earlier.csv", "night": earlier, "sha256": "0" * 64, "status": "unchanged",
               "reason": "same content"}
    manifest, failed = feed_runtime.record_run(contract, [landed], [result, skipped], "r1", FIRST)
    page = reports.data_docs_page(paths.root, "guards", FIRST.isoformat())
    assert failed == [] and manifest["data_docs"] == {FIRST.isoformat(): reports.data_docs_url("guards", FIRST.isoformat())}
    assert not page.exists()  # the manifest and the published data do not wait for the page
    assert feed_runtime.render_data_docs(contract, [result, skipped], "r1") == manifest["data_docs"]
    assert page.exists()
    assert not reports.data_docs_page(paths.root, "guards", earlier).exists()
