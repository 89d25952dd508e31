"""Working with the quarantine: list what was held back, re-process a night, apply retention.

The quarantine is per feed and lives in the private zone only:

    private/quarantine/<feed>/rows/night=…/source=<feed>/<file>.parquet   one row per held-back record:
        record number in the source file, failed check(s), reasons, the raw record (as sent)
    private/quarantine/<feed>/files/<night>/<file>                          files rejected whole

and the ledger keeps its lifecycle: a quarantine is ``open`` when a file is processed with
held-back records (or rejected), ``resolved`` when a later version of the same file is published
(the partner sent a correction; that version replaces the partition, its own quarantine file
replaces the old one), ``expired`` when the contract's ``quality.quarantine_retention_days`` have
passed and the held-back data was deleted.

Command line (uses the hub's environment: ``SAMVERKAN_DATA_ROOT`` and, for ``reprocess``,
Airflow's)::

    python -m samverkan.quality.quarantine list --feed police --night 2026-11-20
    python -m samverkan.quality.quarantine reprocess --feed police --night 2026-11-20 [--force] [--trigger]
    python -m samverkan.quality.quarantine purge [--feed police] [--dry-run]

``list`` prints record numbers, checks and reasons, never the raw records: whoever needs those
reads the Parquet file it names, inside the private zone.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from samverkan.core.contracts import Contract, load_contracts
from samverkan.core.ledger import Ledger, ledger_location
from samverkan.core.settings import Paths
from samverkan.core.settings import paths as default_paths

# --- reading --------------------------------------------------------------------------------


def row_files(paths: Paths, feed: str, night: str) -> list[Path]:
    return sorted((paths.quarantine_rows(feed) / f"night={night}" / f"source={feed}").glob("*.parquet"))


def quarantined_rows(paths: Paths, feed: str, night: str) -> list[dict[str, Any]]:
    """The held-back records of a night without their raw content: file, record, checks, reasons."""
    import pyarrow.parquet as pq

    rows = []
    for path in row_files(paths, feed, night):
        table = pq.read_table(path, columns=["source_file", "sha256", "record", "failed_checks", "reasons"])
        for row in table.to_pylist():
            rows.append({**row, "parquet": str(path)})
    return sorted(rows, key=lambda r: (r["source_file"], r["record"]))


def night_status(paths: Paths, ledger: Ledger, feed: str, night: str) -> dict[str, Any]:
    """Everything the quarantine holds for a feed and night, plus the ledger's view of it."""
    entries = ledger.quarantines(feed=feed, night=night)
    rows = quarantined_rows(paths, feed, night)
    open_shas = {e.sha256 for e in entries if e.status == "open"}
    return {
        "feed": feed,
        "night": night,
        "quarantines": [asdict(e) for e in entries],
        "rows": [r for r in rows if r["sha256"] in open_shas],
        "rejected_files": [
            str(paths.quarantine_files(feed) / night / e.name)
            for e in entries
            if e.kind == "file" and e.status == "open"
        ],
    }


def format_status(status: dict[str, Any]) -> str:
    lines = [f"Quarantine of feed {status['feed']}, night {status['night']}"]
    if not status["quarantines"]:
        lines.append("  nothing was held back for this night")
    for q in status["quarantines"]:
        closed = f", {q['note']}" if q.get("note") else ""
        lines.append(
            f"  {q['name']} (sha256 {str(q['sha256'])[:12]}…, ledger entry {q['entry_id']}): "
            f"{q['kind']} quarantine, {q['rows']} record(s), {q['status']}{closed}"
        )
        if q["kind"] == "file" and q.get("reason"):
            reason = q["reason"].split("; header was:", 1)[0]
            lines.append(f"    file rejected: {reason}")
    if status["rows"]:
        lines.append("  held-back records (raw records are in the Parquet files below, private zone only):")
        for r in status["rows"]:
            lines.append(
                f"    {r['source_file']} record {r['record']}: {', '.join(r['failed_checks'])}: {r['reasons']}"
            )
        for path in sorted({r["parquet"] for r in status["rows"]}):
            lines.append(f"  parquet: {path}")
    for path in status["rejected_files"]:
        lines.append(f"  rejected file kept at: {path}")
    return "\n".join(lines)


# --- retention --------------------------------------------------------------------------------


def purge(
    contract: Contract, paths: Paths, ledger: Ledger, *, today: date | None = None, dry_run: bool = False
) -> list[Path]:
    """Delete held-back data of nights older than the contract's retention; returns what went.

    Runs at the end of every feed run, so retention needs no separate job. The ledger keeps
    that the data existed (counts and reasons), marked ``expired``.
    """
    today = today or datetime.now(UTC).date()
    cutoff = today - timedelta(days=contract.quarantine_retention_days)
    removed = []
    for directory, night in _night_dirs(paths, contract.id):
        if night < cutoff:
            removed.append(directory)
            if not dry_run:
                shutil.rmtree(directory, ignore_errors=True)
    if not dry_run:
        for entry in ledger.quarantines(feed=contract.id):
            if entry.status != "expired" and date.fromisoformat(entry.night) < cutoff:
                ledger.expire_quarantine(entry.entry_id, f"deleted after {contract.quarantine_retention_days} days")
    return removed


def _night_dirs(paths: Paths, feed: str):
    for directory in sorted(paths.quarantine_rows(feed).glob("night=*")):
        night = _night(directory.name.removeprefix("night="))
        if night:
            yield directory, night
    for directory in sorted(paths.quarantine_files(feed).glob("*")):
        night = _night(directory.name)
        if night and directory.is_dir():
            yield directory, night


def _night(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


# --- re-processing ------------------------------------------------------------------------------


def reprocess_command(feed: str, night: str, *, force: bool = False, trigger: bool = False) -> list[str]:
    """The Airflow command that re-processes ``night``: a real DAG run, visible in the UI.

    Without ``trigger`` the run happens here and now (``airflow dags test``, no scheduler
    needed); with it, the run is queued for the deployment's scheduler. The run finds the
    partner's corrected file because its name, size or time changed; ``force`` processes the
    night's files again even if they did not.
    """
    conf = json.dumps({"night": night, "reprocess": force})
    airflow = str(Path(sys.executable).parent / "airflow")
    if trigger:
        return [airflow, "dags", "trigger", f"samverkan_{feed}", "--conf", conf]
    return [airflow, "dags", "test", f"samverkan_{feed}", "--conf", conf]


def reprocess(
    feed: str, night: str, *, force: bool = False, trigger: bool = False, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        reprocess_command(feed, night, force=force, trigger=trigger),
        env={**os.environ, **(env or {})},
        text=True,
        capture_output=True,
    )


# --- command line -------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m samverkan.quality.quarantine", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    show = commands.add_parser("list", help="held-back records and files of a feed's night (no raw values)")
    again = commands.add_parser("reprocess", help="run the feed's DAG for a night again (after a corrected re-send)")
    for sub in (show, again):
        sub.add_argument("--feed", required=True, choices=sorted(load_contracts()))
        sub.add_argument("--night", required=True, type=date.fromisoformat)
    show.add_argument("--json", action="store_true", help="machine-readable output")
    again.add_argument("--force", action="store_true", help="process the night's files even if unchanged")
    again.add_argument(
        "--trigger", action="store_true", help="queue the run for the scheduler instead of running it here"
    )
    clean = commands.add_parser("purge", help="apply the contracts' quarantine retention now")
    clean.add_argument("--feed", choices=sorted(load_contracts()))
    clean.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)

    paths = default_paths()
    ledger = Ledger(ledger_location(paths.ensure().ledger))
    if args.command == "list":
        status = night_status(paths, ledger, args.feed, args.night.isoformat())
        print(json.dumps(status, indent=2, ensure_ascii=False) if args.json else format_status(status))
        return 0
    if args.command == "purge":
        for feed, contract in load_contracts().items():
            if args.feed in (None, feed):
                for path in purge(contract, paths, ledger, dry_run=args.dry_run):
                    print(f"{'would delete' if args.dry_run else 'deleted'} {path}")
        return 0
    done = reprocess(args.feed, args.night.isoformat(), force=args.force, trigger=args.trigger)
    if done.returncode != 0:
        print(f"the Airflow run failed (exit {done.returncode}); see its task logs in the Airflow UI", file=sys.stderr)
        return done.returncode
    if args.trigger:
        print(f"queued a run of samverkan_{args.feed} for night {args.night}")
        return 0
    print(format_status(night_status(paths, ledger, args.feed, args.night.isoformat())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
