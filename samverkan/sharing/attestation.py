"""Signed deliveries a recipient verifies offline, and its signed acknowledgement back.

The hub signs every delivery's ``manifest.json`` with its Ed25519 key (OpenSSH ``ssh-keygen -Y
sign``, namespace ``samverkan-delivery``) into ``manifest.json.sig``. The manifest names the SHA-256
of every file and the disclosure register's head; ``receipt.json`` carries the delivery's own
signed register event. So a recipient needs only OpenSSH, ``sha256sum`` and the hub's published
allowed-signers line to know that what it holds is what the hub disclosed and that the hub has
recorded it (docs/partners.md, "Verifying a delivery"). ``verify_delivery`` does the same checks
in Python, and with the recipient's earlier receipts (the anchors it holds) also notices a
register that went back: a later head before an event the recipient already holds, or (given the
register) an anchored event missing or changed.

The recipient may countersign: ``ack.json`` (delivery id and manifest hash) signed with its own
key (namespace ``samverkan-ack``; its public key is ``recipient.ack_key`` in the agreement). The
hub verifies it and records an ``acknowledgement`` event in the register.

Signing and verifying are OpenSSH's; nothing here is cryptography of its own.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any

from samverkan.sharing.outbox import (
    FILE_MODE,
    MANIFEST,
    MANIFEST_SIGNATURE,
    RECEIPT,
    Delivery,
    read_manifest,
    sha256_file,
)
from samverkan.sharing.register import Event, Register, RegisterError, event_signature_verifies, signed_message
from samverkan.sharing.signing import DELIVERY_NAMESPACE, REGISTER_NAMESPACE, file_verifies

ACK_NAMESPACE = "samverkan-ack"
ACK, ACK_SIGNATURE = "ack.json", "ack.json.sig"
ACKNOWLEDGEMENT = "acknowledgement"


class AttestationError(RuntimeError):
    """An acknowledgement does not verify, or names a delivery the register does not have."""


def allowed_signers_lines(public_key_line: str) -> str:
    """What the hub publishes to recipients: its key for deliveries and for register events."""
    return "".join(f'{ns} namespaces="{ns}" {public_key_line}\n' for ns in (DELIVERY_NAMESPACE, REGISTER_NAMESPACE))


def write_allowed_signers(path: Path, public_key_line: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(allowed_signers_lines(public_key_line), encoding="ascii")
    return path


# --- the recipient's receipt ------------------------------------------------------------------------


def write_receipt(register: Register, delivery: Delivery, event: dict[str, Any]) -> Path:
    """The recipient's evidence of its own disclosure event, signed when the register is: the
    hub cannot later delete or rewrite that event without the recipient being able to show it."""
    message = signed_message(event["seq"], event["event_sha256"])
    receipt = {
        "recipient": delivery.recipient,
        "delivery_id": delivery.manifest["delivery_id"],
        "manifest_sha256": event["manifest_sha256"],
        "register_event": {
            "seq": event["seq"],
            "event_sha256": event["event_sha256"],
            "prev_event_sha256": event["prev_event_sha256"],
        },
        "signed_message": message,
        "signature": register.signature(event["seq"]),
        "verify": "jq -j .signature receipt.json > receipt.sig; jq -j .signed_message receipt.json | ssh-keygen "
        "-Y verify -f allowed_signers -I samverkan-register -n samverkan-register -s receipt.sig",
    }
    path = delivery.directory / RECEIPT
    tmp = path.with_name(f".{RECEIPT}.tmp")
    tmp.write_text(json.dumps(receipt, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.chmod(FILE_MODE)
    os.replace(tmp, path)
    return path


# --- the recipient's verification ------------------------------------------------------------------


def verify_delivery(
    directory: Path, allowed_signers: Path, anchors: Iterable[dict[str, Any]] = (), register: Register | None = None
) -> list[str]:
    """Everything a recipient can check offline, as a list of problems (empty: verified).

    ``anchors`` are register events from the recipient's earlier receipts; ``register`` (e.g. a
    read-only copy the hub's DPO hands over) lets every anchor be looked up in it."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    if manifest is None:
        return [f"{directory.name}: no {MANIFEST}"]
    problems = []
    if not file_verifies(
        allowed_signers, directory / MANIFEST, directory / MANIFEST_SIGNATURE, DELIVERY_NAMESPACE, DELIVERY_NAMESPACE
    ):
        problems.append(f"{directory.name}: {MANIFEST} is not signed by the hub (or was changed after signing)")
    for entry in manifest["files"]:
        path = directory / entry["name"]
        if not path.exists() or sha256_file(path) != entry["sha256"]:
            problems.append(f"{directory.name}: {entry['name']} is missing or differs from the manifest")
    problems += _receipt_problems(directory, allowed_signers, manifest)
    own = _own_event(directory)  # recorded after this manifest's head was taken: later by design
    anchors = list(anchors)
    problems += anchor_problems(manifest.get("register_head"), [a for a in anchors if a != own], register)
    problems += anchor_problems(None, [a for a in anchors if a == own], register)
    return problems


def _own_event(directory: Path) -> dict[str, Any] | None:
    try:
        return json.loads((directory / RECEIPT).read_text(encoding="utf-8"))["register_event"]
    except (FileNotFoundError, KeyError, ValueError):
        return None


def _receipt_problems(directory: Path, allowed_signers: Path, manifest: dict[str, Any]) -> list[str]:
    try:
        receipt = json.loads((directory / RECEIPT).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return [f"{directory.name}: no {RECEIPT}: the delivery is not (yet) in the register"]
    event = receipt["register_event"]
    problems = []
    if receipt["manifest_sha256"] != sha256_file(directory / MANIFEST):
        problems.append(f"{directory.name}: {RECEIPT} names another manifest")
    if (
        receipt["signed_message"] != signed_message(event["seq"], event["event_sha256"])
        or not receipt["signature"]
        or not event_signature_verifies(allowed_signers, receipt["signed_message"], receipt["signature"])
    ):
        problems.append(f"{directory.name}: {RECEIPT}: the register event's signature does not verify")
    return problems


def anchor_problems(
    head: dict[str, Any] | None, anchors: Iterable[dict[str, Any]], register: Register | None
) -> list[str]:
    """A register only grows: a new head before an event the recipient holds means the hub's
    register lost its end; with the register at hand, every anchor must be in it unchanged."""
    problems = []
    for anchor in anchors:
        if head is not None and int(head["seq"]) < int(anchor["seq"]):
            problems.append(
                f"register went back: the hub's head is event {head['seq']}, but event {anchor['seq']} "
                "was already disclosed to this recipient"
            )
        if register is not None:
            try:
                register.verify_anchor(anchor)
            except RegisterError as exc:
                problems.append(str(exc))
    return problems


# --- the recipient's acknowledgement ----------------------------------------------------------------


def acknowledgement(manifest: dict[str, Any], manifest_sha256: str) -> dict[str, Any]:
    """What a recipient signs to say it received a delivery whole."""
    return {
        "recipient": manifest["recipient"],
        "delivery_id": manifest["delivery_id"],
        "manifest_sha256": manifest_sha256,
        "acknowledged": "received and verified",
    }


def record_acknowledgement(
    register: Register, directory: Path, ack_key_line: str, run_id: str | None = None
) -> dict[str, Any]:
    """Verify the recipient's ``ack.json`` + ``ack.json.sig`` in ``directory`` against its key,
    then append an ``acknowledgement`` event naming the ack's hash."""
    ack_path = Path(directory) / ACK
    ack = json.loads(ack_path.read_text(encoding="utf-8"))
    recipient = ack["recipient"]
    with tempfile.TemporaryDirectory(prefix="ack-verify-") as tmp:
        signers = Path(tmp) / "allowed_signers"
        signers.write_text(f'{recipient} namespaces="{ACK_NAMESPACE}" {ack_key_line}\n', encoding="ascii")
        if not file_verifies(signers, ack_path, Path(directory) / ACK_SIGNATURE, ACK_NAMESPACE, recipient):
            raise AttestationError(f"{recipient}: {ACK} for {ack['delivery_id']} is not signed by the recipient's key")
    delivered = [
        e
        for e in register.events()
        if e["event"] == "delivery" and e["recipient"] == recipient and e["manifest_sha256"] == ack["manifest_sha256"]
    ]
    if not delivered:
        raise AttestationError(f"{recipient}: {ACK} names a manifest the register has no delivery of")
    event = delivered[-1]
    return register.append(
        Event(
            event=ACKNOWLEDGEMENT,
            recipient=recipient,
            agreement_id=event["agreement_id"],
            agreement_version=event["agreement_version"],
            delivery_id=ack["delivery_id"],
            period_start=event["period_start"] or date.min,
            period_end=event["period_end"] or date.min,
            mode=event["mode"],
            destination=event["destination"],
            files=[],
            manifest_sha256=ack["manifest_sha256"],
            run_id=run_id,
            reason=f"acknowledged by the recipient (ack sha256 {hashlib.sha256(ack_path.read_bytes()).hexdigest()}, "
            f"of register event {event['seq']})",
        )
    )
