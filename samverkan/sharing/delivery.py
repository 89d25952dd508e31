"""One recipient's delivery run: which nights, build, hand over, record. Airflow-free.

``plan`` finds the nights in the look-back window whose published data changed since they were
last delivered (a late or corrected partner file, or a new agreement version, means a
re-delivery); ``deliver`` builds the night's delivery in the outbox, pushes it when the agreement
says push, and appends the disclosure to the register only once the recipient can really have
it; ``apply_retention`` (retention.py) removes what the agreement no longer allows. The DAG tasks
in ``samverkan.orchestration.delivery_dags`` are thin wrappers around these.
"""

from __future__ import annotations

import logging
import posixpath
from datetime import date, timedelta
from typing import Any

from samverkan.connectors.sftp import SFTPConnector
from samverkan.core.settings import Paths
from samverkan.sharing import erasure
from samverkan.sharing.agreements import Agreement
from samverkan.sharing.attestation import write_receipt
from samverkan.sharing.outbox import (
    MANIFEST,
    MANIFEST_SIGNATURE,
    PUBLISHED_DATASETS,
    RECEIPT,
    Delivery,
    build_delivery,
    delivery_dir,
    read_manifest,
    source_fingerprint,
)
from samverkan.sharing.recipient_pseudonyms import RecipientPseudonyms
from samverkan.sharing.register import DELIVERY, Event, Register
from samverkan.sharing.signing import register_key

log = logging.getLogger(__name__)


def register_for(paths: Paths) -> Register:
    return Register(paths.register, signing_key=register_key())


def published_nights(paths: Paths) -> set[date]:
    nights = set()
    for dataset in PUBLISHED_DATASETS:
        for d in paths.dataset(dataset).glob("night=*"):
            try:
                nights.add(date.fromisoformat(d.name.split("=", 1)[1]))
            except ValueError:
                continue
    return nights


def _has_sources(paths: Paths, night: date, sources: tuple[str, ...]) -> bool:
    return any(
        (paths.dataset(dataset) / f"night={night.isoformat()}" / f"source={s}").is_dir()
        for dataset in ("incidents", "observations")
        for s in sources
    )


def _delivered_manifests(register: Register, recipient: str) -> set[str]:
    return {e["manifest_sha256"] for e in register.events() if e["event"] == DELIVERY and e["recipient"] == recipient}


def up_to_date(agreement: Agreement, paths: Paths, night: date, register: Register) -> bool:
    """Built from the same published files under the same agreement version, and handed over."""
    build = _current_build(agreement, paths, night)
    return build is not None and build.manifest_sha256 in _delivered_manifests(register, agreement.id)


def plan(agreement: Agreement, paths: Paths, run_night: date, *, today: date | None = None) -> list[str]:
    """Nights (ISO dates) to deliver now: published for this recipient's sources, inside the
    look-back window, not past retention, and not already delivered as they are."""
    today = today or date.today()
    register = register_for(paths)
    window = {run_night - timedelta(days=d) for d in range(agreement.lookback_nights + 1)}
    nights = []
    for night in sorted(window & published_nights(paths)):
        if night + timedelta(days=agreement.retention_days) < today:
            continue  # already beyond what the recipient may keep: never deliver it
        if _has_sources(paths, night, agreement.sources) and not up_to_date(agreement, paths, night, register):
            nights.append(night.isoformat())
    log.info("%s: %d night(s) to deliver in %s..%s", agreement.label, len(nights), min(window), max(window))
    return nights


# --- handing over -------------------------------------------------------------------------------


def push(delivery: Delivery, connector: SFTPConnector, directory: str) -> str:
    """Upload the delivery to the recipient's inbox ``<directory>/<night>/``: data files and the
    dictionary first, the manifest last, so a complete-looking delivery (one with a manifest)
    is complete. Each file: temporary name, rename, size and SHA-256 verified. Returns where."""
    target = posixpath.join(directory, delivery.manifest["delivery_id"])
    connector.ensure_dir(target)
    expected = {f["name"]: f for f in delivery.manifest["files"]}
    signed = [MANIFEST_SIGNATURE] if (delivery.directory / MANIFEST_SIGNATURE).exists() else []
    for name in [n for n in expected if n != MANIFEST] + [MANIFEST] + signed:
        local = delivery.directory / name
        sent = connector.upload(local, posixpath.join(target, name))
        if name in expected and sent.sha256 != expected[name]["sha256"]:
            raise RuntimeError(f"{delivery.recipient}: {name} changed in the outbox while it was sent")
        log.info("%s: sent %s (%d bytes, sha256 %s)", delivery.recipient, name, sent.size, sent.sha256)
    s = connector.settings
    return f"sftp://{s.username}@{s.host}:{s.port}{target}"


def record_delivery(
    register: Register, agreement: Agreement, delivery: Delivery, destination: str, run_id: str | None
) -> dict[str, Any]:
    manifest = delivery.manifest
    return register.append(
        Event(
            event=DELIVERY,
            recipient=agreement.id,
            agreement_id=agreement.id,
            agreement_version=agreement.version,
            delivery_id=manifest["delivery_id"],
            period_start=date.fromisoformat(manifest["period"]["start"]),
            period_end=date.fromisoformat(manifest["period"]["end"]),
            mode=agreement.mode,
            destination=destination,
            files=manifest["files"],
            manifest_sha256=delivery.manifest_sha256,
            run_id=run_id,
            datasets=sorted(manifest["datasets"]),
            k_anonymity=manifest.get("k_anonymity"),
        )
    )


def deliver(
    agreement: Agreement,
    paths: Paths,
    night: date,
    pseudonyms: RecipientPseudonyms,
    run_id: str | None,
    *,
    connector: SFTPConnector | None = None,
) -> dict[str, Any]:
    """Build (or reuse an up-to-date build of) the night's delivery, hand it over, register it."""
    register = register_for(paths)
    before = erasure.held_rows(delivery_dir(paths, agreement.id, night))
    delivery = _current_build(agreement, paths, night) or build_delivery(
        agreement, paths, night, pseudonyms, run_id, register_head=register.head()
    )
    if agreement.mode == "push":
        if connector is None:
            raise ValueError(f"{agreement.label}: push delivery needs an SFTP connector")
        destination = push(delivery, connector, agreement.delivery["directory"])
    else:
        destination = f"outbox:{agreement.delivery['account']}/{delivery.manifest['delivery_id']}"
    event = record_delivery(register, agreement, delivery, destination, run_id)
    receipt = write_receipt(register, delivery, event)
    erasure.tombstone_superseded(paths, agreement, before, delivery.directory, register, run_id)
    if agreement.mode == "push" and connector is not None:  # a push without one was refused above
        connector.upload(
            receipt, posixpath.join(agreement.delivery["directory"], delivery.manifest["delivery_id"], RECEIPT)
        )
        erasure.push_tombstones(paths, agreement, connector)  # erasures, withdrawals, expiries since the last run
    rows = {name: d["rows"] for name, d in delivery.manifest["datasets"].items()}
    log.info(
        "%s: delivered night %s to %s: %s (register event %d)", agreement.label, night, destination, rows, event["seq"]
    )
    return {
        "night": night.isoformat(),
        "destination": destination,
        "rows": rows,
        "register_seq": event["seq"],
        "manifest_sha256": event["manifest_sha256"],
    }


def _current_build(agreement: Agreement, paths: Paths, night: date) -> Delivery | None:
    """An outbox build that is still right but was never handed over (e.g. the push failed):
    send that one again rather than building a new one with new hashes."""
    directory = delivery_dir(paths, agreement.id, night)
    manifest = read_manifest(directory)
    if manifest is None or manifest["agreement"]["version"] != agreement.version:
        return None
    if manifest["pseudonym_domain"] != f"recipient:{agreement.id}:epoch{agreement.pseudonym_epoch}":
        return None
    if manifest["source_fingerprint"] != source_fingerprint(paths, night, agreement.sources)[0]:
        return None
    return Delivery(agreement.id, night, directory, manifest)
