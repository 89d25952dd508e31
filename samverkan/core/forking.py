"""Forking worker processes from a process that may hold DuckDB (or other native) objects.

A forked child inherits the parent's heap but not its threads. If the child's garbage collector
then frees an inherited DuckDB connection, DuckDB joins its scheduler's threads, which do not
exist in the child, and the child hangs (seen in the test suite: a history import forked after
earlier tests had left a DuckDB connection in a reference cycle). So the parent collects its
garbage first, where those threads do exist, and freezes what is left: the child's collector
never looks at inherited objects (which also keeps their pages shared instead of copied).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def frozen_heap() -> Iterator[None]:
    """Around forking workers: garbage collected here, the rest left alone by the children."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
