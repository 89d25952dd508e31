"""The steps of a feed's nightly run, as plain functions the DAG tasks call.

discover → fetch → process → summarise. Each step takes what it needs as arguments (contract,
connector, ledger, key) so it runs the same under Airflow, in a test, or in the benchmark; only
``samverkan.orchestration.feed_dags`` knows about Airflow. A problem with one file is that file's outcome
(rejected, quarantined rows), never an exception that stops the other files or partners.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from samverkan.connectors.completeness import Observation, observe, select_complete
from samverkan.connectors.sftp import RemoteFile, SFTPConnector
from samverkan.core.arrowops import use_hub_memory_pool
from samverkan.core.contracts import Contract
from samverkan.core.ledger import Ledger
from samverkan.core.publishing import (
    SCHEMA_VERSION,
    StagedParquet,
    manifest_name,
    partition_file,
    sweep_staging,
    write_json_atomic,
)
from samverkan.core.settings import Paths
from samverkan.ingest import duplicates
from samverkan.ingest.model import (
    INCIDENT_IDS_SCHEMA,
    PERSON_FLAG,
    SOURCE_TYPE,
    FeedModel,
    first_in_batch,
    normalised,
    person_fields,
    with_personnummer,
)
from samverkan.ingest.parallel import default_workers, ordered_map
from samverkan.ingest.parsing import (
    ROW,
    Batch,
    FileInfo,
    FileRejected,
    LimitExceeded,
    count_records,
    public_column_names,
    read_batches,
)
from samverkan.privacy.pseudonymise import Pseudonymiser
from samverkan.quality import receipts, reports

if TYPE_CHECKING:
    from samverkan.quality.validation import BatchOutcome

log = logging.getLogger(__name__)

MAX_INLINE_QUIET_WAIT = 300  # seconds a discover task may wait for a quiet period itself

QUARANTINE_SCHEMA = pa.schema(
    [
        ("source", SOURCE_TYPE),
        ("source_file", pa.string()),
        ("sha256", pa.string()),
        ("night", pa.string()),
        ("record", pa.int64()),
        ("failed_checks", pa.list_(pa.string())),
        ("reasons", pa.string()),
        ("raw_record", pa.string()),
        # True: the record's only faults are in person fields; its incident was published (item 10)
        ("held_for_correction", pa.bool_()),
    ]
)


# --- discover -----------------------------------------------------------------------------


def nights_in_window(run_night: date, lookback_days: int) -> set[date]:
    return {run_night - timedelta(days=d) for d in range(lookback_days + 1)}


def _safe_name(name: str) -> bool:
    return "/" not in name and "\\" not in name and not name.startswith(".") and "\x00" not in name


def discover(
    contract: Contract,
    connector: SFTPConnector,
    ledger: Ledger,
    run_night: date,
    *,
    now: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    quiet_period_seconds: float | None = None,
    on_missing: Callable[[date], None] | None = None,
    reprocess: bool = False,
) -> list[dict[str, Any]]:
    """Complete, not yet settled files for the run's night and the look-back window before it.

    A deployment may shorten or lengthen a quiet period (connection extra
    ``quiet_period_seconds``); the contract's rule is the default. ``on_missing`` is called
    when the run's own night has no complete file, neither now nor in the ledger (the caller
    decides whether that is late). ``reprocess`` also returns the run night's settled files,
    so a night can be processed again on purpose.
    """
    window = nights_in_window(run_night, contract.lookback_days)
    rule = dict(contract.completeness)
    if rule["rule"] == "quiet_period" and quiet_period_seconds is not None:
        rule["seconds"] = quiet_period_seconds
    selection = _select(contract, connector, ledger, window, now(), rule)
    waiting = [p for p in selection.pending if rule["rule"] == "quiet_period"]
    if waiting and rule["seconds"] <= MAX_INLINE_QUIET_WAIT:
        log.info(
            "%s: %d file(s) still settling; waiting the %ss quiet period", contract.id, len(waiting), rule["seconds"]
        )
        sleep(rule["seconds"])
        selection = _select(contract, connector, ledger, window, now(), rule)
    for remote, why in selection.pending:
        log.info("%s: not complete yet: %s (%s)", contract.id, remote.name, why)
    found = []
    for remote in selection.complete:
        night = contract.night_of(remote.name)
        if night is None:  # _select keeps only names that carry a night of the window
            raise ValueError(f"{contract.id}: {remote.name!r} is complete but carries no night")
        again = reprocess and night == run_night
        if not again and ledger.is_settled(contract.id, remote.name, remote.size, remote.mtime):
            continue
        found.append({"name": remote.name, "size": remote.size, "mtime": remote.mtime, "night": night.isoformat()})
    log.info("%s: %d new complete file(s) for nights %s..%s", contract.id, len(found), min(window), max(window))
    if on_missing is not None and not _night_arrived(contract, ledger, selection.complete, run_night):
        on_missing(run_night)
    return found


def _night_arrived(contract: Contract, ledger: Ledger, complete: list[RemoteFile], night: date) -> bool:
    """A complete file for ``night`` is on the server now, or one was received before."""
    if any(contract.night_of(f.name) == night for f in complete):
        return True
    return any(e.night == night.isoformat() for e in ledger.entries(contract.id))


def _select(
    contract: Contract, connector: SFTPConnector, ledger: Ledger, window: set[date], now: float, rule: dict[str, Any]
):
    listing = connector.list(contract.directory)
    in_window = []
    for f in listing:
        base = f.name
        suffix = rule.get("marker_suffix") or rule.get("temp_suffix")
        if suffix and base.endswith(suffix):
            base = base[: -len(suffix)]
        night = contract.night_of(base)
        if night in window and _safe_name(f.name):
            in_window.append(f)
        elif night and night > max(window):
            log.info("%s: %s is for a later night; left for its own run", contract.id, f.name)
    previous = {n: Observation(*v) for n, v in ledger.observations(contract.id).items()}
    updated = observe(in_window, previous, now)
    if rule["rule"] == "quiet_period":
        ledger.save_observations(contract.id, {n: (o.size, o.mtime, o.first_seen) for n, o in updated.items()})
    return select_complete(in_window, rule, contract.file_regex, updated, now)


# --- fetch --------------------------------------------------------------------------------


def fetch(
    contract: Contract,
    connector: SFTPConnector,
    ledger: Ledger,
    paths: Paths,
    candidate: dict[str, Any],
    run_id: str | None,
    *,
    reprocess: bool = False,
) -> dict[str, Any]:
    """Land one file and decide whether its content is new (``reprocess``: process it even if not)."""
    name, night = candidate["name"], candidate["night"]
    if not ledger.claim(contract.id, name, candidate["size"], candidate["mtime"], run_id, again=reprocess):
        reason = "received by another run (discovered by both at the same time)"
        log.info("%s: %s not fetched: %s", contract.id, name, reason)
        return {"entry_id": None, "name": name, "night": night, "action": "skip", "status": "claimed", "reason": reason}
    target = paths.landing(contract.id, night) / name
    remote_path = f"{contract.directory.rstrip('/')}/{name}"
    download = connector.download(remote_path, target)
    entry_id = ledger.record_landed(contract.id, name, night, download.size, download.mtime, download.sha256, run_id)
    landed = {
        "entry_id": entry_id,
        "name": name,
        "night": night,
        "path": str(target),
        "sha256": download.sha256,
        "size": download.size,
        "action": "process",
    }
    known = None if reprocess else ledger.known_content(contract.id, download.sha256)
    if known is not None:
        status = "unchanged" if known.name == name else "duplicate"
        reason = (
            f"same content as {known.name} (night {known.night}), already {known.status}"
            if status == "duplicate"
            else "same content as already received; only the timestamp changed"
        )
        ledger.settle(entry_id, status, reason)
        target.unlink(missing_ok=True)
        landed.update(action="skip", status=status, reason=reason)
        log.info("%s: %s not processed: %s", contract.id, name, reason)
    else:
        log.info("%s: landed %s (%d bytes, sha256 %s)", contract.id, name, download.size, download.sha256)
    return landed


# --- process ------------------------------------------------------------------------------


@dataclass
class FileResult:
    feed: str
    name: str
    night: str
    sha256: str
    status: str
    reason: str | None = None
    rows_received: int = 0
    rows_published: int = 0
    rows_quarantined: int = 0
    rows_held_for_correction: int = 0  # published (without the faulty person values) and kept in quarantine too
    incidents: int = 0
    involvements: int = 0
    observations: int = 0  # rows of an aggregate feed (place × slot × measure)
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    held_for_correction_reasons: dict[str, int] = field(default_factory=dict)
    unexpected_columns: list[str] = field(default_factory=list)  # plain names only, of an accepted file
    unexpected_columns_withheld: int = 0  # names not shown: not plain identifiers, or the file was rejected
    expectations: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    receipt: str | None = None  # the hub's copy, under reports/receipts/; delivered by the runtime
    data_docs: str | None = None  # the night's Data Docs page, relative to the Airflow UI

    def balance_line(self) -> str:
        held = (
            f"; {self.rows_held_for_correction} published held for correction" if self.rows_held_for_correction else ""
        )
        return (
            f"{self.feed}/{self.name}: received {self.rows_received} = published {self.rows_published}"
            f" + quarantined {self.rows_quarantined} ({self.status}){held}"
        )


def _int_text(raw: pa.Array) -> pa.Array:
    """The number a whole-number text stands for (else null), for the range check. Whitespace
    around it is trimmed before the cast (the cast refuses it, quoting the value); a number too
    long for a float is ±1e300, so it is out of any range instead of unchecked."""
    text = pc.utf8_trim_whitespace(raw)
    ok = pc.fill_null(pc.match_substring_regex(text, r"^-?[0-9]+$"), False)
    huge = pc.and_(ok, pc.greater(pc.utf8_length(text), 300))
    text = pc.if_else(huge, pc.if_else(pc.starts_with(text, "-"), "-1e300", "1e300"), text)
    return pc.if_else(ok, text, pa.scalar(None, pa.string())).cast(pa.float64())


def check_frame(contract: Contract, table: pa.Table, night: date, *, arrow: bool = False):
    """The frame Great Expectations validates: raw text plus helper columns it cannot derive."""
    columns: dict[str, pa.Array] = {ROW: table.column(ROW).combine_chunks()}
    for c in contract.columns:
        if c.type == "array":
            continue
        raw = table.column(c.name).combine_chunks()
        columns[c.name] = raw
        if c.type == "integer":
            columns[f"{c.name}__int"] = _int_text(raw)
        if c.type == "personnummer":
            _, status = normalised(table, c.name, night)
            columns[f"{c.name}__status"] = pc.if_else(pc.equal(status, "empty"), pa.scalar(None, pa.string()), status)
    return pa.table(columns) if arrow else pa.table(columns).to_pandas()


def array_check_frame(contract: Contract, table: pa.Table, array_name: str, *, arrow: bool = False):
    column = contract.column(array_name)
    lists = table.column(array_name).combine_chunks()
    parent = pc.list_parent_indices(lists)
    flat = pc.list_flatten(lists)
    starts = pc.take(lists.offsets, parent)
    import numpy as np

    item = pc.subtract(pa.array(np.arange(len(flat), dtype=np.int64)), starts.cast(pa.int64()))
    columns: dict[str, pa.Array] = {ROW: pc.take(table.column(ROW).combine_chunks(), parent), "_item": item}
    for f in column.fields:
        columns[f.name] = flat.field(f.name)
        if f.type == "integer":
            columns[f"{f.name}__int"] = _int_text(flat.field(f.name))
    return pa.table(columns) if arrow else pa.table(columns).to_pandas()


def load_suites(contract: Contract, expectations_dir: Path) -> dict[str, dict[str, Any]]:
    suites = {"rows": json.loads((expectations_dir / f"{contract.id}.json").read_text(encoding="utf-8"))}
    for c in contract.columns:
        if c.type == "array":
            suites[c.name] = json.loads((expectations_dir / f"{contract.id}.{c.name}.json").read_text(encoding="utf-8"))
    return suites


@dataclass
class _BatchWork:
    """What mapping one batch gave, for its file's run to apply in order: picklable (a worker
    process sends it back), check frames cut to the failing records (all the samples read)."""

    parts: list[tuple[str, BatchOutcome, pa.Table]] = field(default_factory=list)  # part, outcome, failing rows
    table_failures: list[str] = field(default_factory=list)
    failures: dict[int, list[str]] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    held: dict[int, set[str]] = field(default_factory=dict)
    failed: pa.Table | None = None  # the failed records, the contract's columns
    valid_rows: int = 0
    outputs: list[pa.Table] = field(default_factory=list)  # one per staged dataset, published then private
    incident_keys: pa.Array | None = None  # deferred incidents: each valid row's key,
    first_in_batch: pa.Array | None = None  # and which rows the incidents table holds


class _FileRun:
    """State of one file being processed: staged outputs, counts, validation outcomes."""

    def __init__(self, contract, landed, paths: Paths, pseudonymiser, validator, suites, run_id):
        self.contract = contract
        self.landed = landed
        self.paths = paths
        self.validator = validator
        self.suites = suites
        self.night = date.fromisoformat(landed["night"])
        self.model = FeedModel(contract, pseudonymiser, self.night, landed["name"])
        meta = {
            "samverkan.schema_version": str(SCHEMA_VERSION),
            "samverkan.contract_version": str(contract.version),
            "samverkan.source_sha256": landed["sha256"],
            "samverkan.run_id": run_id or "",
        }
        # One staged file per dataset of the feed's kind (incident-only: no involvements file).
        self.published = {
            name: (
                StagedParquet(
                    partition_file(paths.dataset(name), landed["night"], contract.id, landed["name"]),
                    schema,
                    paths.staging,
                    meta,
                ),
                make,
            )
            for name, (schema, make) in self.model.outputs().items()
        }
        self.quarantine = StagedParquet(
            partition_file(paths.quarantine_rows(contract.id), landed["night"], contract.id, landed["name"]),
            QUARANTINE_SCHEMA,
            paths.staging,
            meta,
        )
        # Private: from a published (keyed) incident id back to the partner's key, for corrections.
        self.private = (
            {
                "incident_ids": (
                    StagedParquet(
                        partition_file(paths.incident_ids, landed["night"], contract.id, landed["name"]),
                        INCIDENT_IDS_SCHEMA,
                        paths.staging,
                        meta,
                    ),
                    self.model.incident_id_map,
                )
            }
            if "incidents" in contract.datasets
            else {}
        )
        self.outcomes: list[BatchOutcome] = []
        self.valid_rows = 0
        self.quarantined_rows = 0
        self.held_rows = 0
        self.held_by_check: dict[str, list[int]] = {}
        self.repeats = duplicates.Repeats()
        self.person_fields = person_fields(contract)
        self.reason_counts: dict[str, int] = {}
        self.reason_texts: dict[str, str] = {}
        self.rows_by_check: dict[str, list[int]] = {}
        self.samples = reports.SampleCollector()
        self.info = FileInfo()

    def staged(self) -> list[StagedParquet]:
        return [staged for staged, _ in [*self.published.values(), *self.private.values()]] + [self.quarantine]

    def rows(self, dataset: str) -> int:
        return self.published[dataset][0].rows if dataset in self.published else 0

    def handle(self, batch: Batch) -> None:
        """One batch, start to end, in this process (the serial path)."""
        table, repeats = self._drop_repeats(batch.table)
        self.apply(repeats, self.map_batch(table), batch.bad_records)

    def handle_all(self, batches: Iterable[Batch], workers: int) -> None:
        """Every batch of the file, mapped on ``workers`` processes and applied in file order.

        Duplicate records are found here, in order, before a batch goes out; incident keys of
        earlier batches are dropped when its result comes back (``apply``). One worker: the
        straightforward path, batch after batch (``handle``)."""
        if workers < 2:
            # Parquet is encoded and compressed in a thread while the next batch is worked on.
            # Only here: no thread may be running when ``ordered_map`` forks its workers.
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="parquet-writer") as writer:
                for staged in self.staged():
                    staged.write_behind(writer)
                try:
                    for batch in batches:
                        _check_columns(self.contract, self)
                        self.handle(batch)
                finally:
                    for staged in self.staged():
                        staged.write_behind(None)
            return  # leaving the executor waited for the last writes, so commit or abort may follow

        def items() -> Iterator[tuple[tuple[list[dict[str, Any]], list], pa.Table]]:
            for batch in batches:
                _check_columns(self.contract, self)
                table, repeats = self._drop_repeats(batch.table)
                yield (repeats, batch.bad_records), table

        mapped = ordered_map(partial(self.map_batch, deferred=True), items(), workers)
        for (repeats, bad_records), work in mapped:
            self.apply(repeats, work, bad_records)

    def map_batch(self, table: pa.Table, *, deferred: bool = False) -> _BatchWork:
        """Validation and the published rows of one batch, touching no state of the file's run
        except, unless ``deferred``, the incident keys seen so far (so a worker process may run
        it on a copy of the run). ``deferred``: incidents keep the first row of each key in this
        batch, and ``apply`` drops the keys of earlier batches."""
        table = with_personnummer(self.contract, table, self.night)
        work = _BatchWork()
        checked: dict[str, str | None] = {}  # label → the column(s) it checks
        for part, suite in self.suites.items():
            frame = (
                check_frame(self.contract, table, self.night, arrow=True)
                if part == "rows"
                else array_check_frame(self.contract, table, part, arrow=True)
            )
            if frame.num_rows == 0:
                continue
            outcome = self.validator.validate_table(suite, frame)  # GE per distinct value, same verdicts
            if outcome.table_failures:
                work.table_failures = outcome.table_failures
                return work
            failing = pa.array(sorted({int(r) for r in outcome.failures}), pa.int64())
            work.parts.append((part, outcome, frame.filter(pc.is_in(frame.column(ROW), value_set=failing))))
            work.reasons.update(outcome.reasons)
            checked.update((e.label, e.column) for e in outcome.expectations)
            for row, labels in outcome.failures.items():
                work.failures.setdefault(int(row), []).extend(labels)
        if work.failures:
            work.held = self._person_faults(work.failures, checked)
            failed = pa.array(sorted(work.failures), pa.int64())
            names = {ROW, *(c.name for c in self.contract.columns)}
            kept = [name for name in table.column_names if name in names]  # the quarantine's; derived ones stay
            work.failed = table.filter(pc.is_in(table.column(ROW), value_set=failed)).select(kept)
            dropped = pc.is_in(
                table.column(ROW), value_set=pa.array(sorted(set(work.failures) - set(work.held)), pa.int64())
            )
            table = self._clear_person_faults(table.filter(pc.invert(dropped)), work.held)
        work.valid_rows = table.num_rows
        if table.num_rows:
            table = self.model.with_incident_ids(table)
            work.outputs = [self._make(name, make, table, work, deferred) for name, make in self._makers()]
        return work

    def _makers(self) -> list[tuple[str, Callable[[pa.Table], pa.Table]]]:
        return [(name, make) for name, (_, make) in [*self.published.items(), *self.private.items()]]

    def _make(self, name: str, make: Callable, table: pa.Table, work: _BatchWork, deferred: bool) -> pa.Table:
        if not (deferred and name == "incidents"):
            return make(table)
        work.incident_keys = table.column(self.contract.model["incident"]["key"]).combine_chunks()
        work.first_in_batch = first_in_batch(work.incident_keys)
        return self.model.incidents(table, first=work.first_in_batch)

    def apply(self, repeats: list[dict[str, Any]], work: _BatchWork, bad_records: list) -> None:
        """A mapped batch into the file's outputs and counts, in the serial path's order."""
        self._quarantine_repeats(repeats)
        for part, outcome, failing in work.parts:
            self.outcomes.append(outcome)
            self.samples.add(part, outcome, failing)
        if work.table_failures:
            raise FileRejected(f"table-level checks failed: {', '.join(work.table_failures)}")
        if work.failed is not None:
            self._quarantine_rows(work.failed, work.failures, work.reasons, work.held)
        self._quarantine_bad(bad_records)
        self.valid_rows += work.valid_rows
        outputs = dict(zip([name for name, _ in self._makers()], work.outputs))
        if work.incident_keys is not None:  # deferred: drop incidents an earlier batch had
            first = self.model.first_occurrences(work.incident_keys)
            outputs["incidents"] = outputs["incidents"].filter(pc.filter(first, work.first_in_batch))
        for name, table in outputs.items():
            (self.published.get(name) or self.private[name])[0].write(table)

    def _count(self, reason: str, row: int, text: str | None = None) -> None:
        self.reason_counts[reason] = self.reason_counts.get(reason, 0) + 1
        self.rows_by_check.setdefault(reason, []).append(row)
        if text:
            self.reason_texts.setdefault(reason, text)

    def _quarantine_rows(
        self, failed: pa.Table, failures: dict[int, list[str]], reasons: dict[str, str], held: dict[int, set[str]]
    ) -> None:
        """Failed records into the quarantine; those in ``held`` are published too, so they are
        counted apart (held for correction), not as quarantined."""
        sources = {c.name: c.source for c in self.contract.columns}
        records = []
        for row in failed.to_pylist():
            labels = sorted(set(failures[row[ROW]]))
            for label in labels:
                if row[ROW] in held:
                    self.held_by_check.setdefault(label, []).append(row[ROW])
                    if reasons.get(label):
                        self.reason_texts.setdefault(label, reasons[label])
                else:
                    self._count(label, row[ROW], reasons.get(label))
            raw = {sources[k]: v for k, v in row.items() if k in sources}  # the file's fields, nothing derived
            records.append(
                self._quarantine_record(
                    row[ROW],
                    labels,
                    "; ".join(reasons.get(lb, lb) for lb in labels),
                    json.dumps(raw, ensure_ascii=False),
                    held=row[ROW] in held,
                )
            )
        self.quarantine.write(pa.Table.from_pylist(records, schema=QUARANTINE_SCHEMA))
        self.held_rows += sum(1 for r in records if r["held_for_correction"])
        self.quarantined_rows += sum(1 for r in records if not r["held_for_correction"])

    def _drop_repeats(self, table: pa.Table) -> tuple[pa.Table, list[dict[str, Any]]]:
        """Exact copies of an earlier record of the file, for the quarantine (``apply``); the first stays (item 9)."""
        originals = self.repeats.originals(table)
        if not originals.any():
            return table, []
        is_repeat = pa.array(originals > 0)
        records = [
            self._quarantine_record(row, [duplicates.LABEL], f"exact copy of record {first}, which was kept", None)
            for row, first in zip(table.column(ROW).filter(is_repeat).to_pylist(), originals[originals > 0])
        ]
        return table.filter(pc.invert(is_repeat)), records

    def _quarantine_repeats(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        for record in records:
            self._count(duplicates.LABEL, record["record"], duplicates.REASON)
        self.quarantine.write(pa.Table.from_pylist(records, schema=QUARANTINE_SCHEMA))
        self.quarantined_rows += len(records)

    def _person_faults(self, failures: dict[int, list[str]], checked: dict[str, str | None]) -> dict[int, set[str]]:
        """Records whose every failed check reads person fields only, with those fields (item 10)."""
        held = {}
        for row, labels in failures.items():
            fields = set()
            for label in labels:
                columns = {c.split("__", 1)[0] for c in (checked.get(label) or "").split(",") if c}
                if not columns or not columns.issubset(self.person_fields):
                    break
                fields |= columns
            else:
                held[row] = fields
        return held

    def _clear_person_faults(self, table: pa.Table, held: dict[int, set[str]]) -> pa.Table:
        """The faulty person values of held records cleared (never published, never hashed), and
        their ``person_flag``. A name is kept: it is never published, and scrubbing needs it."""
        if not held:
            return table
        rows = table.column(ROW).combine_chunks()
        for name in set().union(*held.values()):
            if self.person_fields[name] == "invalid_name":
                continue
            mask = pc.is_in(rows, value_set=pa.array([r for r, f in held.items() if name in f], pa.int64()))
            array, _, item = name.partition(".")
            at = table.column_names.index(array)
            cleared = (
                _clear_item_field(table.column(array).combine_chunks(), item, mask)
                if item
                else pc.if_else(
                    mask, pa.scalar(None, table.schema.field(array).type), table.column(array).combine_chunks()
                )
            )
            table = table.set_column(at, table.schema.field(at), cleared)
        flags = {row: ",".join(sorted({self.person_fields[f] for f in fields})) for row, fields in held.items()}
        keys = pa.array(list(flags), pa.int64())
        values = pa.array(list(flags.values()), pa.string())
        return table.append_column(PERSON_FLAG, pc.take(values, pc.index_in(rows, value_set=keys)))

    def _quarantine_bad(self, bad_records: list) -> None:
        if not bad_records:
            return
        records = []
        for bad in bad_records:
            self._count("unreadable record", bad.row, "the record could not be read as a record of this format")
            records.append(self._quarantine_record(bad.row, ["unreadable record"], bad.reason, bad.raw))
        self.quarantine.write(pa.Table.from_pylist(records, schema=QUARANTINE_SCHEMA))
        self.quarantined_rows += len(records)

    def _quarantine_record(
        self, row: int, labels: list[str], reasons: str, raw: str | None, *, held: bool = False
    ) -> dict[str, Any]:
        return {
            "source": self.contract.id,
            "source_file": self.landed["name"],
            "sha256": self.landed["sha256"],
            "night": self.landed["night"],
            "record": row,
            "failed_checks": labels,
            "reasons": reasons,
            "raw_record": raw,
            "held_for_correction": held,
        }


def process(
    contract: Contract,
    landed: dict[str, Any],
    paths: Paths,
    ledger: Ledger,
    pseudonymiser: Pseudonymiser,
    validator,
    *,
    run_id: str | None,
    expectations_dir: Path,
    batch_rows: int = 100_000,
    workers: int | None = None,
) -> FileResult:
    """Parse, validate, pseudonymise and publish one landed file; settle it in the ledger.

    ``workers``: processes mapping the file's batches (default: ``SAMVERKAN_BATCH_WORKERS``, else
    one; see ``samverkan.ingest.parallel``); the published bytes do not depend on it."""
    from samverkan.quality.validation import combine, outcome_to_records

    use_hub_memory_pool()
    swept = sweep_staging(paths.staging)
    if swept:
        log.info("removed %d staging file(s) left by an earlier, interrupted publish", swept)
    result = FileResult(contract.id, landed["name"], landed["night"], landed["sha256"], status="published")
    run = _FileRun(contract, landed, paths, pseudonymiser, validator, load_suites(contract, expectations_dir), run_id)
    try:
        batches = read_batches(contract, Path(landed["path"]), batch_rows=batch_rows, info=run.info)
        run.handle_all(batches, default_workers(batch_rows) if workers is None else workers)
        _check_threshold(contract, run)
    except (FileRejected, MemoryError) as exc:
        for staged in run.staged():
            staged.abort()
        result = _reject(contract, landed, paths, ledger, result, run, _as_rejection(exc))
        _report(contract, paths, result, run, run_id)
        return result
    except BaseException:
        for staged in run.staged():
            staged.abort()
        raise
    result.rows_received = run.info.records
    result.rows_published = run.valid_rows
    result.rows_quarantined = run.quarantined_rows
    result.rows_held_for_correction = run.held_rows
    _check_balance(result)
    result.incidents, result.involvements = run.rows("incidents"), run.rows("involvements")
    result.observations = run.rows("observations")
    result.outputs = [str(staged.commit()) for staged, _ in run.published.values()]
    for staged, _ in run.private.values():
        staged.commit()
    run.quarantine.commit()
    result.quarantine_reasons = dict(sorted(run.reason_counts.items()))
    result.held_for_correction_reasons = {label: len(rows) for label, rows in sorted(run.held_by_check.items())}
    result.unexpected_columns, result.unexpected_columns_withheld = public_column_names(run.info.unexpected_columns)
    if run.outcomes:
        result.expectations = outcome_to_records(combine(run.outcomes), contract.id, landed["night"], landed["name"])
    if run.info.unexpected_columns:
        result.warnings.append(_unexpected_warning(result))
        log.warning("%s: %s: %s", contract.id, landed["name"], result.warnings[-1])
    ledger.settle(
        landed["entry_id"],
        "published",
        None,
        received=result.rows_received,
        published=result.rows_published,
        quarantined=result.rows_quarantined,
    )
    log.info(result.balance_line())
    _report(contract, paths, result, run, run_id)
    return result


def _clear_item_field(lists: pa.Array, item: str, rows: pa.Array) -> pa.Array:
    """``lists`` (list<struct>) with the field ``item`` cleared in every item of the marked rows
    (validation names the record, not the item, so all of the record's items lose that value)."""
    flat = pc.list_flatten(lists)
    in_row = pc.take(rows, pc.list_parent_indices(lists))
    fields = [
        pc.if_else(in_row, pa.scalar(None, f.type), flat.field(f.name)) if f.name == item else flat.field(f.name)
        for f in flat.type
    ]
    offsets = pc.subtract(lists.offsets, lists.offsets[0])
    return pa.ListArray.from_arrays(
        offsets, pa.StructArray.from_arrays(fields, fields=list(flat.type)), mask=lists.is_null()
    )


def _as_rejection(exc: FileRejected | MemoryError) -> FileRejected:
    """Reading is bounded (parsing's limits), so running out of memory is not the file's size;
    but a retry would meet it again, so the file is settled as rejected, never left ``landed``."""
    if isinstance(exc, FileRejected):
        return exc
    return FileRejected(
        "the file could not be processed within the memory this worker has; refused whole "
        "(an engineer can re-process it)"
    )


def _check_columns(contract: Contract, run: _FileRun) -> None:
    """A column the contract does not know is a warning unless the contract says to refuse it."""
    if run.info.unexpected_columns and contract.unexpected_columns_policy == "reject":
        raise FileRejected(
            f"{len(run.info.unexpected_columns)} column(s) not in the contract "
            "(this feed's contract refuses unannounced columns)",
            detail=f"columns: {', '.join(run.info.unexpected_columns)}",
        )


def _unexpected_warning(result: FileResult) -> str:
    """Names of ignored columns where they are plain identifiers; the rest only counted."""
    shown = ", ".join(result.unexpected_columns)
    withheld = result.unexpected_columns_withheld
    if withheld:
        shown = f"{shown} and " if shown else ""
        shown += f"{withheld} with a name not shown (not a plain column name)"
    return f"column(s) not in the contract were ignored: {shown}"


def _missing_columns(contract: Contract, run: _FileRun) -> list[str]:
    """Required columns the header lacks (contract names, so nothing of the file is quoted)."""
    if not run.info.header:
        return []
    return [c.source for c in contract.columns if c.required and c.source not in run.info.header]


def _report(contract: Contract, paths: Paths, result: FileResult, run: _FileRun, run_id: str | None) -> None:
    """The file's masked validation record (for Data Docs) and its receipt, both value-free."""
    file = {**asdict(result), "run_id": run_id}
    record = reports.file_validation(
        contract,
        run.suites,
        file,
        result.expectations,
        run.samples.to_dict(),
        missing_columns=_missing_columns(contract, run),
    )
    reports.store_file_validation(paths.root, record)
    result.data_docs = reports.data_docs_url(contract.id, result.night)
    receipt = receipts.build(
        contract,
        file,
        reasons=run.reason_texts,
        rows_by_check=run.rows_by_check,
        held_by_check=run.held_by_check,
        warnings=result.warnings,
        run_id=run_id,
    )
    result.receipt = str(receipts.store(paths.root, receipt))


def _check_threshold(contract: Contract, run: _FileRun) -> None:
    received = run.info.records
    if received and run.quarantined_rows / received > contract.max_invalid_row_fraction:
        raise FileRejected(
            f"{run.quarantined_rows} of {received} records failed validation "
            f"({run.quarantined_rows / received:.0%}, limit {contract.max_invalid_row_fraction:.0%}); "
            f"whole file rejected instead of publishing a thin remainder"
        )


def _check_balance(result: FileResult) -> None:
    """Received = published + quarantined; a record held for correction is one of the published."""
    if (
        result.rows_published + result.rows_quarantined != result.rows_received
        or not 0 <= result.rows_held_for_correction <= result.rows_published
    ):
        raise RuntimeError(f"row accounting broken: {result.balance_line()}")


def _reject(
    contract, landed, paths: Paths, ledger: Ledger, result: FileResult, run: _FileRun, exc: FileRejected
) -> FileResult:
    """Quarantine the whole file. Only the public reason and counts leave the private zone: a
    rejected file's header cells may be a person's record, so not even their names are shown."""
    target = paths.quarantine_files(contract.id) / landed["night"] / landed["name"]
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(landed["path"], target)
    result.status = "rejected"
    result.reason = str(exc)  # public by construction; the private detail stays in the ledger
    # A file beyond its limits is not read again to count it: the records read before the limit are its count.
    records = run.info.records or (0 if isinstance(exc, LimitExceeded) else count_records(contract, target) or 0)
    result.rows_received = records
    result.rows_quarantined = records
    result.quarantine_reasons = {"file rejected": records}
    result.unexpected_columns, result.unexpected_columns_withheld = [], len(run.info.unexpected_columns)
    if run.outcomes:
        from samverkan.quality.validation import combine, outcome_to_records

        result.expectations = outcome_to_records(combine(run.outcomes), contract.id, landed["night"], landed["name"])
    missing = _missing_columns(contract, run)
    if missing:
        result.expectations = [
            {
                "feed": contract.id,
                "night": landed["night"],
                "file": landed["name"],
                "expectation": reports.TABLE_COLUMNS,
                "column": None,
                "success": False,
                "element_count": 0,
                "unexpected_count": len(missing),
            }
        ]
    ledger.settle(
        landed["entry_id"],
        "rejected",
        exc.private_text,
        received=result.rows_received,
        published=0,
        quarantined=result.rows_quarantined,
    )
    log.warning("%s: %s rejected whole: %s", contract.id, landed["name"], result.reason)
    log.info(result.balance_line())
    return result


# --- summarise ----------------------------------------------------------------------------


def summarise(
    contract: Contract,
    paths: Paths,
    results: list[dict[str, Any]],
    skipped: list[dict[str, Any]],
    run_id: str,
    run_night: str,
) -> dict[str, Any]:
    """The run's manifest: what came in, what was published, what was held back, and why."""
    manifest: dict[str, Any] = {
        "feed": contract.id,
        "contract_version": contract.version,
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "run_night": run_night,
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "files": results,
        "not_processed": [
            {k: s[k] for k in ("name", "night", "sha256", "status", "reason") if k in s} for s in skipped
        ],
        "totals": {
            key: sum(r.get(key, 0) for r in results)
            for key in (
                "rows_received",
                "rows_published",
                "rows_quarantined",
                "rows_held_for_correction",
                "incidents",
                "involvements",
                "observations",
            )
        },
    }
    manifest["data_docs"] = {night: reports.data_docs_url(contract.id, night) for night in data_docs_nights(results)}
    outcomes = reports.write_outcomes(paths.root, contract.id, run_id, results)
    manifest["expectation_outcomes"] = str(outcomes.relative_to(paths.root)) if outcomes else None
    path = write_json_atomic(paths.manifests(contract.id) / manifest_name(run_id), manifest)
    t = manifest["totals"]
    log.info(
        "%s run %s: %d file(s); received %d = published %d + quarantined %d; manifest %s",
        contract.id,
        run_id,
        len(results),
        t["rows_received"],
        t["rows_published"],
        t["rows_quarantined"],
        path,
    )
    return manifest


def data_docs_nights(results: list[dict[str, Any]]) -> list[str]:
    """The nights whose Data Docs page a run rebuilds: those of the files it processed (each left
    its masked validation record in ``process``), so the manifest can name the pages before they
    are rendered."""
    return sorted({r["night"] for r in results if r and r.get("status") in ("published", "rejected")})


def render_data_docs(contract: Contract, paths: Paths, nights: list[str], run_id: str) -> dict[str, str]:
    """Rebuild the Data Docs page of each night; night → URL in the Airflow UI.

    Not part of ``summarise``: a page is GE's renderer over every file record of the night, the
    largest fixed cost of a small night after validation, and nothing a run publishes waits for
    it. The DAG renders in its own task after the manifest; the history import after each night.
    """
    run = {"run_id": run_id, "run_time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    pages = {}
    for night in sorted(set(nights)):
        if reports.render_night(paths.root, contract.id, night, run):
            pages[night] = reports.data_docs_url(contract.id, night)
    return pages


def result_dict(result: FileResult) -> dict[str, Any]:
    return asdict(result)
