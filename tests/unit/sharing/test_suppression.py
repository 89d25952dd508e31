"""Small-count suppression, attacked the way a recipient would attack it.

The attacker (tests/support/attacker.py) knows only the published rows of ``incident_counts``
(as a recipient reads them): it tries total minus the published cells of a line, and linear
programming. The true counts it is checked against come from DuckDB SQL, not from the module.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import duckdb
import pyarrow as pa
import pytest

from samverkan.ingest.model import INCIDENTS_SCHEMA
from samverkan.sharing import aggregates
from tests.support.attacker import equations, lp_attack, subtraction_attack

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


def true_values(incidents: pa.Table) -> dict[tuple, int]:
    """The oracle, in DuckDB SQL and not through the module: every count of each ISO week's
    table (area x category rows, 24 hours), with the row, column and grand totals; None marks a
    total. Incidents without a time are not counted; a missing place is 'unknown'."""
    con = duckdb.connect()
    con.register("incidents", incidents)
    found = con.execute("""
        WITH timed AS (
            SELECT strftime(occurred_at_local, '%G-W%V') AS week, coalesce(area, 'unknown') AS area,
                   coalesce(category, 'other') AS category, hour(occurred_at_local) AS hour
            FROM incidents WHERE occurred_at_local IS NOT NULL)
        SELECT week, area, category, hour, count(*) FROM timed
        GROUP BY GROUPING SETS ((week, area, category, hour), (week, area, category), (week, hour), (week))
    """).fetchall()
    counted = {(week, None if area is None else (area, category), hour): n for week, area, category, hour, n in found}
    truth = {}
    for week in {k[0] for k in counted}:
        rows = {k[1] for k in counted if k[0] == week}  # the week's (area, category) rows and None
        truth.update({(week, row, hour): counted.get((week, row, hour), 0)
                      for row in rows for hour in [*range(24), None]})
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
