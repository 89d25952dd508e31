"""The fast LP attacker (warm-started HiGHS, atoms and LP kept across audit rounds) finds exactly
what the straightforward one finds (tests/support/reference_attacker.py: a fresh ``linprog`` per
solve), on generated tables of the lägesbild's shape: per-source heatmaps and their combined map,
two releases that share records, each table protected on its own, so that many entries are weak.
"""

from __future__ import annotations

import numpy as np
import pytest

from samverkan.analysis.disclosure import CountTable, Finding, attack, audit
from tests.support.reference_attacker import reference_attack

pytestmark = pytest.mark.unit

THRESHOLD = 5
SOURCES, ROWS, COLS = 3, 4, 5


def heatmaps(rng: np.random.Generator, release: str, keys: np.ndarray, *, records: int) -> list[CountTable]:
    """A release's heatmap family over ``keys`` (the first ``records`` of them happened in its
    weeks): one table per source and the combined one, each protected alone (no audit)."""
    n = len(keys)
    inside = np.arange(n) < records
    source = rng.integers(0, SOURCES, n)
    row = np.where(inside, rng.integers(0, ROWS, n), -1)
    col = np.where(inside, rng.integers(0, COLS, n), -1)
    tables = [
        CountTable(
            f"{release}:source{s}",
            "all",
            list(range(ROWS)),
            list(range(COLS)),
            keys,
            np.where(source == s, row, -1),
            np.where(source == s, col, -1),
        )
        for s in range(SOURCES)
    ]
    tables.append(CountTable(f"{release}:combined", "all", list(range(ROWS)), list(range(COLS)), keys, row, col))
    return [t.protect(THRESHOLD) for t in tables]


def generated(seed: int, *, audited: bool = False) -> list[CountTable]:
    """Two releases sharing most records (the later one also has new ones), the first fixed;
    ``audited``: the first as the audit released it (as in the weekly run), else protected alone."""
    rng = np.random.default_rng(seed)
    size = int(rng.integers(60, 160))
    keys = rng.choice(10**9, size + 40, replace=False).astype(np.uint64)
    first = heatmaps(np.random.default_rng(seed + 1000), "r1", np.sort(keys[:size]), records=size - 10)
    for t in audit(first, THRESHOLD) if audited else first:
        t.fixed = True
    return first + heatmaps(rng, "r2", keys, records=size + 20)


def same(fast: list[Finding], slow: list[Finding]) -> None:
    key = lambda f: (f.table, f.pos)  # noqa: E731
    fast, slow = sorted(fast, key=key), sorted(slow, key=key)
    assert [(f.table, f.pos, f.truth, f.reason, f.related) for f in fast] == [
        (f.table, f.pos, f.truth, f.reason, f.related) for f in slow
    ]
    for a, b in zip(fast, slow):
        assert a.low == pytest.approx(b.low, abs=1e-6) and a.high == pytest.approx(b.high, abs=1e-6)


@pytest.mark.parametrize("seed", range(8))
def test_the_fast_attacker_finds_what_the_straightforward_one_finds(seed):
    tables = generated(seed)
    slow = reference_attack(tables, THRESHOLD)
    assert slow, "tables protected one by one should have weak entries"
    assert {f.reason for f in slow} <= {"pinned", "known to be small"}
    same(attack(tables, THRESHOLD), slow)
    later = range(SOURCES + 1, len(tables))  # only the second release's entries tried
    same(attack(tables, THRESHOLD, targets=later), reference_attack(tables, THRESHOLD, targets=later))


def test_both_kinds_of_finding_occur_in_the_generated_tables():
    """The comparison covers primary entries proved small and complementary ones pinned."""
    reasons = {f.reason for seed in range(8) for f in reference_attack(generated(seed), THRESHOLD)}
    assert reasons == {"pinned", "known to be small"}


@pytest.mark.parametrize("seed", range(4))
def test_what_the_audit_releases_the_straightforward_attacker_cannot_break(seed):
    """The audit, running the fast attacker round after round on one kept model, leaves nothing
    the straightforward attacker can find."""
    tables = generated(seed, audited=True)
    assert reference_attack(tables, THRESHOLD), "the second release protected alone should be weak"
    audit(tables, THRESHOLD)
    assert any(t.suppressed.any() for t in tables if not t.fixed)
    assert not reference_attack(tables, THRESHOLD)


def test_a_universe_without_records_is_audited_without_error():
    """A release over a week with incidents but no involvements yet: the people tables have no
    records at all. The audit must pass over them (the merged attacker once raised on an empty
    universe, and the lägesbild DAG failed on a hub with one published night)."""
    empty = np.array([], dtype=np.uint64)
    tables = [CountTable(f"people:{i}", "persons", ["a", "b"], [0, 1], empty,
                         np.array([], dtype=np.int64), np.array([], dtype=np.int64)) for i in range(2)]
    for t in tables:
        t.protect(THRESHOLD)
    assert attack(tables, THRESHOLD) == [] == reference_attack(tables, THRESHOLD)
    audit(tables, THRESHOLD)
    assert all(not t.suppressed.any() and t.extended.sum() == 0 for t in tables)
