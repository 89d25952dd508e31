"""Exact duplicate records inside one file (issue 14, item 9).

A partner's export that repeats a record (570,000 copies of one transit incident were seen)
would otherwise publish one incident with as many involvements, silently. A record that equals
an earlier record of the same file in every contract column is a repeat: the first is kept and
published as usual, the repeats go to the quarantine with their own reason. Columns the contract
does not read (an unannounced CSV column, an extra JSON field) are not compared: a repeat is a
record that would publish exactly what an earlier one did.

Each record is reduced to a 64-bit digest by DuckDB's ``hash`` over its values (nested ones
included, NULL distinct from ""), and the digests of earlier batches are kept as a sorted
numpy array with the first record number of each: 16 bytes per distinct record, whatever the
file's size. Two different records sharing a digest would quarantine the later one as a repeat
(never publish anything wrong); among 10 million distinct records the chance is about 3 in a
million, and the quarantine entry names the record it was taken for, so it can be seen.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from samverkan.core.arrowops import SortedRuns
from samverkan.ingest.parsing import ROW

if TYPE_CHECKING:
    import duckdb

LABEL = "duplicate record"
REASON = "the record is an exact copy of an earlier record in the same file; the first one is kept"


class Repeats:
    """Remembers the records of one file, batch by batch, and names each record's original."""

    def __init__(self) -> None:
        self._seen = SortedRuns(np.uint64)  # digest → record number of its first record
        self._con: duckdb.DuckDBPyConnection | None = None  # a cursor, taken on the first batch

    def originals(self, table: pa.Table) -> np.ndarray:
        """Per record: the number of the earlier record it repeats, or 0 when it is the first."""
        if table.num_rows == 0:
            return np.zeros(0, np.int64)
        digests = self._digest(table)
        rows = table.column(ROW).to_numpy(zero_copy_only=False).astype(np.int64)
        distinct, first_at, inverse = np.unique(digests, return_index=True, return_inverse=True)
        inverse = inverse.reshape(-1)
        known, earlier = self._seen.lookup(distinct)
        original = np.where(known, earlier, rows[first_at])[inverse]
        self._seen.add(distinct[~known], rows[first_at][~known])
        return np.where(original != rows, original, 0)

    def _digest(self, table: pa.Table) -> np.ndarray:
        if self._con is None:
            self._con = _database().cursor()
        columns = ", ".join(f'"{name}"' for name in table.column_names if name != ROW)
        self._con.register("batch", table)
        try:
            result = self._con.sql(f'SELECT hash({columns}) AS h FROM batch ORDER BY "{ROW}"').to_arrow_table()
        finally:
            self._con.unregister("batch")
        return result.column("h").to_numpy()


_DATABASES: dict[int, duckdb.DuckDBPyConnection] = {}


def _database() -> duckdb.DuckDBPyConnection:
    """One in-memory DuckDB per process, each file's ``Repeats`` a cursor of its own on it.

    Opening a DuckDB costs about 0.05 s, as much as the rest of a small file's duplicate check;
    a cursor costs microseconds and keeps its own registrations. Keyed by process id: a forked
    worker opens its own rather than touch the parent's.
    """
    import duckdb

    pid = os.getpid()
    if pid not in _DATABASES:
        _DATABASES[pid] = duckdb.connect()
    return _DATABASES[pid]
