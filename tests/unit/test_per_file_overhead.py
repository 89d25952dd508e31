"""The per-file savings (issue 13) change no verdict and no page.

GE's verdicts are remembered per value across batches (``_VerdictMemo``) and the Data Docs view is
built once per process; each is checked against the straightforward path: GE over every record
of the batch with nothing remembered, and a page rendered by a fresh GE view.
"""

import json
import re
from datetime import date, timedelta

import pyarrow as pa
import pytest

from devkit.synthetic import Faults, Population, canonical_pnr, write_night
from samverkan.ingest.parsing import read_batches
from samverkan.ingest.pipeline import array_check_frame, check_frame
from samverkan.quality import reports
from samverkan.quality.validation import EXPECTATIONS_DIR, Validator, suite_path

pytestmark = pytest.mark.unit

FIRST = date(2026, 3, 2)
FAULTS = {"police": Faults(bad_checksum_pnr=3, impossible_date=2, unknown_category=2),
          "transit": Faults(impossible_date=2, unknown_category=1)}


def suite(contract, part="rows"):
    return json.loads(suite_path(EXPECTATIONS_DIR, contract, part).read_text(encoding="utf-8"))


def same(a, b):
    assert (a.failures, a.table_failures, a.reasons, a.expectations) == \
        (b.failures, b.table_failures, b.reasons, b.expectations)


@pytest.fixture()
def fresh():
    """A validator of its own, so the memo starts empty in each test."""
    return Validator()


def counting_ge_calls(validator, monkeypatch):
    calls = []
    run = validator._run
    monkeypatch.setattr(validator, "_run", lambda *a, **k: calls.append(a[1]) or run(*a, **k))
    return calls


@pytest.mark.parametrize("large", [False, True], ids=["small batches", "large batches"])
@pytest.mark.parametrize("feed", ["police", "transit"])
def test_remembered_verdicts_equal_ge_over_every_record_night_after_night(contracts, fresh, tmp_path, feed, large,
                                                                          monkeypatch):
    """Large batches: every batch counts as large, and a key with more than 10 values as many."""
    from samverkan.quality import validation

    if large:
        monkeypatch.setattr(validation, "MEMO_MAX_ROWS", 0)
        monkeypatch.setattr(validation, "SHARED_FRAME_MAX_VALUES", 10)
    contract = contracts[feed]
    population = Population(seed=3, size=200)
    for n in range(4):
        night = FIRST + timedelta(days=n)
        truth = write_night(feed, night, tmp_path, rows=120, population=population, seed=5, faults=FAULTS[feed])
        for batch in read_batches(contract, truth.path):
            frames = {"rows": check_frame(contract, batch.table, night, arrow=True)}
            frames.update({c.name: array_check_frame(contract, batch.table, c.name, arrow=True)
                           for c in contract.columns if c.type == "array"})
            for part, frame in frames.items():
                same(fresh.validate(suite(contract, part), frame.to_pandas()),
                     fresh.validate_table(suite(contract, part), frame))
    assert fresh._memo._values  # verdicts were remembered, so later nights were answered from them


def test_a_batch_of_known_values_does_not_call_ge_and_a_new_value_does(contracts, fresh, tmp_path, monkeypatch):
    contract = contracts["police"]
    truth = write_night("police", FIRST, tmp_path, rows=60, population=Population(seed=3, size=50), seed=5,
                        faults=FAULTS["police"])
    frame = check_frame(contract, next(read_batches(contract, truth.path)).table, FIRST, arrow=True)
    first = fresh.validate_table(suite(contract), frame)
    assert first.failures  # failing verdicts are remembered too
    calls = counting_ge_calls(fresh, monkeypatch)
    same(first, fresh.validate_table(suite(contract), frame))
    assert calls == []
    changed = frame.set_column(frame.column_names.index("handelsetyp"), "handelsetyp",
                               pa.array(["Ingen sådan kategori"] * frame.num_rows, pa.string()))
    outcome = fresh.validate_table(suite(contract), changed)
    assert len(calls) == 1
    same(Validator().validate(suite(contract), changed.to_pandas()), outcome)


def test_a_large_batch_remembers_only_checks_on_few_values(contracts, fresh, tmp_path, monkeypatch):
    """Above ``MEMO_MAX_ROWS`` records only checks on few distinct values (and not-null and shape
    checks) are remembered: a check on many values (an id, a pair of times) brings new values in
    every batch and goes to GE each time. The verdicts are GE's over every record either way."""
    from samverkan.quality import validation

    contract = contracts["police"]
    truth = write_night("police", FIRST, tmp_path, rows=60, population=Population(seed=3, size=50), seed=5,
                        faults=FAULTS["police"])
    frame = check_frame(contract, next(read_batches(contract, truth.path)).table, FIRST, arrow=True)
    monkeypatch.setattr(validation, "MEMO_MAX_ROWS", frame.num_rows - 1)
    monkeypatch.setattr(validation, "SHARED_FRAME_MAX_VALUES", 10)
    checks = validation._compile(suite(contract)).checks
    many = {c.label for c in checks
            if validation._distinct_safe(c) and not validation._few_values(frame, c, {})}
    few = {c.label for c in checks if validation._distinct_safe(c)} - many
    assert {"diarienr", "registrerad"} <= {validation._key_of(c)[0] for c in checks if c.label in many}
    assert few  # categories, roles and not-null checks

    straight = Validator().validate(suite(contract), frame.to_pandas())
    sent = []
    run = fresh._run
    monkeypatch.setattr(fresh, "_run", lambda *a, **k: sent.append({c.label for c in a[2]}) or run(*a, **k))
    same(straight, fresh.validate_table(suite(contract), frame))
    assert set().union(*sent) >= many | few  # the first time GE judges everything
    sent.clear()
    same(straight, fresh.validate_table(suite(contract), frame))
    assert set().union(*sent) == many  # the second time only the checks on many values
    remembered = {json.loads(identity)[0] for _, identity in fresh._memo._values}
    shapes = {json.loads(identity)[0] for _, identity, _ in fresh._memo._shapes}
    assert remembered | shapes == few


def test_a_key_with_many_values_gets_a_ge_frame_of_its_own(contracts, fresh, tmp_path, monkeypatch):
    """GE filters its whole frame for every metric: a check of a key with many values must not
    pay for other checks' columns. Keys with few values share a frame, one GE call on a small night."""
    from samverkan.quality import validation

    contract = contracts["police"]
    truth = write_night("police", FIRST, tmp_path, rows=60, population=Population(seed=3, size=50), seed=5,
                        faults=FAULTS["police"])
    frame = check_frame(contract, next(read_batches(contract, truth.path)).table, FIRST, arrow=True)
    monkeypatch.setattr(validation, "MEMO_MAX_ROWS", 0)
    frames = []
    run = fresh._run
    monkeypatch.setattr(fresh, "_run", lambda *a, **k: frames.append((a[2], a[3])) or run(*a, **k))
    same(Validator().validate(suite(contract), frame.to_pandas()), fresh.validate_table(suite(contract), frame))
    assert len(frames) == 1  # 60 records: every key is small

    frames.clear()
    monkeypatch.setattr(validation, "SHARED_FRAME_MAX_VALUES", 40)
    outcome = fresh.validate_table(suite(contract), frame)
    same(Validator().validate(suite(contract), frame.to_pandas()), outcome)
    own = []
    for checks, ge_frame in frames:
        keys = {validation._key_of(c) for c in checks if c.columns and c.type not in validation.SHAPE_BY_NAME}
        if len(keys) == 1 and len(ge_frame) > 40:
            (key,) = keys
            assert {validation._base_column(c) for c in ge_frame.columns} - {validation.ROW} == set(key)
            own.append(key)
        else:
            assert len(ge_frame) <= 40
    assert ("diarienr",) in own and ("registrerad", "handelsetid") in own


def test_a_derived_value_is_judged_not_its_source(contracts, fresh, tmp_path):
    """The same personnummer is valid on a night after the birth and not before it: the memo
    remembers the verdict on the status the night gives it, never on the number alone."""
    contract = contracts["police"]
    truth = write_night("police", FIRST, tmp_path, rows=30, population=Population(seed=3, size=50), seed=5)
    table = next(read_batches(contract, truth.path)).table
    born = FIRST + timedelta(days=10)
    pnr = pa.array([canonical_pnr(born, "017")] * table.num_rows, pa.string())
    table = table.set_column(table.column_names.index("personnummer"), "personnummer", pnr)
    outcomes = []
    for night in (born + timedelta(days=5), born - timedelta(days=5)):
        frame = check_frame(contract, table, night, arrow=True)
        outcome = fresh.validate_table(suite(contract), frame)
        same(Validator().validate(suite(contract), frame.to_pandas()), outcome)
        outcomes.append(outcome)
    assert not outcomes[0].failures and outcomes[1].failures


def _without_volatile(html: str) -> str:
    """GE's pages carry a fresh element id per render and the time of rendering."""
    html = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "UUID", html)
    html = re.sub(r"\d{8}T\d{6}(\.\d+)?Z", "TIME", html)
    return re.sub(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(\+00:00|Z)?", "TIME", html)


def test_data_docs_page_from_the_cached_view_equals_a_fresh_render(contracts, tmp_path):
    from great_expectations.render.renderer.page_renderer import (
        ValidationResultsPageRenderer,
    )
    from great_expectations.render.view.view import DefaultJinjaPageView

    contract = contracts["police"]
    record = reports.file_validation(contract, {"rows": suite(contract)},
                                     {"name": "a.csv", "night": "2026-03-02", "status": "published"},
                                     [{"expectation": "expect_column_values_to_be_in_set(handelsetyp)",
                                       "success": False, "element_count": 10, "unexpected_count": 2}],
                                     {"expect_column_values_to_be_in_set(handelsetyp)": {"values": {"Aaaa": 2},
                                                                                       "rows": [3, 7]}})
    result = reports.night_result("police", "2026-03-02", [record], {"run_id": "r1", "run_time": "now"})
    renderer, view = reports._page_renderer()
    pages = [view.render(renderer.render(result)) for _ in range(2)]  # the second from the compiled templates
    assert reports._page_renderer()[1] is view
    expected = _without_volatile(DefaultJinjaPageView().render(ValidationResultsPageRenderer().render(result)))
    assert "Aaaa" in expected
    assert [_without_volatile(p) for p in pages] == [expected, expected]


# --- personnummer normalised once per batch ------------------------------------------------------


def _process(root, feed, source, night, validator, monkeypatch=None):
    """One file through ``process`` into its own data root; returns the result and what it wrote."""
    import hashlib
    import shutil

    import pyarrow.parquet as pq

    from samverkan.core.ledger import Ledger
    from samverkan.core.settings import Paths
    from samverkan.ingest.pipeline import process
    from samverkan.privacy.pseudonymise import Pseudonymiser

    paths = Paths(root).ensure()
    ledger = Ledger(paths.ledger)
    target = paths.landing(feed, night.isoformat()) / source.name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    sha = hashlib.sha256(target.read_bytes()).hexdigest()
    landed = {"entry_id": ledger.record_landed(feed, source.name, night.isoformat(), 1, 0, sha, "t"),
              "name": source.name, "night": night.isoformat(), "path": str(target), "sha256": sha, "action": "process"}
    from samverkan.core.contracts import load_contracts

    result = process(load_contracts()[feed], landed, paths, ledger, Pseudonymiser(bytes(range(32))), validator,
                     run_id="t", expectations_dir=EXPECTATIONS_DIR, batch_rows=50)
    written = {str(p.relative_to(root)): pq.read_table(p).replace_schema_metadata(None).to_pylist()
               for p in sorted(root.rglob("*.parquet")) if "expectation_outcomes" not in p.parts}
    return result, written


@pytest.mark.parametrize("feed", ["police", "guards"])
def test_personnummer_normalised_once_per_batch_publishes_the_same(contracts, fresh, tmp_path, monkeypatch, feed):
    """Once per batch (``with_personnummer``) against the straightforward path, where the check
    frame and the model each normalise: the same published rows and the same quarantine."""
    from samverkan.ingest import pipeline
    from samverkan.privacy import personnummer

    faults = Faults(bad_checksum_pnr=3, impossible_date=2, unknown_category=1)
    source = write_night(feed, FIRST, tmp_path / "in", rows=180, population=Population(seed=3, size=60), seed=5,
                         faults=faults).path
    calls = []
    normalise = personnummer.normalise_array
    monkeypatch.setattr(personnummer, "normalise_array", lambda *a: calls.append(1) or normalise(*a))
    once, once_written = _process(tmp_path / "once", feed, source, FIRST, fresh)
    batches = -(-once.rows_received // 50)
    assert len(calls) == batches  # one personnummer column: one normalisation per batch
    monkeypatch.setattr(pipeline, "with_personnummer", lambda contract, table, night: table)
    twice, twice_written = _process(tmp_path / "twice", feed, source, FIRST, fresh)
    assert len(calls) > 2 * batches  # the straightforward path normalises in the check frame and the model
    assert once.rows_quarantined and once.rows_published
    assert (once.rows_published, once.rows_quarantined, once.quarantine_reasons, once.expectations) == \
        (twice.rows_published, twice.rows_quarantined, twice.quarantine_reasons, twice.expectations)
    assert once_written == twice_written
    assert any("quarantine" in p for p in once_written)
