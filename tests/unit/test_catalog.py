"""The analysts' catalog: views only, equal to plain SQL over the Parquet, every view and column
documented in the database and in the dictionary, new nights seen without a rebuild."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from samverkan.analysis.catalog import CATALOG_NAME, CatalogError, build_catalog
from samverkan.core.contracts import load_contracts
from samverkan.core.publishing import partition_file
from samverkan.core.settings import Paths
from samverkan.ingest.model import INCIDENTS_SCHEMA, INVOLVEMENTS_SCHEMA

FEEDS = ("police", "transit", "guards")
AREAS = ("gustav_iii_torg", "resecentrum", "stortorget", None)


def _publish_night(data: Paths, feed: str, night: date, incidents: int, rng: random.Random) -> None:
    """A night of one feed in the published layout, with the published schemas (random pseudonyms)."""
    start = datetime(night.year, night.month, night.day, tzinfo=UTC)
    ids = [f"{feed}:{night.isoformat()}-{i}" for i in range(incidents)]
    rows = [{"incident_id": i, "source": feed, "source_file": f"{feed}-{night}.x",
             "occurred_at_utc": start + timedelta(minutes=rng.randrange(1440)), "area": rng.choice(AREAS),
             "category": rng.choice(("violence", "disorder", "theft"))} for i in ids]
    table = pa.Table.from_pylist(rows, schema=INCIDENTS_SCHEMA)
    path = partition_file(data.dataset("incidents"), night.isoformat(), feed, f"{feed}-{night}.x")
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    people = [{"incident_id": i, "source": feed, "person_pseudonym": f"{rng.getrandbits(64):016x}",
               "role": "suspect", "age_band": "18-24"} for i in ids[: incidents // 2]]
    path = partition_file(data.dataset("involvements"), night.isoformat(), feed, f"{feed}-{night}.x")
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(people, schema=INVOLVEMENTS_SCHEMA), path)


@pytest.fixture
def published(tmp_path: Path) -> Paths:
    data = Paths(tmp_path / "data")
    rng = random.Random(3)
    for day in range(21):
        for feed in FEEDS:
            _publish_night(data, feed, date(2026, 10, 5) + timedelta(days=day), rng.randrange(5, 40), rng)
    return data


def _weekly_sql(data: Paths) -> list[tuple]:
    """Independent of the catalog: read the dataset root the way the README shows."""
    return duckdb.connect().execute(f"""
        SELECT source, date_trunc('week', night) AS week, count(*) AS n
        FROM read_parquet('{data.dataset("incidents")}/**/*.parquet', hive_partitioning = true)
        GROUP BY ALL ORDER BY ALL""").fetchall()


def _weekly_catalog(db: Path, view: str = "incidents") -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(f"SELECT source, date_trunc('week', night) AS week, count(*) AS n FROM {view} "
                           "GROUP BY ALL ORDER BY ALL").fetchall()


def test_catalog_views_count_what_the_parquet_holds(published, tmp_path):
    catalog = build_catalog(tmp_path / "catalog", published)
    expected = _weekly_sql(published)
    assert len(expected) == 3 * len(FEEDS)  # three weeks, three feeds
    assert _weekly_catalog(catalog.database) == expected
    per_source = sorted(r for feed in FEEDS for r in _weekly_catalog(catalog.database, f"incidents_{feed}"))
    assert per_source == expected
    with duckdb.connect(str(catalog.database), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE NOT internal").fetchone()[0] == 0  # no copies
        involved = con.execute("SELECT count(*) FROM involvements").fetchone()[0]
    glob = f"{published.dataset('involvements')}/**/*.parquet"
    assert involved == duckdb.connect().execute(f"SELECT count(*) FROM read_parquet('{glob}')").fetchone()[0]


def test_every_view_and_column_is_documented_in_the_database_and_the_dictionary(published, tmp_path):
    catalog = build_catalog(tmp_path / "catalog", published)
    with duckdb.connect(str(catalog.database), read_only=True) as con:
        views = dict(con.execute("SELECT view_name, comment FROM duckdb_views() WHERE NOT internal").fetchall())
        columns = con.execute("SELECT table_name, column_name, comment FROM duckdb_columns() "
                              "WHERE NOT internal AND table_name IN (SELECT view_name FROM duckdb_views())").fetchall()
    contracts = load_contracts()
    incident_feeds = {f for f, c in contracts.items() if "incident" in c.raw["model"]}
    expected = {"incidents", "involvements", "areas", "categories", "category_mappings", "roles", "age_bands",
                "measures"} | {f"incidents_{f}" for f in incident_feeds}
    assert expected <= set(views)
    assert set(catalog.views) == set(views)
    assert all(comment and comment.strip() for comment in views.values()), views
    undocumented = [(t, c) for t, c, comment in columns if not (comment and comment.strip())]
    assert not undocumented
    assert all("not described" not in comment for _, _, comment in columns)
    dictionary = catalog.dictionary.read_text(encoding="utf-8")
    for view, comment in views.items():
        assert f"## {view}\n\n{comment}\n" in dictionary
    for table, column, comment in columns:
        assert f"| `{column}` |" in dictionary.split(f"## {table}\n", 1)[1].split("\n## ", 1)[0]
        assert comment in dictionary
    # the contracts speak: the police view says which of the partner's columns feeds occurred_at
    police = {c: comment for t, c, comment in columns if t == "incidents_police"}
    assert "`Händelsetid`" in police["occurred_at_utc"]
    # the incident id is published keyed: the catalog must not tell analysts it is the partner's number
    for table, column, comment in columns:
        if column == "incident_id":
            assert "keyed" in comment and "source-prefixed" not in comment, (table, comment)
    assert "from `Diarienr`, keyed (" in police["incident_id"]


def test_nights_published_later_are_seen_without_a_rebuild(published, tmp_path):
    catalog = build_catalog(tmp_path / "catalog", published)
    before = _weekly_catalog(catalog.database)
    _publish_night(published, "police", date(2026, 11, 2), 7, random.Random(9))
    after = _weekly_catalog(catalog.database)
    assert after != before
    assert after == _weekly_sql(published)
    assert (tmp_path / "catalog" / CATALOG_NAME).exists()


def test_an_empty_dataset_says_what_to_do(tmp_path):
    with pytest.raises(CatalogError, match="nothing published yet.*run the feeds"):
        build_catalog(tmp_path / "catalog", Paths(tmp_path / "empty"))
    assert not (tmp_path / "catalog" / CATALOG_NAME).exists()


def test_refresh_replaces_the_catalog_in_place(published, tmp_path):
    first = build_catalog(tmp_path / "catalog", published)
    second = build_catalog(tmp_path / "catalog", published)
    assert first.database == second.database and set(first.views) == set(second.views)
    assert [p.name for p in (tmp_path / "catalog").iterdir() if p.name.startswith(".")] == []
