"""The quarantine's lifecycle (open → resolved / expired), listing without raw values, retention."""

from __future__ import annotations

from datetime import date

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from samverkan.quality import quarantine
from samverkan.core.contracts import load_contracts
from samverkan.core.ledger import Ledger
from samverkan.ingest.pipeline import QUARANTINE_SCHEMA
from samverkan.core.publishing import partition_file
from samverkan.core.settings import Paths

pytestmark = pytest.mark.unit

RAW = '{"Personnummer": "19121212-1213", "Namn": "Hemligsson, Hemlig"}'


@pytest.fixture
def hub(tmp_path):
    paths = Paths(tmp_path / "data").ensure()
    return paths, Ledger(paths.ledger)


def held_back(paths, night, name="polisen_handelser.csv", sha="a" * 64, records=(3, 9)):
    path = partition_file(paths.quarantine_rows("police"), night, "police", name)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [{"source": "police", "source_file": name, "sha256": sha, "night": night, "record": r,
             "failed_checks": ["expect_column_values_to_be_in_set(personnummer__status)"],
             "reasons": "Personnummer is not a valid personnummer", "raw_record": RAW} for r in records]
    pq.write_table(pa.Table.from_pylist(rows, schema=QUARANTINE_SCHEMA), path)
    return path


def test_a_published_correction_resolves_the_earlier_quarantine(hub):
    paths, ledger = hub
    first = ledger.record_landed("police", "f.csv", "2026-11-20", 10, 1, "a" * 64, "r1")
    ledger.settle(first, "published", received=10, published=8, quarantined=2)
    [q] = ledger.quarantines(feed="police")
    assert (q.status, q.kind, q.rows) == ("open", "rows", 2)
    fixed = ledger.record_landed("police", "f.csv", "2026-11-20", 11, 2, "b" * 64, "r2")
    ledger.settle(fixed, "published", received=10, published=10, quarantined=0)
    [q] = ledger.quarantines(feed="police")
    assert (q.status, q.closed_by) == ("resolved", fixed)


def test_a_rejected_resend_leaves_the_quarantine_open_and_adds_its_own(hub):
    paths, ledger = hub
    first = ledger.record_landed("police", "f.csv", "2026-11-20", 10, 1, "a" * 64, "r1")
    ledger.settle(first, "published", received=10, published=9, quarantined=1)
    again = ledger.record_landed("police", "f.csv", "2026-11-20", 11, 2, "b" * 64, "r2")
    ledger.settle(again, "rejected", "missing required column(s) Roll", received=0, published=0, quarantined=0)
    assert [(q.kind, q.status) for q in ledger.quarantines(feed="police")] == [("rows", "open"), ("file", "open")]


def test_listing_names_records_and_checks_but_no_raw_values(hub):
    paths, ledger = hub
    parquet = held_back(paths, "2026-11-20")
    entry = ledger.record_landed("police", "polisen_handelser.csv", "2026-11-20", 10, 1, "a" * 64, "r1")
    ledger.settle(entry, "published", received=10, published=8, quarantined=2)
    status = quarantine.night_status(paths, ledger, "police", "2026-11-20")
    assert [r["record"] for r in status["rows"]] == [3, 9]
    text = quarantine.format_status(status)
    assert "record 3" in text and "record 9" in text and str(parquet) in text
    assert "19121212" not in text and "Hemlig" not in text


def test_list_command_prints_no_raw_values(hub, monkeypatch, capsys):
    paths, ledger = hub
    held_back(paths, "2026-11-20")
    entry = ledger.record_landed("police", "polisen_handelser.csv", "2026-11-20", 10, 1, "a" * 64, "r1")
    ledger.settle(entry, "published", received=10, published=8, quarantined=2)
    monkeypatch.setenv("SAMVERKAN_DATA_ROOT", str(paths.root))
    assert quarantine.main(["list", "--feed", "police", "--night", "2026-11-20"]) == 0
    out = capsys.readouterr().out
    assert "2 record(s), open" in out and "19121212" not in out and "Hemlig" not in out


def test_retention_deletes_old_nights_only_and_marks_them_expired(hub):
    paths, ledger = hub
    contract = load_contracts()["police"]
    old, recent = held_back(paths, "2026-01-01"), held_back(paths, "2026-11-20")
    rejected = paths.quarantine_files("police") / "2026-01-02" / "polisen_handelser_20260102.csv"
    rejected.parent.mkdir(parents=True)
    rejected.write_text("x")
    for night in ("2026-01-01", "2026-11-20"):
        entry = ledger.record_landed("police", f"f{night}.csv", night, 1, 1, night, "r")
        ledger.settle(entry, "published", received=2, published=0, quarantined=2)
    today = date(2026, 11, 25)
    assert contract.quarantine_retention_days == 90
    assert quarantine.purge(contract, paths, ledger, today=today, dry_run=True) and old.exists()
    removed = quarantine.purge(contract, paths, ledger, today=today)
    assert not old.exists() and not rejected.exists() and recent.exists()
    assert len(removed) == 2
    assert {q.night: q.status for q in ledger.quarantines(feed="police")} == {"2026-01-01": "expired",
                                                                             "2026-11-20": "open"}


def test_reprocess_runs_the_feeds_dag_for_that_night():
    command = quarantine.reprocess_command("police", "2026-11-20", force=True)
    assert command[1:4] == ["dags", "test", "samverkan_police"]
    assert command[-1] == '{"night": "2026-11-20", "reprocess": true}'
    assert quarantine.reprocess_command("police", "2026-11-20", trigger=True)[1:3] == ["dags", "trigger"]
