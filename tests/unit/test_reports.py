"""Reports show what failed and where, by shape only: no raw value reaches a stored or rendered byte."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from samverkan.quality import reports
from samverkan.core.contracts import load_contracts
from devkit.leakscan import PersonalValues, scan
from samverkan.ingest.pipeline import load_suites
from samverkan.quality.validation import EXPECTATIONS_DIR, Validator, combine, outcome_to_records

pytestmark = pytest.mark.unit

SECRET_PNR = "19121212-1213"
SECRET_NAME = "Hemligsson, Hemlig"


@pytest.mark.parametrize("raw, shape", [
    ("19121212-1213", "99999999-9999"), ("Okänd", "Aaaaa"), ("2026-02-30 10:00", "9999-99-99 99:99"),
    (None, "(empty)"), ("  ", "(blank)"), ("a\nb", "a⏎a"), ("x" * 50, "a" * 40 + "…"),
])
def test_masking_keeps_the_shape_and_drops_the_value(raw, shape):
    assert reports.mask_value(raw) == shape


@pytest.fixture(scope="module")
def police_run():
    """A real validation of police rows with three kinds of bad values, the samples collected."""
    from tests.unit.test_validation import police_frame

    frame = police_frame(personnummer={1: SECRET_PNR}, personnummer__status={1: "invalid_checksum"},
                         namn={1: SECRET_NAME}, handelsetid={2: "2026-02-30 10:00"}, handelsetyp={3: "Hemlig typ"})
    contract = load_contracts()["police"]
    suites = load_suites(contract, EXPECTATIONS_DIR)
    validator = Validator()
    collector = reports.SampleCollector()
    pandas_outcome = validator.validate(suites["rows"], frame)
    collector.add("rows", pandas_outcome, frame)
    arrow = pa.Table.from_pandas(frame, preserve_index=False)
    arrow_collector = reports.SampleCollector()
    arrow_collector.add("rows", pandas_outcome, arrow)
    return contract, suites, pandas_outcome, collector, arrow_collector


def test_samples_are_masked_and_name_the_records(police_run):
    _, _, _, collector, arrow_collector = police_run
    samples = collector.to_dict()
    assert samples["expect_column_values_to_be_in_set(personnummer__status)"] == {"values": {"99999999-9999": 1},
                                                                                  "rows": [1]}
    assert samples["expect_column_values_to_match_strftime_format(handelsetid)"]["values"] == {"9999-99-99 99:99": 1}
    assert samples["expect_column_values_to_be_in_set(handelsetyp)"] == {"values": {"Aaaaaa aaa": 1}, "rows": [3]}
    assert arrow_collector.to_dict() == samples  # Arrow and pandas check frames give the same samples


def test_sample_limits_bound_the_work():
    collector = reports.SampleCollector(value_limit=2, row_limit=3)

    class Outcome:
        failures = {r: ["check(c)"] for r in range(1, 11)}
        expectations = [type("E", (), {"label": "check(c)", "column": "c"})()]

    frame = pa.table({"_row": list(range(1, 11)), "c": [str(r) * r for r in range(1, 11)]})
    collector.add("rows", Outcome(), frame)
    sample = collector.to_dict()["check(c)"]
    assert sample["rows"] == [1, 2, 3] and len(sample["values"]) == 2


def test_data_docs_render_the_failures_without_any_raw_value(police_run, tmp_path):
    contract, suites, outcome, collector, _ = police_run
    night = "2026-11-20"
    records = outcome_to_records(combine([outcome]), "police", night, "polisen_handelser_20261120.csv")
    file = {"name": "polisen_handelser_20261120.csv", "night": night, "sha256": "ab" * 32, "status": "published",
            "rows_received": 6, "rows_published": 3, "rows_quarantined": 3, "reason": None}
    record = reports.file_validation(contract, suites, file, records, collector.to_dict())
    reports.store_file_validation(tmp_path, record)
    page = reports.render_night(tmp_path, "police", night, {"run_id": "manual__1", "run_time": "2026-11-21T06:30:00Z"})
    html = page.read_text(encoding="utf-8")
    assert "handelsetyp" in html and "Aaaaaa aaa" in html and "99999999-9999" in html
    stored = json.loads(page.with_name("validation_result.json").read_text(encoding="utf-8"))
    assert stored["success"] is False and stored["statistics"]["unsuccessful_expectations"] == 3
    values = PersonalValues(personnummer_as_written={SECRET_PNR}, names={SECRET_NAME})
    assert scan([tmp_path], values) == []
    everything = "".join(p.read_text(encoding="utf-8") for p in tmp_path.rglob("*")
                         if p.is_file() and "_assets" not in p.parts)  # _assets: the pages' vendored libraries
    for raw in ("Hemlig typ", "2026-02-30 10:00", SECRET_PNR, "invalid_checksum"):
        assert raw not in everything


def test_a_file_missing_a_column_gets_a_failed_table_check(tmp_path):
    contract = load_contracts()["guards"]
    suites = load_suites(contract, EXPECTATIONS_DIR)
    file = {"name": "vaktrapport_2026-11-20.csv", "night": "2026-11-20", "sha256": "cd" * 32, "status": "rejected",
            "reason": "missing required column(s) ingripande", "rows_received": 0}
    record = reports.file_validation(contract, suites, file, [], {}, missing_columns=["ingripande"])
    assert record["file"]["reason"] == "missing required column(s) ingripande"
    [check] = record["checks"]
    assert (check["success"], check["missing_columns"]) == (False, ["ingripande"])
    reports.store_file_validation(tmp_path, record)
    html = reports.render_night(tmp_path, "guards", "2026-11-20", {"run_id": "r"}).read_text(encoding="utf-8")
    assert "missing: ingripande" in html


def test_outcomes_are_one_parquet_row_per_file_and_expectation(tmp_path):
    files = [{"sha256": "ab" * 32, "status": "published", "expectations": [
        {"feed": "police", "night": "2026-11-20", "file": "f.csv", "expectation": "expect_x(a)", "column": "a",
         "success": False, "element_count": 10, "unexpected_count": 2},
        {"feed": "police", "night": "2026-11-20", "file": "f.csv", "expectation": "expect_table_columns_to_match_set",
         "column": None, "success": True, "element_count": 0, "unexpected_count": 0}]},
        {"status": "duplicate"}]
    path = reports.write_outcomes(tmp_path, "police", "manual__2026-11-21T06:30:00+01:00", files)
    table = pq.read_table(path)
    assert table.schema == reports.OUTCOMES_SCHEMA
    assert [(r["expectation_type"], r["success"], r["unexpected_count"]) for r in table.to_pylist()] == [
        ("expect_x", False, 2), ("expect_table_columns_to_match_set", True, 0)]
    assert reports.write_outcomes(tmp_path, "police", "r2", [{"status": "duplicate"}]) is None


def test_the_nights_index_is_never_read_half_written(tmp_path, monkeypatch):
    """Two nights' render_data_docs tasks rewrite the feed's index at once (on two workers): a
    reader must see one whole page or the other, never a torn or empty one."""
    import threading

    root = tmp_path / "reports" / "data_docs" / "police"
    for night in ("2026-11-20", "2026-11-21"):
        (root / night).mkdir(parents=True)
        (root / night / "index.html").write_text("<html></html>")
    monkeypatch.setattr(reports, "reports_root", lambda data_root: tmp_path / "reports")
    # the page grows with every write, so a write that truncates first shows as a shorter read
    padding = iter(range(10**9))
    real = reports.assets.localise_beside
    monkeypatch.setattr(reports.assets, "localise_beside",
                        lambda html, page, base: real(html, page, base) + "<!--" + "x" * (50_000 + next(padding)) + "-->")
    stop, torn = threading.Event(), []

    def read() -> None:
        while not stop.is_set():
            page = root / "index.html"
            if page.exists():
                text = page.read_text(encoding="utf-8")
                if not text.endswith("-->"):
                    torn.append(len(text))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        writers = [threading.Thread(target=lambda: [reports.render_index(tmp_path, "police") for _ in range(60)])
                   for _ in range(2)]
        for w in writers:
            w.start()
        for w in writers:
            w.join()
    finally:
        stop.set()
        reader.join()
    assert not torn, f"{len(torn)} reads saw a torn index"
    assert sorted(p.name for p in root.iterdir()) == ["2026-11-20", "2026-11-21", "index.html"]  # no temp files left
