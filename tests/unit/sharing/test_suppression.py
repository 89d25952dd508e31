"""Small-count suppression, attacked the way a recipient would attack it.

The attacker below knows only the published rows of ``incident_counts`` (as a recipient reads
them): every count that is not withheld, every total, and that counts are never negative. It
tries (a) the school-book attack, total minus the published cells of a line, and (b) linear
programming, the least and greatest value each withheld count can take. It is written against
the published table, not against the module's internals, so it also checks what the module
writes out.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest
from scipy.optimize import linprog

from samverkan.ingest.model import INCIDENTS_SCHEMA
from samverkan.sharing import aggregates
pytestmark = pytest.mark.unit

MONDAY = datetime(2026, 11, 16)


def incidents_from(counts: dict[tuple[str, str, int], int], day: int = 0) -> pa.Table:
    """An incidents table with ``counts[(area, category, hour)]`` incidents at each key."""
    rows = []
    for (area, category, hour), n in counts.items():
        for i in range(n):
            at = MONDAY + timedelta(days=day, hours=hour, minutes=i % 60)
            rows.append({"occurred_at_local": at, "area": area, "category": category})
    return pa.Table.from_pylist(rows, schema=pa.schema([INCIDENTS_SCHEMA.field(n) for n in
                                                         ("occurred_at_local", "area", "category")]))


# --- the attacker -------------------------------------------------------------------------------


def equations(published: list[dict]) -> tuple[list[tuple], dict[tuple, int | None], list[list[tuple[tuple, int]]]]:
    """Entries keyed (row, hour) with row = (area, category) or None for the hour totals, hour None
    for totals over hours; and every line as (entry, sign) pairs summing to zero."""
    value = {}
    for r in published:
        row = None if r["level"] in ("all_places_and_categories", "week_total") else (r["area"], r["category"])
        value[(r["week"], row, r["hour_of_day"])] = r["incidents"]
    lines = []
    by_week = defaultdict(set)
    for week, row, hour in value:
        by_week[week].add((row, hour))
    for week, keys in by_week.items():
        rows = {row for row, _ in keys}
        hours = {hour for _, hour in keys if hour is not None}
        for row in rows:
            lines.append([((week, row, h), 1) for h in hours] + [((week, row, None), -1)])
        for h in list(hours) + [None]:
            lines.append([((week, r, h), 1) for r in rows if r is not None] + [((week, None, h), -1)])
    return list(value), value, lines


def subtraction_attack(published: list[dict]) -> dict[tuple, int]:
    """Repeatedly: a line with one unknown gives it away. Returns what it recovered."""
    _, value, lines = equations(published)
    known = {k: v for k, v in value.items() if v is not None}
    recovered = {}
    progress = True
    while progress:
        progress = False
        for line in lines:
            unknown = [(k, s) for k, s in line if k not in known]
            if len(unknown) == 1:
                k, s = unknown[0]
                rest = sum(known[q] * t for q, t in line if q in known)
                known[k] = recovered[k] = int(round(-rest / s))
                progress = True
    return recovered


def lp_attack(published: list[dict]) -> dict[tuple, tuple[float, float]]:
    """(least, greatest) value of every withheld entry consistent with what was published."""
    keys, value, lines = equations(published)
    unknown = [k for k in keys if value[k] is None]
    index = {k: i for i, k in enumerate(unknown)}
    a, b = [], []
    for line in lines:
        row = np.zeros(len(unknown))
        rhs = 0.0
        for k, s in line:
            if k in index:
                row[index[k]] += s
            else:
                rhs -= s * value[k]
        if row.any():
            a.append(row)
            b.append(rhs)
    bound = sum(v for v in value.values() if v is not None) + 1000
    ranges = {}
    for k, i in index.items():
        c = np.zeros(len(unknown))
        c[i] = 1
        lo = linprog(c, A_eq=a, b_eq=b, bounds=(0, bound), method="highs")
        hi = linprog(-c, A_eq=a, b_eq=b, bounds=(0, bound), method="highs")
        assert lo.status == 0 and hi.status == 0
        ranges[k] = (lo.fun, -hi.fun)
    return ranges


def true_values(incidents: pa.Table) -> dict[tuple, int]:
    truth = {}
    for t in aggregates.week_tables(incidents):
        n_rows, n_cols = t.extended.shape
        for i in range(n_rows):
            for j in range(n_cols):
                truth[(t.week, t.rows[i] if i < n_rows - 1 else None, j if j < n_cols - 1 else None)] = int(t.extended[i, j])
    return truth


def assert_protected(incidents: pa.Table, threshold: int) -> list[dict]:
    published = aggregates.incident_counts(incidents, threshold).to_pylist()
    truth = true_values(incidents)
    _, value, _ = equations(published)
    assert set(value) == set(truth)
    for k, v in value.items():
        if v is not None:
            assert v == truth[k], k  # what is published is true
            assert v == 0 or v >= threshold, k  # and never small
    assert subtraction_attack(published) == {}
    for k, (lo, hi) in lp_attack(published).items():
        assert hi - lo >= 1 - 1e-6, f"{k} pinned to {lo}"
        if 0 < truth[k] < threshold:
            assert hi >= threshold - 1e-6, f"{k} provably small: at most {hi}"
        assert lo - 1e-6 <= truth[k] <= hi + 1e-6
    return published


# --- tests ------------------------------------------------------------------------------------


def test_the_attacker_recovers_cells_when_only_small_counts_are_withheld():
    """Sanity check of the attack: primary suppression alone gives small counts away."""
    incidents = incidents_from({("torg", "theft", 22): 3, ("torg", "theft", 23): 9, ("torg", "violence", 22): 7,
                                ("torg", "violence", 23): 8})
    [table] = aggregates.week_tables(incidents)
    aggregates.primary_suppression(table, 5)
    published = aggregates.to_arrow([table]).to_pylist()
    recovered = subtraction_attack(published)
    assert recovered[("2026-W47", ("torg", "theft"), 22)] == 3


def test_single_small_cell_gets_complements_and_cannot_be_recovered():
    incidents = incidents_from({("torg", "theft", 22): 3, ("torg", "theft", 23): 9, ("torg", "violence", 22): 7,
                                ("torg", "violence", 23): 8})
    published = assert_protected(incidents, 5)
    withheld = [r for r in published if r["suppressed"]]
    assert len(withheld) >= 4  # a small cell needs a rectangle of partners to hide in
    assert all(r["incidents"] is None for r in withheld)


def test_a_lonely_small_row_hides_its_total_too():
    incidents = incidents_from({("torg", "drugs", 3): 2, ("torg", "theft", 22): 12, ("torg", "theft", 23): 9,
                                ("station", "theft", 22): 6, ("station", "theft", 23): 11})
    published = assert_protected(incidents, 5)
    drugs_total = next(r for r in published if r["category"] == "drugs" and r["level"] == "all_hours")
    assert drugs_total["suppressed"]


@pytest.mark.parametrize("seed", range(6))
def test_random_weeks_withstand_both_attacks(seed):
    rng = random.Random(seed)
    counts = {}
    for area in ("gustav_iii_torg", "resecentrum", "stortorget"):
        for category in ("violence", "theft", "disorder", "drugs"):
            for hour in rng.sample(range(24), k=rng.randint(2, 10)):
                counts[(area, category, hour)] = rng.choice([1, 1, 2, 3, 4, 5, 6, 8, 12, 20])
    assert_protected(incidents_from(counts), threshold=5)


@pytest.mark.parametrize("threshold", [3, 10])
def test_threshold_is_configurable(threshold):
    rng = random.Random(threshold)
    counts = {(a, c, h): rng.randint(1, 15) for a in ("a", "b") for c in ("x", "y") for h in rng.sample(range(24), 5)}
    published = assert_protected(incidents_from(counts), threshold)
    assert any(r["incidents"] is not None and r["incidents"] > 0 for r in published)


def test_each_week_is_its_own_table_and_untimed_incidents_are_not_counted():
    incidents = pa.concat_tables([incidents_from({("a", "x", 1): 7}), incidents_from({("a", "x", 1): 6}, day=7)])
    untimed = pa.Table.from_pylist([{"occurred_at_local": None, "area": "a", "category": "x"}], schema=incidents.schema)
    published = aggregates.incident_counts(pa.concat_tables([incidents, untimed]), 5).to_pylist()
    totals = {r["week"]: r["incidents"] for r in published if r["level"] == "week_total"}
    assert totals == {"2026-W47": 7, "2026-W48": 6}


def test_threshold_below_two_is_refused():
    [table] = aggregates.week_tables(incidents_from({("a", "x", 1): 1}))
    with pytest.raises(ValueError, match="threshold"):
        aggregates.suppress(table, 1)
