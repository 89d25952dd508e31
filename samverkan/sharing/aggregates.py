"""Aggregate datasets with small-count suppression that survives arithmetic on the totals.

``incident_counts``: incidents per place (shared area) × category × hour of day, one table per
ISO week, with its totals: per place and category over all hours, per hour over all places and
categories, and the week's total. A recipient with aggregates only must not learn that "two
incidents of violence happened at the bus square between 02 and 03": so

1. **primary suppression**: every count (cell or total) from 1 to threshold − 1 is withheld;
2. **complementary suppression**: every line of the table (a row with its total, a column with
   its total) with exactly one withheld entry gets a second one, else the withheld count is the
   total minus the published ones;
3. **audit**: an attacker with every published count and the knowledge that counts are ≥ 0 is
   simulated by linear programming (the same attack the tests make): for each withheld count the
   smallest and largest value consistent with everything published. A withheld count that is
   pinned to one value, or a primary one whose largest possible value is still below the
   threshold (so it is known to be small), gets more complementary suppression, and the audit
   repeats until it passes.

``observation_counts``: the same for aggregate feeds (the outreach team's observations): people
counted per place (shared area) × measure × hour the slot began, summed over the week, with the
same totals and the same suppression. A sum of people is as revealing as a count of incidents
("two young people at the bus square 22-24"), so it follows the same small-count rule.

Zero counts are published: "nothing happened" is not about anyone, and counting them as withheld
would only hide the table. Each delivery covers one night and nights never overlap, so there are
no two tables whose difference is a small count.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from samverkan.core.contracts import category_kinds

HOURS = 24
UNKNOWN_AREA = "unknown"
MAX_AUDIT_ROUNDS = 200

LEVEL_CELL = "cell"
LEVEL_ROW_TOTAL = "all_hours"
LEVEL_COLUMN_TOTAL = "all_places_and_categories"
LEVEL_GRAND_TOTAL = "week_total"

COUNTS_SCHEMA = pa.schema(
    [
        ("week", pa.string()),
        ("area", pa.string()),
        ("category", pa.string()),
        ("category_kind", pa.string()),
        ("hour_of_day", pa.int8()),
        ("level", pa.string()),
        ("incidents", pa.int32()),
        ("suppressed", pa.bool_()),
    ]
)

OBSERVATION_COUNTS_SCHEMA = pa.schema(
    [
        ("week", pa.string()),
        ("area", pa.string()),
        ("measure", pa.string()),
        ("hour_of_day", pa.int8()),
        ("level", pa.string()),
        ("people", pa.int32()),
        ("suppressed", pa.bool_()),
    ]
)

COLUMN_DOCS = {
    "week": "ISO week of the incident's local time, e.g. 2026-W47",
    "area": f"shared area id (common model); '{UNKNOWN_AREA}' when the place maps to no area; null on hour totals",
    "category": "shared category (common model); null on hour totals",
    "category_kind": "kind of the category (crime, disorder, environment, care; common model); null on hour totals",
    "measure": "what the observers counted (common model, observation_measures); null on hour totals",
    "people": "sum of the counts over the week (people or groups, per measure); null when suppressed",
    "hour_of_day": "local hour the incident began, 0–23; null on totals over all hours",
    "level": f"'{LEVEL_CELL}', '{LEVEL_ROW_TOTAL}' (place × category over all hours), "
    f"'{LEVEL_COLUMN_TOTAL}' (one hour over all places and categories), '{LEVEL_GRAND_TOTAL}'",
    "incidents": "number of incidents; null when suppressed",
    "suppressed": "true when the count is withheld (small, or withheld so that a small one cannot be derived)",
}


# --- the table -----------------------------------------------------------------------------


@dataclass
class WeekTable:
    """One week's counts, extended by a totals row and column: ``extended[R, C]`` is the total."""

    week: str
    rows: list[tuple[str, str]]  # (area, category)
    extended: np.ndarray
    suppressed: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.suppressed = np.zeros(self.extended.shape, dtype=bool)

    @classmethod
    def from_cells(cls, week: str, rows: list[tuple[str, str]], cells: np.ndarray) -> WeekTable:
        r, c = cells.shape
        extended = np.zeros((r + 1, c + 1), dtype=np.int64)
        extended[:r, :c] = cells
        extended[:r, c] = cells.sum(axis=1)
        extended[r, :c] = cells.sum(axis=0)
        extended[r, c] = cells.sum()
        return cls(week, rows, extended)

    def lines(self) -> list[list[tuple[int, int]]]:
        """Every row and column of the extended table; the last entry of each is its total."""
        n_rows, n_cols = self.extended.shape
        return [[(i, j) for j in range(n_cols)] for i in range(n_rows)] + [
            [(i, j) for i in range(n_rows)] for j in range(n_cols)
        ]


def _iso_weeks(local: pa.Array) -> pa.Array:
    return pc.binary_join_element_wise(
        pc.cast(pc.iso_year(local), pa.string()), pc.utf8_lpad(pc.cast(pc.iso_week(local), pa.string()), 2, "0"), "-W"
    )


def week_tables(incidents: pa.Table) -> list[WeekTable]:
    """Counts per ISO week, (area, category) row and local hour; incidents without a time
    cannot be placed in an hour and are not counted (the data dictionary says so)."""
    timed = incidents.filter(pc.is_valid(incidents.column("occurred_at_local")))
    local = timed.column("occurred_at_local")
    keyed = pa.table(
        {
            "week": _iso_weeks(local),
            "area": pc.fill_null(timed.column("area"), UNKNOWN_AREA),
            "key": pc.fill_null(timed.column("category"), "other"),
            "hour": pc.hour(local),
            "value": pa.array(np.ones(timed.num_rows, dtype=np.int64)),
        }
    )
    return _tables(keyed)


def observation_tables(observations: pa.Table) -> list[WeekTable]:
    """People counted per ISO week, (area, measure) row and the local hour the slot began."""
    local = observations.column("slot_start_local")
    keyed = pa.table(
        {
            "week": _iso_weeks(local),
            "area": pc.fill_null(observations.column("area"), UNKNOWN_AREA),
            "key": observations.column("measure"),
            "hour": pc.hour(local),
            "value": observations.column("count").cast(pa.int64()),
        }
    )
    return _tables(keyed.filter(pc.and_(pc.is_valid(keyed.column("hour")), pc.is_valid(keyed.column("value")))))


def _tables(keyed: pa.Table) -> list[WeekTable]:
    """Sums of ``value`` per week, (area, key) row and hour, one table per week."""
    if keyed.num_rows == 0:
        return []
    grouped = keyed.group_by(["week", "area", "key", "hour"]).aggregate([("value", "sum")]).to_pylist()
    by_week: dict[str, dict[tuple[str, str], np.ndarray]] = {}
    for g in grouped:
        rows = by_week.setdefault(g["week"], {})
        rows.setdefault((g["area"], g["key"]), np.zeros(HOURS, dtype=np.int64))[g["hour"]] = g["value_sum"]
    tables = []
    for week in sorted(by_week):
        keys = sorted(by_week[week])
        tables.append(WeekTable.from_cells(week, keys, np.array([by_week[week][k] for k in keys])))
    return tables


# --- suppression ---------------------------------------------------------------------------


def primary_suppression(table: WeekTable, threshold: int) -> np.ndarray:
    primary = (table.extended > 0) & (table.extended < threshold)
    table.suppressed |= primary
    return primary


def _complement_in(table: WeekTable, line: list[tuple[int, int]]) -> tuple[int, int] | None:
    """The entry that hides least: the smallest positive published cell, else the line's total,
    else a published zero (a zero still turns the equation into one with two unknowns)."""
    open_cells = [p for p in line[:-1] if not table.suppressed[p]]
    positive = [p for p in open_cells if table.extended[p] > 0]
    if positive:
        return min(positive, key=lambda p: table.extended[p])
    if not table.suppressed[line[-1]]:
        return line[-1]
    return open_cells[0] if open_cells else None


def close_lines(table: WeekTable) -> None:
    """Until no line has exactly one withheld entry (which its total would give away)."""
    changed = True
    while changed:
        changed = False
        for line in table.lines():
            if sum(bool(table.suppressed[p]) for p in line) == 1:
                extra = _complement_in(table, line)
                if extra is not None:
                    table.suppressed[extra] = True
                    changed = True


def weak_entries(table: WeekTable, primary: np.ndarray, threshold: int) -> list[tuple[int, int]]:
    """Withheld entries an attacker pins down, or (primary ones) can prove to be small.

    The attacker knows every published count, every line sum and that counts are ≥ 0, and
    solves linear programs for each withheld count's least and greatest possible value. An
    entry is safe once one feasible table shows it could differ from its true value (for a
    primary entry: could be at least the threshold). One LP pushing all open entries up at once
    usually settles most of them; what is left gets its own LPs.
    """
    unknown = [(int(p[0]), int(p[1])) for p in np.argwhere(table.suppressed)]
    if not unknown:
        return []
    index = {p: k for k, p in enumerate(unknown)}
    system = _System(*_line_equations(table, index), upper=float(table.extended.sum() + threshold))
    truth = np.array([table.extended[p] for p in unknown], dtype=float)
    need = np.array([threshold if primary[p] else table.extended[p] + 0.5 for p in unknown], dtype=float)
    open_ = set(range(len(unknown)))
    while open_:
        x = system.maximise(sorted(open_))
        settled = {k for k in open_ if x is not None and x[k] >= need[k] - 1e-6}
        if not settled:
            break
        open_ -= settled
    weak = []
    for k in sorted(open_):
        if system.maximise([k])[k] >= need[k] - 1e-6:
            continue
        if not primary[unknown[k]] and system.minimise(k)[k] <= truth[k] - 0.5 + 1e-6:
            continue
        weak.append(unknown[k])
    return weak


@dataclass
class _System:
    """Line equations over the withheld counts, each bounded to [0, upper] so no LP is unbounded
    (an entry whose greatest value is ``upper`` is, to the attacker, unbounded)."""

    a_eq: np.ndarray
    b_eq: np.ndarray
    upper: float

    def _solve(self, objective: np.ndarray) -> np.ndarray:
        from scipy.optimize import linprog

        if not len(self.a_eq):
            return np.full(len(objective), self.upper)
        result = linprog(objective, A_eq=self.a_eq, b_eq=self.b_eq, bounds=(0, self.upper), method="highs")
        if result.status != 0:
            raise RuntimeError(f"suppression audit LP failed: {result.message}")
        return result.x

    def maximise(self, keys: list[int]) -> np.ndarray:
        objective = np.zeros(self.a_eq.shape[1] if len(self.a_eq) else max(keys) + 1)
        objective[keys] = -1.0
        return self._solve(objective)

    def minimise(self, key: int) -> np.ndarray:
        objective = np.zeros(self.a_eq.shape[1] if len(self.a_eq) else key + 1)
        objective[key] = 1.0
        return self._solve(objective)


def _line_equations(table: WeekTable, index: dict[tuple[int, int], int]) -> tuple[np.ndarray, np.ndarray]:
    """Σ cells − total = 0 for every line, with the published entries moved to the right side."""
    rows, rhs = [], []
    for line in table.lines():
        coefficients = np.zeros(len(index))
        constant = 0.0
        for pos, sign in [(p, 1.0) for p in line[:-1]] + [(line[-1], -1.0)]:
            if pos in index:
                coefficients[index[pos]] += sign
            else:
                constant -= sign * table.extended[pos]
        if coefficients.any():
            rows.append(coefficients)
            rhs.append(constant)
    return np.array(rows), np.array(rhs)


def _strengthen(table: WeekTable, p: tuple[int, int]) -> bool:
    """Withhold one more entry in p's row or column: the largest published positive one (it adds
    the most uncertainty); a line with nothing left to withhold cannot help."""
    n_rows, n_cols = table.extended.shape
    line = [(p[0], j) for j in range(n_cols)] + [(i, p[1]) for i in range(n_rows)]
    candidates = [q for q in line if not table.suppressed[q] and table.extended[q] > 0]
    if not candidates:
        return False
    table.suppressed[max(candidates, key=lambda q: table.extended[q])] = True
    return True


def suppress(table: WeekTable, threshold: int) -> WeekTable:
    """Primary, complementary and audited suppression, in place; see the module docstring."""
    if threshold < 2:
        raise ValueError("a suppression threshold below 2 suppresses nothing")
    primary = primary_suppression(table, threshold)
    for _ in range(MAX_AUDIT_ROUNDS):
        close_lines(table)
        weak = weak_entries(table, primary, threshold)
        if not weak:
            return table
        if not [p for p in weak if _strengthen(table, p)]:
            table.suppressed[:] = table.extended > 0  # nothing left to trade: withhold every count
            return table
    raise RuntimeError(f"suppression audit did not converge for week {table.week}")


# --- output --------------------------------------------------------------------------------


def to_arrow(tables: list[WeekTable], schema: pa.Schema = COUNTS_SCHEMA) -> pa.Table:
    """Long format: the schema's third column names the row key (category or measure), its
    count column follows ``level``; incident counts also carry the category's kind."""
    key, value = schema.names[2], schema.names[schema.get_field_index("level") + 1]
    kinds = category_kinds() if "category_kind" in schema.names else {}
    records = []
    for t in tables:
        n_rows, n_cols = t.extended.shape
        for i in range(n_rows):
            area, row_key = t.rows[i] if i < n_rows - 1 else (None, None)
            for j in range(n_cols):
                hour = j if j < n_cols - 1 else None
                level = _level(i == n_rows - 1, j == n_cols - 1)
                hidden = bool(t.suppressed[i, j])
                records.append(
                    {
                        "week": t.week,
                        "area": area,
                        key: row_key,
                        "category_kind": kinds.get(row_key) if row_key else None,
                        "hour_of_day": hour,
                        "level": level,
                        value: None if hidden else int(t.extended[i, j]),
                        "suppressed": hidden,
                    }
                )
    return pa.Table.from_pylist(records, schema=schema)


def _level(total_row: bool, total_column: bool) -> str:
    if total_row and total_column:
        return LEVEL_GRAND_TOTAL
    if total_row:
        return LEVEL_COLUMN_TOTAL
    if total_column:
        return LEVEL_ROW_TOTAL
    return LEVEL_CELL


def incident_counts(incidents: pa.Table, threshold: int) -> pa.Table:
    """The published aggregate for a recipient, from the incidents its scope allows."""
    return to_arrow([suppress(t, threshold) for t in week_tables(incidents)])


def observation_counts(observations: pa.Table, threshold: int) -> pa.Table:
    """The observations aggregate for a recipient, suppressed like the incident counts."""
    return to_arrow([suppress(t, threshold) for t in observation_tables(observations)], OBSERVATION_COUNTS_SCHEMA)
