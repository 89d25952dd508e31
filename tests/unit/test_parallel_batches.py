"""Batches mapped on several processes (issue 13) publish what the serial path publishes.

The serial path (one worker: batch after batch in the calling process) is the straightforward
one; the parallel path maps batches in forked workers and applies them in order. Both run on
the same files, small batches, with faulty records, exact duplicates and incident keys that
come back in later batches, and must write the same bytes (published, private and quarantine
Parquet) and the same result.
"""

import csv
import hashlib
import io
import os
import shutil
import threading
from dataclasses import asdict
from datetime import date

import pytest

from devkit.synthetic import Faults, Population, write_night
from samverkan.core import publishing
from samverkan.core.ledger import Ledger
from samverkan.core.settings import Paths
from samverkan.ingest import parallel
from samverkan.ingest.pipeline import process
from samverkan.privacy.pseudonymise import Pseudonymiser
from samverkan.quality.validation import EXPECTATIONS_DIR

pytestmark = pytest.mark.unit

NIGHT = date(2026, 3, 2)
BATCH = 60
KEY_COLUMN = {"police": "Diarienr", "guards": None}


def _with_repeats(contract, path):
    """The file with, after its own records, exact copies of early records (repeats found in a
    later batch) and early records with one field changed (not repeats: their incident keys
    were seen in an earlier batch)."""
    fmt = contract.format
    raw = path.read_bytes()
    newline = "\r\n" if b"\r\n" in raw else "\n"
    rows = list(csv.reader(io.StringIO(raw.decode(fmt["encoding"]), newline=""), delimiter=fmt["delimiter"],
                           quotechar=fmt["quotechar"]))
    header, records = rows[0], rows[1:]
    changed = []
    for record in records[1:40:3]:
        record = list(record)
        record[-1] = (record[-1] + " igen").strip()  # the free text: a new record, the same incident key
        changed.append(record)
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=fmt["delimiter"], quotechar=fmt["quotechar"], lineterminator=newline)
    writer.writerows([header, *records[:BATCH + 5], *records[:25:2], *records[BATCH + 5:], *changed, *records[:3]])
    path.write_bytes(out.getvalue().encode(fmt["encoding"]))
    return path


def _process(contract, source, root, validator, workers):
    paths = Paths(root).ensure()
    ledger = Ledger(paths.ledger)
    target = paths.landing(contract.id, NIGHT.isoformat()) / source.name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    sha = hashlib.sha256(target.read_bytes()).hexdigest()
    landed = {"entry_id": ledger.record_landed(contract.id, source.name, NIGHT.isoformat(), 1, 0, sha, "t"),
              "name": source.name, "night": NIGHT.isoformat(), "path": str(target), "sha256": sha,
              "action": "process"}
    result = process(contract, landed, paths, ledger, Pseudonymiser(bytes(range(7, 39))), validator, run_id="t",
                     expectations_dir=EXPECTATIONS_DIR, batch_rows=BATCH, workers=workers)
    written = {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.parquet"))
               if "expectation_outcomes" not in p.parts}
    found = asdict(result)
    found["outputs"] = [os.path.relpath(p, root) for p in result.outputs]
    found.pop("receipt")
    return found, written


@pytest.fixture()
def submissions(monkeypatch):
    """Batches handed to a worker process (the pool is really used, not the in-process fallback)."""
    counted = []

    class Counting(parallel.ProcessPoolExecutor):
        def submit(self, fn, /, *args, **kwargs):
            counted.append(args)
            return super().submit(fn, *args, **kwargs)

    monkeypatch.setattr(parallel, "ProcessPoolExecutor", Counting)
    return counted


@pytest.fixture()
def writers(monkeypatch):
    """The thread each Parquet batch was written in."""
    names = []
    write = publishing.StagedParquet._write_now

    def recorded(self, table):
        names.append(threading.current_thread().name)
        return write(self, table)

    monkeypatch.setattr(publishing.StagedParquet, "_write_now", recorded)
    return names


@pytest.mark.parametrize("feed", ["police", "guards", "transit"])
def test_parallel_batches_write_the_serial_bytes(contracts, validator, tmp_path, submissions, writers, feed):
    """The serial path also writes its Parquet behind, in a thread; the parallel path, which
    forks, writes in the caller. Same bytes; no writer thread outlives the file."""
    contract = contracts[feed]
    csv_file = contract.format.get("delimiter") is not None
    faults = (Faults(bad_checksum_pnr=4, impossible_date=3, unknown_category=2) if csv_file
              else Faults(impossible_date=3, unknown_category=2, bad_json_lines=5))
    truth = write_night(feed, NIGHT, tmp_path / "in", rows=420, population=Population(seed=3, size=80), seed=5,
                        faults=faults)
    source = _with_repeats(contract, truth.path) if csv_file else truth.path
    serial, serial_written = _process(contract, source, tmp_path / "serial", validator, workers=1)
    assert not submissions
    assert len(writers) > 3 and all(name.startswith("parquet-writer") for name in writers)
    assert not [t for t in threading.enumerate() if t.name.startswith("parquet-writer")]
    writers.clear()
    both, both_written = _process(contract, source, tmp_path / "parallel", validator, workers=2)
    assert len(writers) > 3 and set(writers) == {threading.main_thread().name}
    assert len(submissions) == -(-both["rows_received"] // BATCH) > 2
    assert len(serial["quarantine_reasons"]) >= 3  # the faults' checks
    if csv_file:
        assert serial["quarantine_reasons"]["duplicate record"] == 13 + 3
        assert serial["rows_quarantined"] > 16 and serial["rows_published"] > 400
    else:
        assert serial["quarantine_reasons"]["unreadable record"] == 5
    if feed == "police":  # incident keys met again in later batches are published once
        assert serial["incidents"] < serial["rows_published"]
    assert both == serial
    assert sorted(both_written) == sorted(serial_written)
    assert any("quarantine" in p for p in serial_written) and any("incident_ids" in p for p in serial_written)
    for path, data in serial_written.items():
        assert both_written[path] == data, path


def test_results_come_back_in_order_from_other_processes():
    out = list(parallel.ordered_map(lambda x: (x * x, os.getpid()), ((i, i) for i in range(9)), workers=2))
    assert [(c, r[0]) for c, r in out] == [(i, i * i) for i in range(9)]
    assert os.getpid() not in {r[1] for _, r in out}


def test_a_failing_source_still_hands_back_what_came_before_it():
    def items():
        yield from ((i, i) for i in range(4))
        raise ValueError("past the file's limits")

    got = []
    with pytest.raises(ValueError, match="limits"):
        for context, result in parallel.ordered_map(lambda x: -x, items(), workers=2):
            got.append((context, result))
    assert got == [(i, -i) for i in range(4)]


def test_one_batch_or_one_worker_stays_in_this_process():
    assert list(parallel.ordered_map(lambda x: os.getpid(), [("a", 1)], workers=2)) == [("a", os.getpid())]
    assert {r for _, r in parallel.ordered_map(lambda x: os.getpid(), [(1, 1), (2, 2)], workers=1)} == {os.getpid()}


def test_workers_die_with_their_parent(tmp_path):
    """A killed task leaves no worker waiting for batches (Linux: PR_SET_PDEATHSIG)."""
    import signal
    import subprocess
    import sys
    import time

    script = ("import os, sys, time\nfrom samverkan.ingest import parallel\n"
              "def slow(x):\n    open(sys.argv[1] + '/' + str(os.getpid()), 'w').close(); time.sleep(60)\n"
              "list(parallel.ordered_map(slow, ((i, i) for i in range(4)), workers=2))\n")
    parent = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], env={**os.environ, "PYTHONPATH": os.getcwd()})
    deadline = time.monotonic() + 60
    while len(list(tmp_path.iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    workers = [int(p.name) for p in tmp_path.iterdir()]
    assert len(workers) == 2
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers)


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_workers_from_the_environment(monkeypatch):
    monkeypatch.delenv(parallel.WORKERS_ENV, raising=False)
    assert parallel.default_workers(100_000) == 1
    monkeypatch.setenv(parallel.WORKERS_ENV, "2")
    assert parallel.default_workers(100_000) == min(2, len(os.sched_getaffinity(0)))
    assert parallel.default_workers(parallel.MIN_BATCH_ROWS - 1) == 1
    monkeypatch.setenv(parallel.WORKERS_ENV, "two")
    with pytest.raises(ValueError, match="SAMVERKAN_BATCH_WORKERS"):
        parallel.default_workers(100_000)
