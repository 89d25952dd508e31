"""Erasure and withdrawals that reach the recipients, not only the hub.

When a partner withdraws records (an explicit list of its incident keys) or a person's data must
be erased (the operator gives the personnummer; the hub computes its pseudonym), the hub:

1. works out the hub identifiers concerned (a personnummer → the person's hub pseudonym in every
   person domain; partner keys → published incident ids through ``private/incident_ids``);
2. removes those rows from its own published zone (a withdrawn incident with its people; an
   erased person's involvement rows) and from every delivery in every recipient's outbox;
3. computes what each recipient already holds in its own pseudonym domain (the recipient's
   ``incident_id`` and ``person_pseudonym`` values, ``recipient_pseudonyms``) and writes a signed
   tombstone list to that recipient's outbox (``tombstones/<id>.json`` + ``.sig``, namespace
   ``samverkan-delivery``): the ids to delete and the deliveries they were in; a push recipient
   gets it with its next delivery run;
4. records one ``erasure`` event per recipient concerned (and one for the hub's published zone)
   in the disclosure register, with the rewritten files' hashes and the tombstone's.

Retention expiry writes a tombstone as well (the whole delivery, by id), and so does a night
delivered again without rows the recipient had (a re-sent or corrected partner file:
``tombstone_superseded``, called by the delivery), so every recipient learns of every deletion
the same way. A tombstone holds recipient-domain ids only, never a hub
value or a personnummer.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from samverkan.core.fsutil import fsync_dir
from samverkan.core.settings import Paths
from samverkan.sharing.agreements import Agreement
from samverkan.sharing.attestation import write_receipt
from samverkan.sharing.outbox import (
    FILE_MODE,
    MANIFEST,
    PUBLISHED_DATASETS,
    Delivery,
    read_manifest,
    recipient_outbox,
    sha256_file,
    sign_manifest,
)
from samverkan.sharing.recipient_pseudonyms import RecipientPseudonyms
from samverkan.sharing.register import Event, Register
from samverkan.sharing.signing import DELIVERY_NAMESPACE, delivery_key, sign_file

ERASURE = "erasure"
TOMBSTONES = "tombstones"
HUB = "hub"  # the register's recipient for the hub's own published zone


@dataclass
class Target:
    """Hub identifiers to remove: whole incidents (with their people), and persons."""

    reason: str
    incidents: set[str] = field(default_factory=set)
    persons: set[str] = field(default_factory=set)
    personnummer: str | None = field(default=None, repr=False)  # canonical; for the hub's raw copies only

    def mask(self, table: pa.Table, rekey: RecipientPseudonyms | None = None) -> pa.Array:
        """Rows of ``table`` that go (ids re-keyed first when the table is a recipient's)."""
        go = pa.array([False] * table.num_rows, pa.bool_())
        for column, values in (("incident_id", self.incidents), ("person_pseudonym", self.persons)):
            if column in table.column_names and values:
                ids = sorted(rekey.one(v) for v in values) if rekey else sorted(values)
                go = pc.or_(
                    go, pc.fill_null(pc.is_in(table.column(column), value_set=pa.array(ids, pa.string())), False)
                )
        return go


# --- what to remove ------------------------------------------------------------------------------


def person_target(personnummer_value: str, pseudonymiser, reason: str, today: date | None = None) -> Target:
    """A personnummer in any written form → the person's hub pseudonym in every person domain."""
    from samverkan.core.contracts import load_contracts
    from samverkan.privacy.personnummer import VALID, normalise

    parsed = normalise(personnummer_value, today or date.today())
    if parsed.status != VALID:
        raise ValueError(f"not a valid personnummer ({parsed.status})")
    domains = {
        c.personal["domain"]
        for contract in load_contracts().values()
        for c in _columns(contract.columns)
        if c.type == "personnummer" and c.handling == "pseudonymise"
    }
    return Target(
        reason,
        persons={pseudonymiser.pseudonym(d, parsed.canonical) for d in sorted(domains)},
        personnummer=parsed.canonical,
    )


def _columns(columns) -> list:
    return [c for col in columns for c in (col, *_columns(col.fields))]


def withdrawal_target(paths: Paths, feed: str, partner_keys: list[str], reason: str) -> Target:
    """A partner's own incident keys → the published incident ids (through the private map)."""
    files = sorted(paths.incident_ids.glob(f"night=*/source={feed}/*.parquet"))
    if not files:
        return Target(reason)
    table = pa.concat_tables([pq.read_table(f, columns=["incident_id", "partner_incident_id"]) for f in files])
    keep = pc.is_in(table.column("partner_incident_id"), value_set=pa.array(sorted(set(partner_keys)), pa.string()))
    return Target(reason, incidents=set(table.filter(keep).column("incident_id").to_pylist()))


# --- removing ------------------------------------------------------------------------------------


def _rewrite(path: Path, go: pa.Array) -> int:
    """Rewrite one Parquet file without the rows in ``go`` (temporary file, then rename); returns
    how many rows went."""
    removed = pc.sum(go.cast(pa.int64())).as_py() or 0
    if removed:
        table = pq.read_table(path)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        pq.write_table(table.filter(pc.invert(go)), tmp, compression="zstd")
        os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    return removed


_WRITTEN_RE = re.compile(rb"(?<![0-9])(?:[0-9]{2})?[0-9]{6}[-+]?[0-9]{4}(?![0-9])")


def _mentions(data: bytes, canonical: str) -> bool:
    """Whether raw bytes hold the personnummer written with or without century and separator.
    A short form may belong to another person a century apart: for erasure, deleting a raw copy
    too many is the safe side."""
    short = canonical[2:].encode()
    for match in _WRITTEN_RE.finditer(data):
        digits = match.group().replace(b"-", b"").replace(b"+", b"")
        if digits in (canonical.encode(), short):
            return True
    return False


def erase_private(paths: Paths, target: Target) -> dict[str, int]:
    """The hub's raw copies that hold the person: landed and quarantined partner files go whole
    (their records are published already; the ledger keeps their hashes), quarantined rows that
    mention them are removed. Counts only, no values."""
    if target.personnummer is None:
        return {}
    files = [
        f
        for d in (paths.private / "landing", paths.private / "quarantine")
        for f in sorted(d.rglob("*"))
        if f.is_file() and f.suffix != ".parquet" and _mentions(f.read_bytes(), target.personnummer)
    ]
    for f in files:
        f.unlink()
    rows = 0
    for f in sorted((paths.private / "quarantine").rglob("*.parquet")):
        table = pq.read_table(f)
        texts = [
            pc.cast(table.column(c), pa.string())
            for c in table.column_names
            if pa.types.is_string(table.schema.field(c).type) or pa.types.is_large_string(table.schema.field(c).type)
        ]
        go = pa.array(
            [
                any(_mentions((v or "").encode(), target.personnummer) for v in row)
                for row in zip(*(t.to_pylist() for t in texts))
            ]
            if texts
            else [False] * table.num_rows,
            pa.bool_(),
        )
        rows += _rewrite(f, go)
    return {"raw_files": len(files), "quarantined_rows": rows}


def erase_published(paths: Paths, target: Target) -> dict[str, int]:
    """Rows removed from the published zone per dataset; a withdrawn incident takes its people."""
    removed = {}
    for dataset in PUBLISHED_DATASETS:
        removed[dataset] = sum(
            _rewrite(f, target.mask(pq.read_table(f))) for f in sorted(paths.dataset(dataset).rglob("*.parquet"))
        )
    if target.incidents:
        for f in sorted(paths.incident_ids.rglob("*.parquet")):
            _rewrite(f, target.mask(pq.read_table(f, columns=["incident_id"])))
    return removed


def erase_delivery(directory: Path, target: Target, rekey: RecipientPseudonyms) -> dict[str, Any] | None:
    """Remove the rows from one delivery in an outbox and re-sign its manifest; what the recipient
    held (its ids, per dataset) or None when the delivery had nothing of the target."""
    manifest = read_manifest(directory)
    if manifest is None:
        return None
    held: dict[str, list[dict[str, str]]] = {}
    removed: dict[str, int] = {}
    for name, spec in manifest["datasets"].items():
        path = directory / str(spec.get("file"))
        if not path.is_file() or spec.get("rows") is None:
            continue
        table = pq.read_table(path)
        go = target.mask(table, rekey)
        if not pc.any(go).as_py():
            continue
        gone = table.filter(go)
        held[name] = _rows(gone)
        removed[name] = _rewrite(path, go)
        spec["rows"] -= removed[name]
        entry = next(f for f in manifest["files"] if f["name"] == path.name)
        entry.update(rows=spec["rows"], bytes=path.stat().st_size, sha256=sha256_file(path))
    if not held:
        return None
    manifest["erasures"] = manifest.get("erasures", []) + [{"reason": target.reason, "datasets": sorted(held)}]
    text = json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    (directory / MANIFEST).write_text(text, encoding="utf-8")
    sign_manifest(directory, delivery_key())
    return {
        "delivery_id": manifest["delivery_id"],
        "held": held,
        "files": manifest["files"],
        "rows_removed": removed,
        "manifest_sha256": sha256_file(directory / MANIFEST),
        "directory": directory,
        "manifest": manifest,
    }


KEY_COLUMNS = ("incident_id", "person_pseudonym")  # what identifies a delivered row to its recipient


def _rows(table: pa.Table) -> list[dict[str, str]]:
    """Rows by their key columns, distinct and sorted: what a tombstone tells the recipient to delete."""
    keys = [c for c in KEY_COLUMNS if c in table.column_names]
    distinct = {tuple(r[c] for c in keys) for r in table.select(keys).to_pylist()}
    return [dict(zip(keys, values)) for values in sorted(distinct, key=lambda v: tuple(str(x) for x in v))]


def held_rows(directory: Path) -> dict[str, list[dict[str, str]]]:
    """A delivery's row datasets by key (empty when there is no delivery)."""
    manifest = read_manifest(directory)
    out = {}
    for name in ("incidents", "involvements"):
        spec = (manifest or {}).get("datasets", {}).get(name)
        if spec and (directory / spec["file"]).is_file():
            out[name] = _rows(pq.read_table(directory / spec["file"]))
    return out


def tombstone_superseded(
    paths: Paths,
    agreement: Agreement,
    before: dict[str, list[dict[str, str]]],
    directory: Path,
    register: Register,
    run_id: str | None,
) -> Path | None:
    """A night delivered again (a re-sent or corrected partner file): rows the recipient got
    before and no longer gets are withdrawn, and it is told so, like any erasure."""
    after = held_rows(directory)
    gone = {name: [r for r in rows if r not in after.get(name, [])] for name, rows in before.items()}
    gone = {name: rows for name, rows in gone.items() if rows}
    if not gone:
        return None
    manifest = read_manifest(directory) or {}
    reason = "rows no longer in the night's delivery: withdrawn or corrected by the partner"
    tombstone = write_tombstone(
        paths,
        agreement.id,
        {
            "reason": reason,
            "action": "delete these rows from your copies",
            "deliveries": [{"delivery_id": manifest.get("delivery_id", directory.name), "delete": gone}],
        },
    )
    _record(
        register,
        agreement.id,
        agreement,
        Target(reason),
        [],
        tombstone,
        run_id,
        manifest.get("delivery_id", directory.name),
        sha256_file(directory / MANIFEST),
    )
    return tombstone


def write_tombstone(paths: Paths, recipient: str, body: dict[str, Any]) -> Path:
    """``outbox/<recipient>/tombstones/<time>-<id>.json``, signed by the hub when it has a key."""
    directory = recipient_outbox(paths, recipient) / TOMBSTONES
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)
    exact = datetime.now(UTC)
    now = exact.replace(microsecond=0)
    path = directory / f"{exact:%Y%m%dT%H%M%S.%fZ}-{uuid.uuid4().hex[:8]}.json"  # names sort in time order
    path.write_text(
        json.dumps(
            {"recipient": recipient, "created_at_utc": now.isoformat(), **body},
            indent=2,
            sort_keys=True,
            ensure_ascii=False,
        )
        + "\n",
        encoding="utf-8",
    )
    path.chmod(FILE_MODE)
    key = delivery_key()
    if key is not None:
        sign_file(key, path, DELIVERY_NAMESPACE, FILE_MODE)
    return path


def _record(
    register: Register,
    recipient: str,
    agreement: Agreement | None,
    target: Target,
    files: list[dict],
    tombstone: Path | None,
    run_id: str | None,
    delivery_id: str,
    manifest_sha256: str | None = None,
) -> dict[str, Any]:
    """One event per delivery rewritten (naming its new manifest, which the recipient's tombstone
    tells it to expect) and one for the hub's published zone."""
    today = date.today()
    tomb = f"; tombstone {tombstone.name} sha256 {sha256_file(tombstone)}" if tombstone else ""
    return register.append(
        Event(
            event=ERASURE,
            recipient=recipient,
            agreement_id=agreement.id if agreement else HUB,
            agreement_version=agreement.version if agreement else 0,
            delivery_id=delivery_id,
            period_start=today,
            period_end=today,
            mode=agreement.mode if agreement else HUB,
            destination=f"outbox:{recipient}/{TOMBSTONES}" if agreement else "published",
            files=files,
            manifest_sha256=manifest_sha256,
            run_id=run_id,
            reason=f"{target.reason}{tomb}",
        )
    )


def erase(
    paths: Paths,
    target: Target,
    agreements: dict[str, Agreement],
    sharing_key: bytes,
    register: Register,
    run_id: str | None = None,
) -> dict[str, Any]:
    """The whole erasure: the hub's zone, every outbox, a tombstone per recipient concerned, the register."""
    erasure_id = uuid.uuid4().hex[:12]
    summary: dict[str, Any] = {
        "erasure_id": erasure_id,
        "published": erase_published(paths, target),
        "private": erase_private(paths, target),
        "recipients": {},
    }
    _record(
        register,
        HUB,
        None,
        target,
        [{"name": d, "dataset": d, "rows": n} for d, n in summary["published"].items()],
        None,
        run_id,
        erasure_id,
    )
    for agreement in agreements.values():
        outcome = _erase_recipient(paths, target, agreement, sharing_key, register, run_id, erasure_id)
        if outcome:
            summary["recipients"][agreement.id] = outcome
    return summary


def _erase_recipient(
    paths: Paths,
    target: Target,
    agreement: Agreement,
    sharing_key: bytes,
    register: Register,
    run_id: str | None,
    erasure_id: str,
) -> dict[str, Any] | None:
    deliveries = []
    for directory in sorted(p for p in recipient_outbox(paths, agreement.id).glob("[0-9]*") if p.is_dir()):
        manifest = read_manifest(directory)
        if manifest is None:
            continue
        epoch = int(manifest["pseudonym_domain"].rsplit("epoch", 1)[1])
        done = erase_delivery(directory, target, RecipientPseudonyms(sharing_key, agreement.id, epoch))
        if done:
            deliveries.append(done)
    if not deliveries:
        return None
    tombstone = write_tombstone(
        paths,
        agreement.id,
        {
            "erasure_id": erasure_id,
            "reason": target.reason,
            "action": "delete these rows from your copies",
            "deliveries": [{"delivery_id": d["delivery_id"], "delete": d["held"]} for d in deliveries],
        },
    )
    events = []
    for d in deliveries:
        events.append(
            _record(
                register,
                agreement.id,
                agreement,
                target,
                d["files"],
                tombstone,
                run_id,
                d["delivery_id"],
                d["manifest_sha256"],
            )
        )
        night = date.fromisoformat(d["manifest"]["period"]["end"])
        write_receipt(register, Delivery(agreement.id, night, d["directory"], d["manifest"]), events[-1])
    rows = {d["delivery_id"]: d["rows_removed"] for d in deliveries}
    return {"tombstone": str(tombstone), "register_seqs": [e["seq"] for e in events], "rows_removed": rows}


def tombstone_for_expired(paths: Paths, agreement: Agreement, manifest: dict[str, Any], reason: str) -> Path:
    """Retention: the recipient deletes the whole delivery (its files by name and hash)."""
    return write_tombstone(
        paths,
        agreement.id,
        {
            "reason": reason,
            "action": "delete this whole delivery",
            "deliveries": [
                {
                    "delivery_id": manifest["delivery_id"],
                    "files": [{"name": f["name"], "sha256": f["sha256"]} for f in manifest["files"]],
                }
            ],
        },
    )


def push_tombstones(paths: Paths, agreement: Agreement, connector) -> list[str]:
    """Upload the tombstones a push recipient has not been sent yet (with each delivery run),
    to ``<directory>/tombstones/``; a ``.pushed`` marker beside each one sent."""
    import posixpath

    sent = []
    directory = recipient_outbox(paths, agreement.id) / TOMBSTONES
    target = posixpath.join(agreement.delivery["directory"], TOMBSTONES)
    for tombstone in sorted(directory.glob("*.json")):
        marker = tombstone.with_name(tombstone.name + ".pushed")
        if marker.exists():
            continue
        connector.ensure_dir(target)
        for path in (tombstone, tombstone.with_name(tombstone.name + ".sig")):
            if path.exists():
                connector.upload(path, posixpath.join(target, path.name))
        marker.touch()
        sent.append(tombstone.name)
    return sent
