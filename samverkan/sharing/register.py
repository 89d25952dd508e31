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

The chain alone is unkeyed: whoever can write the files can rewrite an event and recompute every
hash after it, or delete the last event. So each event is also signed with an Ed25519 key
(OpenSSH's ``ssh-keygen -Y sign``, namespace ``samverkan-register``) that appending does not need:
the signer may be another process or account, and a recipient verifies with ``ssh-keygen -Y
verify`` and an allowed-signers line, no new tools. ``verify`` checks chain and signatures. The
end of the register is held outside the hub: every delivery's manifest names the head before it
and its receipt the delivery's own signed event (``verify_anchor`` checks one against the register).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from samverkan.core.fsutil import fsync_dir
from samverkan.sharing.signing import REGISTER_NAMESPACE, SigningError, sign_text, text_verifies

DELIVERY = "delivery"
RETENTION_DELETION = "retention_deletion"

FILE_TYPE = pa.struct(
    [
        ("name", pa.string()),
        ("dataset", pa.string()),
        ("rows", pa.int64()),
        ("bytes", pa.int64()),
        ("sha256", pa.string()),
    ]
)
# k-anonymity of a row-level delivery (see samverkan.sharing.disclosure_control): figures only.
K_ANONYMITY_TYPE = pa.struct(
    [
        ("k", pa.int64()),
        ("required", pa.int64()),
        ("rows", pa.int64()),
        ("rows_below_k", pa.int64()),
        ("groups", pa.int64()),
        ("quasi_identifiers", pa.list_(pa.string())),
        ("time", pa.string()),
        ("place", pa.string()),
        ("exception", pa.string()),
        ("rows_suppressed", pa.int64()),
    ]
)
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
        ("k_anonymity", K_ANONYMITY_TYPE),
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
    k_anonymity: dict[str, Any] | None = None

    def record(self) -> dict[str, Any]:
        datasets = self.datasets or sorted({f["dataset"] for f in self.files if f.get("dataset")})
        return {
            "event_id": uuid.uuid4().hex,
            "event": self.event,
            "recipient": self.recipient,
            "agreement_id": self.agreement_id,
            "agreement_version": self.agreement_version,
            "delivery_id": self.delivery_id,
            "period_start": self.period_start,
            "period_end": self.period_end,
            "mode": self.mode,
            "destination": self.destination,
            "datasets": datasets,
            "rows_total": sum(int(f.get("rows") or 0) for f in self.files if f.get("dataset")),
            "files": [{k: f.get(k) for k in ("name", "dataset", "rows", "bytes", "sha256")} for f in self.files],
            "manifest_sha256": self.manifest_sha256,
            "run_id": self.run_id,
            "reason": self.reason,
            "k_anonymity": (
                {f.name: self.k_anonymity.get(f.name) for f in K_ANONYMITY_TYPE} if self.k_anonymity else None
            ),
        }


def _event_hash(record: dict[str, Any]) -> str:
    """SHA-256 over the event's canonical JSON (all fields but its own hash)."""
    body = {k: v for k, v in record.items() if k != "event_sha256"}
    text = json.dumps(body, sort_keys=True, default=_plain, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _plain(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def signed_message(seq: int, event_sha256: str) -> str:
    """What is signed for an event: its number and hash (which covers every field and the chain)."""
    return f"{REGISTER_NAMESPACE} event {seq} sha256 {event_sha256}\n"


def write_allowed_signers(path: Path, public_key_line: str) -> Path:
    """The file ``ssh-keygen -Y verify -f`` takes: who may sign register events."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'{REGISTER_NAMESPACE} namespaces="{REGISTER_NAMESPACE}" {public_key_line}\n', encoding="ascii")
    return path


def event_signature_verifies(allowed_signers: Path, message: str, signature: str) -> bool:
    return text_verifies(allowed_signers, message, signature, REGISTER_NAMESPACE, REGISTER_NAMESPACE)


class Register:
    """The register at ``root`` (``$SAMVERKAN_DATA_ROOT/register``); with ``signing_key`` (an
    OpenSSH Ed25519 private key file) each appended event is signed as well."""

    def __init__(self, root: Path, signing_key: Path | str | None = None):
        self.root = Path(root)
        self.events_dir = self.root / "disclosures"
        self.signatures_dir = self.root / "signatures"
        self.signing_key = Path(signing_key) if signing_key else None

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
            record["recorded_at_utc"] = (now or datetime.now(UTC)).replace(microsecond=0)
            record["prev_event_sha256"] = previous["event_sha256"] if previous else GENESIS
            record["event_sha256"] = _event_hash(record)
            self._write(record)
            if self.signing_key is not None:
                self._sign(record, self.signing_key)
        return record

    # --- signatures and anchors ------------------------------------------------------------
    def signature_file(self, seq: int) -> Path:
        return self.signatures_dir / f"{seq:08d}.sig"

    def signature(self, seq: int) -> str | None:
        try:
            return self.signature_file(seq).read_text(encoding="ascii")
        except FileNotFoundError:
            return None

    def _sign(self, record: dict[str, Any], key: Path) -> Path:
        path = self.signature_file(record["seq"])
        self.signatures_dir.mkdir(parents=True, exist_ok=True)
        try:
            signature = sign_text(key, signed_message(record["seq"], record["event_sha256"]), REGISTER_NAMESPACE)
        except SigningError as exc:
            raise RegisterError(f"register: {exc}") from exc
        path.write_text(signature, encoding="ascii")
        path.chmod(0o444)
        return path

    def sign_pending(self) -> int:
        """Sign events that have no signature yet (e.g. appended while the signer was away)."""
        key = self.signing_key
        if key is None:
            raise RegisterError("register: no signing key")
        with self._locked():
            pending = [r for r in self.events() if not self.signature_file(r["seq"]).exists()]
            for record in pending:
                self._sign(record, key)
        return len(pending)

    def head(self) -> dict[str, Any]:
        """The last event's number and hash (0 and the genesis hash for an empty register)."""
        files = self.event_files()
        if not files:
            return {"seq": 0, "event_sha256": GENESIS}
        last = pq.read_table(files[-1]).to_pylist()[0]
        return {"seq": last["seq"], "event_sha256": last["event_sha256"]}

    def verify(self, allowed_signers: Path) -> int:
        """The chain, and every event's signature by a key in ``allowed_signers``."""
        count = self.verify_chain()
        for record in self.events():
            signature = self.signature(record["seq"])
            if signature is None:
                raise RegisterError(f"register: event {record['seq']}: no signature")
            if not event_signature_verifies(
                allowed_signers, signed_message(record["seq"], record["event_sha256"]), signature
            ):
                raise RegisterError(f"register: event {record['seq']}: signature does not verify")
        return count

    def verify_anchor(self, anchor: dict[str, Any]) -> None:
        """A head a recipient holds (manifest ``register_head`` or receipt ``register_event``) is
        still in the register, unchanged: deleting or rewriting the end cannot pass."""
        self.verify_chain()
        seq, expected = int(anchor["seq"]), anchor["event_sha256"]
        if seq == 0:
            return
        found = {r["seq"]: r["event_sha256"] for r in self.events()}
        if seq not in found:
            raise RegisterError(f"register: event {seq} (anchored by a recipient) is missing")
        if found[seq] != expected:
            raise RegisterError(f"register: event {seq} differs from the hash a recipient holds")

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
