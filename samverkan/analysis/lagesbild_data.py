"""The lägesbild's numbers: published Parquet → records (DuckDB) → protected count tables.

Everything the report shows is a count table (``samverkan.analysis.disclosure.CountTable``) built
here from one of three universes of records, read with DuckDB from the published datasets:

- ``incidents``: one record per incident with a known local time;
- ``involvements``: one record per person in an incident (for the youth view);
- ``persons``: one record per pseudonymised person (for repeat involvement; the pseudonym is
  used to count, in memory, and never leaves this module).

A release covers whole ISO weeks only (the last complete week on or before ``as_of`` and the
ones before it), so a report rebuilt every night changes once a week and when late files
correct the past; records are keyed by a hash of what identifies them so that two releases can
be laid over each other by the audit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from samverkan.analysis.disclosure import CountTable
from samverkan.analysis.measures import Measure
from samverkan.core.contracts import common_model

WEEKS = 12
REPEAT_DAYS = 90
REPEAT_MIN_INCIDENTS = 3
YOUTH_BANDS = ("15-17", "18-24")
BUS_SQUARE_AREAS = ("gustav_iii_torg",)
WEEKDAYS = ("mån", "tis", "ons", "tor", "fre", "lör", "sön")
HOUR_BANDS = tuple(f"{h:02d}–{h + 3:02d}" for h in range(0, 24, 3))
# Tables audited together (one LP attacker each): those whose cells are sums of each other's.
# Between groups only large totals are shared (see docs/lagesbild.md, "Disclosure control").
TIME_GROUP, WEEKS_GROUP, KINDS_GROUP, MAP_GROUP = (
    "incidents:time",
    "incidents:weeks",
    "incidents:kinds",
    "incidents:map",
)
HEATMAP_HOURS = (1, 3, 6)  # the finest of these where few cells are small
MAX_SMALL_SHARE = 0.1
UNKNOWN = "okänt"


@dataclass(frozen=True)
class Period:
    """The report's weeks: ``current`` (the last ``weeks`` complete ISO weeks up to ``as_of``) and
    ``previous`` (the same number before them), each a list of Mondays."""

    as_of: date
    weeks: int = WEEKS

    @property
    def last_monday(self) -> date:
        """Monday of the last complete week (one ending on a Sunday on or before ``as_of``)."""
        sunday = self.as_of - timedelta(days=(self.as_of.isoweekday() % 7))
        return sunday - timedelta(days=6)

    @property
    def current(self) -> list[date]:
        return [self.last_monday - timedelta(weeks=self.weeks - 1 - i) for i in range(self.weeks)]

    @property
    def previous(self) -> list[date]:
        return [m - timedelta(weeks=self.weeks) for m in self.current]

    @property
    def end(self) -> date:
        return self.last_monday + timedelta(days=6)


@dataclass(frozen=True)
class Scope:
    id: str
    title: str
    areas: tuple[str, ...]


def scopes() -> list[Scope]:
    """The bus square and the whole central area (every area of the common model)."""
    return [
        Scope("busstorget", "Gustav III:s torg (busstorget)", BUS_SQUARE_AREAS),
        Scope("centrum", "Centrala Östersund (alla områden)", tuple(common_model()["areas"])),
    ]


def category_groups() -> dict[str, str]:
    """Category → what the report groups by: its kind (crime, disorder, environment, care) when
    the common model gives one, else the category itself."""
    from samverkan.core import contracts

    kinds = getattr(contracts, "category_kinds", None)
    try:
        return kinds() if kinds else {c: c for c in common_model()["categories"]}
    except KeyError:
        return {c: c for c in common_model()["categories"]}


# --- reading the published data ------------------------------------------------------------------


def _glob(published: Path, dataset: str) -> str:
    """The dataset's files as an SQL string literal (a view cannot take parameters)."""
    return "'" + str(published / dataset / "**" / "*.parquet").replace("'", "''") + "'"


def _day(d: date) -> str:
    return f"DATE '{d.isoformat()}'"


def connect(published: Path, as_of: date, since: date):
    """An in-memory DuckDB with views ``inc`` (incidents with week, weekday, hour) and ``inv``
    (involvements joined to their incident), only nights up to ``as_of`` and local dates from
    ``since`` to ``as_of``."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET threads TO 2")
    has_inv = any((published / "involvements").rglob("*.parquet"))
    con.execute(f"""
        CREATE TEMP TABLE inc AS
        SELECT hash(night::VARCHAR, source, incident_id) AS key, night::DATE AS night, source,
               coalesce(area, '{UNKNOWN}') AS area, coalesce(category, 'other') AS category,
               coord_n, coord_e, incident_id,
               date_trunc('week', occurred_at_local)::DATE AS week,
               isodow(occurred_at_local) - 1 AS weekday, hour(occurred_at_local) AS hour,
               occurred_at_local::DATE AS day
        FROM read_parquet({_glob(published, "incidents")}, hive_partitioning = true, union_by_name = true)
        WHERE night::DATE <= {_day(as_of)} AND occurred_at_local IS NOT NULL
          AND occurred_at_local::DATE BETWEEN {_day(since)} AND {_day(as_of)}""")
    if has_inv:
        con.execute(f"""
            CREATE TEMP TABLE inv AS
            SELECT hash(v.night::VARCHAR, v.source, v.incident_id, v.person_pseudonym, v.role) AS key,
                   v.person_pseudonym, v.role, coalesce(v.age_band, 'okänd') AS age_band,
                   i.area, i.week, i.weekday, i.hour, i.day, i.incident_id, i.night
            FROM read_parquet({_glob(published, "involvements")}, hive_partitioning = true, union_by_name = true) v
            JOIN inc i ON i.night = v.night::DATE AND i.source = v.source AND i.incident_id = v.incident_id
            WHERE v.person_pseudonym IS NOT NULL""")
    else:
        con.execute(
            "CREATE TEMP TABLE inv AS SELECT NULL::UBIGINT AS key, NULL AS person_pseudonym, NULL AS role, "
            "NULL AS age_band, NULL AS area, NULL::DATE AS week, NULL::INT AS weekday, NULL::INT AS hour, "
            "NULL::DATE AS day, NULL AS incident_id, NULL::DATE AS night WHERE false"
        )
    return con


def _frame(con, sql: str, params: Sequence[Any] = ()) -> dict[str, np.ndarray]:
    """Columns as numpy arrays; dates as ``datetime.date`` objects (the tables' week labels)."""
    out = {}
    for k, v in con.execute(sql, list(params)).fetchnumpy().items():
        if isinstance(v, np.ma.MaskedArray):  # NULLs: NaN for numbers, None otherwise
            v = np.ma.filled(v.astype(float), np.nan) if v.dtype.kind in "iuf" else np.ma.filled(v.astype(object), None)
        v = np.asarray(v)
        out[k] = v.astype("datetime64[D]").astype(object) if v.dtype.kind == "M" else v
    return out


# --- building tables ------------------------------------------------------------------------------


def _index(values: np.ndarray, labels: Sequence[Any]) -> np.ndarray:
    """Position of each value in ``labels``, −1 when absent (pandas' hash lookup: a Python dict
    lookup per record took seconds at ten times the demo's size)."""
    import pandas as pd

    return pd.Index(list(labels), dtype=object).get_indexer(pd.Index(values, dtype=object)).astype(np.int64)


def table(
    name: str,
    universe: str,
    frame: dict[str, np.ndarray],
    mask: np.ndarray,
    row: str,
    rows: Sequence[Any],
    col: str,
    cols: Sequence[Any],
    *,
    margins: bool = True,
) -> CountTable:
    r = np.where(mask, _index(frame[row], rows), -1)
    c = np.where(mask, _index(frame[col], cols), -1)
    return CountTable(name, universe, list(rows), list(cols), frame["key"].astype(np.uint64), r, c, margins=margins)


def _in(values: np.ndarray, allowed: Sequence[Any]) -> np.ndarray:
    return np.isin(values, np.array(list(allowed), dtype=values.dtype if values.dtype != object else object))


@dataclass
class Release:
    """All count tables of one release, protected, plus what the figures need besides counts."""

    period: Period
    threshold: int
    tables: dict[str, CountTable] = field(default_factory=dict)
    measures: list[dict[str, Any]] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    first_night: date | None = None  # the earliest night of the data read: weeks before it hold no data, not 0

    def add(self, t: CountTable) -> CountTable:
        self.tables[t.name] = t
        return t

    def without_data(self, mondays: Sequence[date]) -> list[bool]:
        """For each week (by its Monday): does it end before the first night with published data?
        Such a week is drawn and written as "ingen data": a 0 there would be read as a quiet week."""
        first = self.first_night
        return [first is None or monday + timedelta(days=6) < first for monday in mondays]


def _week_labels(mondays: Sequence[date]) -> list[date]:
    return list(mondays)


def since(as_of: date, measures: Sequence[Measure], weeks: int = WEEKS) -> date:
    """The first local date a release for ``as_of`` reads."""
    period = Period(as_of, weeks)
    return min(
        [period.previous[0], period.end - timedelta(days=REPEAT_DAYS)]
        + [m.start - timedelta(weeks=weeks) for m in measures]
    )


def build(
    published: Path, as_of: date, measures: Sequence[Measure], threshold: int, *, weeks: int = WEEKS, con=None
) -> Release:
    """Every table of the report for the period ending in the last complete week before ``as_of``
    (deterministic: the same data gives the same tables, which is how a release is re-read), each
    protected on its own (the cross-table and cross-release audit is the caller's). ``con``: a
    connection from ``connect`` covering this release's nights and dates, to share between releases."""
    period = Period(as_of, weeks)
    first = since(as_of, measures, weeks)
    own = con is None
    con = connect(published, period.end, first) if own else con
    window = f"night <= {_day(period.end)} AND day BETWEEN {_day(first)} AND {_day(period.end)}"
    inc = _frame(
        con, f"SELECT key, night, source, area, category, coord_n, coord_e, week, weekday, hour FROM inc WHERE {window}"
    )
    release = Release(period, threshold, sources=sorted(set(inc["source"].tolist())))
    release.first_night = min(inc["night"].tolist(), default=None)
    _incident_tables(release, inc)
    _measure_tables(release, inc, measures)
    _people_tables(release, con, window)
    for t in release.tables.values():
        t.protect(threshold)
    if own:
        con.close()
    return release


def _incident_tables(release: Release, inc: dict[str, np.ndarray]) -> None:
    period, sources = release.period, release.sources
    current = _in(inc["week"], period.current)
    groups = category_groups()
    inc["group"] = np.array([groups.get(c, c) for c in inc["category"].tolist()], dtype=object)
    group_labels = sorted(set(groups.values()))
    inc["band"] = np.array([HOUR_BANDS[h // 3] for h in inc["hour"].tolist()], dtype=object)
    step = _heatmap_step(sources, inc, _in(inc["area"], BUS_SQUARE_AREAS) & current, release.threshold)
    for scope in scopes():
        here = _in(inc["area"], scope.areas)
        release.add(
            table(
                f"weekly:{scope.id}",
                WEEKS_GROUP,
                inc,
                here,
                "source",
                sources,
                "week",
                period.previous + period.current,
            )
        )
        for t in _heatmaps(scope, sources, inc, here & current, step):
            release.add(t)
        for label, weeks in (("current", period.current), ("previous", period.previous)):
            release.add(
                table(
                    f"categories:{scope.id}:{label}",
                    TIME_GROUP,
                    inc,
                    here & _in(inc["week"], weeks),
                    "group",
                    group_labels,
                    "source",
                    sources,
                )
            )
    _map_table(release, inc, current)


def hour_labels(step: int) -> list[str]:
    return [f"{h:02d}" if step == 1 else f"{h:02d}–{h + step:02d}" for h in range(0, 24, step)]


def _heatmaps(
    scope: Scope, sources: list[str], inc: dict[str, np.ndarray], mask: np.ndarray, step: int
) -> list[CountTable]:
    """Weekday × hour blocks of ``step`` hours, per source and all sources together."""
    frame = dict(inc)
    frame["slot"] = np.array(hour_labels(step), dtype=object)[np.asarray(inc["hour"]).astype(np.int64) // step]
    return [
        table(
            f"heatmap:{scope.id}:{source}",
            TIME_GROUP,
            frame,
            mask & (inc["source"] == source if source != "alla" else True),
            "weekday",
            range(7),
            "slot",
            hour_labels(step),
            margins=False,
        )
        for source in [*sources, "alla"]
    ]


def _heatmap_step(sources: list[str], inc: dict[str, np.ndarray], mask: np.ndarray, threshold: int) -> int:
    """Hours per column: 1, or 3 or 6 when hours would leave more than a tenth of the bus square's
    cells that have incidents too small to show (a heatmap of withheld cells tells nobody anything).
    One resolution for every heatmap, so each is the cell-by-cell sum or part of the others and the
    audit sees plain equations rather than overlapping partitions."""
    for step in HEATMAP_HOURS:
        family = _heatmaps(Scope("probe", "", ()), sources, inc, mask, step)
        positive = np.concatenate([t.cells[t.cells > 0] for t in family])
        if not positive.size or (positive < threshold).mean() <= MAX_SMALL_SHARE:
            return step
    return HEATMAP_HOURS[-1]


def _map_table(release: Release, inc: dict[str, np.ndarray], current: np.ndarray) -> None:
    """100 m cells inside the outlines' bounding box (plus a cell of margin)."""
    outlines = [np.array(o) for o in (common_model().get("area_outlines") or {}).values()]
    n, e = inc["coord_n"], inc["coord_e"]
    has = ~np.isnan(n.astype(float)) & ~np.isnan(e.astype(float)) if len(n) else np.zeros(0, dtype=bool)
    if outlines:
        corners = np.vstack(outlines)
        lo, hi = corners.min(axis=0) - 100, corners.max(axis=0) + 100
        has &= (np.nan_to_num(n.astype(float)) >= lo[0]) & (np.nan_to_num(n.astype(float)) <= hi[0])
        has &= (np.nan_to_num(e.astype(float)) >= lo[1]) & (np.nan_to_num(e.astype(float)) <= hi[1])
    mask = current & has
    frame = dict(inc)
    frame["cn"] = np.where(has, np.nan_to_num(n.astype(float)), 0).astype(np.int64)
    frame["ce"] = np.where(has, np.nan_to_num(e.astype(float)), 0).astype(np.int64)
    if outlines:
        rows = list(range(int(lo[0] // 100 * 100), int(hi[0]) + 1, 100))[::-1]
        cols = list(range(int(lo[1] // 100 * 100), int(hi[1]) + 1, 100))
    else:
        rows = sorted(set(frame["cn"][mask].tolist()), reverse=True)
        cols = sorted(set(frame["ce"][mask].tolist()))
    release.add(table("map", MAP_GROUP, frame, mask, "cn", rows, "ce", cols))


def _measure_tables(release: Release, inc: dict[str, np.ndarray], measures: Sequence[Measure]) -> None:
    """Per measure: weekly counts in its areas and in the areas without any measure, before and
    after its start (whole weeks; the week it starts in counts as after when it starts on Monday,
    else is left out), and the 2 × 2 table of before/after sums the rate ratio is computed from."""
    all_areas = tuple(common_model()["areas"])
    measured = {a for m in measures for a in m.areas}
    control = tuple(a for a in all_areas if a not in measured)
    last = release.period.last_monday
    for m in measures:
        first_after = m.start + timedelta(days=(7 - m.start.weekday()) % 7)
        after = [
            first_after + timedelta(weeks=i)
            for i in range(release.period.weeks)
            if first_after + timedelta(weeks=i) <= last and (m.end is None or first_after + timedelta(weeks=i) <= m.end)
        ]
        before = [first_after - timedelta(weeks=release.period.weeks - i) for i in range(release.period.weeks)]
        if m.start.weekday():
            before = [w for w in before if w + timedelta(days=6) < m.start]
        info = {"measure": m, "before": before, "after": after, "control": control}
        release.measures.append(info)
        if not after or not control:
            continue
        frame = dict(inc)
        frame["group"] = np.where(
            _in(inc["area"], m.areas), "åtgärd", np.where(_in(inc["area"], control), "jämförelse", "")
        ).astype(object)
        frame["phase"] = np.where(
            _in(inc["week"], before), "före", np.where(_in(inc["week"], after), "efter", "")
        ).astype(object)
        groups = ["åtgärd", "jämförelse"]
        release.add(
            table(
                f"measure:{m.id}:weekly",
                WEEKS_GROUP,
                frame,
                np.ones(len(inc["key"]), bool),
                "group",
                groups,
                "week",
                before + after,
            )
        )
        release.add(
            table(
                f"measure:{m.id}:summary",
                WEEKS_GROUP,
                frame,
                np.ones(len(inc["key"]), bool),
                "group",
                groups,
                "phase",
                ["före", "efter"],
            )
        )


def _people_tables(release: Release, con, window: str) -> None:
    period = release.period
    model = common_model()
    bands = [b["label"] for b in model["age_bands"]]
    roles = list(model["roles"])
    areas = tuple(model["areas"])
    youth = _frame(
        con,
        f"SELECT key, area, weekday, hour FROM inv WHERE {window} AND age_band IN (?, ?) AND week IN "
        f"({', '.join('?' * len(period.current))})",
        [*YOUTH_BANDS, *period.current],
    )
    youth["band"] = np.array(HOUR_BANDS, dtype=object)[np.asarray(youth["hour"]).astype(np.int64) // 3]
    everyone = np.ones(len(youth["key"]), dtype=bool)
    release.add(table("youth:weekday", "involvements", youth, everyone, "area", areas, "weekday", range(7)))
    release.add(table("youth:hours", "involvements", youth, everyone, "area", areas, "band", HOUR_BANDS))
    repeat = _frame(
        con,
        f"""
        WITH recent AS (SELECT * FROM inv WHERE {window} AND day > ?::DATE - INTERVAL {REPEAT_DAYS} DAY AND day <= ?),
        roles AS (SELECT person_pseudonym, role, count(*) AS n FROM recent GROUP BY ALL),
        per_person AS (
            SELECT r.person_pseudonym, count(DISTINCT r.incident_id) AS incidents,
                   first(r.age_band ORDER BY r.day DESC, r.age_band) AS age_band
            FROM recent r GROUP BY r.person_pseudonym),
        top_role AS (SELECT person_pseudonym, first(role ORDER BY n DESC, role) AS role FROM roles GROUP BY ALL)
        SELECT hash(p.person_pseudonym) AS key, p.age_band, t.role
        FROM per_person p JOIN top_role t USING (person_pseudonym) WHERE p.incidents >= ?""",
        [period.end, period.end, REPEAT_MIN_INCIDENTS],
    )
    release.add(
        table("repeat", "persons", repeat, np.ones(len(repeat["key"]), dtype=bool), "age_band", bands, "role", roles)
    )
