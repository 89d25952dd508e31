"""Benchmark: the pipeline against what a user would do instead, at several sizes, by numbers.

``scripts/benchmark`` (defaults: 100k, 500k and 5M police rows, transit and guards a quarter of
that each, and a 500 MiB SFTP pull). For each size the project's generator writes one partner
night per feed, and on the same files it measures:

(a) the pipeline from landed file to published Parquet (parse → validate with GE → quarantine →
    pseudonymise → publish), each file in its own child process so its peak RSS is its own;
(b) DuckDB converting the same CSV to zstd Parquet with no validation and an unkeyed sha256 over
    the personal identifier columns (the contract's ``pseudonymise`` and ``drop`` columns), every
    column read as text, also in a child process ("what a user would do instead"; CSV feeds only,
    and cp1252 is read as latin-1, which DuckDB has built in);
(c) one 500 MiB file pulled by the project's SFTP connector and by OpenSSH's ``sftp`` client from
    the same local OpenSSH sshd, several times each (best of each is compared).

It prints rows/s, MiB/s and peak RSS, the ratios pipeline/DuckDB and connector/OpenSSH, the size
of the published Parquet with and without the pseudonym columns, and how time per row and peak
memory grow from the smallest size to the largest, with the machine's load average. A
measurement, not a test: nothing here fails on a slow machine. ``--json`` writes the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:  # imported where used: a child process loads only what its measurement needs
    from samverkan.core.contracts import Contract
    from samverkan.core.ledger import Ledger
    from samverkan.core.settings import Paths
    from samverkan.ingest.pipeline import FileResult

REPO = Path(__file__).resolve().parent.parent
NIGHT = date(2026, 11, 20)
FEEDS = ("police", "transit", "guards")
SHARE = {"police": 1.0, "transit": 0.25, "guards": 0.25}
PSEUDONYM_COLUMNS = ("staff_pseudonym", "person_pseudonym")
TARGETS = {
    "pipeline/duckdb rows/s": 0.5,
    "connector/openssh MiB/s": 0.8,
    "peak RSS largest/500k": 1.5,
    "parquet with/without pseudonyms": 1.2,
}


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


KEY_ENV = "SAMVERKAN_BENCHMARK_KEY"  # the run's random pseudonym key, for the child processes


def _key() -> bytes:
    return bytes.fromhex(os.environ[KEY_ENV])


def _child(args: list[str]) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "devkit.benchmark", *args],
        check=False,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO), "GX_ANALYTICS_ENABLED": "False"},
    )
    if out.returncode != 0:  # say why, in the child's own words
        raise SystemExit(f"benchmark child {args[0]} failed (exit {out.returncode}):\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- (a) the pipeline ----------------------------------------------------------------------


def _process_one(args: argparse.Namespace) -> int:
    """Child: process one landed file and print timing and peak RSS as JSON."""
    from samverkan.core.contracts import load_contracts
    from samverkan.core.ledger import Ledger
    from samverkan.core.settings import Paths
    from samverkan.privacy.pseudonymise import Pseudonymiser

    contract = load_contracts()[args.feed]
    paths = Paths(Path(args.data_root)).ensure()
    landed = json.loads(args.landed)
    measured = process_measured(
        contract, landed, paths, Ledger(paths.ledger), _key(), "benchmark", batch_rows=args.batch_rows
    )
    result = measured.result
    sizes = _parquet_sizes(
        contract, Path(landed["path"]), date.fromisoformat(landed["night"]), result.outputs, Pseudonymiser(_key())
    )
    print(
        json.dumps(
            {
                "feed": args.feed,
                "seconds": measured.seconds,
                "peak_rss_mib": measured.peak_rss_mib,
                "rss_before_mib": measured.rss_before_mib,
                "rows": result.rows_received,
                "published": result.rows_published,
                "quarantined": result.rows_quarantined,
                "status": result.status,
                **sizes,
            }
        )
    )
    return 0


@dataclass
class Measured:
    """One file through the nightly steps: its result, seconds, and this process's peak RSS (MiB)
    before and after; a child process per file makes the peak that file's own."""

    result: FileResult
    seconds: float
    rss_before_mib: float
    peak_rss_mib: float


def process_measured(
    contract: Contract, landed: dict, paths: Paths, ledger: Ledger, key: bytes, run_id: str, **options: Any
) -> Measured:
    """``pipeline.process`` on a landed file, timed; the validator is built first, outside the
    time, as a worker builds it once for many files."""
    from samverkan.ingest.pipeline import process
    from samverkan.privacy.pseudonymise import Pseudonymiser
    from samverkan.quality.validation import EXPECTATIONS_DIR, Validator

    validator = Validator()
    before = _peak_rss_mib()
    started = time.perf_counter()
    result = process(
        contract,
        landed,
        paths,
        ledger,
        Pseudonymiser(key),
        validator,
        run_id=run_id,
        expectations_dir=EXPECTATIONS_DIR,
        **options,
    )
    return Measured(result, time.perf_counter() - started, before, _peak_rss_mib())


def land(paths: Paths, ledger: Ledger, feed: str, night: str, source: Path, run_id: str, *, link: bool = False) -> dict:
    """A generated file where fetch would have landed it, recorded in the ledger as fetch does (the
    SFTP pull is measured apart). ``link``: a hard link instead of a copy, for files too big to copy."""
    import hashlib

    target = paths.landing(feed, night) / source.name
    target.parent.mkdir(parents=True, exist_ok=True)
    if link:
        os.link(source, target)
    else:
        shutil.copyfile(source, target)
    with open(target, "rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()  # streamed: a large file never sits in memory
    size, mtime = target.stat().st_size, int(target.stat().st_mtime)
    entry = ledger.record_landed(feed, source.name, night, size, mtime, digest, run_id)
    return {
        "entry_id": entry,
        "name": source.name,
        "night": night,
        "path": str(target),
        "sha256": digest,
        "size": size,
        "action": "process",
    }


# --- (b) DuckDB ----------------------------------------------------------------------------


def _duckdb_one(args: argparse.Namespace) -> int:
    """Child: the same CSV to zstd Parquet with DuckDB, sha256 over the identifier columns."""
    import duckdb

    from samverkan.core.contracts import load_contracts

    contract = load_contracts()[args.feed]
    fmt = contract.format
    hashed = [
        c.source
        for c in contract.columns
        if (c.personal or {}).get("handling") in ("pseudonymise", "drop") and c.type != "array"
    ]
    encoding = (
        "latin-1" if fmt["encoding"].lower().replace("_", "-") in ("cp1252", "windows-1252", "latin-1") else "utf-8"
    )
    replace = ", ".join(f'sha256("{c}") AS "{c}"' for c in hashed)
    select = f"SELECT * REPLACE ({replace})" if hashed else "SELECT *"
    con = duckdb.connect()
    con.execute(f"SET threads = {os.cpu_count() or 1}")
    started = time.perf_counter()
    con.execute(
        f"COPY ({select} FROM read_csv(?, delim = ?, quote = ?, header = true, all_varchar = true, "
        f"encoding = '{encoding}')) TO '{args.out}' (FORMAT parquet, COMPRESSION zstd)",
        [args.path, fmt["delimiter"], fmt["quotechar"]],
    )
    elapsed = time.perf_counter() - started
    rows = con.execute("SELECT count(*) FROM read_parquet(?)", [args.out]).fetchone()[0]
    print(
        json.dumps(
            {
                "feed": args.feed,
                "seconds": elapsed,
                "rows": rows,
                "peak_rss_mib": _peak_rss_mib(),
                "parquet_bytes": Path(args.out).stat().st_size,
                "hashed_columns": hashed,
            }
        )
    )
    return 0


# --- Parquet size with and without pseudonyms -------------------------------------------------


def _identities(contract, source: Path, night: date, pseudonymiser) -> dict[str, str]:
    """pseudonym → the identifier it stands for (canonical personnummer, id as written), from the
    source file: what the published files would hold had the hub not pseudonymised."""
    import pyarrow as pa

    from samverkan.ingest.parsing import read_batches
    from samverkan.privacy import personnummer

    columns = [c for c in contract.columns if (c.personal or {}).get("handling") == "pseudonymise"]
    found: dict[str, str] = {}
    for batch in read_batches(contract, source):
        for c in columns:
            raw = batch.table.column(c.name).combine_chunks()
            value = personnummer.normalise_array(raw, night)[0] if c.type == "personnummer" else raw
            pseudonym = pseudonymiser.pseudonymise_array(c.personal["domain"], value)
            pairs = pa.table({"p": pseudonym, "v": value.cast(pa.string())}).group_by(["p", "v"]).aggregate([])
            found.update(zip(pairs.column("p").to_pylist(), pairs.column("v").to_pylist()))
    found.pop(None, None)
    return found


def _parquet_sizes(contract, source: Path, night: date, outputs: list[str], pseudonymiser) -> dict[str, int]:
    """Bytes of the published files; of the same row groups written the same way with the raw
    identifiers where the pseudonyms are ("without pseudonymisation"); and with those columns
    left out altogether."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from samverkan.core.publishing import COMPRESSION

    identities = _identities(contract, source, night, pseudonymiser)
    keys = pa.array(list(identities), pa.string())
    values = pa.array(list(identities.values()), pa.string())
    sizes = {"parquet_with": 0, "parquet_raw_ids": 0, "parquet_without": 0}
    scratch = Path(tempfile.mkdtemp(prefix="samverkan-bench-size-"))
    try:
        for i, out in enumerate(outputs):
            sizes["parquet_with"] += Path(out).stat().st_size
            source_file = pq.ParquetFile(out)
            schema = source_file.schema_arrow
            keep = [n for n in schema.names if n not in PSEUDONYM_COLUMNS]
            raw_path, dropped_path = scratch / f"{i}.raw.parquet", scratch / f"{i}.dropped.parquet"
            with (
                pq.ParquetWriter(raw_path, schema, compression=COMPRESSION) as raw_writer,
                pq.ParquetWriter(
                    dropped_path,
                    pa.schema([schema.field(n) for n in keep], metadata=schema.metadata),
                    compression=COMPRESSION,
                ) as dropped,
            ):
                for g in range(source_file.num_row_groups):
                    table = source_file.read_row_group(g)
                    for name in PSEUDONYM_COLUMNS:
                        if name in table.column_names:
                            raw = pc.take(values, pc.index_in(table.column(name), value_set=keys))
                            table = table.set_column(table.column_names.index(name), name, raw)
                    raw_writer.write_table(table.cast(schema))
                    dropped.write_table(table.select(keep).cast(dropped.schema))
            sizes["parquet_raw_ids"] += raw_path.stat().st_size
            sizes["parquet_without"] += dropped_path.stat().st_size
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return sizes


# --- (c) SFTP ------------------------------------------------------------------------------


def _sftp(work: Path, mib: int, repeats: int) -> dict:
    """The same file from the same sshd: the project's connector vs OpenSSH's sftp client."""
    from devkit.local_sftp import settings_for
    from samverkan.connectors.sftp import SFTPConnector
    from samverkan.connectors.sshd import generate_keypair, start_sftp_server

    root = work / "sftp-root"
    root.mkdir(parents=True, exist_ok=True)
    source = root / "big.bin"
    with open(source, "wb") as f:
        block = os.urandom(1 << 20)
        for i in range(mib):
            f.write(block[i % 251 :] + block[: i % 251])  # incompressible, and no two blocks alike
        f.flush()
        os.fsync(f.fileno())  # in the page cache for both sides, and no writeback of it during the first run
    private, public = generate_keypair(work / "keys" / "hub_ed25519")
    server = start_sftp_server(root, public, work / "sshd")
    results: dict = {"mib": mib, "connector_s": [], "openssh_s": []}
    try:
        settings = settings_for(server, private)
        known_hosts = work / "known_hosts"
        known_hosts.write_text(f"[{server.host}]:{server.port} {server.host_key_line}\n", encoding="ascii")
        remote = f"{server.path_prefix.rstrip('/')}/big.bin" if server.path_prefix else "/big.bin"
        sftp_cmd = [
            shutil.which("sftp") or "sftp",
            "-q",
            "-b",
            "-",
            "-i",
            str(private),
            "-P",
            str(server.port),
            "-o",
            f"UserKnownHostsFile={known_hosts}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            f"{server.username}@{server.host}",
        ]

        def connector() -> None:
            target = work / "pulled-connector.bin"
            target.unlink(missing_ok=True)
            started = time.perf_counter()
            with SFTPConnector(settings) as conn:
                download = conn.download("/big.bin", target)
            results["connector_s"].append(time.perf_counter() - started)
            assert download.size == source.stat().st_size
            target.unlink()

        def openssh() -> None:
            target = work / "pulled-openssh.bin"
            target.unlink(missing_ok=True)
            started = time.perf_counter()
            subprocess.run(sftp_cmd, input=f"get {remote} {target}\n", text=True, check=True, capture_output=True)
            results["openssh_s"].append(time.perf_counter() - started)
            assert target.stat().st_size == source.stat().st_size
            target.unlink()

        for run in range(repeats):  # who goes first alternates, so neither always follows the other
            for pull in (connector, openssh) if run % 2 == 0 else (openssh, connector):
                pull()
    finally:
        server.stop()
        source.unlink(missing_ok=True)
    best_c, best_o = min(results["connector_s"]), min(results["openssh_s"])
    results.update(connector_mib_s=mib / best_c, openssh_mib_s=mib / best_o, ratio=best_o / best_c)
    results["ratios"] = [o / c for c, o in zip(results["connector_s"], results["openssh_s"], strict=True)]
    return results


# --- (d) history import (onboarding) -----------------------------------------------------------

HISTORY_SIZES = {"police": 400, "transit": 150, "guards": 80}  # Östersund's demo size, rows per night


def _history_one(args: argparse.Namespace) -> int:
    """Child: import every night under --partners from local OpenSSH servers; time, rows, peak RSS."""
    from devkit.local_sftp import connect_to
    from samverkan.connectors.sshd import generate_keypair, start_sftp_server
    from samverkan.core.contracts import load_contracts
    from samverkan.core.settings import Paths
    from samverkan.ingest.history import import_history
    from samverkan.privacy.pseudonymise import Pseudonymiser
    from samverkan.quality.validation import Validator

    work, feeds = Path(args.work), args.feeds.split(",")
    private, public = generate_keypair(work / "keys" / "hub_ed25519")
    servers = {f: start_sftp_server(work / "partners" / f, public, work / "sshd" / f) for f in feeds}

    try:
        contracts = load_contracts()
        validator = Validator()
        started = time.perf_counter()
        done = import_history(
            [contracts[f] for f in feeds],
            date.fromisoformat(args.first),
            date.fromisoformat(args.last),
            connect=connect_to(servers, private),
            pseudonymiser=Pseudonymiser(_key()),
            validator=validator,
            data=Paths(work / "data"),
            expectations_dir=REPO / "expectations",
            quiet_period_seconds=0.5,
            progress=False,
            workers=int(args.workers),
        )
        elapsed = time.perf_counter() - started
    finally:
        for server in servers.values():
            server.stop()
    workers_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the largest worker (or sshd)
    print(
        json.dumps(
            {
                "seconds": elapsed,
                "peak_rss_mib": max(_peak_rss_mib(), workers_rss),
                "rows": sum(d.rows_received for d in done),
                "files": sum(sum(d.files.values()) for d in done),
                "feeds": {
                    d.feed: {"seconds": d.seconds, "rows": d.rows_received, "nights": len(d.nights)} for d in done
                },
            }
        )
    )
    return 0


def _history(work: Path, days: int, scales: list[int], workers: int = 2) -> list[dict]:
    """A history of ``days`` nights for the three feeds at each scale of Östersund's size."""
    from devkit.history import write_history

    first = date(2025, 11, 17)  # a Monday, a year before the demo's nights
    results = []
    for scale in scales:
        scratch = work / f"history-x{scale}"
        sizes = {f: n * scale for f, n in HISTORY_SIZES.items()}
        started = time.perf_counter()
        write_history(scratch / "partners", first, -(-days // 7), sizes=sizes, seed=13)
        generated = time.perf_counter() - started
        last = first.toordinal() + days - 1
        stats = _child(
            [
                "history-one",
                "--work",
                str(scratch),
                "--feeds",
                ",".join(sizes),
                "--first",
                first.isoformat(),
                "--last",
                date.fromordinal(last).isoformat(),
                "--workers",
                str(workers),
            ]
        )
        stats.update(scale=scale, days=days, sizes=sizes, generate_s=generated, workers=workers)
        results.append(stats)
        print(
            f"  history ×{scale}: {stats['files']} files, {stats['rows']:,} rows in {stats['seconds']:.0f} s = "
            f"{stats['rows'] / stats['seconds']:,.0f} rows/s, {stats['seconds'] / max(1, stats['files']):.2f} s/file, "
            f"peak RSS {stats['peak_rss_mib']:,.0f} MiB (generated in {generated:.0f} s)",
            flush=True,
        )
        shutil.rmtree(scratch, ignore_errors=True)
    return results


def history_report(results: list[dict]) -> str:
    lines = [
        "| scale | workers | nights | rows/night (police, transit, guards) | files | rows | import s | rows/s | "
        "s/file | peak RSS MiB |",
        "|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| ×{r['scale']} | {r.get('workers', 1)} | {r['days']} | {', '.join(str(v) for v in r['sizes'].values())} | {r['files']} | "
            f"{r['rows']:,} | {r['seconds']:.0f} | {r['rows'] / r['seconds']:,.0f} | "
            f"{r['seconds'] / max(1, r['files']):.2f} | {r['peak_rss_mib']:,.0f} |"
        )
    return "\n".join(lines)


# --- (e) many small nights: the per-file overhead --------------------------------------------

SMALL_FAULTS = {
    "police": {"bad_checksum_pnr": 2, "impossible_date": 1, "unknown_category": 1},
    "guards": {"bad_checksum_pnr": 1, "impossible_date": 1},
    "transit": {"impossible_date": 1, "bad_json_lines": 1},
}  # a little of everything, as a real night
STAGES = (
    "parse",
    "validate",
    "pseudonymise",
    "publish",
    "ledger",
    "receipt",
    "other",
    "manifest",
)  # a file's task time: ``process_file`` (without the SFTP upload of its receipt) and ``write_manifest``
DOCS = "data docs"  # ``render_data_docs``, after the manifest: off the path to published data


class _StageTimers:
    """Wall-clock time per stage of the nightly tasks, by wrapping the functions of each stage.

    The wrapped functions never nest in one another (a model function runs before the Parquet
    write it feeds, not inside it), so the stages add up; "other" is the rest of
    ``process_landed`` (staging sweep, duplicate records, quarantine rows, samples, outcomes).
    Wrapping costs microseconds per call, so the figures are those of the plain run (a profiler
    would slow GE's Python several times over).
    """

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(STAGES + (DOCS, "process"), 0.0)
        self.cpu = dict.fromkeys(self.seconds, 0.0)  # CPU seconds: less at the mercy of the machine's load
        self._undo: list[tuple[object, str, object]] = []

    def __enter__(self) -> Self:
        from samverkan.core.ledger import Ledger
        from samverkan.core.publishing import StagedParquet
        from samverkan.ingest import model, pipeline
        from samverkan.orchestration import feed_runtime
        from samverkan.quality.validation import Validator

        model_steps = ("incidents", "involvements", "observations", "incident_id_map", "first_occurrences")
        for owner, name, stage in [
            (pipeline, "check_frame", "validate"),
            (pipeline, "array_check_frame", "validate"),
            (Validator, "validate_table", "validate"),
            *[(model.FeedModel, m, "pseudonymise") for m in model_steps if hasattr(model.FeedModel, m)],
            (StagedParquet, "__init__", "publish"),
            (StagedParquet, "write", "publish"),
            (StagedParquet, "commit", "publish"),
            (Ledger, "settle", "ledger"),
            (pipeline, "_report", "receipt"),
            (feed_runtime, "process_landed", "process"),
            (feed_runtime, "record_run", "manifest"),
            (feed_runtime, "render_data_docs", DOCS),
        ]:
            self._wrap(owner, name, stage)
        original = pipeline.read_batches

        def read_batches(*args, **kwargs):
            batches = original(*args, **kwargs)
            while True:
                started, cpu = time.perf_counter(), time.process_time()
                try:
                    batch = next(batches)
                except StopIteration:
                    return
                finally:
                    self.seconds["parse"] += time.perf_counter() - started
                    self.cpu["parse"] += time.process_time() - cpu
                yield batch

        self._undo.append((pipeline, "read_batches", original))
        pipeline.read_batches = read_batches
        return self

    def _wrap(self, owner: object, name: str, stage: str) -> None:
        original = getattr(owner, name)
        seconds, cpu_seconds = self.seconds, self.cpu

        def timed(*args, **kwargs):
            started, cpu = time.perf_counter(), time.process_time()
            try:
                return original(*args, **kwargs)
            finally:
                seconds[stage] += time.perf_counter() - started
                cpu_seconds[stage] += time.process_time() - cpu

        self._undo.append((owner, name, original))
        setattr(owner, name, timed)

    def __exit__(self, *exc: object) -> None:
        for owner, name, original in reversed(self._undo):
            setattr(owner, name, original)

    def stages(self, cpu: bool = False) -> dict[str, float]:
        s = dict(self.cpu if cpu else self.seconds)
        inside = sum(s[k] for k in STAGES if k not in ("other", "manifest"))
        s["other"] = max(0.0, s["process"] - inside)
        return {k: s[k] for k in STAGES + (DOCS,)}

    def reset(self) -> None:
        """In place: the wrappers hold the dictionaries."""
        for totals in (self.seconds, self.cpu):
            totals.update(dict.fromkeys(totals, 0.0))


def _nights_one(args: argparse.Namespace) -> int:
    """Child: every generated night through the feed DAG's task functions, one file per feed and
    night, in order, as one worker process would run them (``airflow dags test``, the history
    import): ``process_landed`` → ``record_run`` is a file's task time; ``render_data_docs``
    follows, timed apart. No SFTP (receipts are not uploaded) and no Airflow start-up."""
    work = Path(args.work)
    os.environ["SAMVERKAN_DATA_ROOT"] = str(work / "data")  # what ``paths()`` gives the task functions
    from samverkan.core.contracts import load_contracts
    from samverkan.core.ledger import Ledger
    from samverkan.core.settings import Paths
    from samverkan.orchestration import feed_runtime as runtime
    from samverkan.privacy.pseudonymise import Pseudonymiser

    contracts, paths = load_contracts(), Paths(work / "data").ensure()
    ledger, pseudonymiser = Ledger(paths.ledger), Pseudonymiser(_key())
    files = json.loads((work / "files.json").read_text(encoding="utf-8"))
    started = time.perf_counter()
    per_file: dict[str, list[float]] = {}
    docs: list[float] = []
    rows = 0
    with _StageTimers() as timers:
        for i, (feed, night, path) in enumerate(files):
            landed = land(paths, ledger, feed, night, Path(path), "benchmark")
            run_id = f"benchmark__{night}__{i}"
            file_started = time.perf_counter()
            result = runtime.process_landed(
                contracts[feed], landed, run_id, REPO / "expectations", lambda: pseudonymiser
            )
            runtime.record_run(contracts[feed], [landed], [result], run_id, date.fromisoformat(night))
            task_s = time.perf_counter() - file_started
            runtime.render_data_docs(contracts[feed], [result], run_id)
            per_file.setdefault(feed, []).append(task_s)
            docs.append(time.perf_counter() - file_started - task_s)
            rows += result["rows_received"]
            if i == 0:
                first = {"first_file_s": time.perf_counter() - started}  # GE import and context included
                cpu_started = time.process_time()
                timers.reset()
                warm_started = time.perf_counter()
        stages, stages_cpu = timers.stages(), timers.stages(cpu=True)
    per_file[files[0][0]] = per_file[files[0][0]][1:]  # the cold first file (imports, GE context) apart
    print(
        json.dumps(
            {
                **first,
                "files": len(files),
                "rows": rows,
                "warm_s": sum(sum(times) for times in per_file.values()),  # task time: process + manifest
                "warm_docs_s": sum(docs[1:]),
                "warm_wall_s": time.perf_counter() - warm_started,  # everything, landing included
                "warm_cpu_s": time.process_time() - cpu_started,
                "per_feed": {f: sorted(t) for f, t in per_file.items()},
                "stages": stages,
                "stages_cpu": stages_cpu,
                "peak_rss_mib": _peak_rss_mib(),
            }
        )
    )
    return 0


def _small_nights(work: Path, nights: int) -> dict:
    """``nights`` nights × the three feeds at Östersund's demo size, each file through the nightly steps."""
    from devkit.synthetic import Faults, write_nights

    first = date(2025, 11, 17)
    dates = [date.fromordinal(first.toordinal() + d) for d in range(nights)]
    started = time.perf_counter()
    files = []
    for feed, rows in HISTORY_SIZES.items():
        for truth in write_nights(
            work / "partners", dates, {feed: rows}, seed=13, faults={feed: Faults(**SMALL_FAULTS[feed])}
        ):
            files.append((feed, truth.night.isoformat(), str(truth.path)))
    files.sort(key=lambda f: (f[1], FEEDS.index(f[0])))
    cold = files[-len(FEEDS) :] if nights > 1 else []  # the last night: a process per task, as Airflow runs them
    (work / "files.json").write_text(json.dumps(files[: len(files) - len(cold)]), encoding="utf-8")
    (work / "cold.json").write_text(json.dumps(cold), encoding="utf-8")
    generated = time.perf_counter() - started
    load_before = _load()
    stats = _child(["nights-one", "--work", str(work)])
    stats["cold_tasks"] = {
        feed: {task: _child(["task-one", "--work", str(work), "--task", task, "--file", str(i)]) for task in TASKS}
        for i, (feed, _, _) in enumerate(cold)
    }
    stats.update(nights=nights, sizes=HISTORY_SIZES, generate_s=generated, load_before=load_before, load_after=_load())
    shutil.rmtree(work, ignore_errors=True)
    print(f"  {small_nights_line(stats)}", flush=True)
    return stats


TASKS = ("process_file", "write_manifest", "render_data_docs")


def _task_one(args: argparse.Namespace) -> int:
    """Child: one task of one file in a fresh process, as Airflow runs each task: the time to
    import what the task function imports, and its work; Airflow's own start-up is not in it.
    The landed file and each task's result pass between the children as files (XCom's part)."""
    work, index = Path(args.work), int(args.file)
    os.environ["SAMVERKAN_DATA_ROOT"] = str(work / "data")
    feed, night, path = json.loads((work / "cold.json").read_text(encoding="utf-8"))[index]
    passed = work / f"cold-{index}.json"
    started = time.perf_counter()
    from samverkan.core.contracts import load_contracts
    from samverkan.orchestration import feed_runtime as runtime

    contract = load_contracts()[feed]
    if args.task == "process_file":
        from samverkan.core.ledger import Ledger
        from samverkan.core.settings import Paths
        from samverkan.privacy.pseudonymise import Pseudonymiser

        paths = Paths(work / "data").ensure()
        landing = time.perf_counter()
        landed = land(paths, Ledger(paths.ledger), feed, night, Path(path), "benchmark-cold")  # fetch_file's part
        started += time.perf_counter() - landing
        imported = time.perf_counter()
        result = runtime.process_landed(
            contract, landed, "benchmark-cold", REPO / "expectations", lambda: Pseudonymiser(_key())
        )
        passed.write_text(json.dumps({"landed": landed, "result": result}, default=str), encoding="utf-8")
    else:
        state = json.loads(passed.read_text(encoding="utf-8"))
        imported = time.perf_counter()
        if args.task == "write_manifest":
            runtime.record_run(
                contract, [state["landed"]], [state["result"]], "benchmark-cold", date.fromisoformat(night)
            )
        else:
            runtime.render_data_docs(contract, [state["result"]], "benchmark-cold")
    done = time.perf_counter()
    print(
        json.dumps(
            {
                "import_s": imported - started,
                "work_s": done - imported,
                "great_expectations": "great_expectations" in sys.modules,
            }
        )
    )
    return 0


def small_nights_line(r: dict) -> str:
    warm = r["files"] - 1
    return (
        f"{r['nights']} nights × 3 feeds: {r['files']} files, {r['rows']:,} rows; first file {r['first_file_s']:.1f} s "
        f"(imports, GE context); the other {warm}: task time {r['warm_s'] / warm:.3f} s/file "
        f"= {warm / r['warm_s']:.2f} files/s (process + manifest), Data Docs after it "
        f"{r['warm_docs_s'] / warm:.3f} s/file; with Data Docs and landing {warm / r['warm_wall_s']:.2f} files/s, "
        f"{r['warm_cpu_s'] / warm:.3f} s of CPU per file; load {r['load_before']} → {r['load_after']}"
    )


def small_nights_report(r: dict) -> str:
    warm = r["files"] - 1
    lines = [
        small_nights_line(r),
        "",
        "| feed | files | mean task s/file | median | 95th percentile |",
        "|---|---:|---:|---:|---:|",
    ]
    for feed, times in r["per_feed"].items():  # the cold first file is not among them
        lines.append(
            f"| {feed} | {len(times)} | {sum(times) / len(times):.3f} | {times[len(times) // 2]:.3f} | "
            f"{times[min(len(times) - 1, int(0.95 * len(times)))]:.3f} |"
        )
    total = sum(v for k, v in r["stages"].items() if k != DOCS)
    lines += ["", "| stage | s | share of task time | s/file | CPU s/file |", "|---|---:|---:|---:|---:|"]
    for stage, seconds in r["stages"].items():
        share = "(after)" if stage == DOCS else f"{seconds / total:.0%}"
        lines.append(
            f"| {stage} | {seconds:.1f} | {share} | {seconds / warm:.3f} | {r['stages_cpu'][stage] / warm:.3f} |"
        )
    lines += [
        "",
        "The last night, each task in a fresh process as Airflow runs it (Airflow's start-up not "
        "included): import + work seconds, and whether the task imported Great Expectations.",
        "",
        f"| feed | {' | '.join(TASKS)} |",
        f"|---|{'---:|' * len(TASKS)}",
    ]
    for feed, tasks in (r.get("cold_tasks") or {}).items():
        cells = [
            f"{t['import_s']:.2f} + {t['work_s']:.2f}{' (GE)' if t['great_expectations'] else ''}"
            for t in (tasks[name] for name in TASKS)
        ]
        lines.append(f"| {feed} | {' | '.join(cells)} |")
    return "\n".join(lines)


# --- the run -------------------------------------------------------------------------------


def _generate(work: Path, police_rows: int, distinct_texts: bool) -> dict[str, Path]:
    from devkit.synthetic import Population, write_night

    partners = work / "partners"
    population = Population(seed=7)
    files = {}
    for feed in FEEDS:
        rows = max(1, int(police_rows * SHARE[feed]))
        started = time.perf_counter()
        truth = write_night(
            feed, NIGHT, partners, rows=rows, population=population, seed=11, distinct_texts=distinct_texts
        )
        files[feed] = truth.path
        print(
            f"  generated {feed}: {truth.records:,} records, {truth.path.stat().st_size / 2**20:,.1f} MiB "
            f"in {time.perf_counter() - started:.0f} s",
            flush=True,
        )
    return files


def _run_size(work: Path, police_rows: int, batch_rows: int, distinct_texts: bool) -> dict:
    files = _generate(work, police_rows, distinct_texts)
    from samverkan.core.ledger import Ledger
    from samverkan.core.settings import Paths

    paths = Paths(work / "data").ensure()
    ledger = Ledger(paths.ledger)
    measured = {"police_rows": police_rows, "load_before": _load(), "feeds": {}}
    for feed, path in files.items():
        landed = land(paths, ledger, feed, NIGHT.isoformat(), path, "benchmark")
        stats = _child(
            [
                "process-one",
                "--feed",
                feed,
                "--landed",
                json.dumps(landed),
                "--data-root",
                str(work / "data"),
                "--batch-rows",
                str(batch_rows),
            ]
        )
        stats["mib"] = path.stat().st_size / 2**20
        if path.name.endswith(".csv"):
            out = work / f"duckdb-{feed}.parquet"
            stats["duckdb"] = _child(["duckdb-one", "--feed", feed, "--path", str(path), "--out", str(out)])
            out.unlink(missing_ok=True)
        measured["feeds"][feed] = stats
        print(f"  {_feed_line(feed, stats)}", flush=True)
        Path(landed["path"]).unlink(missing_ok=True)
    measured["load_after"] = _load()
    shutil.rmtree(work / "partners", ignore_errors=True)
    shutil.rmtree(work / "data", ignore_errors=True)
    return measured


def _feed_line(feed: str, s: dict) -> str:
    line = (
        f"{feed}: {s['rows']:,} rows, {s['mib']:,.1f} MiB in {s['seconds']:.1f} s = "
        f"{s['rows'] / s['seconds']:,.0f} rows/s, {s['mib'] / s['seconds']:,.1f} MiB/s, peak RSS {s['peak_rss_mib']:,.0f} MiB"
    )
    if "duckdb" in s:
        d = s["duckdb"]
        line += (
            f"; DuckDB {d['seconds']:.1f} s = {d['rows'] / d['seconds']:,.0f} rows/s, peak RSS {d['peak_rss_mib']:,.0f} MiB;"
            f" ratio {(s['rows'] / s['seconds']) / (d['rows'] / d['seconds']):.2f}"
        )
    return line


def report(results: dict) -> str:
    lines = [
        f"machine: {os.cpu_count()} cores; batch {results['batch_rows']:,} records, "
        f"{results.get('batch_workers', '1')} process(es) per file; "
        f"{'every free text distinct; ' if results.get('distinct_texts') else ''}"
        f"load average (1/5/15 min) at start {results['load_start']}, at end {results['load_end']}",
        "",
    ]
    lines += (
        [
            "| police rows | feed | rows | MiB | pipeline s | rows/s | MiB/s | peak RSS MiB | DuckDB s | DuckDB rows/s "
            "| DuckDB peak RSS MiB | pipeline/DuckDB | Parquet MiB | Parquet ÷ raw ids | Parquet ÷ no id columns |",
            "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        if results["sizes"]
        else []
    )
    for size in results["sizes"]:
        for feed, s in size["feeds"].items():
            d = s.get("duckdb")
            rate = s["rows"] / s["seconds"]
            duck = (
                (
                    f"{d['seconds']:.1f} | {d['rows'] / d['seconds']:,.0f} | {d['peak_rss_mib']:,.0f} | "
                    f"{rate / (d['rows'] / d['seconds']):.2f}"
                )
                if d
                else "– | – | – | –"
            )
            vs_raw = s["parquet_with"] / s["parquet_raw_ids"] if s["parquet_raw_ids"] else float("nan")
            vs_none = s["parquet_with"] / s["parquet_without"] if s["parquet_without"] else float("nan")
            lines.append(
                f"| {size['police_rows']:,} | {feed} | {s['rows']:,} | {s['mib']:,.1f} | {s['seconds']:.1f} | "
                f"{rate:,.0f} | {s['mib'] / s['seconds']:,.1f} | {s['peak_rss_mib']:,.0f} | {duck} | "
                f"{s['parquet_with'] / 2**20:,.2f} | {vs_raw:.3f} | {vs_none:.3f} |"
            )
    lines.append("")
    sizes = results["sizes"]
    if len(sizes) >= 2:
        small, large = sizes[0], sizes[-1]
        lines.append(
            f"growth {small['police_rows']:,} → {large['police_rows']:,} police rows "
            f"(×{large['police_rows'] / small['police_rows']:.0f} data):"
        )
        for feed in small["feeds"]:
            a, b = small["feeds"][feed], large["feeds"][feed]
            lines.append(
                f"  {feed}: time ×{b['seconds'] / a['seconds']:.1f}, µs/row {1e6 * a['seconds'] / a['rows']:.1f} → "
                f"{1e6 * b['seconds'] / b['rows']:.1f}, peak RSS {a['peak_rss_mib']:,.0f} → {b['peak_rss_mib']:,.0f} MiB"
            )
        mid = next((s for s in sizes if s["police_rows"] == 500_000), None)
        if mid is not None and mid is not large:
            for feed in mid["feeds"]:
                lines.append(
                    f"  peak RSS {feed} {large['police_rows']:,} / 500,000: "
                    f"{large['feeds'][feed]['peak_rss_mib'] / mid['feeds'][feed]['peak_rss_mib']:.2f}"
                )
    sftp = results.get("sftp")
    if sftp:
        lines += [
            "",
            f"SFTP pull of {sftp['mib']} MiB over loopback, best of {len(sftp['connector_s'])}: connector "
            f"{sftp['connector_mib_s']:,.0f} MiB/s, OpenSSH sftp {sftp['openssh_mib_s']:,.0f} MiB/s; "
            f"connector/OpenSSH {sftp['ratio']:.2f} (all runs: connector "
            f"{', '.join(f'{t:.2f}' for t in sftp['connector_s'])} s; OpenSSH "
            f"{', '.join(f'{t:.2f}' for t in sftp['openssh_s'])} s; connector/OpenSSH per run "
            f"{', '.join(f'{r:.2f}' for r in sftp['ratios'])})",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Samverkan benchmark: pipeline vs DuckDB, connector vs OpenSSH")
    sub = parser.add_subparsers(dest="cmd")
    one = sub.add_parser("process-one")
    for name in ("--feed", "--landed", "--data-root"):
        one.add_argument(name, required=True)
    one.add_argument("--batch-rows", type=int, default=100_000)
    hist = sub.add_parser("history-one")
    for name in ("--work", "--feeds", "--first", "--last"):
        hist.add_argument(name, required=True)
    hist.add_argument("--workers", default="2")
    task_one = sub.add_parser("task-one")
    for name in ("--work", "--task", "--file"):
        task_one.add_argument(name, required=True)
    nights_one = sub.add_parser("nights-one")
    for name in ("--work",):
        nights_one.add_argument(name, required=True)
    duck = sub.add_parser("duckdb-one")
    for name in ("--feed", "--path", "--out"):
        duck.add_argument(name, required=True)
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[100_000, 500_000, 5_000_000],
        help="police rows per size; transit and guards get a quarter each",
    )
    parser.add_argument("--batch-rows", type=int, default=100_000)
    parser.add_argument(
        "--distinct-texts",
        action="store_true",
        help="no two free texts alike, as in real exports (the generator's repeat with its people and templates)",
    )
    parser.add_argument(
        "--batch-workers",
        type=int,
        default=None,
        help="processes per file for the sized files (SAMVERKAN_BATCH_WORKERS; default: as set, else 1)",
    )
    parser.add_argument("--sftp-mib", type=int, default=500, help="size of the SFTP test file (0: skip)")
    parser.add_argument("--sftp-repeats", type=int, default=3)
    parser.add_argument("--sftp-only", action="store_true", help="only the SFTP pull (connector vs OpenSSH sftp)")
    parser.add_argument(
        "--history-days",
        type=int,
        default=0,
        help="also import this many nights of history for three feeds (365: a year; 0: skip)",
    )
    parser.add_argument(
        "--history-scales",
        type=int,
        nargs="+",
        default=[1, 10],
        help="history sizes as multiples of Östersund's (police 400, transit 150, guards 80 rows)",
    )
    parser.add_argument("--history-only", action="store_true", help="only the history case")
    parser.add_argument("--history-workers", type=int, default=2, help="feeds imported at once (1: serial)")
    parser.add_argument(
        "--small-nights",
        type=int,
        default=0,
        help="also run this many nights × 3 feeds at demo size (400/150/80 rows) through the "
        "nightly steps without SFTP, for files/s and time per stage (365: a year; 0: skip)",
    )
    parser.add_argument("--small-nights-only", action="store_true", help="only the small-nights case")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.cmd == "process-one":
        return _process_one(args)
    if args.cmd == "duckdb-one":
        return _duckdb_one(args)
    if args.cmd == "history-one":
        return _history_one(args)
    if args.cmd == "task-one":
        return _task_one(args)
    if args.cmd == "nights-one":
        return _nights_one(args)

    work = args.workdir or Path(tempfile.mkdtemp(prefix="samverkan-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ[KEY_ENV] = os.urandom(32).hex()  # the children inherit it; never on a command line
    from samverkan.ingest.parallel import WORKERS_ENV

    if args.batch_workers is not None:
        os.environ[WORKERS_ENV] = str(args.batch_workers)  # the process-one children inherit it
    workers = os.environ.get(WORKERS_ENV) or "1"
    results = {
        "batch_rows": args.batch_rows,
        "batch_workers": workers,
        "distinct_texts": args.distinct_texts,
        "load_start": _load(),
        "sizes": [],
    }
    print(f"workdir {work}; load {results['load_start']}", flush=True)
    only = args.history_only or args.small_nights_only or args.sftp_only
    if args.small_nights:
        print(f"small nights: {args.small_nights} nights × 3 feeds at demo size", flush=True)
        results["small_nights"] = _small_nights(work / "small-nights", args.small_nights)
    for rows in [] if only else sorted(args.sizes):
        print(f"size {rows:,} police rows", flush=True)
        results["sizes"].append(_run_size(work / f"size-{rows}", rows, args.batch_rows, args.distinct_texts))
    if args.history_days and not (args.small_nights_only or args.sftp_only):
        print(
            f"history import: {args.history_days} nights × 3 feeds at ×{', ×'.join(map(str, args.history_scales))}",
            flush=True,
        )
        results["history"] = _history(work, args.history_days, args.history_scales, args.history_workers)
    if args.sftp_mib and (args.sftp_only or not only):
        print(f"SFTP {args.sftp_mib} MiB", flush=True)
        results["sftp"] = _sftp(work / "sftp", args.sftp_mib, args.sftp_repeats)
    results["load_end"] = _load()
    print()
    if results["sizes"] or results.get("sftp"):
        print(report(results))
    if results.get("history"):
        print(
            f"history import; load average (1/5/15 min) at start {results['load_start']}, at end {results['load_end']}"
        )
        print(history_report(results["history"]))
    if results.get("small_nights"):
        print(f"small nights; load average (1/5/15 min) at start {results['load_start']}, at end {results['load_end']}")
        print(small_nights_report(results["small_nights"]))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
