"""Decompression and line bombs: what processing one costs, measured in a fresh process.

Issue 14, item 2. Each bomb is written streaming (never held in memory) into a temporary
directory and processed by the real pipeline (parsing, GE, Parquet) in a child process of its
own, whose peak RSS (``resource.getrusage``) is reported beside a good file's, so the figures
are the file's cost and not the test runner's. Used by the resilience test (small bombs) and
on the command line for the figures in docs/resilience.md::

    python -m devkit.bombs --mib 1024 4096          # every bomb kind at 1 GiB and 4 GiB decompressed
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import json
import os
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

NIGHT = date(2026, 11, 20)
CHUNK = 4 << 20
GOOD_TRANSIT = (
    '{"incident_id": "0f8fad5b-d9cb-469f-a165-%012d", "occurred_at": "2026-11-20T23:10:00+0100", '
    '"category": "THREAT", "persons": [{"role": "VICTIM", "approx_age": 30}]}\n'
)
POLICE_HEADER = (
    "Diarienr;Händelsetid;Registrerad;Plats;Koord_N;Koord_E;Händelsetyp;Roll;Personnummer;Namn;Ålder;Fritext"
)
GOOD_POLICE = "5000-K%d-26;2026-11-20 23:14;2026-11-21 00:02;Stortorget 3, Östersund;6997480;497120;Rån;Vittne;;;31;x"
# Limits that let a bomb through to the line reader: the worst case for memory is reading it all.
LIFTED = {"max_decompressed_bytes": 1 << 40, "max_compression_ratio": 1e9}


@dataclasses.dataclass(frozen=True)
class Bomb:
    kind: str  # jsonl-line | jsonl-zeros | csv-line | csv-gz-line
    feed: str
    name: str
    gzip: bool


KINDS = {
    "jsonl-line": Bomb("jsonl-line", "transit", "incidents-2026-11-20.jsonl.gz", True),
    "jsonl-zeros": Bomb("jsonl-zeros", "transit", "incidents-2026-11-20.jsonl.gz", True),
    "csv-line": Bomb("csv-line", "police", "polisen_handelser_20261120.csv", False),
    "csv-gz-line": Bomb("csv-gz-line", "police", "polisen_handelser_20261120.csv", True),
}


def _filler(kind: str) -> bytes:
    return b"\0" * CHUNK if kind == "jsonl-zeros" else b"x" * CHUNK


def write_bomb(kind: str, directory: Path, size: int, *, good_records: int = 20) -> Path:
    """A file holding ``good_records`` good records around one line of ``size`` bytes, streamed."""
    bomb = KINDS[kind]
    path = Path(directory) / bomb.name
    path.parent.mkdir(parents=True, exist_ok=True)
    csv_feed = bomb.feed == "police"
    encoding = "cp1252" if csv_feed else "utf-8"
    head = (POLICE_HEADER + "\r\n" if csv_feed else "").encode(encoding)
    good = [
        ((GOOD_POLICE % i) + "\r\n" if csv_feed else GOOD_TRANSIT % i).encode(encoding) for i in range(good_records)
    ]
    opener = gzip.open if bomb.gzip else open
    with opener(path, "wb") as out:  # type: ignore[operator]
        out.write(head + b"".join(good[:1]))
        if size:
            _write_line(out, kind, size, csv_feed)
        out.write(b"".join(good[1:]))
    return path


def _write_line(out, kind: str, size: int, csv_feed: bool) -> None:
    if kind != "jsonl-zeros":
        out.write(b"5000-K999-26;" if csv_feed else b'{"incident_id": "')
    filler, left = _filler(kind), size
    while left > 0:
        out.write(filler[:left])
        left -= len(filler)
    out.write(b"\r\n" if csv_feed else b"\n")


def write_good(feed: str, directory: Path, records: int = 20) -> Path:
    """A small good file of the same feed and kind: the baseline a bomb's peak RSS is read against."""
    kind = "csv-line" if feed == "police" else "jsonl-line"
    return write_bomb(kind, directory, 0, good_records=records)


# --- measuring, one child process per file ----------------------------------------------------


def measure(kind: str, path: Path, limits: dict[str, Any] | None = None, *, timeout: float = 1800) -> dict[str, Any]:
    """Process ``path`` in a child process; its outcome, seconds and peak RSS in MiB."""
    bomb = KINDS[kind]
    spec = {"feed": bomb.feed, "gzip": bomb.gzip, "path": str(path), "limits": limits or {}}
    env = {**os.environ, "GX_ANALYTICS_ENABLED": "False"}
    done = subprocess.run(
        [sys.executable, "-m", "devkit.bombs", "--child", json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=Path(__file__).resolve().parents[1],
    )
    if done.returncode != 0:
        raise RuntimeError(f"child failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _child(spec: dict[str, Any]) -> dict[str, Any]:
    from devkit.benchmark import land, process_measured
    from samverkan.core.contracts import load_contracts
    from samverkan.core.ledger import Ledger
    from samverkan.core.settings import Paths

    contract = load_contracts()[spec["feed"]]
    raw = {
        **contract.raw,
        "limits": {**contract.raw.get("limits", {}), **spec["limits"]},
        "format": {**contract.format, "compression": "gzip" if spec["gzip"] else "none"},
    }
    contract = dataclasses.replace(contract, raw=raw)
    source = Path(spec["path"])
    root = Path(tempfile.mkdtemp(prefix="bomb-hub-", dir=source.parent))
    paths = Paths(root).ensure()
    ledger = Ledger(paths.ledger)
    landed = land(paths, ledger, contract.id, NIGHT.isoformat(), source, "bombs", link=True)
    measured = process_measured(contract, landed, paths, ledger, bytes(range(32)), "bombs")
    result = measured.result
    return {
        "status": result.status,
        "reason": result.reason,
        "received": result.rows_received,
        "published": result.rows_published,
        "quarantined": result.rows_quarantined,
        "quarantine_reasons": result.quarantine_reasons,
        "ledger_status": ledger.entry(landed["entry_id"]).status,
        "seconds": round(measured.seconds, 2),
        "rss_before_mib": round(measured.rss_before_mib, 1),
        "peak_rss_mib": round(measured.peak_rss_mib, 1),
        "stored_mib": round(source.stat().st_size / 2**20, 2),
    }


# --- the figures for docs/resilience.md --------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, nargs="+", default=[1024, 4096], help="decompressed sizes in MiB")
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=list(KINDS))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(json.loads(args.child))))
        return 0
    rows = []
    with tempfile.TemporaryDirectory(prefix="bombs-") as tmp:
        for feed in ("transit", "police"):
            base = write_good(feed, Path(tmp) / f"good-{feed}")
            kind = "jsonl-line" if feed == "transit" else "csv-line"
            rows.append(("good file", feed, 0, "contract", measure(kind, base)))
        for mib in args.mib:
            for kind in args.kinds:
                path = write_bomb(kind, Path(tmp) / f"{kind}-{mib}", mib << 20)
                for label, limits in (("contract", None), ("ratio/size lifted", LIFTED)):
                    rows.append((kind, KINDS[kind].feed, mib, label, measure(kind, path, limits)))
                path.unlink()
    print("| input | feed | decompressed MiB | limits | stored MiB | outcome | seconds | peak RSS MiB |")
    print("|---|---|---|---|---|---|---|---|")
    for kind, feed, mib, label, r in rows:
        outcome = r["status"] if r["status"] == "rejected" else f"{r['status']}, {r['quarantined']} quarantined"
        print(
            f"| {kind} | {feed} | {mib} | {label} | {r['stored_mib']} | {outcome} ({r['ledger_status']}) | "
            f"{r['seconds']} | {r['peak_rss_mib']} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
