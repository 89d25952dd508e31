"""The disclosure register: append-only, chained, queryable with DuckDB."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from samverkan.sharing.register import (
    DELIVERY,
    RETENTION_DELETION,
    Event,
    Register,
    RegisterError,
)

pytestmark = pytest.mark.unit

NOBODY = 65534  # the unprivileged user and group every Debian system has


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


def test_an_event_is_never_overwritten_even_by_a_writer_that_missed_it(tmp_path, monkeypatch):
    """A second writer with a stale view computes the same sequence number: the register's own
    hard-link guard must refuse, and the event on disk stays as it was."""
    register = Register(tmp_path)
    register.append(event())
    [path] = register.event_files()
    before = path.read_bytes()
    monkeypatch.setattr(register, "event_files", list)  # blind to event 1: appends seq 1 again
    with pytest.raises(FileExistsError):
        register.append(event(recipient="police"))
    assert path.read_bytes() == before
    assert sorted(p.name for p in register.events_dir.iterdir()) == [path.name]  # no temporary file left


def test_event_files_cannot_be_written_by_their_owner(tmp_path):
    """Mode bits mean nothing to root, and CI runs as root: so as root the file is handed to an
    unprivileged user and that user (its owner now) tries to open it for writing."""
    register = Register(tmp_path)
    register.append(event())
    [path] = register.event_files()
    assert _owner_can_write(path) is False


def _owner_can_write(path) -> bool:
    if os.geteuid() != 0:
        return _can_open_for_writing(path)
    os.chown(path, NOBODY, NOBODY)
    # The child opens the directory first, as root: pytest's base directory (0700) is then never
    # traversed by the unprivileged user, and only the file's own mode decides.
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child never returns into pytest
        code = 4
        try:
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            code = 0 if _can_open_for_writing(Path(path.name), dir_fd) else 3
        finally:
            os._exit(code)
    os.close(dir_fd)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) in (0, 3), status
    return os.WEXITSTATUS(status) == 0


def _can_open_for_writing(path: Path, dir_fd: int | None = None) -> bool:
    try:
        os.close(os.open(path, os.O_WRONLY, dir_fd=dir_fd))
    except PermissionError:
        return False
    return True


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
