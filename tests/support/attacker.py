"""The recipient's attack on a published count table (``incident_counts`` and its kin).

The attacker knows only the published rows: every count that is not withheld, every total, and
that counts are never negative. It tries (a) the school-book attack, total minus the published
cells of a line, and (b) linear programming, the least and greatest value each withheld count
can take. It reads the published table, never the suppression module's internals, so one copy
serves the unit tests (tests/unit/sharing/test_suppression.py) and the delivered tables of the
end-to-end test (tests/integration/test_delivery_e2e.py).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from scipy.optimize import linprog

TOTAL_LEVELS = ("all_places_and_categories", "week_total")  # rows without a place and category


def equations(published: list[dict]) -> tuple[list[tuple], dict[tuple, int | None], list[list[tuple[tuple, int]]]]:
    """Entries keyed (row, hour) with row = (area, category) or None for the hour totals, hour None
    for totals over hours; and every line as (entry, sign) pairs summing to zero."""
    value = {}
    for r in published:
        row = None if r["level"] in TOTAL_LEVELS else (r["area"], r["category"])
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
                known[k] = recovered[k] = round(-rest / s)
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
