"""The ledger of received files: what arrived, what it contained, what became of it.

It is what makes runs safe to repeat. A file whose name, size and mtime the ledger already
settled is not even downloaded again; a file re-sent under the same name with new content
replaces that night's data; the same content under another name is recognised as a duplicate
and not published twice. A file is *claimed* by the run that receives it, so two runs that
discover it at the same time (a backfill's nights overlap in their look-back windows) do not
both receive it.

Where it is kept: by default SQLite, one file under the data root, in WAL mode so mapped tasks
running side by side on one machine can write to it (the embedded hub, the no-Docker stack).
A deployment whose workers run in separate containers or machines keeps it in its PostgreSQL
instead (``SAMVERKAN_LEDGER_URL``, a ``postgresql://`` URL; schema ``samverkan``): the same
tables, the same statements, the claim made atomic by the database's unique key.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LEDGER_URL_ENV = "SAMVERKAN_LEDGER_URL"
PG_SCHEMA = "samverkan"
# A claim by another run older than this is taken over (that run died); the claiming run itself
# (a retried task) may always take its claim back.
CLAIM_LEASE_SECONDS = 3600.0

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
CREATE TABLE IF NOT EXISTS claims (
    feed TEXT NOT NULL,
    name TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime INTEGER NOT NULL,
    run_id TEXT NOT NULL,
    claimed_at REAL NOT NULL,
    PRIMARY KEY (feed, name, size, mtime)
);
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


_QUARANTINE_COLUMNS = (
    "entry_id, feed, night, name, sha256, kind, rows, reason, status, opened_at, closed_at, closed_by, note"
)

_COLUMNS = "id, feed, name, night, size, mtime, sha256, status, reason, run_id, rows_received, rows_published, rows_quarantined"


def postgres_schema() -> str:
    """The same tables in PostgreSQL's types (64-bit ids, sizes and times)."""
    return (
        SCHEMA.replace("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGSERIAL PRIMARY KEY")
        .replace("INTEGER", "BIGINT")
        .replace("REAL", "DOUBLE PRECISION")
    )


class _Connection:
    """One connection to either database, with the ledger's statements written once: ``?``
    placeholders (PostgreSQL's driver wants ``%s``) and ``transaction()`` for the writes that
    must happen together (SQLite: ``BEGIN IMMEDIATE``, which takes the write lock up front)."""

    def __init__(self, db: Any, postgres: bool):
        self.db, self.postgres = db, postgres

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Any:
        return self.db.execute(sql.replace("?", "%s") if self.postgres else sql, tuple(args))

    def executemany(self, sql: str, rows: list[tuple]) -> None:
        if self.postgres:
            with self.db.cursor() as cur:
                cur.executemany(sql.replace("?", "%s"), rows)
        else:
            self.db.executemany(sql, rows)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if self.postgres:
            with self.db.transaction():
                yield
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")


def ledger_location(sqlite_path: Path) -> Path | str:
    """Where this deployment keeps its ledger: ``SAMVERKAN_LEDGER_URL`` when set, else the SQLite file."""
    return os.environ.get(LEDGER_URL_ENV) or sqlite_path


WAL_RETRY_SECONDS = 60.0


def _write_ahead_log(lite: sqlite3.Connection) -> None:
    """``PRAGMA journal_mode=WAL``, waiting for the lock as every other statement does.

    Processes that open a new ledger at the same moment (the history import's two workers)
    race to switch it to WAL, and SQLite answers the losers "database is locked" at once,
    without its busy handler (measured: 16 of 600 opens, six processes at a time). The switch is
    kept in the file, so this waits only while another connection is making it."""
    deadline = time.monotonic() + WAL_RETRY_SECONDS
    pause = 0.01
    while True:
        try:
            lite.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.5)


class Ledger:
    """``Ledger(path)``: SQLite at ``path``; ``Ledger("postgresql://…")``: PostgreSQL."""

    def __init__(self, location: Path | str):
        self.postgres = str(location).startswith(("postgresql://", "postgres://"))
        self.location = location
        if not self.postgres:
            self.path = Path(location)
            self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            if self.postgres:  # workers starting together: one creates the tables, the others wait
                with db.transaction():
                    db.execute("SELECT pg_advisory_xact_lock(hashtext('samverkan ledger schema'))")
                    db.execute(f"CREATE SCHEMA IF NOT EXISTS {PG_SCHEMA}")
                    db.execute(postgres_schema())
            else:
                db.db.executescript(SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[_Connection]:
        if self.postgres:
            import psycopg

            with psycopg.connect(
                str(self.location), autocommit=True, connect_timeout=30, options=f"-c search_path={PG_SCHEMA}"
            ) as pg:
                yield _Connection(pg, postgres=True)
            return
        lite = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        try:
            lite.execute("PRAGMA busy_timeout=60000")
            _write_ahead_log(lite)
            yield _Connection(lite, postgres=False)
        finally:
            lite.close()

    # --- queries ---------------------------------------------------------------------------
    def _entries(self, where: str, args: tuple) -> list[FileEntry]:
        with self._connect() as db:
            rows = db.execute(f"SELECT {_COLUMNS} FROM files WHERE {where} ORDER BY id", args).fetchall()
        return [FileEntry(*r) for r in rows]

    def is_settled(self, feed: str, name: str, size: int, mtime: int) -> bool:
        marks = ",".join("?" * len(SETTLED))
        return bool(
            self._entries(
                f"feed=? AND name=? AND size=? AND mtime=? AND status IN ({marks})", (feed, name, size, mtime, *SETTLED)
            )
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
    def record_landed(
        self, feed: str, name: str, night: str, size: int, mtime: int, sha256: str, run_id: str | None
    ) -> int:
        with self._connect() as db:
            cur = db.execute(
                "INSERT INTO files (feed, name, night, size, mtime, sha256, status, received_at, run_id) "
                "VALUES (?, ?, ?, ?, ?, ?, 'landed', ?, ?) RETURNING id",
                (feed, name, night, size, mtime, sha256, time.time(), run_id),
            )
            return int(cur.fetchone()[0])

    def claim(
        self,
        feed: str,
        name: str,
        size: int,
        mtime: int,
        run_id: str | None,
        *,
        again: bool = False,
        lease_seconds: float = CLAIM_LEASE_SECONDS,
    ) -> bool:
        """True when this run may receive the file (name, size, mtime): no other run is receiving
        it, and (unless ``again``, a deliberate re-run) it was not settled before. Exactly one of
        several runs claiming at once gets True; the claim ends when the file is settled."""
        now = time.time()
        with self._connect() as db:
            cur = db.execute(
                "INSERT INTO claims (feed, name, size, mtime, run_id, claimed_at) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (feed, name, size, mtime) DO UPDATE SET run_id = excluded.run_id, "
                "claimed_at = excluded.claimed_at "
                "WHERE claims.run_id = excluded.run_id OR claims.claimed_at < ?",
                (feed, name, size, mtime, run_id or "", now, now - lease_seconds),
            )
            won = cur.rowcount == 1
        if won and not again and self.is_settled(feed, name, size, mtime):
            self.release(feed, name, size, mtime)  # settled by the run that held it before us
            return False
        return won

    def release(self, feed: str, name: str, size: int, mtime: int) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM claims WHERE feed=? AND name=? AND size=? AND mtime=?", (feed, name, size, mtime))

    def settle(
        self,
        entry_id: int,
        status: str,
        reason: str | None = None,
        *,
        received: int | None = None,
        published: int | None = None,
        quarantined: int | None = None,
    ) -> None:
        """Record the outcome (and end the file's claim); a published file supersedes every earlier
        version of the same name."""
        with self._connect() as db, db.transaction():
            db.execute(
                "UPDATE files SET status=?, reason=?, settled_at=?, rows_received=?, rows_published=?, rows_quarantined=? WHERE id=?",
                (status, reason, time.time(), received, published, quarantined, entry_id),
            )
            feed, name, night, sha256, size, mtime = db.execute(
                "SELECT feed, name, night, sha256, size, mtime FROM files WHERE id=?", (entry_id,)
            ).fetchone()
            db.execute("DELETE FROM claims WHERE feed=? AND name=? AND size=? AND mtime=?", (feed, name, size, mtime))
            if status == "rejected" or (status == "published" and quarantined):
                db.execute(
                    f"INSERT INTO quarantines ({_QUARANTINE_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, NULL, NULL, NULL) "
                    "ON CONFLICT (entry_id) DO UPDATE SET feed=excluded.feed, night=excluded.night, "
                    "name=excluded.name, sha256=excluded.sha256, kind=excluded.kind, rows=excluded.rows, "
                    "reason=excluded.reason, status='open', opened_at=excluded.opened_at, closed_at=NULL, "
                    "closed_by=NULL, note=NULL",
                    (
                        entry_id,
                        feed,
                        night,
                        name,
                        sha256,
                        "file" if status == "rejected" else "rows",
                        quarantined or 0,
                        reason,
                        time.time(),
                    ),
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

    # --- quarantine ------------------------------------------------------------------------
    def quarantines(
        self, feed: str | None = None, night: str | None = None, status: str | None = None
    ) -> list[QuarantineEntry]:
        where, args = ["1=1"], []
        for column, value in (("feed", feed), ("night", night), ("status", status)):
            if value is not None:
                where.append(f"{column}=?")
                args.append(value)
        with self._connect() as db:
            rows = db.execute(
                f"SELECT {_QUARANTINE_COLUMNS} FROM quarantines WHERE {' AND '.join(where)} "
                "ORDER BY night, name, entry_id",
                args,
            ).fetchall()
        return [QuarantineEntry(*r) for r in rows]

    def expire_quarantine(self, entry_id: int, note: str) -> None:
        with self._connect() as db:
            db.execute(
                "UPDATE quarantines SET status='expired', closed_at=?, note=? WHERE entry_id=? AND status<>'expired'",
                (time.time(), note, entry_id),
            )

    # --- alerts ----------------------------------------------------------------------------
    def claim_alert(self, feed: str, night: str, kind: str, key: str = "", run_id: str | None = None) -> bool:
        """True exactly once per (feed, night, kind, key): the caller that gets True sends the alert.

        The claim is a row insert, so two tasks (or a retry and a re-run) racing for the same
        alert cannot both win; a sender that fails gives its claim back with ``release_alert``.
        """
        with self._connect() as db:
            cur = db.execute(
                "INSERT INTO alerts (feed, night, kind, key, claimed_at, run_id) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (feed, night, kind, key, time.time(), run_id),
            )
            return cur.rowcount == 1

    def release_alert(self, feed: str, night: str, kind: str, key: str = "") -> None:
        with self._connect() as db:
            db.execute("DELETE FROM alerts WHERE feed=? AND night=? AND kind=? AND key=?", (feed, night, kind, key))

    def alerts(self, feed: str | None = None) -> list[tuple[str, str, str, str]]:
        with self._connect() as db:
            where, args = ("feed=?", (feed,)) if feed else ("1=1", ())
            rows = db.execute(
                f"SELECT feed, night, kind, key FROM alerts WHERE {where} ORDER BY claimed_at", args
            ).fetchall()
        return [tuple(r) for r in rows]

    # --- quiet-period observations ---------------------------------------------------------
    def observations(self, feed: str) -> dict[str, tuple[int, int, float]]:
        with self._connect() as db:
            rows = db.execute("SELECT name, size, mtime, first_seen FROM observations WHERE feed=?", (feed,)).fetchall()
        return {name: (size, mtime, first_seen) for name, size, mtime, first_seen in rows}

    def save_observations(self, feed: str, observed: dict[str, tuple[int, int, float]]) -> None:
        with self._connect() as db, db.transaction():
            db.execute("DELETE FROM observations WHERE feed=?", (feed,))
            db.executemany(
                "INSERT INTO observations (feed, name, size, mtime, first_seen) VALUES (?, ?, ?, ?, ?)",
                [(feed, n, s, m, f) for n, (s, m, f) in observed.items()],
            )
