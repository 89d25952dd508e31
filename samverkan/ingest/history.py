"""Onboarding a partner's history: many nights of files through the nightly steps, without Airflow.

A partner joining the partnership sends what it has (a year of nightly files, or one large
export named like a nightly file) to its SFTP directory. Running the feed DAG once per night
would take a scheduler and a day; this runs the same steps (``pipeline.discover`` → ``fetch`` →
``process`` → ``summarise``, receipts delivered to the partner, quarantine retention applied)
over every night of a range in order, with the same manifests, ledger entries and receipts, and
a progress bar on stderr; two feeds at a time, each in its own process (``import_history``).

It lives in ``ingest`` (not ``orchestration``) because it needs nothing of Airflow: the caller
hands it a way to connect and the key. The command line reads the partner's connection the way
the DAG does (``SFTPSettings.from_airflow_connection``: ``AIRFLOW_CONN_*`` or a secrets backend)
and the key from a file or the Airflow variable's environment form.

Re-running is safe: discovery skips every file the ledger already settled, so a second run of the
same range ingests nothing and writes no manifest; a file re-sent with new content replaces its
night as in a nightly run. Late-file alerts are not sent: every night of a history is late.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from samverkan.connectors.sftp import SFTPConnector, SFTPSettings
from samverkan.core.contracts import Contract, load_contracts
from samverkan.core.forking import frozen_heap
from samverkan.core.ledger import Ledger
from samverkan.core.publishing import manifest_name
from samverkan.core.settings import CONFIG_ROOT, PSEUDONYM_SECRET_VARIABLE, Paths, secret_file_env, secret_variable_env
from samverkan.core.settings import paths as default_paths
from samverkan.ingest import pipeline
from samverkan.privacy.pseudonymise import Pseudonymiser, key_from_secret
from samverkan.quality import quarantine, receipts

log = logging.getLogger(__name__)

RUN_ID_PREFIX = "history"
# Where the DAG's tasks find the key (orchestration.task_secrets): a key file named by
# SAMVERKAN_PSEUDONYM_SECRET_FILE, else the Airflow variable (here: its environment form).
SECRET_FILE_ENV = secret_file_env(PSEUDONYM_SECRET_VARIABLE)
SECRET_ENV = secret_variable_env(PSEUDONYM_SECRET_VARIABLE)

Connect = Callable[[Contract], AbstractContextManager[SFTPConnector]]


@dataclass
class FeedHistory:
    """What one feed's import did: nights with files, files by outcome, rows."""

    feed: str
    nights: list[str] = field(default_factory=list)
    manifests: list[str] = field(default_factory=list)
    files: dict[str, int] = field(default_factory=dict)  # status -> count
    rows_received: int = 0
    rows_published: int = 0
    rows_quarantined: int = 0
    undelivered_receipts: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        files = ", ".join(f"{n} {s}" for s, n in sorted(self.files.items())) or "nothing new"
        return (
            f"{self.feed}: {len(self.nights)} night(s), files: {files}; received {self.rows_received:,} = "
            f"published {self.rows_published:,} + quarantined {self.rows_quarantined:,} "
            f"in {self.seconds:.1f} s"
        )


def history_run_id(night: date, started: datetime) -> str:
    """Like Airflow's ``manual__…`` ids: says what made the run, which night, and when it ran."""
    return f"{RUN_ID_PREFIX}__{night.isoformat()}__{started.strftime('%Y%m%dT%H%M%SZ')}"


def widened(contract: Contract, first: date, last: date) -> Contract:
    """The contract with a look-back window reaching from ``last`` back to ``first``.

    Discovery for the last night with this window is discovery of the whole history in one
    listing (and, for a quiet-period feed, one wait), under the feed's own completeness rule.
    """
    span = max((last - first).days, contract.lookback_days)
    raw = {**contract.raw, "file": {**contract.raw["file"], "lookback_days": span}}
    return dataclasses.replace(contract, raw=raw)


def nights_between(first: date, last: date) -> list[date]:
    if last < first:
        raise ValueError(f"the last night {last} is before the first {first}")
    return [date.fromordinal(d) for d in range(first.toordinal(), last.toordinal() + 1)]


def _progress(total: int, feed: str, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=f"{feed} history",
        unit="night",
        file=sys.stderr,
        disable=not enabled,
        dynamic_ncols=True,
        mininterval=0.5,
    )


def import_feed_history(
    contract: Contract,
    first: date,
    last: date,
    *,
    connect: Connect,
    pseudonymiser: Pseudonymiser,
    validator: Any,
    data: Paths,
    expectations_dir: Path,
    quiet_period_seconds: float | None = None,
    progress: bool = True,
    started: datetime | None = None,
) -> FeedHistory:
    """Discover the feed's unsettled files of ``first``..``last`` once, then run each night."""
    started = started or datetime.now(UTC)
    clock = time.perf_counter()
    data.ensure()
    ledger = Ledger(data.ledger)
    outcome = FeedHistory(contract.id)
    with connect(contract) as connector:
        found = pipeline.discover(
            widened(contract, first, last), connector, ledger, last, quiet_period_seconds=quiet_period_seconds
        )
        by_night: dict[str, list[dict[str, Any]]] = {}
        for candidate in found:
            if first.isoformat() <= candidate["night"] <= last.isoformat():
                by_night.setdefault(candidate["night"], []).append(candidate)
        with _progress(len(by_night), contract.id, progress) as bar:
            for night in sorted(by_night):
                _run_night(
                    contract,
                    connector,
                    ledger,
                    data,
                    pseudonymiser,
                    validator,
                    expectations_dir,
                    by_night[night],
                    history_run_id(date.fromisoformat(night), started),
                    outcome,
                )
                bar.update(1)
    quarantine.purge(contract, data, ledger)
    outcome.seconds = time.perf_counter() - clock
    return outcome


def _run_night(
    contract: Contract,
    connector: SFTPConnector,
    ledger: Ledger,
    data: Paths,
    pseudonymiser: Pseudonymiser,
    validator: Any,
    expectations_dir: Path,
    candidates: list[dict[str, Any]],
    run_id: str,
    outcome: FeedHistory,
) -> None:
    """One night as its DAG run would do it: fetch, process, receipts, manifest."""
    night = candidates[0]["night"]
    results, skipped = [], []
    for candidate in sorted(candidates, key=lambda c: c["name"]):
        landed = pipeline.fetch(contract, connector, ledger, data, candidate, run_id)
        if landed["action"] == "skip":
            skip = {k: landed[k] for k in ("name", "night", "sha256", "status", "reason")}
            skip["receipt"] = str(receipts.store(data.root, receipts.build(contract, skip, run_id=run_id)))
            skipped.append(skip)
            continue
        result = pipeline.result_dict(
            pipeline.process(
                contract,
                landed,
                data,
                ledger,
                pseudonymiser,
                validator,
                run_id=run_id,
                expectations_dir=expectations_dir,
            )
        )
        results.append(result)
    outcome.undelivered_receipts += _deliver(
        contract, connector, [r["receipt"] for r in results + skipped if r.get("receipt")]
    )
    manifest = pipeline.summarise(contract, data, results, skipped, run_id, night)
    pipeline.render_data_docs(contract, data, pipeline.data_docs_nights(results), run_id)
    outcome.nights.append(night)
    outcome.manifests.append(str(data.manifests(contract.id) / manifest_name(run_id)))
    for r in results + skipped:
        outcome.files[r["status"]] = outcome.files.get(r["status"], 0) + 1
    totals = manifest["totals"]
    outcome.rows_received += totals["rows_received"]
    outcome.rows_published += totals["rows_published"]
    outcome.rows_quarantined += totals["rows_quarantined"]


def _deliver(contract: Contract, connector: SFTPConnector, receipt_paths: list[str]) -> int:
    """Receipts to the partner, as the nightly run delivers them; returns how many failed.

    A failed upload leaves the hub's copy (reports/receipts/) and does not stop the history.
    """
    failed = 0
    for path in receipt_paths:
        try:
            receipts.deliver(contract, connector, Path(path))
        except Exception as exc:  # noqa: BLE001  any upload failure; names host and path, never content
            failed += 1
            log.warning("%s: receipt not delivered: %s: %s", contract.id, type(exc).__name__, exc)
    return failed


WORKERS = 2  # the hub's machines have two cores; a feed's nights stay in order in one process


def import_history(
    contracts: list[Contract], first: date, last: date, *, workers: int = WORKERS, **kwargs: Any
) -> list[FeedHistory]:
    """Every given feed's history (see ``import_feed_history``), ``workers`` feeds at a time.

    Feeds share nothing but the ledger (made for concurrent tasks) and the staging folder (each
    file its own names), and a feed's nights stay in order within its process, so the result
    is the serial one: the same run ids (one ``started``), files, quarantine and ledger. The
    workers are forked, so the caller's ``connect`` (often a closure over its servers) and
    validator need not be picklable; only each feed's ``FeedHistory`` comes back.
    """
    started = kwargs.pop("started", None) or datetime.now(UTC)
    workers = min(workers, len(contracts), os.cpu_count() or 1)
    if workers <= 1:
        return [import_feed_history(c, first, last, started=started, **kwargs) for c in contracts]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    token = id(contracts)
    _FORKED[token] = (contracts, first, last, {**kwargs, "started": started})
    try:
        with frozen_heap(), ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            return list(pool.map(_forked_feed, [token] * len(contracts), range(len(contracts))))
    finally:
        del _FORKED[token]


_FORKED: dict[int, tuple[list[Contract], date, date, dict[str, Any]]] = {}  # what forked workers inherit


def _forked_feed(token: int, index: int) -> FeedHistory:
    contracts, first, last, kwargs = _FORKED[token]
    return import_feed_history(contracts[index], first, last, **kwargs)


# --- the command line -------------------------------------------------------------------------


def airflow_connect(contract: Contract) -> AbstractContextManager[SFTPConnector]:
    """The partner's server, from the same Airflow connection the feed's DAG uses."""
    return SFTPConnector(SFTPSettings.from_airflow_connection(contract.connection_id))


def read_secret(secret_file: Path | None) -> str:
    """The key the feed DAGs use: --secret-file, else where the tasks look for it."""
    path = secret_file or os.environ.get(SECRET_FILE_ENV)
    if path:
        return Path(path).read_text(encoding="utf-8").strip()
    secret = os.environ.get(SECRET_ENV, "").strip()
    if not secret:
        raise SystemExit(
            f"give --secret-file (the pseudonymisation key), or set {SECRET_FILE_ENV} or {SECRET_ENV} as for the DAGs"
        )
    return secret


def _iter_feeds(names: list[str] | None) -> Iterator[Contract]:
    contracts = load_contracts()
    unknown = set(names or ()) - set(contracts)
    if unknown:
        raise SystemExit(f"unknown feed(s): {', '.join(sorted(unknown))}")
    for name in names or sorted(contracts):
        yield contracts[name]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m samverkan.ingest.history",
        description="Import a partner's history of nightly files (onboarding).",
    )
    parser.add_argument("--from", dest="first", type=date.fromisoformat, required=True, help="first night, YYYY-MM-DD")
    parser.add_argument("--to", dest="last", type=date.fromisoformat, required=True, help="last night, YYYY-MM-DD")
    parser.add_argument("--feed", action="append", help="only this feed (repeatable); default: every feed")
    parser.add_argument(
        "--secret-file", type=Path, help=f"the pseudonymisation key (default: ${SECRET_FILE_ENV}, else ${SECRET_ENV})"
    )
    parser.add_argument("--quiet-period-seconds", type=float, help="shorten a quiet-period feed's wait (files at rest)")
    parser.add_argument("--expectations-dir", type=Path, default=CONFIG_ROOT / "expectations")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--workers", type=int, default=WORKERS, help=f"feeds imported at once (default {WORKERS})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from samverkan.quality.validation import Validator

    pseudonymiser = Pseudonymiser(key_from_secret(read_secret(args.secret_file)))
    done = import_history(
        list(_iter_feeds(args.feed)),
        args.first,
        args.last,
        connect=airflow_connect,
        pseudonymiser=pseudonymiser,
        validator=Validator(),
        data=default_paths(),
        expectations_dir=args.expectations_dir,
        quiet_period_seconds=args.quiet_period_seconds,
        progress=not args.no_progress,
        workers=args.workers,
    )
    for feed in done:
        print(feed.line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
