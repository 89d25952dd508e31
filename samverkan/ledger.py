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
            if status == "published":
                feed, name = db.execute("SELECT feed, name FROM files WHERE id=?", (entry_id,)).fetchone()
                marks = ",".join("?" * len(CONTENT_KNOWN))
                db.execute(
                    f"UPDATE files SET status='superseded', reason=? WHERE feed=? AND name=? AND id<>? AND status IN ({marks})",
                    (f"replaced by ledger entry {entry_id}", feed, name, entry_id, *CONTENT_KNOWN),
                )
            db.execute("COMMIT")

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
