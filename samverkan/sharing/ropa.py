"""The record of processing activities (GDPR art. 30), generated from the configuration.

A record written by hand drifts from what the hub does. This one is computed from what the hub
runs on: the feed contracts (categories of persons and data, how each personal field is
handled, how long quarantined data stays), the agreements (recipients, columns and their legal
bases and purposes, retention, detail and k-anonymity, suppression, pseudonym domains, how data
is handed over) and the legal-basis vocabulary. ``samverkan ropa`` writes
``docs/record-of-processing.md`` and ``.json``; ``samverkan ropa --check`` (and a unit test) fails
when a contract, an agreement or the vocabulary changed and the record was not regenerated: the
JSON carries the SHA-256 of every input. No timestamps, so regenerating an unchanged
configuration changes nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from samverkan.core.contracts import Column, Contract, common_model, contract_paths, load_contracts
from samverkan.core.settings import CONFIG_ROOT
from samverkan.sharing import legal_basis
from samverkan.sharing.agreements import Agreement, agreement_paths, load_agreements
from samverkan.sharing.recipient_pseudonyms import IDENTIFIER_COLUMNS

DOCS = CONFIG_ROOT / "docs"
RECORD_MD = DOCS / "record-of-processing.md"
RECORD_JSON = DOCS / "record-of-processing.json"
TRANSFERS = "none outside the EU/EEA: SFTP between the hub and the recipient's server in Sweden"


# --- the record as data -------------------------------------------------------------------------


def _all_columns(columns: tuple[Column, ...]) -> list[Column]:
    return [c for col in columns for c in (col, *_all_columns(col.fields))]


def _persons(contract: Contract) -> list[str]:
    """Categories of persons: the shared roles the contract maps its people to."""
    spec = contract.model.get("involvements")
    if not spec:
        return []
    role = spec["role"]
    return sorted(set(role["map"].values()) if "map" in role else {role["value"]})


def feed_record(contract: Contract) -> dict[str, Any]:
    personal = [
        {
            "field": c.name,
            "handling": c.handling,
            "method": (c.personal or {}).get("method"),
            "why": (c.personal or {}).get("why"),
        }
        for c in _all_columns(contract.columns)
        if c.personal
    ]
    roles = common_model()["roles"]
    return {
        "feed": contract.id,
        "contract_version": contract.version,
        "partner": contract.raw["partner"]["name"],
        "title": contract.title,
        "kind": contract.kind,
        "persons": [{"role": r, "description": roles.get(r, r)} for r in _persons(contract)],
        "personal_fields": personal,
        "published": list(contract.datasets),
        "quarantine_retention_days": contract.quarantine_retention_days,
    }


def _basis_record(basis: legal_basis.Basis) -> dict[str, Any]:
    return {"basis": basis.id, "purpose": basis.purpose, "grounds": basis.summary(), "article_10": basis.article_10}


def recipient_record(agreement: Agreement) -> dict[str, Any]:
    bases = legal_basis.column_bases(agreement.raw)
    detail = agreement.detail
    datasets = []
    for grant in agreement.datasets():
        entry: dict[str, Any] = {"dataset": grant.name}
        if grant.name in bases:
            entry["columns"] = [{"column": c, **_basis_record(b)} for c, b in bases[grant.name].items()]
        else:
            basis = legal_basis.dataset_basis(agreement.raw["datasets"][grant.name])
            entry["anonymous"] = "counts, fewer than the threshold suppressed" if grant.aggregate else "report"
            entry["suppression_threshold"] = grant.threshold
            if basis is not None:
                entry.update(_basis_record(basis))
        datasets.append(entry)
    return {
        "recipient": agreement.id,
        "name": agreement.recipient_name,
        "agreement_version": agreement.version,
        "purpose": " ".join(agreement.raw["recipient"]["purpose"].split()),
        "agreement_reference": agreement.raw["recipient"].get("legal_basis"),
        "granularity": agreement.granularity,
        "sources": list(agreement.sources),
        "datasets": datasets,
        "retention_days": agreement.retention_days,
        "safeguards": {
            "pseudonyms": f"every identifier ({', '.join(IDENTIFIER_COLUMNS)}) re-keyed into the recipient's own "
            f"domain, epoch {agreement.pseudonym_epoch}",
            "detail": {"time": detail.time, "place": detail.place} if detail else None,
            "k_anonymity": {
                "k": detail.k,
                "suppress": list(detail.suppress),
                "exception": " ".join(detail.exception.split()) if detail.exception else None,
            }
            if detail
            else None,
            "signed": "manifest signed (ssh-keygen -Y, namespace samverkan-delivery); disclosure register event",
        },
        "handover": agreement.mode,
        "transfers": TRANSFERS,
    }


def _inputs() -> dict[str, str]:
    files = [
        *contract_paths(),
        *agreement_paths(),
        legal_basis.VOCABULARY,
        CONFIG_ROOT / "schemas" / "common_model.yaml",
    ]
    return {f"{p.parent.name}/{p.name}": hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(files)}


def build() -> dict[str, Any]:
    vocab = legal_basis.vocabulary()
    return {
        "record": "GDPR art. 30 record of processing activities, generated by `samverkan ropa`",
        "controller": vocab["controller"],
        "purposes": vocab["purposes"],
        "legal_bases": vocab["bases"],
        "feeds": [feed_record(c) for c in load_contracts().values()],
        "hub_safeguards": [
            (
                "personal identifiers pseudonymised with a keyed hash (HMAC-SHA256) before publication; names dropped; "
                "free text scrubbed; addresses cut to the street, coordinates to 100 m, ages to bands"
            ),
            "raw files only in the private zone (mode 0700), quarantined data deleted after the contract's days",
            "every count leaving the hub suppressed below the agreement's threshold",
            "every disclosure in a hash-chained, signed register anchored at the recipients",
        ],
        "recipients": [recipient_record(a) for a in load_agreements().values()],
        "inputs": _inputs(),
    }


# --- the record as Markdown ---------------------------------------------------------------------


def markdown(record: dict[str, Any]) -> str:
    out = [
        "# Record of processing activities (GDPR art. 30)",
        "",
        (
            "Generated by `samverkan ropa` from the contracts, the agreements and "
            "`agreements/vocabulary/legal_bases.yaml`; do not edit by hand."
        ),
        "",
        f"**Controller:** {record['controller']['name']} ({record['controller']['contact']})",
        "",
        "## Purposes",
        "",
    ]
    out += [f"- `{k}`: {v}" for k, v in record["purposes"].items()]
    out += [
        "",
        "## Legal bases",
        "",
        "| id | regime | art. 6 | art. 9 / 10 | national provision |",
        "|---|---|---|---|---|",
    ]
    out += [
        f"| `{k}` | {b['regime']} | {b.get('gdpr_art6', '—')} | {b.get('article_9') or b.get('article_10') or '—'} "
        f"| {b['national']} |"
        for k, b in record["legal_bases"].items()
    ]
    out += ["", "## What the hub receives", ""]
    for f in record["feeds"]:
        persons = ", ".join(p["role"] for p in f["persons"]) or "none (no person rows)"
        out += [
            f"### {f['feed']}: {f['partner']}",
            "",
            f"{f['title']} (contract v{f['contract_version']}, {f['kind']}).",
            (
                f"Persons: {persons}. Published: {', '.join(f['published'])}. Quarantined data kept "
                f"{f['quarantine_retention_days']} days."
            ),
            "",
        ]
        out += ["| field | handling | why |", "|---|---|---|"]
        out += [
            f"| `{p['field']}` | {p['handling']}{' (' + p['method'] + ')' if p['method'] else ''} | {p['why'] or ''} |"
            for p in f["personal_fields"]
        ] + [""]
    out += ["## Safeguards at the hub", ""] + [f"- {s}" for s in record["hub_safeguards"]] + ["", "## Recipients", ""]
    for r in record["recipients"]:
        out += _recipient_markdown(r)
    out += ["## Inputs", "", "| file | sha256 |", "|---|---|"]
    out += [f"| `{k}` | `{v[:16]}…` |" for k, v in record["inputs"].items()]
    return "\n".join(out) + "\n"


def _recipient_markdown(r: dict[str, Any]) -> list[str]:
    s = r["safeguards"]
    out = [
        f"### {r['recipient']}: {r['name']}",
        "",
        (
            f"Agreement v{r['agreement_version']} ({r['agreement_reference']}), {r['granularity']}, sources "
            f"{', '.join(r['sources'])}. Purpose: {r['purpose']}"
        ),
        "",
        (
            f"Retention at the recipient: {r['retention_days']} days. Handover: {r['handover']}. "
            f"Transfers: {r['transfers']}."
        ),
        "",
        f"- pseudonyms: {s['pseudonyms']}",
        f"- signed: {s['signed']}",
    ]
    if s["detail"]:
        k = s["k_anonymity"]
        out += [
            f"- detail: time {s['detail']['time']}, place {s['detail']['place']}; k-anonymity k = {k['k']}"
            + (f", suppress {', '.join(k['suppress'])}" if k["suppress"] else "")
            + (f"; exception: {k['exception']}" if k["exception"] else "")
        ]
    out += ["", "| dataset | column | basis | purpose | grounds |", "|---|---|---|---|---|"]
    for d in r["datasets"]:
        if "columns" in d:
            out += [
                f"| {d['dataset']} | `{c['column']}` | `{c['basis']}` | {c['purpose']} | {c['grounds']} |"
                for c in d["columns"]
            ]
        else:
            threshold = f", threshold {d['suppression_threshold']}" if d["suppression_threshold"] else ""
            out += [
                (
                    f"| {d['dataset']} | (anonymous: {d['anonymous']}{threshold}) | {d.get('basis', '—')} | "
                    f"{d.get('purpose', '—')} | {d.get('grounds', '—')} |"
                )
            ]
    return out + [""]


# --- the command ----------------------------------------------------------------------------------


def render() -> tuple[str, str]:
    record = build()
    return markdown(record), json.dumps(record, indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def stale(md_path: Path = RECORD_MD, json_path: Path = RECORD_JSON) -> list[str]:
    """The committed files that differ from what the configuration gives now."""
    md, js = render()
    return [
        str(p.relative_to(CONFIG_ROOT))
        for p, text in ((md_path, md), (json_path, js))
        if not p.exists() or p.read_text(encoding="utf-8") != text
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="samverkan ropa", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail when the committed record is out of date")
    args = parser.parse_args(argv)
    if args.check:
        out_of_date = stale()
        for name in out_of_date:
            print(f"{name}: out of date; run `samverkan ropa`", file=sys.stderr)
        return 1 if out_of_date else 0
    md, js = render()
    RECORD_MD.write_text(md, encoding="utf-8")
    RECORD_JSON.write_text(js, encoding="utf-8")
    print(f"wrote {RECORD_MD.relative_to(CONFIG_ROOT)} and {RECORD_JSON.relative_to(CONFIG_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
