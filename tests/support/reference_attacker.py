"""The lägesbild's LP attacker as it was before the speed work of issue 12, kept as the reference
the fast one (``samverkan.analysis.disclosure.attack``) must agree with: atoms and entries rebuilt
on every call, one ``scipy.optimize.linprog`` from scratch per solve, Python loops over entries.
Slow, but plainly what the guarantee says; tests/unit/analysis/test_disclosure.py lays both over
the same tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from samverkan.analysis.disclosure import TOLERANCE, CountTable, Finding


@dataclass
class _Entry:
    table: int
    pos: tuple[int, int]
    atoms: np.ndarray


def _atoms(tables: Sequence[CountTable]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Map every record to an atom (same entry in every table) and every table to its atoms' cells.

    Records are identified by their key across tables (and releases) of one universe."""
    keys = np.unique(np.concatenate([t.keys for t in tables]))
    signature = np.zeros((len(keys), 2 * len(tables)), dtype=np.int64)
    for k, t in enumerate(tables):
        where = np.searchsorted(keys, t.keys)
        signature[:, 2 * k] = -1
        signature[:, 2 * k + 1] = -1
        signature[where, 2 * k] = t.row_of
        signature[where, 2 * k + 1] = t.col_of
    import pandas as pd

    atom_of = pd.DataFrame(signature).groupby(list(range(signature.shape[1])), sort=False).ngroup().to_numpy()
    counts = np.bincount(atom_of)
    unique = np.zeros((len(counts), signature.shape[1]), dtype=np.int64)
    unique[atom_of] = signature
    per_table = [unique[:, 2 * k : 2 * k + 2] for k in range(len(tables))]
    return counts.astype(float), per_table


def _entries(tables: Sequence[CountTable], per_table: list[np.ndarray]) -> list[_Entry]:
    """Every entry (cell, row total, column total, grand total) of every table, with its atoms."""
    entries = []
    for k, t in enumerate(tables):
        rc = per_table[k]
        inside = (rc[:, 0] >= 0) & (rc[:, 1] >= 0)
        n_rows, n_cols = t.extended.shape
        for i in range(n_rows):
            row_mask = inside if i == n_rows - 1 else inside & (rc[:, 0] == i)
            for j in range(n_cols):
                mask = row_mask if j == n_cols - 1 else row_mask & (rc[:, 1] == j)
                entries.append(_Entry(k, (i, j), np.flatnonzero(mask)))
    return entries


def reference_attack(
    tables: Sequence[CountTable],
    threshold: int,
    *,
    exact_budget: int | None = None,
    targets: Iterable[int] | None = None,
) -> list[Finding]:
    """The LP attacker over every published entry of ``tables`` (one universe): withheld entries
    pinned to their value, or primary ones whose greatest possible value is below ``threshold``.

    An entry is safe once one table consistent with everything published shows it could differ
    from its true value (a primary one: could be at least the threshold). LPs that push all open
    entries up at once (with changing weights) settle most; the rest get an LP each, at most
    ``exact_budget`` of them (None: all); an entry left unsettled counts as a finding, which can
    only make the caller withhold more. ``targets``: the indices of the tables whose withheld
    entries are tried (default all; every table's published entries are equations either way)."""
    from scipy.optimize import linprog
    from scipy.sparse import coo_matrix

    truth, per_table = _atoms(tables)
    entries = _entries(tables, per_table)
    published = [e for e in entries if tables[e.table].shown[e.pos] and not tables[e.table].suppressed[e.pos]]
    wanted = set(range(len(tables)) if targets is None else targets)
    hidden = [
        e
        for e in entries
        if e.table in wanted and tables[e.table].shown[e.pos] and tables[e.table].suppressed[e.pos] and len(e.atoms)
    ]
    if not hidden:
        return []
    n = len(truth)
    rows = np.concatenate([np.full(len(e.atoms), r) for r, e in enumerate(published)]) if published else np.array([])
    cols = np.concatenate([e.atoms for e in published]) if published else np.array([])
    a_eq = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(published), n)).tocsr()
    b_eq = np.array([float(tables[e.table].extended[e.pos]) for e in published])
    upper = float(truth.sum() + threshold)

    def solve(objective: np.ndarray) -> np.ndarray:
        result = linprog(
            objective,
            A_eq=a_eq if published else None,
            b_eq=b_eq if published else None,
            bounds=(0, upper),
            method="highs",
        )
        if result.status != 0:
            raise RuntimeError(f"disclosure audit LP failed: {result.message}")
        return result.x

    values = np.array([float(truth[e.atoms].sum()) for e in hidden])
    need = np.array([threshold if tables[e.table].primary[e.pos] else v + 0.5 for e, v in zip(hidden, values)])
    below = np.array([not tables[e.table].primary[e.pos] for e in hidden])  # complementary: lower also helps
    open_ = set(range(len(hidden)))
    rng = np.random.default_rng(0)
    for sign in (-1.0, 1.0):  # push up (primary and complementary), then down (complementary only)
        while open_:
            objective = np.zeros(n)
            for k in open_:
                if sign < 0 or below[k]:
                    objective[hidden[k].atoms] += sign * rng.uniform(0.5, 1.5)
            if not objective.any():
                break
            x = solve(objective)
            got = np.array([x[hidden[k].atoms].sum() for k in range(len(hidden))])
            settled = {
                k
                for k in open_
                if got[k] >= need[k] - TOLERANCE or (below[k] and got[k] <= values[k] - 0.5 + TOLERANCE)
            }
            if not settled:
                break
            open_ -= settled
    findings = []
    for count, k in enumerate(sorted(open_)):
        e, t = hidden[k], tables[hidden[k].table]
        low = high = float(values[k])
        if exact_budget is None or count < exact_budget:
            objective = np.zeros(n)
            objective[e.atoms] = -1.0
            high = float(solve(objective)[e.atoms].sum())
            if high >= need[k] - TOLERANCE:
                continue
            objective[e.atoms] = 1.0
            low = float(solve(objective)[e.atoms].sum())
            if below[k] and low <= values[k] - 0.5 + TOLERANCE:
                continue
        reason = "known to be small" if t.primary[e.pos] and high < threshold else "pinned"
        related = [
            (p.table, p.pos)
            for p in published
            if not tables[p.table].fixed and np.intersect1d(p.atoms, e.atoms, assume_unique=True).size
        ]
        findings.append(Finding(t.name, e.pos, int(values[k]), low, high, reason, related))
    return findings
