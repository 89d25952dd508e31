"""The lägesbild on published data with a known effect: the measure's verdict, the counts against
independent SQL, no released count under the threshold, and the cross-release LP attacker.

The data (tests/unit/analysis/published.py): 16 weeks from Monday 2026-08-03, three sources, five
areas; at the bus square (Gustav III:s torg) half of the incidents vanish from 2026-10-12, the
start of the shipped lighting measure; the outreach measure at the travel centre (from
2026-11-02) has no effect.
"""

from __future__ import annotations

import json
import re
from datetime import date, timedelta

import duckdb
import numpy as np
import pytest

from samverkan.analysis import lagesbild
from samverkan.analysis.disclosure import CountTable, attack
from samverkan.analysis.lagesbild_data import build, common_model, connect, _frame
from samverkan.analysis.measures import load_measures
from samverkan.sharing.aggregates import WeekTable, suppress
from samverkan.sharing.agreements import load_agreements
from devkit.published import write_published

pytestmark = pytest.mark.unit

FIRST, WEEKS = date(2026, 8, 3), 16
AS_OF = FIRST + timedelta(weeks=WEEKS, days=-1)  # Sunday 2026-11-22
THRESHOLD = 5


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("lagesbild")
    published = write_published(root, FIRST, 7 * WEEKS, rate=3.0,
                                effects={"gustav_iii_torg": (date(2026, 10, 12), 0.5)}, seed=3)
    return root, published


@pytest.fixture(scope="module")
def two_releases(data):
    """The release of the week before and the one of the last week, into one folder, as the DAG
    would write them: the second is audited against the first."""
    root, published = data
    out = root / "out"
    first = lagesbild.build_report(published, out, as_of=AS_OF - timedelta(days=7), weeks=4)
    second = lagesbild.build_report(published, out, as_of=AS_OF, weeks=4)
    return first, second


# --- the measure analysis ---------------------------------------------------------------------------


def test_the_effect_is_found_where_there_is_one_and_too_few_to_tell_where_there_is_none(two_releases):
    results = {m["measure"]: m for m in json.loads(two_releases[1].data.read_text())["measures"]}
    lighting, outreach = results["gustav_iii_torg_lighting"], results["resecentrum_outreach"]
    assert lighting["high"] < 1 and lighting["low"] < 0.5 < lighting["high"], lighting
    assert lighting["verdict"].startswith("Minskning")
    assert outreach["low"] < 1 < outreach["high"], outreach
    assert outreach["verdict"].startswith(lagesbild.TOO_FEW)


@pytest.mark.parametrize("counts, verdict", [
    ((100, 50, 300, 310), "Minskning"),
    ((100, 210, 300, 310), "Ökning"),
    ((100, 95, 300, 310), lagesbild.TOO_FEW),
    ((4, 2, 300, 310), lagesbild.TOO_FEW),        # a count below the threshold tells nothing
    ((None, 50, 300, 310), lagesbild.TOO_FEW),    # nor does a withheld one
])
def test_rate_ratio_verdicts(counts, verdict):
    result = lagesbild.rate_ratio(*counts, THRESHOLD)
    assert result["verdict"].startswith(verdict)
    if counts[0] is not None and min(counts) >= THRESHOLD:
        a0, a1, c0, c1 = counts
        assert result["rate_ratio"] == pytest.approx((a1 / a0) / (c1 / c0))
        assert result["low"] < result["rate_ratio"] < result["high"]
    else:
        assert result["rate_ratio"] is None  # never a ratio that would give a small count away


# --- the counts --------------------------------------------------------------------------------------


def test_weekly_counts_equal_independent_sql_over_the_parquet(data):
    _, published = data
    release = build(published, AS_OF, load_measures(), THRESHOLD)
    sql = """SELECT source, date_trunc('week', occurred_at_local)::DATE AS week, count(*) AS n
             FROM read_parquet(?, hive_partitioning = true) WHERE area IN ({}) AND night <= ?
             AND occurred_at_local IS NOT NULL GROUP BY ALL"""
    for scope in lagesbild.scopes():
        expected = {(s, w): n for s, w, n in duckdb.execute(
            sql.format(", ".join(f"'{a}'" for a in scope.areas)),
            [str(published / "incidents" / "**" / "*.parquet"), AS_OF]).fetchall()}
        table = release.tables[f"weekly:{scope.id}"]
        got = {(s, w): int(table.cells[i, j]) for i, s in enumerate(table.rows) for j, w in enumerate(table.cols)}
        assert {k: v for k, v in got.items() if v} == {k: v for k, v in expected.items() if k[1] in table.cols}
        assert sum(got.values()) > 500


def test_no_released_count_is_under_the_threshold(two_releases):
    for result in two_releases:
        released = json.loads(result.data.read_text())
        values = [v for t in released["tables"] for row in t["values"] for v in row if v is not None]
        assert values and all(v == 0 or v >= THRESHOLD for v in values)
        suppressed = sum(v is None for t in released["tables"] for row in t["values"] for v in row)
        assert suppressed > 0  # the data has small cells: the rule had something to do
        page = result.html.read_text(encoding="utf-8")
        shown = [int(n) for n in re.findall(r"<td>(\d+)</td>", page)]
        assert shown and all(n == 0 or n >= THRESHOLD for n in shown)
        assert "undertryckt" in page


def test_the_page_is_self_contained(two_releases):
    page = two_releases[1].html.read_text(encoding="utf-8")
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?!data:)[a-z]+:""", page, re.I)
    assert "http-equiv=\"Content-Security-Policy\"" in page and "default-src 'none'" in page
    assert "<script" not in page.lower()
    assert len(two_releases[1].figures) >= 6 and all(f.read_bytes()[:4] == b"\x89PNG" for f in two_releases[1].figures)


def test_weeks_before_the_first_published_night_say_no_data_not_zero(data):
    """A history that starts inside the compared weeks: those weeks are "ingen data" in the tables,
    shaded in the figure, and no change is counted against them; weeks with data keep their counts."""
    root, published = data
    partly = lagesbild.build_report(published, root / "early", as_of=FIRST + timedelta(weeks=5, days=-1), weeks=4)
    release = build(published, FIRST + timedelta(weeks=5, days=-1), load_measures(), THRESHOLD, weeks=4)
    assert release.first_night == FIRST
    assert release.without_data(release.period.previous) == [True, True, True, False]
    assert release.without_data(release.period.current) == [False] * 4
    weekly = release.tables["weekly:busstorget"]
    assert weekly.extended[-1, :3].tolist() == [0, 0, 0] and weekly.extended[-1, 3] > 0  # why "0" would mislead
    page = partly.html.read_text(encoding="utf-8")
    assert f"Publicerade data finns från {FIRST.isoformat()}" in page
    first_table = page.split("<details>", 1)[1].split("</details>", 1)[0]
    assert first_table.count("ingen data") == 3 * (len(weekly.rows) + 1)
    # a previous period wholly before the data: no change is computed against it
    none = lagesbild.build_report(published, root / "earliest", as_of=FIRST + timedelta(weeks=4, days=-1), weeks=4)
    categories = none.html.read_text(encoding="utf-8").split("<h2>3.", 1)[1].split("<h2>4.", 1)[0]
    assert "ingen data" in categories and not re.search(r"<td>[+-]\d+</td>", categories)
    # and where the history covers both periods, nothing says "no data"
    full = lagesbild.build_report(published, root / "full", as_of=AS_OF, weeks=4)
    assert "ingen data" not in full.html.read_text(encoding="utf-8")


# --- the attacker across releases and the partner aggregates -------------------------------------------


def partner_aggregates(published, nights: list[date], agreement) -> list[CountTable]:
    """What the recipient of ``agreement`` holds: the nightly incident_counts (week × area and
    category × hour, suppressed by samverkan.sharing.aggregates), over the same records (keys) as
    the report, so the attacker can lay them over it."""
    con = connect(published, max(nights), min(nights) - timedelta(days=7))
    areas = agreement.scope_where["in"] if agreement.scope_where else None
    tables = []
    for night in nights:
        rows = _frame(con, "SELECT key, area, category, hour, week FROM inc WHERE night = ? AND source IN ({})".format(
            ", ".join(f"'{s}'" for s in agreement.sources)), [night])
        keep = np.isin(rows["area"], areas) if areas else np.ones(len(rows["key"]), dtype=bool)
        for week in sorted(set(rows["week"][keep].tolist())):
            mine = keep & (rows["week"] == week)
            labels = sorted(set(zip(rows["area"][mine].tolist(), rows["category"][mine].tolist())))
            index = {k: i for i, k in enumerate(labels)}
            row_of = np.array([index.get((a, c), -1) if m else -1 for a, c, m in
                               zip(rows["area"].tolist(), rows["category"].tolist(), mine)], dtype=np.int64)
            col_of = np.where(mine, rows["hour"].astype(np.int64), -1)
            t = CountTable(f"aggregates:{night}:{week}", "all", labels, list(range(24)),
                           rows["key"].astype(np.uint64), row_of, col_of)
            published_table = suppress(WeekTable(str(week), labels, t.extended.copy()), THRESHOLD)
            t.suppressed, t.primary, t.fixed = published_table.suppressed, (t.extended > 0) & (t.extended < THRESHOLD), True
            tables.append(t)
    return tables


def test_two_consecutive_releases_and_the_aggregates_give_no_suppressed_count_away(data, two_releases):
    """Everything a recipient holds in one system of equations: both releases' incident tables (as
    released), the guards' nightly aggregates of the last two weeks; the LP attacker tries every
    withheld count of the report, and finds none pinned or known to be small."""
    _, published = data
    tables = []
    for result in two_releases:
        for t in lagesbild.released_tables(result.directory, published, load_measures(), THRESHOLD):
            if t.universe.startswith("incidents"):
                t.universe = "all"
                tables.append(t)
    assert len(tables) > 20 and any(t.suppressed.any() for t in tables)
    report = len(tables)
    nights = [AS_OF - timedelta(days=d) for d in range(14)]
    tables += partner_aggregates(published, nights, load_agreements()["guards"])
    findings = attack(tables, THRESHOLD, targets=range(report))
    assert not findings, findings[:5]


@pytest.mark.parametrize("universe", ["involvements", "persons"])
def test_two_consecutive_releases_give_no_suppressed_person_count_away(data, two_releases, universe):
    """The youth view and repeat involvement, both releases in one system of equations."""
    _, published = data
    tables = [t for r in two_releases for t in lagesbild.released_tables(r.directory, published, load_measures(),
                                                                          THRESHOLD) if t.universe == universe]
    assert len(tables) >= 2 and any(t.suppressed.any() for t in tables)
    assert not attack(tables, THRESHOLD)


def test_the_attacker_does_find_a_count_left_open(data):
    """The check can fail: a heatmap protected without the cross-table audit (each table on its
    own) gives counts away through the combined map and the other sources."""
    _, published = data
    release = build(published, AS_OF, load_measures(), THRESHOLD, weeks=4)
    family = [t for name, t in release.tables.items() if name.startswith("heatmap:busstorget")]
    assert any(t.suppressed.any() for t in family)
    assert attack(family, THRESHOLD), "per-table suppression alone should be attackable here"


def test_a_hub_with_one_published_night_builds_its_report(tmp_path):
    """The Airflow UI test's hub: one published night, the report as of it (the default). Its
    period is the complete weeks before that night, so some universes of the audit hold no record
    at all; the report is still built."""
    night = date(2026, 11, 10)
    published = write_published(tmp_path, night, 1, rate=3.0, effects={}, seed=3)
    report = lagesbild.build_report(published, tmp_path / "out")
    page = report.html.read_text(encoding="utf-8")
    assert report.figures and "Lägesbild" in page


def test_the_command_builds_a_release_under_the_data_root_and_says_where(data, tmp_path, monkeypatch, capsys):
    from samverkan.core.settings import DATA_ROOT_ENV, Paths

    _, published = data
    hub = tmp_path / "hub"
    hub.mkdir()
    (hub / "published").symlink_to(published)
    monkeypatch.setenv(DATA_ROOT_ENV, str(hub))
    assert lagesbild.main(["--as-of", AS_OF.isoformat(), "--weeks", "4"]) == 0
    (release,) = lagesbild.releases(lagesbild.report_dir(Paths(hub)))
    out = capsys.readouterr().out
    assert str(release / lagesbild.HTML_FILE) in out and release.name in out
    monkeypatch.setenv(DATA_ROOT_ENV, str(tmp_path / "empty"))
    assert lagesbild.main([]) == 2
    assert "no published incidents" in capsys.readouterr().err
