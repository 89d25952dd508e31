"""Building one recipient's delivery for one night: exactly what its agreement allows.

A delivery is a directory ``$SAMVERKAN_DATA_ROOT/outbox/<recipient>/<night>/`` with one Parquet
file per granted dataset, ``DATA_DICTIONARY.md`` (generated from the common model and the
agreement) and ``manifest.json`` (agreement id and version, period, schemas, row counts and the
SHA-256 of every file). It is assembled in a staging directory on the same filesystem, synced,
and renamed into place, so a recipient (or the pull service) sees a whole delivery or none.

The selection order is the agreement's: the scope (sources, then the ``where`` condition) decides
which incidents the recipient may learn about at all; each dataset then keeps its granted
columns and rows; involvements follow the incidents delivered; aggregates are computed from the
scoped incidents and suppressed; every identifier is re-keyed into the recipient's domain last.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from samverkan.core.fsutil import SHARED_DIR_MODE, fsync_dir, make_dirs
from samverkan.core.settings import Paths
from samverkan.ingest.model import SCHEMAS
from samverkan.sharing import aggregates, disclosure_control
from samverkan.sharing.agreements import Agreement, DatasetGrant
from samverkan.sharing.dictionary import data_dictionary
from samverkan.sharing.recipient_pseudonyms import RecipientPseudonyms
from samverkan.sharing.signing import DELIVERY_NAMESPACE, delivery_key, sign_file

MANIFEST = "manifest.json"
MANIFEST_SIGNATURE = MANIFEST + ".sig"  # the hub's signature (sign_manifest; checked by samverkan.sharing.attestation)
RECEIPT = "receipt.json"  # the delivery's own signed register event (samverkan.sharing.attestation)
DICTIONARY = "DATA_DICTIONARY.md"
MANIFEST_VERSION = 1
PUBLISHED_DATASETS = tuple(SCHEMAS)  # incidents, involvements, observations: what deliveries are built from
# outbox/ itself (and its staging) is for the hub and its group only, so no other local user gets
# past it; below it, a recipient's tree is read by the recipient's account inside its chroot (the
# pull service), to which the files are "other": readable there, writable by the hub only.
ROOT_MODE = SHARED_DIR_MODE
DIR_MODE, FILE_MODE = 0o755, 0o644


# --- where things are ------------------------------------------------------------------------


def outbox_root(paths: Paths) -> Path:
    return paths.outbox


def recipient_outbox(paths: Paths, recipient: str) -> Path:
    return outbox_root(paths) / recipient


def outbox_staging(paths: Paths) -> Path:
    """Beside the recipients' outboxes (same filesystem, so the final step is a rename) but
    outside every chroot, so no recipient ever sees a half-built delivery."""
    return outbox_root(paths) / ".staging"


def delivery_dir(paths: Paths, recipient: str, night: date) -> Path:
    return recipient_outbox(paths, recipient) / night.isoformat()


def read_manifest(directory: Path) -> dict[str, Any] | None:
    try:
        return json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


# --- reading the published data ----------------------------------------------------------------


def published_files(paths: Paths, dataset: str, night: date, sources: tuple[str, ...]) -> list[Path]:
    files = []
    for source in sorted(sources):
        files += sorted((paths.dataset(dataset) / f"night={night.isoformat()}" / f"source={source}").glob("*.parquet"))
    return files


def read_published(paths: Paths, dataset: str, night: date, sources: tuple[str, ...]) -> pa.Table:
    schema = SCHEMAS[dataset]
    tables = [pq.read_table(f, schema=schema) for f in published_files(paths, dataset, night, sources)]
    return pa.concat_tables(tables) if tables else schema.empty_table()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def source_fingerprint(paths: Paths, night: date, sources: tuple[str, ...]) -> tuple[str, list[dict[str, str]]]:
    """What a delivery was built from: the published files and their hashes. A changed or late
    file changes the fingerprint, which is how the delivery DAG knows a night needs re-delivery."""
    inputs = []
    for dataset in PUBLISHED_DATASETS:
        for f in published_files(paths, dataset, night, sources):
            inputs.append({"path": str(f.relative_to(paths.published)), "sha256": sha256_file(f)})
    text = json.dumps(inputs, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest(), inputs


# --- row conditions -----------------------------------------------------------------------------


def condition_mask(table: pa.Table, cond: dict[str, Any]) -> pa.Array:
    """An agreement condition as a boolean mask; a null value never matches (unknown is not in)."""
    if "any_of" in cond:
        masks = [condition_mask(table, c) for c in cond["any_of"]]
        return _fold(masks, pc.or_)
    if "all_of" in cond:
        return _fold([condition_mask(table, c) for c in cond["all_of"]], pc.and_)
    if "not" in cond:
        return pc.invert(condition_mask(table, cond["not"]))
    column = table.column(cond["column"])
    if "in" in cond:
        values = pa.array(cond["in"]).cast(column.type) if len(cond["in"]) else pa.array([], column.type)
        mask = pc.is_in(column, value_set=values)
    elif "starts_with" in cond:
        mask = pc.starts_with(column, cond["starts_with"])
    else:
        mask = pc.is_null(column) if cond["is_null"] else pc.is_valid(column)
    return pc.fill_null(mask, False)


def _fold(masks: list, op) -> pa.Array:
    result = masks[0]
    for m in masks[1:]:
        result = op(result, m)
    return result


def filtered(table: pa.Table, cond: dict[str, Any] | None) -> pa.Table:
    return table if cond is None or table.num_rows == 0 else table.filter(condition_mask(table, cond))


# --- selecting what the agreement allows -----------------------------------------------------------


def scoped_incidents(agreement: Agreement, paths: Paths, night: date) -> pa.Table:
    """The incidents this recipient may learn anything about (hub identifiers still in place)."""
    return filtered(read_published(paths, "incidents", night, agreement.sources), agreement.scope_where)


def select_datasets(agreement: Agreement, paths: Paths, night: date) -> dict[str, pa.Table]:
    """Granted datasets with granted columns and rows, hub identifiers still in place."""
    scoped = scoped_incidents(agreement, paths, night)
    out: dict[str, pa.Table] = {}
    incident_grant = agreement.grant("incidents")
    delivered_incidents = filtered(scoped, incident_grant.where) if incident_grant else scoped
    for grant in agreement.datasets():
        if grant.name == "incidents":
            out["incidents"] = delivered_incidents.select(list(grant.columns))
        elif grant.name == "involvements":
            out["involvements"] = _involvements(agreement, paths, night, delivered_incidents, grant)
        elif grant.report:
            continue  # a finished report, copied as it is (copy_reports)
        elif grant.name == "observation_counts":
            observed = filtered(read_published(paths, "observations", night, agreement.sources), agreement.scope_where)
            out[grant.name] = aggregates.observation_counts(observed, grant.suppression)
        else:
            out[grant.name] = aggregates.incident_counts(scoped, grant.suppression)
    return out


def _involvements(
    agreement: Agreement, paths: Paths, night: date, incidents: pa.Table, grant: DatasetGrant
) -> pa.Table:
    """Only people in incidents the recipient receives (or, without incidents, may know of)."""
    people = read_published(paths, "involvements", night, agreement.sources)
    ids = incidents.column("incident_id").combine_chunks() if incidents.num_rows else pa.array([], pa.string())
    people = people.filter(pc.fill_null(pc.is_in(people.column("incident_id"), value_set=ids), False))
    return filtered(people, grant.where).select(list(grant.columns))


# --- writing the delivery ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    recipient: str
    night: date
    directory: Path
    manifest: dict[str, Any]

    @property
    def manifest_sha256(self) -> str:
        return sha256_file(self.directory / MANIFEST)


def build_delivery(
    agreement: Agreement,
    paths: Paths,
    night: date,
    pseudonyms: RecipientPseudonyms,
    run_id: str | None,
    *,
    now: datetime | None = None,
    register_head: dict[str, Any] | None = None,
) -> Delivery:
    """Select, re-key, write, describe, and move into the outbox in one rename."""
    if pseudonyms.domain != f"recipient:{agreement.id}:epoch{agreement.pseudonym_epoch}":
        raise ValueError(f"{agreement.label}: pseudonyms are for {pseudonyms.domain}, not this agreement")
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    fingerprint, inputs = source_fingerprint(paths, night, agreement.sources)
    selected = disclosure_control.generalise(select_datasets(agreement, paths, night), agreement.detail)
    selected, k_anonymity = disclosure_control.enforce(agreement, night, selected)  # refuses below k, unless excepted
    tables = {name: pseudonyms.rekey(t) for name, t in selected.items()}
    staging = outbox_staging(paths) / f"{agreement.id}-{night.isoformat()}-{uuid.uuid4().hex}"
    make_dirs(staging.parent, ROOT_MODE)
    outbox_root(paths).chmod(ROOT_MODE)
    staging.mkdir()
    try:
        files = [_write_parquet(staging, name, table, agreement) for name, table in tables.items()]
        reports = copy_reports(staging, agreement, paths)
        files += [f for r in reports.values() for f in r.pop("entries")]
        files.append(_write_text(staging, DICTIONARY, data_dictionary(agreement, night, tables)))
        manifest = _manifest(agreement, night, tables, files, fingerprint, inputs, pseudonyms, run_id, now)
        manifest["datasets"].update(reports)
        if k_anonymity is not None:
            manifest["k_anonymity"] = k_anonymity
        if register_head is not None:  # the disclosure register's end as of now: the recipient holds it
            manifest["register_head"] = register_head
        _write_text(staging, MANIFEST, json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
        sign_manifest(staging, delivery_key())  # signed before a recipient can see it
        final = _publish(staging, delivery_dir(paths, agreement.id, night))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Delivery(agreement.id, night, final, manifest)


def sign_manifest(directory: Path, key: Path | None) -> Path | None:
    """Sign a delivery's manifest (in staging, before the delivery is renamed into the outbox)."""
    return sign_file(key, directory / MANIFEST, DELIVERY_NAMESPACE, FILE_MODE) if key else None


def report_release(paths: Paths, dataset: str) -> Path | None:
    """The newest release of a report dataset, ``reports/<dataset>/<release>/`` (written whole by
    samverkan.analysis; folders being staged start with a dot)."""
    releases = sorted(p for p in (paths.reports / dataset).glob("[!.]*") if p.is_dir())
    return releases[-1] if releases else None


def copy_reports(staging: Path, agreement: Agreement, paths: Paths) -> dict[str, dict[str, Any]]:
    """Every granted report's newest release, flat in the delivery (``<dataset>.html``,
    ``<dataset>-<figure>.png``, ...), as it was released: its counts are protected where it is built."""
    out = {}
    for grant in (g for g in agreement.datasets() if g.report):
        release = report_release(paths, grant.name)
        if release is None:
            continue
        entries = []
        for source in sorted(p for p in release.rglob("*") if p.is_file()):
            name = source.name if source.parent == release else f"{grant.name}-{source.name}"
            shutil.copyfile(source, staging / name)
            entries.append(_file_entry(staging / name, grant.name, None))
        out[grant.name] = {
            "release": release.name,
            "rows": None,
            "files": [e["name"] for e in entries],
            "entries": entries,
        }
    return out


def _write_parquet(directory: Path, name: str, table: pa.Table, agreement: Agreement) -> dict[str, Any]:
    path = directory / f"{name}.parquet"
    meta = {
        b"samverkan.agreement": agreement.id.encode(),
        b"samverkan.agreement_version": str(agreement.version).encode(),
    }
    pq.write_table(table.replace_schema_metadata(meta), path, compression="zstd")
    return _file_entry(path, name, table.num_rows)


def _write_text(directory: Path, name: str, text: str) -> dict[str, Any]:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return _file_entry(path, None, None)


def _file_entry(path: Path, dataset: str | None, rows: int | None) -> dict[str, Any]:
    with open(path, "rb") as f:
        os.fsync(f.fileno())
    path.chmod(FILE_MODE)
    return {
        "name": path.name,
        "dataset": dataset,
        "rows": rows,
        "bytes": path.stat().st_size,
        "sha256": sha256_file(path),
    }


def _schema_of(table: pa.Table) -> list[dict[str, str]]:
    return [{"name": f.name, "type": str(f.type)} for f in table.schema]


def _manifest(
    agreement: Agreement,
    night: date,
    tables: dict[str, pa.Table],
    files: list[dict[str, Any]],
    fingerprint: str,
    inputs: list[dict[str, str]],
    pseudonyms: RecipientPseudonyms,
    run_id: str | None,
    now: datetime,
) -> dict[str, Any]:
    return {
        "manifest_version": MANIFEST_VERSION,
        "delivery_id": night.isoformat(),
        "recipient": agreement.id,
        "recipient_name": agreement.recipient_name,
        "agreement": {
            "id": agreement.id,
            "version": agreement.version,
            "title": agreement.title,
            "sha256": sha256_file(agreement.path),
        },
        "granularity": agreement.granularity,
        "period": {"start": night.isoformat(), "end": night.isoformat()},
        "created_at_utc": now.isoformat(),
        "run_id": run_id,
        "pseudonym_domain": pseudonyms.domain,
        "retention": {
            "days": agreement.retention_days,
            "delete_by": (night + timedelta(days=agreement.retention_days)).isoformat(),
        },
        "datasets": {
            name: {
                "file": f"{name}.parquet",
                "rows": t.num_rows,
                "schema": _schema_of(t),
                **(
                    {"suppression_threshold": agreement.required_grant(name).suppression}
                    if agreement.required_grant(name).aggregate
                    else {}
                ),
            }
            for name, t in tables.items()
        },
        "files": files,
        "source_fingerprint": fingerprint,
        "sources": inputs,
    }


def _publish(staging: Path, final: Path) -> Path:
    """Rename the finished delivery into the recipient's outbox; a re-delivery of the same night
    replaces the old one (moved aside first, then removed)."""
    staging.chmod(DIR_MODE)
    fsync_dir(staging)
    make_dirs(final.parent, DIR_MODE)
    final.parent.chmod(DIR_MODE)
    old = None
    if final.exists():
        old = staging.parent / f"replaced-{uuid.uuid4().hex}"
        os.rename(final, old)
    os.rename(staging, final)
    fsync_dir(final.parent)
    if old is not None:
        shutil.rmtree(old)
    return final
