"""The disclosure register: what the hub handed to whom, when, under which agreement, and what
it deleted again.

The municipality must be able to answer "what did we disclose to the bus operator in November,
under which version of the agreement, and can you prove which files?" So every delivery and
every retention deletion appends one event: recipient, agreement id and version, datasets,
period, row counts, the SHA-256 and size of every file, the time and the Airflow run id.

Append-only by construction: each event is its own Parquet file, numbered in sequence, created
with a hard link that fails rather than overwrite, and made read-only. Each event also carries
the SHA-256 of the previous one, so a removed or edited event breaks the chain that
``verify_chain`` checks. The directory is an ordinary Parquet dataset: DuckDB, pandas or Spark
read it directly (``connect`` gives a DuckDB view). No personal data goes in: only names of
datasets and files, counts and hashes.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from samverkan.core.fsutil import fsync_dir

DELIVERY = "delivery"
RETENTION_DELETION = "retention_deletion"

FILE_TYPE = pa.struct([("name", pa.string()), ("dataset", pa.string()), ("rows", pa.int64()),
                       ("bytes", pa.int64()), ("sha256", pa.string())])
EVENT_SCHEMA = pa.schema(
    [
        ("seq", pa.int64()),
        ("event_id", pa.string()),
        ("event", pa.string()),
        ("recorded_at_utc", pa.timestamp("us", tz="UTC")),
        ("recipient", pa.string()),
        ("agreement_id", pa.string()),
        ("agreement_version", pa.int32()),
        ("delivery_id", pa.string()),
        ("period_start", pa.date32()),
        ("period_end", pa.date32()),
        ("mode", pa.string()),
        ("destination", pa.string()),
        ("datasets", pa.list_(pa.string())),
        ("rows_total", pa.int64()),
        ("files", pa.list_(FILE_TYPE)),
        ("manifest_sha256", pa.string()),
        ("run_id", pa.string()),
        ("reason", pa.string()),
        ("prev_event_sha256", pa.string()),
        ("event_sha256", pa.string()),
    ]
)
GENESIS = "0" * 64


class RegisterError(RuntimeError):
    """The register's chain is broken: an event was removed, edited or added out of order."""


@dataclass
class Event:
    """One register entry as the caller describes it; sequence, time and hashes are added on append."""

    event: str
    recipient: str
    agreement_id: str
    agreement_version: int
    delivery_id: str
    period_start: date
    period_end: date
    mode: str
    destination: str
    files: list[dict[str, Any]]
    manifest_sha256: str | None
    run_id: str | None
    reason: str | None = None
    datasets: list[str] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        datasets = self.datasets or sorted({f["dataset"] for f in self.files if f.get("dataset")})
        return {
            "event_id": uuid.uuid4().hex, "event": self.event, "recipient": self.recipient,
            "agreement_id": self.agreement_id, "agreement_version": self.agreement_version,
            "delivery_id": self.delivery_id, "period_start": self.period_start, "period_end": self.period_end,
            "mode": self.mode, "destination": self.destination, "datasets": datasets,
            "rows_total": sum(int(f.get("rows") or 0) for f in self.files if f.get("dataset")),
            "files": [{k: f.get(k) for k in ("name", "dataset", "rows", "bytes", "sha256")} for f in self.files],
            "manifest_sha256": self.manifest_sha256, "run_id": self.run_id, "reason": self.reason,
        }


def _event_hash(record: dict[str, Any]) -> str:
    """SHA-256 over the event's canonical JSON (all fields but its own hash)."""
    body = {k: v for k, v in record.items() if k != "event_sha256"}
    text = json.dumps(body, sort_keys=True, default=_plain, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _plain(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(type(value).__name__)


class Register:
    """The register at ``root`` (``$SAMVERKAN_DATA_ROOT/register``)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.events_dir = self.root / "disclosures"

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Delivery DAGs of several recipients run at once; the sequence must stay one line."""
        self.events_dir.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def event_files(self) -> list[Path]:
        return sorted(self.events_dir.glob("*.parquet"))

    def append(self, event: Event, *, now: datetime | None = None) -> dict[str, Any]:
        with self._locked():
            files = self.event_files()
            previous = pq.read_table(files[-1]).to_pylist()[0] if files else None
            record = event.record()
            record["seq"] = (previous["seq"] + 1) if previous else 1
            record["recorded_at_utc"] = (now or datetime.now(timezone.utc)).replace(microsecond=0)
            record["prev_event_sha256"] = previous["event_sha256"] if previous else GENESIS
            record["event_sha256"] = _event_hash(record)
            self._write(record)
        return record

    def _write(self, record: dict[str, Any]) -> Path:
        final = self.events_dir / f"{record['seq']:08d}-{record['event']}.parquet"
        tmp = self.events_dir / f".{record['event_id']}.part"
        pq.write_table(pa.Table.from_pylist([record], schema=EVENT_SCHEMA), tmp, compression="zstd")
        try:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            os.link(tmp, final)  # fails if the name exists: an event is never overwritten
        finally:
            tmp.unlink(missing_ok=True)
        final.chmod(0o444)
        fsync_dir(self.events_dir)
        return final

    def events(self) -> list[dict[str, Any]]:
        return [row for f in self.event_files() for row in pq.read_table(f).to_pylist()]

    def verify_chain(self) -> int:
        """The number of events, or RegisterError naming the first one that does not fit."""
        previous_hash, expected_seq = GENESIS, 1
        for record in self.events():
            if record["seq"] != expected_seq:
                raise RegisterError(f"register: event {expected_seq} is missing (found {record['seq']})")
            if record["prev_event_sha256"] != previous_hash:
                raise RegisterError(f"register: event {record['seq']} does not follow event {expected_seq - 1}")
            if _event_hash(record) != record["event_sha256"]:
                raise RegisterError(f"register: event {record['seq']} was altered after it was written")
            previous_hash, expected_seq = record["event_sha256"], expected_seq + 1
        return expected_seq - 1

    def connect(self):
        """DuckDB with views ``disclosures`` (one row per event) and ``disclosed_files``."""
        import duckdb

        con = duckdb.connect()
        glob = str(self.events_dir / "*.parquet").replace("'", "''")
        if self.event_files():
            con.execute(f"CREATE VIEW disclosures AS SELECT * FROM read_parquet('{glob}') ORDER BY seq")
        else:
            empty = pa.Table.from_pylist([], schema=EVENT_SCHEMA)
            con.register("disclosures", empty)
        con.execute("""CREATE VIEW disclosed_files AS
                       SELECT seq, event, recipient, agreement_id, agreement_version, delivery_id, run_id,
                              recorded_at_utc, f.name, f.dataset, f.rows, f.bytes, f.sha256
                       FROM disclosures, unnest(files) AS t(f)""")
        return con
