"""The data-protection officer's self-test: what recipients hold, checked from the outboxes alone.

Runs with read access to ``outbox/`` and ``register/`` and the hub's published allowed-signers
file: no key, no published zone, no database. It shows, recipient by recipient:

- that no two recipients' identifier columns (incident ids, pseudonyms) share a single value, so
  no two recipients can join their files;
- that no delivered count is under the agreement's threshold (suppressed cells carry no count);
- the k of each row-level delivery, measured again on the delivered files (not read from the
  manifest), with the agreement's required k and whether it went out under an exception;
- that every delivery's manifest is signed by the hub and named by an event in the register;
- that the register's chain and signatures verify, and every anchor a recipient holds (the
  register head in each manifest, the event in each receipt) is in it unchanged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from samverkan.sharing import disclosure_control
from samverkan.sharing.outbox import MANIFEST, MANIFEST_SIGNATURE, RECEIPT, read_manifest, sha256_file
from samverkan.sharing.recipient_pseudonyms import IDENTIFIER_COLUMNS
from samverkan.sharing.register import Register, RegisterError
from samverkan.sharing.signing import DELIVERY_NAMESPACE, file_verifies

COUNT_COLUMNS = ("incidents", "people")
RECORDED = ("delivery", "erasure")  # events that name a delivery's current manifest


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    failures: int = 0

    def check(self, ok: bool, text: str) -> bool:
        self.lines.append(f"{'ok  ' if ok else 'FAIL'} {text}")
        self.failures += not ok
        return ok

    def info(self, text: str) -> None:
        self.lines.append(f"     {text}")

    @property
    def passed(self) -> bool:
        return self.failures == 0


def deliveries(outbox: Path) -> dict[str, list[Path]]:
    """Every recipient's delivery folders (those with a manifest)."""
    found: dict[str, list[Path]] = {}
    for recipient in sorted(p for p in Path(outbox).glob("[!.]*") if p.is_dir()):
        found[recipient.name] = sorted(d for d in recipient.iterdir() if (d / MANIFEST).is_file())
    return found


def _tables(directory: Path, manifest: dict[str, Any]) -> dict[str, pa.Table]:
    return {
        name: pq.read_table(directory / spec["file"])
        for name, spec in manifest["datasets"].items()
        if spec.get("file") and (directory / spec["file"]).is_file() and spec.get("rows") is not None
    }


def check_joins(report: Report, held: dict[str, dict[str, set[str]]]) -> None:
    for a, b in combinations(sorted(held), 2):
        shared = {c: len(held[a].get(c, set()) & held[b].get(c, set())) for c in IDENTIFIER_COLUMNS}
        report.check(
            not any(shared.values()),
            f"{a} × {b}: identifier values in common: " + ", ".join(f"{c} {n}" for c, n in shared.items()),
        )


def check_counts(
    report: Report, recipient: str, directory: Path, manifest: dict[str, Any], tables: dict[str, pa.Table]
) -> None:
    for name, spec in manifest["datasets"].items():
        threshold = spec.get("suppression_threshold")
        if threshold is None or name not in tables:
            continue
        column = next(c for c in COUNT_COLUMNS if c in tables[name].column_names)
        values = tables[name].column(column)
        small = pc.sum(pc.and_(pc.greater(values, 0), pc.less(values, threshold)).cast(pa.int64())).as_py() or 0
        report.check(
            small == 0,
            f"{recipient}/{directory.name}/{name}: {len(values)} cells, {small} under "
            f"{threshold}, {pc.sum(tables[name].column('suppressed').cast(pa.int64())).as_py() or 0} suppressed",
        )


def check_k(
    report: Report, recipient: str, directory: Path, manifest: dict[str, Any], tables: dict[str, pa.Table]
) -> None:
    stated = manifest.get("k_anonymity")
    if stated is None:
        return
    row_tables = {n: t for n, t in tables.items() if n in ("incidents", "involvements")}
    measured = disclosure_control.measure(row_tables, stated["required"])
    meets = measured["k"] is None or measured["k"] >= stated["required"]
    under = "" if meets else (" under the agreement's exception" if stated.get("exception") else " REFUSED")
    report.check(
        (meets or bool(stated.get("exception"))) and measured["k"] == stated["k"],
        f"{recipient}/{directory.name}: k = {measured['k']} (required {stated['required']}, manifest says "
        f"{stated['k']}; {measured['rows_below_k']} of {measured['rows']} rows below){under}",
    )


def check_signed_and_registered(
    report: Report, recipient: str, directory: Path, allowed_signers: Path, recorded: set[tuple[str, str]]
) -> None:
    signed = file_verifies(
        allowed_signers, directory / MANIFEST, directory / MANIFEST_SIGNATURE, DELIVERY_NAMESPACE, DELIVERY_NAMESPACE
    )
    in_register = (recipient, sha256_file(directory / MANIFEST)) in recorded
    report.check(
        signed and in_register,
        f"{recipient}/{directory.name}: manifest "
        f"{'signed' if signed else 'NOT signed'}, {'in' if in_register else 'NOT in'} the register",
    )


def anchors(found: dict[str, list[Path]]) -> list[tuple[str, dict[str, Any]]]:
    """The register positions recipients hold: manifests' heads and receipts' events."""
    out = []
    for recipient, folders in found.items():
        for directory in folders:
            head = (read_manifest(directory) or {}).get("register_head")
            if head:
                out.append((f"{recipient}/{directory.name}/{MANIFEST}", head))
            receipt = directory / RECEIPT
            if receipt.is_file():
                out.append(
                    (f"{recipient}/{directory.name}/{RECEIPT}", json.loads(receipt.read_text())["register_event"])
                )
    return out


def check_register(
    report: Report, register: Register, allowed_signers: Path, held: list[tuple[str, dict[str, Any]]]
) -> None:
    try:
        count = register.verify(allowed_signers)
        report.check(True, f"register: {count} events, chain and signatures verify")
    except RegisterError as exc:
        report.check(False, str(exc))
        return
    bad = []
    for where, anchor in held:
        try:
            register.verify_anchor(anchor)
        except RegisterError as exc:
            bad.append(f"{where}: {exc}")
    report.check(not bad, f"register: {len(held) - len(bad)} of {len(held)} anchors held by recipients verify")
    for line in bad:
        report.info(line)


def run(outbox: Path, register_root: Path, allowed_signers: Path) -> Report:
    report = Report()
    found = deliveries(outbox)
    register = Register(register_root)
    recorded = {(e["recipient"], e["manifest_sha256"]) for e in register.events() if e["event"] in RECORDED}
    held: dict[str, dict[str, set[str]]] = {}
    for recipient, folders in found.items():
        report.info(f"{recipient}: {len(folders)} deliveries")
        ids = held.setdefault(recipient, {c: set() for c in IDENTIFIER_COLUMNS})
        for directory in folders:
            manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))  # found by its manifest
            tables = _tables(directory, manifest)
            for table in tables.values():
                for c in IDENTIFIER_COLUMNS:
                    if c in table.column_names:
                        ids[c].update(v for v in table.column(c).to_pylist() if v)
            check_signed_and_registered(report, recipient, directory, allowed_signers, recorded)
            check_counts(report, recipient, directory, manifest, tables)
            check_k(report, recipient, directory, manifest, tables)
    check_joins(report, held)
    check_register(report, register, allowed_signers, anchors(found))
    report.lines.append(f"{'PASSED' if report.passed else 'FAILED'}: {report.failures} failure(s)")
    return report
