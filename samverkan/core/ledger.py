"""The ledger of received files: what arrived, what it contained, what became of it.

It is what makes runs safe to repeat. A file whose name, size and mtime the ledger already
settled is not even downloaded again; a file re-sent under the same name with new content
replaces that night's data; the same content under another name is recognised as a duplicate
and not published twice. SQLite keeps it in one file under the data root, in WAL mode so
mapped tasks running side by side can write to it.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    feed TEXT NOT NULL,
    name TEXT NOT NULL,
    night TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime INTEGER NOT NULL,
    sha256 TEXT,
    status TEXT NOT NULL,
    reason TEXT,
    received_at REAL NOT NULL,
    settled_at REAL,
    run_id TEXT,
    rows_received INTEGER,
    rows_published INTEGER,
    rows_quarantined INTEGER
);
CREATE INDEX IF NOT EXISTS files_by_name ON files (feed, name);
CREATE INDEX IF NOT EXISTS files_by_sha ON files (feed, sha256);
CREATE TABLE IF NOT EXISTS quarantines (
    entry_id INTEGER PRIMARY KEY,
    feed TEXT NOT NULL,
    night TEXT NOT NULL,
    name TEXT NOT NULL,
    sha256 TEXT,
    kind TEXT NOT NULL,
    rows INTEGER NOT NULL,
    reason TEXT,
    status TEXT NOT NULL,
    opened_at REAL NOT NULL,
    closed_at REAL,
    closed_by INTEGER,
    note TEXT
);
CREATE INDEX IF NOT EXISTS quarantines_by_night ON quarantines (feed, night);
CREATE TABLE IF NOT EXISTS alerts (
    feed TEXT NOT NULL,
    night TEXT NOT NULL,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    claimed_at REAL NOT NULL,
    run_id TEXT,
    PRIMARY KEY (feed, night, kind, key)
);
CREATE TABLE IF NOT EXISTS observations (
    feed TEXT NOT NULL,
    name TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime INTEGER NOT NULL,
    first_seen REAL NOT NULL,
    PRIMARY KEY (feed, name)
);
"""

# A file in one of these states needs nothing more unless its name/size/mtime change.
SETTLED = ("published", "rejected", "duplicate", "unchanged", "superseded")
# The states whose content counts as "already received" when another file has the same hash.
CONTENT_KNOWN = ("published", "rejected")


@dataclass(frozen=True)
class FileEntry:
    id: int
    feed: str
    name: str
    night: str
    size: int
    mtime: int
    sha256: str | None
    status: str
    reason: str | None
    run_id: str | None
    rows_received: int | None
    rows_published: int | None
    rows_quarantined: int | None


@dataclass(frozen=True)
class QuarantineEntry:
    """Held-back data of one received file: its rows (``kind='rows'``) or the whole file (``'file'``)."""

    entry_id: int
    feed: str
    night: str
    name: str
    sha256: str | None
    kind: str
    rows: int
    reason: str | None
    status: str  # open, resolved (a later version of the file was published), expired (retention)
    opened_at: float
    closed_at: float | None
    closed_by: int | None
    note: str | None


_QUARANTINE_COLUMNS = ("entry_id, feed, night, name, sha256, kind, rows, reason, status, opened_at, closed_at, "
                       "closed_by, note")

_COLUMNS = "id, feed, name, night, size, mtime, sha256, status, reason, run_id, rows_received, rows_published, rows_quarantined"


class Ledger:
    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA busy_timeout=60000")
            yield db
        finally:
            db.close()

    # --- queries ---------------------------------------------------------------------------
    def _entries(self, where: str, args: tuple) -> list[FileEntry]:
        with self._connect() as db:
            rows = db.execute(f"SELECT {_COLUMNS} FROM files WHERE {where} ORDER BY id", args).fetchall()
        return [FileEntry(*r) for r in rows]

    def is_settled(self, feed: str, name: str, size: int, mtime: int) -> bool:
        marks = ",".join("?" * len(SETTLED))
        return bool(
            self._entries(f"feed=? AND name=? AND size=? AND mtime=? AND status IN ({marks})", (feed, name, size, mtime, *SETTLED))
        )

    def known_content(self, feed: str, sha256: str) -> FileEntry | None:
        marks = ",".join("?" * len(CONTENT_KNOWN))
        found = self._entries(f"feed=? AND sha256=? AND status IN ({marks})", (feed, sha256, *CONTENT_KNOWN))
        return found[-1] if found else None

    def entry(self, entry_id: int) -> FileEntry:
        return self._entries("id=?", (entry_id,))[0]

    def entries(self, feed: str | None = None) -> list[FileEntry]:
        return self._entries("feed=?", (feed,)) if feed else self._entries("1=1", ())

    # --- changes ---------------------------------------------------------------------------
    def record_landed(self, feed: str, name: str, night: str, size: int, mtime: int, sha256: str, run_id: str | None) -> int:
        with self._connect() as db:
            cur = db.execute(
                "INSERT INTO files (feed, name, night, size, mtime, sha256, status, received_at, run_id) "
                "VALUES (?, ?, ?, ?, ?, ?, 'landed', ?, ?)",
                (feed, name, night, size, mtime, sha256, time.time(), run_id),
            )
            return int(cur.lastrowid)

    def settle(self, entry_id: int, status: str, reason: str | None = None, *, received: int | None = None,
               published: int | None = None, quarantined: int | None = None) -> None:
        """Record the outcome; a published file supersedes every earlier version of the same name."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            db.execute(
                "UPDATE files SET status=?, reason=?, settled_at=?, rows_received=?, rows_published=?, rows_quarantined=? WHERE id=?",
                (status, reason, time.time(), received, published, quarantined, entry_id),
            )
            feed, name, night, sha256 = db.execute(
                "SELECT feed, name, night, sha256 FROM files WHERE id=?", (entry_id,)).fetchone()
            if status == "rejected" or (status == "published" and quarantined):
                db.execute(
                    f"INSERT OR REPLACE INTO quarantines ({_QUARANTINE_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, NULL, NULL, NULL)",
                    (entry_id, feed, night, name, sha256, "file" if status == "rejected" else "rows", quarantined or 0,
                     reason, time.time()),
                )
            if status == "published":
                marks = ",".join("?" * len(CONTENT_KNOWN))
                older = f"SELECT id FROM files WHERE feed=? AND name=? AND id<>? AND status IN ({marks})"
                args = (feed, name, entry_id, *CONTENT_KNOWN)
                db.execute(  # the corrected file replaces the partition, so what was held back is settled
                    f"UPDATE quarantines SET status='resolved', closed_at=?, closed_by=?, note=? "
                    f"WHERE status='open' AND entry_id IN ({older})",
                    (time.time(), entry_id, f"replaced by ledger entry {entry_id}", *args),
                )
                db.execute(
                    f"UPDATE files SET status='superseded', reason=? WHERE id IN ({older})",
                    (f"replaced by ledger entry {entry_id}", *args),
                )
            db.execute("COMMIT")

    # --- quarantine ------------------------------------------------------------------------
    def quarantines(self, feed: str | None = None, night: str | None = None,
                    status: str | None = None) -> list[QuarantineEntry]:
        where, args = ["1=1"], []
        for column, value in (("feed", feed), ("night", night), ("status", status)):
            if value is not None:
                where.append(f"{column}=?")
                args.append(value)
        with self._connect() as db:
            rows = db.execute(f"SELECT {_QUARANTINE_COLUMNS} FROM quarantines WHERE {' AND '.join(where)} "
                              "ORDER BY night, name, entry_id", args).fetchall()
        return [QuarantineEntry(*r) for r in rows]

    def expire_quarantine(self, entry_id: int, note: str) -> None:
        with self._connect() as db:
            db.execute("UPDATE quarantines SET status='expired', closed_at=?, note=? WHERE entry_id=? AND status<>'expired'",
                       (time.time(), note, entry_id))

    # --- alerts ----------------------------------------------------------------------------
    def claim_alert(self, feed: str, night: str, kind: str, key: str = "", run_id: str | None = None) -> bool:
        """True exactly once per (feed, night, kind, key): the caller that gets True sends the alert.

        The claim is a row insert, so two tasks (or a retry and a re-run) racing for the same
        alert cannot both win; a sender that fails gives its claim back with ``release_alert``.
        """
        with self._connect() as db:
            cur = db.execute("INSERT OR IGNORE INTO alerts (feed, night, kind, key, claimed_at, run_id) "
                             "VALUES (?, ?, ?, ?, ?, ?)", (feed, night, kind, key, time.time(), run_id))
            return cur.rowcount == 1

    def release_alert(self, feed: str, night: str, kind: str, key: str = "") -> None:
        with self._connect() as db:
            db.execute("DELETE FROM alerts WHERE feed=? AND night=? AND kind=? AND key=?", (feed, night, kind, key))

    def alerts(self, feed: str | None = None) -> list[tuple[str, str, str, str]]:
        with self._connect() as db:
            rows = db.execute("SELECT feed, night, kind, key FROM alerts WHERE ?1 IS NULL OR feed=?1 ORDER BY claimed_at",
                              (feed,)).fetchall()
        return [tuple(r) for r in rows]

    # --- quiet-period observations ---------------------------------------------------------
    def observations(self, feed: str) -> dict[str, tuple[int, int, float]]:
        with self._connect() as db:
            rows = db.execute("SELECT name, size, mtime, first_seen FROM observations WHERE feed=?", (feed,)).fetchall()
        return {name: (size, mtime, first_seen) for name, size, mtime, first_seen in rows}

    def save_observations(self, feed: str, observed: dict[str, tuple[int, int, float]]) -> None:
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            db.execute("DELETE FROM observations WHERE feed=?", (feed,))
            db.executemany(
                "INSERT INTO observations (feed, name, size, mtime, first_seen) VALUES (?, ?, ?, ?, ?)",
                [(feed, n, s, m, f) for n, (s, m, f) in observed.items()],
            )
            db.execute("COMMIT")
