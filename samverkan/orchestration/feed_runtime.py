"""What a task needs from its environment: connections, the secret, the data root.

Imported inside tasks only. Credentials come from Airflow connections (one per partner, with
the pinned host key in the ``host_key`` extra) and the pseudonymisation secret from an Airflow
Variable, so a secrets backend can hold both; the secret is registered with Airflow's log
masker the moment it is read.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from samverkan.connectors.sftp import HostKeyError, SFTPConnector, SFTPSettings
from samverkan.core.contracts import Contract
from samverkan.core.fsutil import restrict_umask
from samverkan.core.ledger import Ledger, ledger_location
from samverkan.core.settings import paths
from samverkan.ingest import pipeline
from samverkan.orchestration.task_secrets import PSEUDONYM_SECRET_VARIABLE, read_secret
from samverkan.privacy.pseudonymise import Pseudonymiser, key_from_secret
from samverkan.quality import receipts

if TYPE_CHECKING:
    from samverkan.quality.validation import Validator

log = logging.getLogger(__name__)
restrict_umask()  # imported inside tasks only: everything a task creates is for the hub and its group


@contextmanager
def _connector(contract: Contract) -> Iterator[SFTPConnector]:
    """A connected SFTP client; a refused host key fails the task at once: retrying cannot make
    a different machine the partner's, and every retry would hand it our credentials again."""
    from airflow.sdk.exceptions import AirflowFailException

    try:
        with SFTPConnector(SFTPSettings.from_airflow_connection(contract.connection_id)) as connector:
            yield connector
    except HostKeyError as refused:
        raise AirflowFailException(f"{contract.id}: {refused} (not retried; check the partner's host key)") from refused


def _ledger() -> Ledger:
    return Ledger(ledger_location(paths().ensure().ledger))


def pseudonymiser_from_airflow() -> Pseudonymiser:
    return Pseudonymiser(key_from_secret(read_secret(PSEUDONYM_SECRET_VARIABLE)))


def _quiet_period_override(contract: Contract) -> float | None:
    from airflow.sdk import BaseHook

    value = BaseHook.get_connection(contract.connection_id).extra_dejson.get("quiet_period_seconds")
    return float(value) if value is not None else None


def checked_at(logical_date: datetime | None) -> datetime:
    """The moment a run checks a deadline: now, or its logical date when that is later.

    A scheduled run's logical date is its start; a replayed or test run for an old or future
    morning judges lateness as of that morning, so a run of the night's schedule always sees
    what an on-time run would have seen.
    """
    now = datetime.now(UTC)
    return max(now, logical_date) if logical_date is not None else now


def discover(
    contract: Contract,
    night: date,
    *,
    run_id: str = "manual",
    logical_date: datetime | None = None,
    reprocess: bool = False,
    context: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    ledger = _ledger()
    when = checked_at(logical_date)

    def missing(run_night: date) -> None:
        due = contract.deadline_for(run_night)
        if due is None or when < due:
            log.info("%s: no complete file for night %s yet; due %s", contract.id, run_night, due)
            return
        log.warning("%s: night %s is late: no complete file by the deadline %s", contract.id, run_night, due)
        from samverkan.quality import alerts

        alerts.feed_late(
            ledger,
            contract,
            run_night.isoformat(),
            due.isoformat(timespec="minutes"),
            dag_id=f"samverkan_{contract.id}",
            run_id=run_id,
            context=context,
        )

    with _connector(contract) as connector:
        return pipeline.discover(
            contract,
            connector,
            ledger,
            night,
            quiet_period_seconds=_quiet_period_override(contract),
            on_missing=missing,
            reprocess=reprocess,
        )


def fetch(contract: Contract, candidate: dict[str, Any], run_id: str, *, reprocess: bool = False) -> dict[str, Any]:
    with _connector(contract) as connector:
        return pipeline.fetch(contract, connector, _ledger(), paths().ensure(), candidate, run_id, reprocess=reprocess)


def process(
    contract: Contract,
    landed: dict[str, Any],
    run_id: str,
    expectations_dir: Path,
    context: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    result = process_landed(contract, landed, run_id, expectations_dir, pseudonymiser_from_airflow)
    result["receipt_delivered"] = deliver_receipts(contract, [result["receipt"]]) == []
    if result.get("status") == "rejected":
        from samverkan.quality import alerts

        alerts.file_rejected(
            _ledger(), contract, result, dag_id=f"samverkan_{contract.id}", run_id=run_id, context=context
        )
    return result


@functools.cache
def _validator() -> Validator:
    """One GE context per process: a task process builds it once; a process that runs many files
    (``airflow dags test``, the benchmark) keeps GE's context and remembered verdicts between them."""
    from samverkan.quality.validation import Validator

    return Validator()


def process_landed(
    contract: Contract,
    landed: dict[str, Any],
    run_id: str,
    expectations_dir: Path,
    pseudonymiser: Callable[[], Pseudonymiser],
) -> dict[str, Any]:
    """``process_file`` up to the partner: the landed file processed, or a skipped one's receipt;
    the receipt is left for ``process`` to deliver (no Airflow and no SFTP in here). The secret
    is read only for a file that is processed."""
    if landed.get("action") == "skip":
        result = {
            "feed": contract.id,
            "name": landed["name"],
            "night": landed["night"],
            "sha256": landed.get("sha256"),
            "status": landed["status"],
            "reason": landed["reason"],
        }
        if landed["status"] != "claimed":  # a file another run is receiving gets its receipt from that run
            result["receipt"] = str(
                receipts.store(paths().ensure().root, receipts.build(contract, result, run_id=run_id))
            )
    else:
        result = asdict(
            pipeline.process(
                contract,
                landed,
                paths().ensure(),
                _ledger(),
                pseudonymiser(),
                _validator(),
                run_id=run_id,
                expectations_dir=expectations_dir,
            )
        )
    return result


def deliver_receipts(contract: Contract, receipt_paths: list[str]) -> list[str]:
    """Upload receipts to the partner; returns those that could not be delivered (retried later).

    A receipt that cannot be delivered does not undo the file's processing: the data is
    published, and the run's last task tries again and fails loudly if the partner's server
    still refuses.
    """
    if not receipt_paths:
        return []
    try:
        with _connector(contract) as connector:
            for path in receipt_paths:
                receipts.deliver(contract, connector, Path(path))
    except Exception as exc:  # the error names host and path, never file content
        log.warning("%s: receipt(s) not delivered to the partner yet: %s: %s", contract.id, type(exc).__name__, exc)
        return list(receipt_paths)
    return []


def summarise(
    contract: Contract, landed: list[dict[str, Any]], results: list[dict[str, Any]], run_id: str, night: date
) -> dict[str, Any]:
    manifest, failed = record_run(contract, landed, results, run_id, night)
    undelivered = deliver_receipts(
        contract, [r["receipt"] for r in results if r and r.get("receipt") and not r.get("receipt_delivered")]
    )
    if failed:
        raise RuntimeError(f"{len(failed)} file(s) could not be processed: {', '.join(f['name'] for f in failed)}")
    if undelivered:
        raise RuntimeError(f"{len(undelivered)} receipt(s) could not be delivered to the partner; the task retries")
    return {**manifest["totals"], "data_docs": manifest["data_docs"]}


def record_run(
    contract: Contract, landed: list[dict[str, Any]], results: list[dict[str, Any]], run_id: str, night: date
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``write_manifest`` up to the partner: the run's manifest and the quarantine's retention;
    returns the manifest and the landed files no task processed (no Airflow, no SFTP in here)."""
    processed = [r for r in results if r and r.get("status") in ("published", "rejected")]
    skipped = [r for r in results if r and r.get("status") not in ("published", "rejected")]
    done = {r["name"] for r in results if r}
    failed = [
        {
            "name": f["name"],
            "night": f["night"],
            "sha256": f.get("sha256"),
            "status": "failed",
            "reason": "processing task failed; see its log",
        }
        for f in landed
        if f and f["name"] not in done
    ]
    manifest = pipeline.summarise(contract, paths().ensure(), processed, skipped + failed, run_id, night.isoformat())
    from samverkan.quality import quarantine

    quarantine.purge(contract, paths().ensure(), _ledger())
    return manifest, failed


def render_data_docs(contract: Contract, results: list[dict[str, Any]], run_id: str) -> dict[str, str]:
    """The Data Docs pages of the nights this run processed, after its manifest: nothing the
    run publishes waits for GE's page renderer (night → URL in the Airflow UI)."""
    return pipeline.render_data_docs(contract, paths().ensure(), pipeline.data_docs_nights(results), run_id)
