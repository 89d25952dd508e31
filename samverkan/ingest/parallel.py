"""Batches of one file worked on by all cores, their results handed back in file order.

Mapping a batch (validation, pseudonyms, free-text scrubbing) is Python- and GE-bound, so one
process uses one core. ``ordered_map`` runs it in forked worker processes while the calling
process reads the next batches and applies finished ones strictly in order: whatever must see
the file's batches in sequence (duplicate records, incident keys of earlier batches, record
counts, the staged Parquet files) stays in the caller, and the output is the serial path's.

The function runs in workers that inherited it by ``fork``: nothing of it is pickled (the
pseudonymiser refuses to be), only the batches and the results are. A file of one batch, a
caller that is itself a daemonic worker (the history import's pool), or ``workers < 2`` is
worked on in the calling process.
"""

from __future__ import annotations

import ctypes
import gc
import multiprocessing
import os
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from itertools import chain
from typing import Any, TypeVar

C = TypeVar("C")  # what the caller keeps beside a batch until its result is applied
A = TypeVar("A")
R = TypeVar("R")

QUEUED = 1  # batches waiting beyond one per worker, so a worker that finishes need not wait for the caller
PR_SET_PDEATHSIG = 1  # linux/prctl.h
_FORKED: dict[int, Callable[[Any], Any]] = {}  # what forked workers inherit, by token


MIN_BATCH_ROWS = 10_000  # smaller batches cost more to send to a worker and back than they save
WORKERS_ENV = "SAMVERKAN_BATCH_WORKERS"


def default_workers(batch_rows: int) -> int:
    """``SAMVERKAN_BATCH_WORKERS`` (at most the cores this process may use), else one.

    One by default: measured on the 2-core hub (issue 13), two workers made a 1M-row police
    file no faster while other work held the cores (load 4-9), cost about a fifth more CPU
    (batches and results pickled, inherited pages copied) and twice the memory (1.6 GiB PSS in
    all instead of 0.7): each worker holds a batch in flight. An import of one large file on a
    machine of its own is where it pays. Batches under ``MIN_BATCH_ROWS`` always stay here."""
    text = os.environ.get(WORKERS_ENV) or "1"
    if not text.strip().isdigit() or int(text) < 1:
        raise ValueError(f"{WORKERS_ENV} must be a whole number of processes, 1 or more; got {text!r}")
    wanted = int(text)
    if batch_rows < MIN_BATCH_ROWS:
        return 1
    return max(1, min(wanted, len(os.sched_getaffinity(0))))


def ordered_map(fn: Callable[[A], R], items: Iterable[tuple[C, A]], workers: int) -> Iterator[tuple[C, R]]:
    """``(context, fn(arg))`` for each ``(context, arg)`` of ``items``, in their order.

    At most ``workers + 1`` batches are in flight (one waits in the queue, so a worker finishing
    does not wait for the caller); ``items`` is pulled lazily, so reading stays bounded too. If
    pulling an item raises (a file past its limits), the results of the items before it are
    still handed back first, as the serial path would have applied them.
    """
    if workers < 2 or multiprocessing.current_process().daemon:
        for context, arg in items:
            yield context, fn(arg)
        return
    source = iter(items)
    first = next(source, None)  # items are tuples: None marks the end
    if first is None:
        return
    try:
        second = next(source, None)
    except BaseException:
        yield first[0], fn(first[1])
        raise
    if second is None:
        yield first[0], fn(first[1])
        return
    yield from _in_pool(fn, chain([first, second], source), workers)


def _in_pool(fn: Callable[[A], R], source: Iterator[tuple[C, A]], workers: int) -> Iterator[tuple[C, R]]:
    token = id(fn)
    _FORKED[token] = fn
    pool = ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("fork"), initializer=_die_with, initargs=(os.getpid(),)
    )
    # The workers fork at the first submit. Frozen then, the objects they inherit are left alone
    # by their garbage collector, so those pages stay shared instead of each worker writing (and
    # so copying) the whole heap; this process thaws once they are forked.
    gc.collect()  # garbage (a DuckDB connection, say) is freed here, not in a child: see core.forking
    gc.freeze()
    pending: deque[tuple[C, Future]] = deque()
    try:
        while True:
            while len(pending) < workers + QUEUED:
                try:
                    item = next(source, None)
                except BaseException:
                    while pending:
                        context, future = pending.popleft()
                        yield context, future.result()
                    raise
                if item is None:
                    break
                pending.append((item[0], pool.submit(_call, token, item[1])))
                gc.unfreeze()
            if not pending:
                return
            context, future = pending.popleft()
            yield context, future.result()
    finally:
        gc.unfreeze()  # if nothing was submitted
        pool.shutdown(wait=True, cancel_futures=True)
        _FORKED.pop(token, None)


def _die_with(parent: int) -> None:
    """A worker must not outlive its task when that is killed (Airflow's timeout, an OOM kill):
    on Linux it is then killed too, instead of waiting for batches forever."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the pool's own checks remain
        return
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(1)


def _call(token: int, arg: Any) -> Any:
    return _FORKED[token](arg)
