"""Arrow and numpy steps shared by the model, the validation and the duplicate check: work
once per distinct value, what a file's earlier batches held (``SortedRuns``), and the memory pool
Arrow allocates from in a process that works on files."""

from __future__ import annotations

import functools
import os

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def distinct_rows(columns: list[pa.Array | pa.ChunkedArray]) -> tuple[np.ndarray, np.ndarray]:
    """(each row's combination number, the first row of each combination) over row-aligned
    columns; null is a value of its own. Expensive per-value work (GE checks, scrubbing) then
    runs once per combination and is copied back to every row with ``take``."""
    if len(columns) == 1:
        return _distinct_one(columns[0])
    key: np.ndarray | None = None
    for values in columns:
        codes = _codes(values)
        if key is None:
            key = codes
        else:
            _, key = np.unique(key, return_inverse=True)
            key = key.astype(np.int64).reshape(-1) * (int(codes.max(initial=-1)) + 2) + (codes + 1)
    if key is None:
        raise ValueError("distinct_rows needs at least one column")
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    return inverse.reshape(-1), first


def _distinct_one(values: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """``distinct_rows`` of one column without a sort: Arrow numbers a column's values in the
    order they first occur, so those codes are already what ``np.unique`` would return, null
    (code -1) first. The first row of each value is where the running maximum of the codes
    rises. Most checked columns are single, and the sort was most of the work (issue 13)."""
    codes = _codes(values)
    if len(codes) == 0:
        return codes, codes.copy()
    rises = np.flatnonzero(np.diff(np.maximum.accumulate(codes), prepend=-1) > 0)
    nulls = np.flatnonzero(codes < 0)
    if len(nulls) == 0:
        return codes, rises
    first = np.concatenate([nulls[:1], rises])
    return codes + 1, first


def encoded(values: pa.Array | pa.ChunkedArray) -> pa.DictionaryArray:
    """``values`` as one dictionary array: each distinct value once, in the order it first
    occurs, and each row's index into them (null for null). The form every step that works once
    per distinct value starts from."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return pc.dictionary_encode(values)


def row_codes(values: pa.DictionaryArray) -> np.ndarray:
    """Each row's index into an ``encoded`` array's dictionary, as numpy; null is -1."""
    return pc.fill_null(values.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)


def _codes(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Arrow's dictionary code of each row's value, in first-occurrence order; null is -1."""
    return row_codes(encoded(values))


POOL_ENV = "ARROW_DEFAULT_MEMORY_POOL"


@functools.cache
def use_hub_memory_pool() -> str:
    """Arrow allocates from jemalloc (else the system's malloc) in a process that works on
    files, unless ``ARROW_DEFAULT_MEMORY_POOL`` names a pool; returns the pool in use.

    pyarrow's own default here is mimalloc, which hands freed pages back to the kernel within
    milliseconds and takes fresh (zeroed, often huge) pages for the next batch. On the 2-core
    hub VM that made system time a third of a file's CPU time (1M police rows: 4.5-5.2 s of
    kernel time, a fifth of all samples zeroing pages); with jemalloc 1.3 s, and the file
    13.4 → 10.4 s, guards 5.0 → 2.6 s, transit 7.1 → 4.5 s, each with 50-80 MiB less at peak
    (docs/performance.md, "Eighth pass"). The published bytes do not depend on the pool."""
    if os.environ.get(POOL_ENV):
        return pa.default_memory_pool().backend_name  # the operator's choice, read by Arrow itself
    try:
        pool = pa.jemalloc_memory_pool()
    except NotImplementedError:  # a pyarrow built without jemalloc
        pool = pa.system_memory_pool()
    pa.set_memory_pool(pool)
    return pool.backend_name


class SortedRuns:
    """64-bit keys, each with a 64-bit value, remembered across a file's batches.

    Kept as a few sorted runs, each more than twice the size of the next: a new batch's keys
    are a run of their own, and the last two runs are merged while the one before is no more
    than twice the last. So each key is moved a few times per doubling of the file, where one
    sorted array with each batch inserted (``np.insert``) moved every key of the file for every
    batch: at 5M police rows, 50 batches, that was 4 s of the duplicate check alone. A lookup
    searches each run, and there are at most log2 of the keys held of them."""

    def __init__(self, dtype: np.dtype | type = np.uint64) -> None:
        self._dtype = np.dtype(dtype)
        self._runs: list[tuple[np.ndarray, np.ndarray]] = []

    def __len__(self) -> int:
        return sum(len(keys) for keys, _ in self._runs)

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(whether each key is known, its value where it is, else 0).

        The keys are searched in sorted order: numpy then walks each run forwards instead of
        jumping about a large array, 5 × faster for 100k keys in 4M."""
        order = None if np.all(keys[1:] >= keys[:-1]) else np.argsort(keys, kind="stable")
        wanted = keys if order is None else keys[order]
        found = np.zeros(len(keys), bool)
        values = np.zeros(len(keys), np.int64)
        for run, run_values in self._runs:
            at = np.minimum(np.searchsorted(run, wanted), len(run) - 1)
            hit = run[at] == wanted
            values[hit] = run_values[at[hit]]
            found |= hit
        if order is None:
            return found, values
        unsorted_found, unsorted_values = np.empty_like(found), np.empty_like(values)
        unsorted_found[order], unsorted_values[order] = found, values
        return unsorted_found, unsorted_values

    def add(self, keys: np.ndarray, values: np.ndarray | None = None) -> None:
        """Keys not yet known, sorted and distinct, with their values (default 0)."""
        if not len(keys):
            return
        values = np.zeros(len(keys), np.int64) if values is None else np.asarray(values, np.int64)
        self._runs.append((np.asarray(keys, self._dtype), values))
        while len(self._runs) > 1 and len(self._runs[-2][0]) <= 2 * len(self._runs[-1][0]):
            later = self._runs.pop()
            self._runs.append(_merged(self._runs.pop(), later))


def _merged(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Two sorted runs with no key in common as one: b's keys go where searchsorted puts them."""
    (keys_a, values_a), (keys_b, values_b) = a, b
    at = np.searchsorted(keys_a, keys_b) + np.arange(len(keys_b))
    from_a = np.ones(len(keys_a) + len(keys_b), bool)
    from_a[at] = False
    keys = np.empty(len(from_a), keys_a.dtype)
    values = np.empty(len(from_a), np.int64)
    keys[at], values[at] = keys_b, values_b
    keys[from_a], values[from_a] = keys_a, values_a
    return keys, values
