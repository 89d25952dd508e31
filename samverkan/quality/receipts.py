"""Receipts to partners: after each file, what the hub made of it, on the partner's own server.

A partner learns what to fix in its export only if someone tells it, in its own column names and
record numbers. So after each file the hub leaves two receipts in the partner's ``receipts/``
directory (``delivery.receipts_directory`` in the contract): JSON for the partner's scripts and
plain text for people. They name the file, its SHA-256, the records received, accepted and
quarantined, and per reason the record numbers; they carry no values, so a receipt is safe to
forward, archive or mail around. A partner who finds no receipt for a file knows the hub never
processed it.

A copy of every receipt stays under ``reports/receipts/`` so a receipt that could not be delivered
(partner server down) is retried by the run's last task, and so the hub can show what it told
the partner.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from samverkan.core.contracts import Contract
from samverkan.core.publishing import write_json_atomic
from samverkan.quality.reports import reports_root

log = logging.getLogger(__name__)

RECEIPT_VERSION = 1
MAX_ROW_NUMBERS = 10_000  # per reason in the JSON receipt; the text receipt shows ranges, cut shorter
MAX_TEXT_RANGES = 200


def receipt_stem(name: str, sha256: str | None) -> str:
    """Unique per content, so a corrected re-send gets its own receipt beside the first one."""
    return f"{name}.{(sha256 or 'unknown')[:12]}.receipt"


def build(
    contract: Contract,
    file: Mapping[str, Any],
    *,
    reasons: Mapping[str, str] | None = None,
    rows_by_check: Mapping[str, Iterable[int]] | None = None,
    held_by_check: Mapping[str, Iterable[int]] | None = None,
    warnings: Iterable[str] = (),
    run_id: str | None = None,
) -> dict[str, Any]:
    """The receipt of one file. ``file`` is the pipeline's result for it (counts, status, reason).

    ``rows_by_check`` maps a failed check's label to the record numbers it quarantined;
    ``held_by_check`` the same for records held for correction: their only faults are in person
    fields, so their incident was accepted (without the faulty values) and the partner is asked to
    correct them; ``reasons`` maps the label to the partner-facing reason written in the contract.
    """
    reasons = reasons or {}
    status = file.get("status")
    return {
        "receipt_version": RECEIPT_VERSION,
        "hub": "Samverkan",
        "feed": contract.id,
        "partner": contract.raw["partner"]["name"],
        "contract_version": contract.version,
        "file": file.get("name"),
        "sha256": file.get("sha256"),
        "night": file.get("night"),
        "status": status,
        "status_explained": _STATUS_WORDS.get(status, status) if status is not None else None,
        "reason": file.get("reason"),
        "records": {
            "received": int(file.get("rows_received") or 0),
            "accepted": int(file.get("rows_published") or 0),
            "quarantined": int(file.get("rows_quarantined") or 0),
            "held_for_correction": int(file.get("rows_held_for_correction") or 0),  # counted in accepted
        },
        "quarantined_by_reason": _by_reason(rows_by_check, reasons),
        "held_for_correction_by_reason": _by_reason(held_by_check, reasons),
        "warnings": list(warnings),
        "record_numbering": "1 = the first data record after the header (JSON Lines: the first non-blank line)",
        "airflow_run_id": run_id,
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _by_reason(rows_by_check: Mapping[str, Iterable[int]] | None, reasons: Mapping[str, str]) -> list[dict[str, Any]]:
    out = []
    for label, rows in sorted((rows_by_check or {}).items()):
        numbers = sorted(set(int(r) for r in rows))
        out.append(
            {
                "check": label,
                "reason": reasons.get(label, label),
                "records": len(numbers),
                "record_numbers": numbers[:MAX_ROW_NUMBERS],
                "record_numbers_truncated": len(numbers) > MAX_ROW_NUMBERS,
            }
        )
    return out


_STATUS_WORDS = {
    "published": "processed: accepted records are shared, quarantined ones are held back",
    "rejected": "the whole file was refused; nothing from it is shared. Please correct and send it again",
    "duplicate": "not processed: the same content was already received under another name",
    "unchanged": "not processed: the same content was already received under this name",
}


def _ranges(numbers: list[int]) -> str:
    """``1-3, 7, 9-10``: record numbers as a person reads them."""
    runs: list[list[int]] = []  # [first, last] of each run of consecutive numbers
    for n in numbers:
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    parts = [f"{first}-{last}" if last != first else f"{first}" for first, last in runs]
    if len(parts) > MAX_TEXT_RANGES:
        return (
            ", ".join(parts[:MAX_TEXT_RANGES]) + f", … ({len(parts) - MAX_TEXT_RANGES} more ranges in the JSON receipt)"
        )
    return ", ".join(parts)


def as_text(receipt: Mapping[str, Any]) -> str:
    r = receipt["records"]
    lines = [
        f"Receipt from the Samverkan hub for {receipt['partner']}",
        "",
        f"File:         {receipt['file']}",
        f"SHA-256:      {receipt['sha256']}",
        f"Night:        {receipt['night']}",
        f"Status:       {receipt['status']} ({receipt['status_explained']})",
    ]
    if receipt.get("reason"):
        lines.append(f"Reason:       {receipt['reason']}")
    if receipt["status"] == "rejected" and not r["received"]:
        lines += ["", "Records: not read (the file was refused before its records were read)"]
    else:
        lines += [""]
    lines += [
        f"Records received:    {r['received']}",
        f"Records accepted:    {r['accepted']}",
        f"Records quarantined: {r['quarantined']}",
    ]
    if r.get("held_for_correction"):
        lines.append(
            f"Of the accepted, held for correction: {r['held_for_correction']} (only person details were "
            "wrong: the incident is shared without them; please correct and send the file again)"
        )
    for key, title in (
        ("quarantined_by_reason", "Quarantined records by reason"),
        ("held_for_correction_by_reason", "Records held for correction by reason"),
    ):
        if receipt.get(key):
            lines += ["", f"{title} (record numbers count data records from 1):"]
            for q in receipt[key]:
                lines.append(
                    f"  - {q['reason']} [{q['check']}]: {q['records']} record(s): {_ranges(q['record_numbers'])}"
                )
    if receipt["warnings"]:
        lines += ["", "Warnings (nothing was refused because of these):"]
        lines += [f"  - {w}" for w in receipt["warnings"]]
    lines += [
        "",
        f"Written {receipt['written_at']} (contract version {receipt['contract_version']}, "
        f"run {receipt['airflow_run_id']}). This receipt contains no personal data.",
        "",
    ]
    return "\n".join(lines)


# --- storing and delivering ----------------------------------------------------------------


def local_path(data_root: Path, receipt: Mapping[str, Any]) -> Path:
    return (
        reports_root(data_root)
        / "receipts"
        / receipt["feed"]
        / str(receipt["night"])
        / f"{receipt_stem(receipt['file'], receipt['sha256'])}.json"
    )


def store(data_root: Path, receipt: Mapping[str, Any]) -> Path:
    """Keep the hub's copy (JSON and text side by side) before delivering it."""
    path = write_json_atomic(local_path(data_root, receipt), receipt)
    text = path.with_suffix(".txt")
    tmp = text.with_suffix(".txt.part")
    tmp.write_text(as_text(receipt), encoding="utf-8")
    tmp.replace(text)
    return path


def deliver(contract: Contract, connector: Any, receipt_path: Path) -> list[str]:
    """Upload both receipts into the partner's receipts directory; returns the remote paths."""
    receipt = json.loads(Path(receipt_path).read_text(encoding="utf-8"))
    stem = receipt_stem(receipt["file"], receipt["sha256"])
    directory = contract.receipts_directory.rstrip("/")
    written = []
    for suffix, data in (
        (".json", Path(receipt_path).read_bytes()),
        (".txt", Path(receipt_path).with_suffix(".txt").read_bytes()),
    ):
        remote = f"{directory}/{stem}{suffix}"
        connector.write_bytes(remote, data)
        written.append(remote)
    log.info("%s: receipt for %s delivered to the partner's %s/", contract.id, receipt["file"], directory)
    return written
