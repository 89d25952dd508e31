"""A forked worker must not free the parent's DuckDB objects (samverkan.core.forking)."""

from __future__ import annotations

import gc
import multiprocessing

import duckdb
import pytest

from samverkan.core.forking import frozen_heap

pytestmark = pytest.mark.unit


def _garbage_duckdb() -> None:
    """A DuckDB connection with its threads running, left in a reference cycle (garbage that only
    the cycle collector frees), as an earlier test or task may leave one."""
    con = duckdb.connect()
    con.execute("SELECT sum(i) FROM range(1000000) t(i)").fetchall()
    holder: list = [con]
    holder.append(holder)


def _child_collects() -> None:
    gc.collect()


def _fork_and_collect(frozen: bool) -> int | None:
    """Fork a child that runs the cycle collector; its exit code, or None if it hung."""
    gc.disable()  # the garbage must survive until the fork
    try:
        _garbage_duckdb()
        context = multiprocessing.get_context("fork")
        if frozen:
            with frozen_heap():
                child = context.Process(target=_child_collects)
                child.start()
        else:
            child = context.Process(target=_child_collects)
            child.start()
    finally:
        gc.enable()
    child.join(30)
    if child.is_alive():
        child.kill()
        child.join()
        return None
    gc.collect()
    return child.exitcode


def test_a_child_forked_from_a_frozen_heap_exits():
    assert _fork_and_collect(frozen=True) == 0


def test_without_freezing_the_child_hangs_or_crashes_on_the_parents_duckdb():
    """The hazard itself (here: killed by SIGSEGV, or hung), so the test above is known to test
    something. Should DuckDB ever make this safe, this test fails and says so."""
    assert _fork_and_collect(frozen=False) != 0
