"""Small-count disclosure control for everything the lägesbild shows, across tables and releases.

Every figure of the report is drawn from a **count table**: rows × columns of counts of records
(incidents, involvements or persons) with its row totals, column totals and grand total, each
record falling in at most one cell. Each table is first protected on its own by the shared
aggregates' rule (``samverkan.sharing.aggregates.suppress``: fewer than the threshold →
withheld, complementary suppression so no total gives a withheld count away, an LP audit).

That is not enough for a report: its tables overlap (the combined heatmap is the sum of the
per-source ones; the bus square is part of the centre) and it is released again every week, so a
reader holds the previous release too. ``audit`` is the attacker for all of that at once: the
unknowns are the counts of **atoms** (records that fall in the same entry of every table of every
release given), every published entry of every release is an equation over them, every count is
≥ 0, and for each withheld entry linear programming finds the least and greatest value it can
take. A withheld entry the attacker pins down, or a primary one it can prove to be small, makes
the *current* release withhold one more entry beside it, and the audit runs again. Released
tables of earlier releases and the partners' aggregates are never changed: they are already out.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from samverkan.sharing.aggregates import WeekTable, suppress, weak_entries

log = logging.getLogger(__name__)

MAX_AUDIT_ROUNDS = 100
TOLERANCE = 1e-6


@dataclass
class CountTable:
    """One released table: ``extended[:R, :C]`` the cells, the last row and column the totals.

    ``row_of`` / ``col_of`` give each record of the universe (``keys``) its row and column, or −1
    when the record is outside the table; that is what lets the audit relate tables to each other.
    """

    name: str
    universe: str
    rows: list[Any]
    cols: list[Any]
    keys: np.ndarray
    row_of: np.ndarray
    col_of: np.ndarray
    extended: np.ndarray = field(init=False)
    suppressed: np.ndarray = field(init=False)
    primary: np.ndarray = field(init=False)
    known: np.ndarray = field(init=False)  # published because other tables give them away anyway
    fixed: bool = False
    margins: bool = True  # False: only the cells and the grand total are released (no row/column totals)  # already released: the audit may not change it

    def __post_init__(self) -> None:
        r, c = len(self.rows), len(self.cols)
        inside = (self.row_of >= 0) & (self.col_of >= 0)
        cells = np.zeros((r, c), dtype=np.int64)
        np.add.at(cells, (self.row_of[inside], self.col_of[inside]), 1)
        extended = np.zeros((r + 1, c + 1), dtype=np.int64)
        extended[:r, :c] = cells
        extended[:r, c] = cells.sum(axis=1)
        extended[r, :c] = cells.sum(axis=0)
        extended[r, c] = cells.sum()
        self.extended = extended
        self.suppressed = np.zeros(extended.shape, dtype=bool)
        self.primary = np.zeros(extended.shape, dtype=bool)
        self.known = np.zeros(extended.shape, dtype=bool)
        self.shown = np.ones(extended.shape, dtype=bool)  # what the release contains at all
        if not self.margins:
            self.shown[:-1, -1] = self.shown[-1, :-1] = False

    @property
    def cells(self) -> np.ndarray:
        return self.extended[:-1, :-1]

    def value(self, i: int, j: int) -> int | None:
        if not self.shown[i, j]:
            return None
        """What the report may show: the count, or None when withheld."""
        return None if self.suppressed[i, j] else int(self.extended[i, j])

    def protect(self, threshold: int) -> CountTable:
        """The shared aggregates' rule on this table alone (primary, complementary, LP audit); for a
        table without margins, primary suppression and one complement when a cell would be its
        grand total minus the rest."""
        self.primary = (self.extended > 0) & (self.extended < threshold)
        if not self.margins:
            self.suppressed = self.primary & self.shown
            hidden = np.flatnonzero(self.suppressed[:-1, :-1])
            open_ = [tuple(p) for p in np.argwhere(~self.suppressed[:-1, :-1] & (self.cells > 0))]
            if len(hidden) == 1 and not self.suppressed[-1, -1] and open_:
                self.suppressed[min(open_, key=lambda p: self.extended[p])] = True
            return self
        week = WeekTable(self.name, [], self.extended)
        suppress(week, threshold)
        self.suppressed = week.suppressed
        if self.suppressed[-1, -1] and not self.primary[-1, -1]:
            self._publish_grand_total(week, threshold)
        return self

    def _publish_grand_total(self, week: WeekTable, threshold: int) -> None:
        """A grand total of at least the threshold is shown anyway by other tables (a heatmap's
        total is the sum of the weekly counts), so withholding it hides nothing and would only
        contradict them: publish it, and withhold cells instead until the table's audit passes."""
        self.suppressed[-1, -1] = False
        week.suppressed = self.suppressed
        for _ in range(MAX_AUDIT_ROUNDS):
            weak = weak_entries(week, self.primary, threshold)
            if not weak:
                return
            if not [p for p in weak if _strengthen(self, p)]:
                self.suppressed[:-1, :-1] |= self.cells > 0
                self.suppressed[:-1, -1] |= self.extended[:-1, -1] > 0
                self.suppressed[-1, :-1] |= self.extended[-1, :-1] > 0
                return

    def released(self) -> dict[str, Any]:
        """The table as it leaves the hub: labels and counts, None where withheld."""
        r, c = self.cells.shape
        return {
            "name": self.name,
            "universe": self.universe,
            "margins": self.margins,
            "rows": [str(x) for x in self.rows],
            "cols": [str(x) for x in self.cols],
            "values": [[self.value(i, j) for j in range(c + 1)] for i in range(r + 1)],
        }


# --- the attacker ------------------------------------------------------------------------------


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


@dataclass
class Finding:
    """A withheld entry the attacker learns something about."""

    table: str
    pos: tuple[int, int]
    truth: int
    low: float
    high: float
    reason: str
    related: list[tuple[int, tuple[int, int]]] = field(default_factory=list)


def attack(
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


def _is_total(table: CountTable, pos: tuple[int, int]) -> bool:
    return pos[0] == table.extended.shape[0] - 1 or pos[1] == table.extended.shape[1] - 1


def _grand_total(table: CountTable, pos: tuple[int, int]) -> bool:
    return pos == (table.extended.shape[0] - 1, table.extended.shape[1] - 1)


def _strengthen(table: CountTable, pos: tuple[int, int]) -> bool:
    """Withhold one more published positive entry in pos's row or column, a cell before a total: the
    largest, since it adds the most uncertainty. Never the grand total: it is the same number other
    tables show (a heatmap's total is a column total of the category table and the sum of weekly
    counts), and a total withheld here but published there would be no secret at all."""
    n_rows, n_cols = table.extended.shape
    line = [(pos[0], j) for j in range(n_cols)] + [(i, pos[1]) for i in range(n_rows)]
    candidates = [
        q
        for q in line
        if table.shown[q]
        and not table.suppressed[q]
        and not table.known[q]
        and table.extended[q] > 0
        and not _grand_total(table, q)
    ]
    if not candidates:
        return False
    table.suppressed[max(candidates, key=lambda q: (not _is_total(table, q), table.extended[q]))] = True
    return True


def audit(tables: Sequence[CountTable], threshold: int, *, exact_budget: int | None = None) -> list[CountTable]:
    """Make the open (not yet released) tables safe against the attacker holding all of ``tables``.

    Returns the tables; raises if a weak entry sits only in tables already released (nothing the
    current release can do about that) — which the per-table rule makes impossible on its own."""
    by_universe: dict[str, list[CountTable]] = {}
    for t in tables:
        by_universe.setdefault(t.universe, []).append(t)  # a universe: the tables one attack considers
    for universe, group in by_universe.items():
        stage = 0  # 1: every positive cell withheld; 2: every count of this release withheld
        for _ in range(MAX_AUDIT_ROUNDS):
            findings = attack(group, threshold, exact_budget=exact_budget)
            if not findings:
                break
            log.info(
                "disclosure audit (%s): %d weak entr%s, withholding more",
                universe,
                len(findings),
                "y" if len(findings) == 1 else "ies",
            )
            if _fix(group, findings, threshold, publish_only=stage == 2):
                continue
            if stage == 2:  # unreachable: an earlier release alone passed its own audit
                raise RuntimeError(f"disclosure audit ({universe}): weak entries in earlier releases: {findings[:3]}")
            log.warning(
                "disclosure audit (%s): %s",
                universe,
                "withholding every cell" if stage == 0 else "withholding every count of this release",
            )
            (_withhold_all if stage == 0 else _withhold_everything)(group)
            stage += 1
        else:
            raise RuntimeError(f"disclosure audit did not converge for {universe}")
    return list(tables)


def _fix(group: list[CountTable], findings: list[Finding], threshold: int, *, publish_only: bool = False) -> bool:
    """Publish a withheld entry the attacker pins anyway (unless it is small), else withhold one
    more entry per finding. Most findings come from an equation across tables (the
    combined heatmap minus the other sources, the centre minus the rest), which more withholding in
    the finding's own table does not break: so the entry withheld is a published cell of another
    open table that overlaps the finding — the smallest one of at least the threshold, to lose
    little — and only failing that one beside it in its own table."""
    changed = False
    by_name = {t.name: t for t in group}
    for f in findings:
        own = by_name[f.table]
        if f.reason == "pinned" and not own.fixed and not own.primary[f.pos]:
            own.suppressed[f.pos] = False  # the attacker knows it exactly anyway: hiding it only misleads
            own.known[f.pos] = True
            changed = True
            continue
        if publish_only:
            continue
        candidates = [
            (k, pos)
            for k, pos in f.related
            if not group[k].suppressed[pos]
            and not group[k].known[pos]
            and group[k].extended[pos] > 0
            and not _grand_total(group[k], pos)
            and group[k].name != f.table
        ]
        if candidates:  # a cell before a row or column total, then the smallest not below the threshold
            k, pos = min(
                candidates,
                key=lambda kp: (
                    _is_total(group[kp[0]], kp[1]),
                    group[kp[0]].extended[kp[1]] < threshold,
                    group[kp[0]].extended[kp[1]],
                ),
            )
            group[k].suppressed[pos] = True
            changed = True
            continue
        if not own.fixed and _strengthen(own, f.pos):
            changed = True
    return changed


def _withhold_all(group: list[CountTable]) -> None:
    """Nothing left to trade: the open tables withhold every positive cell and every small total.
    Totals that are not small stay (other tables show them anyway); a cell alone in its line is
    then pinned to its total, which the next audit round publishes when it is not small either."""
    for t in group:
        if not t.fixed:
            t.suppressed[:-1, :-1] |= (t.cells > 0) & ~t.known[:-1, :-1]
            t.suppressed |= t.primary & t.shown


def _withhold_everything(group: list[CountTable]) -> None:
    """The last resort: the open tables of the group show no count at all, so whatever the
    attacker learns comes from releases already out (each of which passed its own audit)."""
    for t in group:
        if not t.fixed:
            t.suppressed[:] = t.shown & (t.extended > 0)
