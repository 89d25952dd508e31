"""Retention: deliveries older than the agreement allows leave the outbox, and the register says so.

A delivery may be kept for ``retention_days`` after the night it covers (its manifest says
``delete_by``). After that the hub removes its own copy from the recipient's outbox, so the pull
service stops offering it, and appends a ``retention_deletion`` event naming the same files and
hashes the delivery event named. (A pushed copy on the recipient's own server is theirs to
delete by the same date; the data dictionary tells them when.)

The removal is a rename out of the chroot first and a delete second, so a recipient never pulls
half a deleted delivery.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from datetime import date
from pathlib import Path
from typing import Any

from samverkan.core.settings import Paths
from samverkan.sharing.agreements import Agreement
from samverkan.sharing.erasure import tombstone_for_expired
from samverkan.sharing.outbox import MANIFEST, outbox_staging, read_manifest, recipient_outbox, sha256_file
from samverkan.sharing.register import RETENTION_DELETION, Event, Register

log = logging.getLogger(__name__)


def expired(manifest: dict[str, Any], retention_days: int, today: date) -> bool:
    """Past ``delete_by`` under the current agreement (a shortened retention applies at once)."""
    period_end = date.fromisoformat(manifest["period"]["end"])
    return (today - period_end).days > retention_days


def apply_retention(
    agreement: Agreement, paths: Paths, register: Register, today: date, run_id: str | None
) -> list[dict[str, Any]]:
    removed = []
    outbox = recipient_outbox(paths, agreement.id)
    for directory in sorted(p for p in outbox.glob("*") if p.is_dir()):
        manifest = read_manifest(directory)
        if manifest is None or not expired(manifest, agreement.retention_days, today):
            continue
        manifest_sha = sha256_file(directory / MANIFEST)
        _remove(directory, outbox_staging(paths))
        reason = (
            f"retention of {agreement.retention_days} days under {agreement.label} ended "
            f"(delete by {manifest['retention']['delete_by']})"
        )
        tombstone = tombstone_for_expired(paths, agreement, manifest, reason)  # the recipient deletes its copy too
        event = register.append(
            Event(
                event=RETENTION_DELETION,
                recipient=agreement.id,
                agreement_id=manifest["agreement"]["id"],
                agreement_version=manifest["agreement"]["version"],
                delivery_id=manifest["delivery_id"],
                period_start=date.fromisoformat(manifest["period"]["start"]),
                period_end=date.fromisoformat(manifest["period"]["end"]),
                mode=agreement.mode,
                destination=f"outbox:{agreement.id}/{manifest['delivery_id']}",
                files=manifest["files"],
                manifest_sha256=manifest_sha,
                run_id=run_id,
                datasets=sorted(manifest["datasets"]),
                reason=f"{reason}; tombstone {tombstone.name} sha256 {sha256_file(tombstone)}",
            )
        )
        log.info(
            "%s: removed delivery %s from the outbox (register event %d)",
            agreement.label,
            manifest["delivery_id"],
            event["seq"],
        )
        removed.append({"delivery_id": manifest["delivery_id"], "register_seq": event["seq"]})
    return removed


def _remove(directory: Path, staging: Path) -> None:
    staging.mkdir(parents=True, exist_ok=True)
    doomed = staging / f"expired-{uuid.uuid4().hex}"
    os.rename(directory, doomed)
    shutil.rmtree(doomed)
