"""The disclosure register: append-only, chained, queryable with DuckDB."""

from __future__ import annotations

import os
from datetime import date

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from samverkan.sharing.register import DELIVERY, RETENTION_DELETION, Event, Register, RegisterError

pytestmark = pytest.mark.unit


def event(kind: str = DELIVERY, recipient: str = "transit", night: date = date(2026, 11, 20)) -> Event:
    files = [{"name": "incidents.parquet", "dataset": "incidents", "rows": 12, "bytes": 900, "sha256": "a" * 64},
             {"name": "manifest.json", "dataset": None, "rows": None, "bytes": 300, "sha256": "b" * 64}]
    return Event(event=kind, recipient=recipient, agreement_id=recipient, agreement_version=2,
                 delivery_id=night.isoformat(), period_start=night, period_end=night, mode="push",
                 destination="sftp://x@127.0.0.1:22/inbox", files=files, manifest_sha256="c" * 64, run_id="run-1")


def test_events_are_numbered_chained_and_queryable(tmp_path):
    register = Register(tmp_path)
    register.append(event())
    register.append(event(recipient="police"))
    register.append(event(RETENTION_DELETION))
    assert register.verify_chain() == 3
    con = register.connect()
    rows = con.execute("SELECT seq, event, recipient, agreement_version, datasets, rows_total FROM disclosures").fetchall()
    assert rows == [(1, "delivery", "transit", 2, ["incidents"], 12), (2, "delivery", "police", 2, ["incidents"], 12),
                    (3, "retention_deletion", "transit", 2, ["incidents"], 12)]
    hashes = con.execute("SELECT DISTINCT sha256 FROM disclosed_files WHERE name = 'incidents.parquet'").fetchall()
    assert hashes == [("a" * 64,)]


def test_event_files_are_read_only_and_never_overwritten(tmp_path):
    register = Register(tmp_path)
    register.append(event())
    [path] = register.event_files()
    assert oct(path.stat().st_mode & 0o777) == "0o444"
    with pytest.raises(FileExistsError):
        os.link(path, path)


def test_a_removed_event_breaks_the_chain(tmp_path):
    register = Register(tmp_path)
    for _ in range(3):
        register.append(event())
    register.event_files()[1].unlink()
    with pytest.raises(RegisterError, match="event 2 is missing"):
        register.verify_chain()


def test_an_edited_event_breaks_the_chain(tmp_path):
    register = Register(tmp_path)
    register.append(event())
    register.append(event())
    path = register.event_files()[0]
    table = pq.read_table(path)
    edited = table.set_column(table.schema.get_field_index("recipient"), "recipient", pa.array(["someone_else"]))
    path.chmod(0o644)
    pq.write_table(edited, path)
    with pytest.raises(RegisterError, match="event 1 was altered"):
        register.verify_chain()


def test_an_empty_register_is_queryable(tmp_path):
    assert Register(tmp_path).connect().execute("SELECT count(*) FROM disclosures").fetchone() == (0,)
