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


def _atoms(tables: Sequence[CountTable]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Map every record to an atom (same entry in every table) and every table to its atoms' cells.

    Records are identified by their key across tables (and releases) of one universe. A record's
    place in a table is one code, (row + 1) × (columns + 1) + column + 1 (0: not in the table), and
    the atoms are refined one table at a time by renumbering (atom, code) pairs: a few sorts of
    one integer array, where grouping by every table's row and column at once took seconds."""
    keys, place = _places(tables)
    if not len(keys):  # a universe without records (no involvements yet): no atoms, every table empty
        return np.zeros(0), [np.zeros((0, 2), dtype=np.int64) for _ in tables]
    codes = [_codes(t, at, len(keys)) for t, at in zip(tables, place)]
    atom_of = np.zeros(len(keys), dtype=np.int64)
    for code in codes:
        atom_of = np.unique(atom_of * (code.max() + 1) + code, return_inverse=True)[1].ravel()
    counts = np.bincount(atom_of)
    record = np.zeros(len(counts), dtype=np.int64)
    record[atom_of] = np.arange(len(keys))  # one record of each atom stands for it
    per_table = []
    for t, code in zip(tables, codes):
        width = len(t.cols) + 1
        per_table.append(np.stack([code[record] // width - 1, code[record] % width - 1], axis=1))
    return counts.astype(float), per_table


def _places(tables: Sequence[CountTable]) -> tuple[np.ndarray, list[np.ndarray]]:
    """All keys of the universe, and where each table's keys sit among them: looked up once per
    distinct key array (the tables of one release share theirs), the lookups being what costs."""
    distinct: list[np.ndarray] = []
    index = []
    for t in tables:
        same = [i for i, k in enumerate(distinct) if k is t.keys or np.array_equal(k, t.keys)]
        if not same:
            distinct.append(t.keys)
        index.append(same[0] if same else len(distinct) - 1)
    keys = np.unique(np.concatenate(distinct))
    where = [np.searchsorted(keys, k) for k in distinct]
    return keys, [where[i] for i in index]


def _codes(t: CountTable, where: np.ndarray, n_keys: int) -> np.ndarray:
    """Each record's (row, column) in ``t`` as one number, 0 for a record ``t`` does not hold;
    ``where``: the place of each of ``t.keys`` among all keys."""
    code = np.zeros(n_keys, dtype=np.int64)
    code[where] = (t.row_of + 1) * (len(t.cols) + 1) + t.col_of + 1
    return code


@dataclass(frozen=True)
class _Layout:
    """Every entry (cell, row total, column total, grand total) of every table of one universe as
    a row of an entry × atom matrix, in the order of ``np.concatenate([t.extended.ravel() ...])``.
    It depends on the records alone, not on what is withheld, so an audit builds it once for all
    its rounds; with it every entry's value in a solution is one sparse product."""

    truth: np.ndarray  # records per atom
    incidence: Any  # scipy.sparse.csr_matrix, entries × atoms, 1 where the atom counts in the entry
    table: np.ndarray  # the entry's table (index into the tables)
    pos: list[tuple[int, int]]  # the entry's (row, column) in its table's extended array

    def flags(self, tables: Sequence[CountTable], attribute: str) -> np.ndarray:
        """One of the tables' per-entry arrays (``shown``, ``suppressed``…) in entry order."""
        return np.concatenate([np.asarray(getattr(t, attribute)).ravel() for t in tables])


def _layout(tables: Sequence[CountTable]) -> _Layout:
    from scipy.sparse import csr_matrix

    truth, per_table = _atoms(tables)
    entry_rows, atom_cols, table, pos, offset = [], [], [], [], 0
    for k, t in enumerate(tables):
        n_rows, n_cols = t.extended.shape
        rc = per_table[k]
        atoms = np.flatnonzero((rc[:, 0] >= 0) & (rc[:, 1] >= 0))
        i, j = rc[atoms, 0], rc[atoms, 1]
        for row, col in ((i, j), (i, n_cols - 1), (n_rows - 1, j), (n_rows - 1, n_cols - 1)):
            entry_rows.append(offset + np.broadcast_to(row * n_cols + col, atoms.shape))
            atom_cols.append(atoms)
        table.append(np.full(n_rows * n_cols, k))
        pos += [(i_, j_) for i_ in range(n_rows) for j_ in range(n_cols)]
        offset += n_rows * n_cols
    rows, cols = np.concatenate(entry_rows), np.concatenate(atom_cols)
    incidence = csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(offset, len(truth)))
    return _Layout(truth, incidence, np.concatenate(table), pos)


class _Polytope:
    """Every count table consistent with what is published: ``x ≥ 0`` over the atoms, one row per
    entry, the published rows equal to their counts and the withheld ones free. It is one HiGHS
    model that stays loaded while the attacker solves it again and again with another objective,
    and across audit rounds, where only rows turn free or fixed: every solve starts from the last
    optimal basis (HiGHS's own warm start) instead of from nothing as ``scipy.optimize.linprog``
    does, the same optima for about a twentieth of the simplex iterations. HiGHS is reached through
    the bindings SciPy vendors (the ``highspy`` API, SciPy pinned in requirements.txt);
    tests/unit/analysis/test_disclosure.py checks the findings against the ``linprog`` attacker."""

    def __init__(self, layout: _Layout, upper: float) -> None:
        from scipy.optimize._highspy import _core

        self._core = _core
        self._rows = np.flatnonzero(np.diff(layout.incidence.indptr) > 0)  # entries with records
        a = layout.incidence[self._rows].tocsc()
        m, n = a.shape
        lp = _core.HighsLp()
        lp.num_col_, lp.num_row_ = n, m
        lp.col_cost_, lp.col_lower_, lp.col_upper_ = np.zeros(n), np.zeros(n), np.full(n, upper)
        lp.row_lower_, lp.row_upper_ = np.full(m, -_core.kHighsInf), np.full(m, _core.kHighsInf)
        matrix = lp.a_matrix_
        matrix.format_ = _core.MatrixFormat.kColwise
        matrix.num_col_, matrix.num_row_ = n, m
        matrix.start_, matrix.index_, matrix.value_ = a.indptr, a.indices, a.data
        self._highs = _core._Highs()
        self._highs.setOptionValue("output_flag", False)
        self._highs.passModel(lp)
        self._columns = np.arange(n, dtype=np.int32)
        self._published = np.zeros(m, dtype=bool)  # every row free so far

    def publish(self, published: np.ndarray, counts: np.ndarray) -> None:
        """Rows of the published entries (a mask over all entries) equal to their counts, the
        rest free; only the rows that changed since the last call are touched."""
        now = published[self._rows]
        for r in np.flatnonzero(now != self._published):
            count = counts[self._rows[r]]
            lower, upper = (count, count) if now[r] else (-self._core.kHighsInf, self._core.kHighsInf)
            self._highs.changeRowBounds(int(r), float(lower), float(upper))
        self._published = now

    def solve(self, objective: np.ndarray) -> np.ndarray:
        """A vertex minimising ``objective``."""
        highs = self._highs
        highs.changeColsCost(len(self._columns), self._columns, np.asarray(objective, dtype=float))
        highs.run()
        status = highs.getModelStatus()
        if status != self._core.HighsModelStatus.kOptimal:
            raise RuntimeError(f"disclosure audit LP failed: {highs.modelStatusToString(status)}")
        return np.asarray(highs.getSolution().col_value)


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
    return _Attacker(tables, threshold).attack(exact_budget=exact_budget, targets=targets)


class _Attacker:
    """``attack`` on one universe, kept across the audit's rounds: the atoms, the entries and the
    LP model depend on the records alone, and each round only reads what is withheld now."""

    def __init__(self, tables: Sequence[CountTable], threshold: int) -> None:
        self.tables, self.threshold = tables, threshold
        self.layout = _layout(tables)
        self.counts = self.layout.flags(tables, "extended").astype(float)
        self.lp: _Polytope | None = None  # built at the first attack with something withheld

    def attack(self, *, exact_budget: int | None = None, targets: Iterable[int] | None = None) -> list[Finding]:
        tables, layout = self.tables, self.layout
        shown, suppressed = layout.flags(tables, "shown"), layout.flags(tables, "suppressed")
        has_atoms = np.diff(layout.incidence.indptr) > 0
        wanted = np.isin(layout.table, list(range(len(tables)) if targets is None else targets))
        hidden = np.flatnonzero(shown & suppressed & has_atoms & wanted)
        if not len(hidden):
            return []
        published = shown & ~suppressed
        self.lp = self.lp or _Polytope(layout, float(layout.truth.sum() + self.threshold))
        self.lp.publish(published, self.counts)
        rows = layout.incidence[hidden]
        values = rows @ layout.truth
        below = ~layout.flags(tables, "primary")[hidden]  # complementary: lower also helps
        need = np.where(below, values + 0.5, float(self.threshold))
        open_ = _settle(self.lp, rows, values, need, below)
        equations = np.flatnonzero(published & has_atoms)
        findings = []
        for count, k in enumerate(np.flatnonzero(open_)):
            low = high = float(values[k])
            if exact_budget is None or count < exact_budget:
                row = rows[k].toarray().ravel()
                high = float(row @ self.lp.solve(-row))
                if high >= need[k] - TOLERANCE:
                    continue
                low = float(row @ self.lp.solve(row))
                if below[k] and low <= values[k] - 0.5 + TOLERANCE:
                    continue
            findings.append(self._finding(equations, hidden[k], values[k], low, high))
        return findings

    def _finding(self, published: np.ndarray, entry: int, value: float, low: float, high: float) -> Finding:
        """A weak entry, with the published entries of open tables that share records with it
        (where withholding one more entry can help)."""
        tables, layout = self.tables, self.layout
        t, pos = tables[layout.table[entry]], layout.pos[entry]
        reason = "known to be small" if t.primary[pos] and high < self.threshold else "pinned"
        overlap = layout.incidence[published] @ (layout.incidence[entry].toarray().ravel() > 0)
        related = [
            (int(layout.table[p]), layout.pos[p]) for p in published[overlap > 0] if not tables[layout.table[p]].fixed
        ]
        return Finding(t.name, pos, int(value), low, high, reason, related)


def _settle(lp: _Polytope, rows: Any, values: np.ndarray, need: np.ndarray, below: np.ndarray) -> np.ndarray:
    """The combined LPs: push every open entry up at once (primary and complementary), then down
    (complementary only), with random weights, while each LP settles at least one more entry.
    Returns which entries are still open."""
    open_ = np.ones(len(values), dtype=bool)
    rng = np.random.default_rng(0)
    for sign in (-1.0, 1.0):
        while open_.any():
            weights = np.where(open_ & (below | (sign < 0)), sign * rng.uniform(0.5, 1.5, len(values)), 0.0)
            if not weights.any():
                break
            got = rows @ lp.solve(rows.T @ weights)
            settled = open_ & ((got >= need - TOLERANCE) | (below & (got <= values - 0.5 + TOLERANCE)))
            if not settled.any():
                break
            open_ &= ~settled
    return open_


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
        attacker = _Attacker(group, threshold)
        for _ in range(MAX_AUDIT_ROUNDS):
            findings = attacker.attack(exact_budget=exact_budget)
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
