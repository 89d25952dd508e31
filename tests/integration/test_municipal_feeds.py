"""The municipality's own feeds (issue 17), through the real pipeline and then the real DAGs.

Fault reports (felanmälan) are an incident-only feed: environment categories reach the published
incidents and the suppressed aggregates, and not one involvement row is written for them. The
outreach team's observations are an aggregate feed: counts per place and slot, published as the
observations dataset and delivered only as suppressed sums. Neither publishes a phone number or
a name the partner typed into the text (leak scan against the generator's truth).
"""

from __future__ import annotations

import csv
import io

import duckdb
import pyarrow.compute as pc
import pytest

from devkit.leakscan import scan
from devkit.synthetic import (
    IMPOSSIBLE_DATE,
    UNKNOWN_CATEGORY,
    Faults,
    Population,
    write_night,
)
from samverkan.core.contracts import load_contracts
from samverkan.quality.validation import Validator
from samverkan.sharing.agreements import load_agreements
from samverkan.sharing.outbox import select_datasets
from tests.integration.resilience_support import NIGHT, Hub, assert_balanced

pytestmark = pytest.mark.integration

ENVIRONMENT = {"graffiti", "litter", "lighting", "damaged_property"}
MEASURES = {"Unga": "young_people", "Vuxna": "adults", "Påverkade": "intoxicated", "Grupper": "groups"}


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    """One night of both municipal feeds (and the guards, for the agreement's other sources),
    processed by one hub."""
    root = tmp_path_factory.mktemp("municipal")
    hub = Hub.create(root / "hub", Validator())
    population = Population(seed=17, size=400)
    truths, results = {}, {}
    for feed, rows, faults in (("felanmalan", 120, Faults(impossible_date=1, unknown_category=2)),
                               ("uppsokande", 40, Faults(impossible_date=1)),
                               ("guards", 60, None)):
        truths[feed] = write_night(feed, NIGHT, root / "partners", rows=rows, population=population, seed=17,
                                   faults=faults)
        results[feed] = hub.process(feed, truths[feed].path)
    return hub, truths, results


def _sql(hub: Hub, query: str) -> list[tuple]:
    con = duckdb.connect()
    for dataset in ("incidents", "involvements", "observations"):
        con.execute(f"CREATE VIEW {dataset} AS SELECT * FROM read_parquet('{hub.paths.published}/{dataset}/**/*.parquet',"
                    " hive_partitioning = true, union_by_name = true)")
    return con.execute(query).fetchall()


def test_fault_reports_publish_incidents_and_quarantine_bad_rows(night):
    hub, truths, results = night
    result, truth = results["felanmalan"], truths["felanmalan"]
    assert result.status == "published"
    assert_balanced(result, hub)
    assert (result.incidents, result.involvements) == (truth.incidents, 0)
    assert sorted(truth.quarantined_records.values()) == [IMPOSSIBLE_DATE, UNKNOWN_CATEGORY, UNKNOWN_CATEGORY]
    assert result.rows_quarantined == 3


def test_environment_categories_reach_the_published_incidents(night):
    hub, truths, _ = night
    rows = {(c, k): n for c, k, n in _sql(hub, """
        SELECT category, category_kind, count(*) FROM incidents WHERE source = 'felanmalan' GROUP BY ALL""")}
    assert {c for c, _ in rows} >= ENVIRONMENT
    assert all(kind == "environment" for (c, kind) in rows if c in ENVIRONMENT)
    assert sum(rows.values()) == truths["felanmalan"].incidents
    # "Busstorget" is the bus square; the reporter's phone column is not published at all.
    (at_square,), = _sql(hub, "SELECT count(*) FROM incidents WHERE source = 'felanmalan' AND area = 'gustav_iii_torg'")
    assert at_square > 0
    assert "anmalarens_telefon" not in {c for (c,) in _sql(hub, "SELECT column_name FROM (DESCRIBE incidents)")}


def test_an_incident_only_feed_writes_no_involvement_row(night):
    hub, _, results = night
    assert not list(hub.paths.dataset("involvements").glob("night=*/source=felanmalan"))
    assert not [o for o in results["felanmalan"].outputs if "/involvements/" in o]
    # The guards' involvements are there, each row with its incident: no row without a source feed's person model.
    (felanmalan_rows,), = _sql(hub, "SELECT count(*) FROM involvements WHERE source = 'felanmalan'")
    (guards_rows,), = _sql(hub, "SELECT count(*) FROM involvements WHERE source = 'guards'")
    assert felanmalan_rows == 0 and guards_rows == night[1]["guards"].involvements > 0


def test_observations_are_the_counts_the_team_wrote(night):
    hub, truths, results = night
    truth = truths["uppsokande"]
    assert results["uppsokande"].status == "published" and results["uppsokande"].observations == truth.observations
    assert not list(hub.paths.dataset("incidents").glob("night=*/source=uppsokande"))
    text = truth.path.read_text(encoding="utf-8")
    expected: dict[str, int] = {}
    for i, row in enumerate(csv.DictReader(io.StringIO(text), delimiter=";"), start=1):
        if i in truth.quarantined_records:
            continue
        for column, measure in MEASURES.items():
            if row[column]:
                expected[measure] = expected.get(measure, 0) + int(row[column])
    published = dict(_sql(hub, "SELECT measure, sum(count) FROM observations GROUP BY ALL"))
    assert published == expected
    late = _sql(hub, "SELECT DISTINCT hour(slot_start_local), hour(slot_end_local), "
                     "date_diff('day', slot_start_local, slot_end_local) FROM observations")
    assert (22, 0, 1) in late  # 22:00-00:00 ends the next day


def test_nothing_personal_is_published(night):
    hub, truths, _ = night
    for feed in ("felanmalan", "uppsokande"):
        values = truths[feed].personal_values
        assert values.name_tokens and (values.phones or feed == "uppsokande"), f"{feed}: nothing to look for"
        assert scan([hub.paths.published], values) == [], feed


def test_the_municipality_receives_environment_counts_and_suppressed_observations(night):
    hub, _, _ = night
    agreement = load_agreements()["municipality"]
    tables = select_datasets(agreement, hub.paths, NIGHT)
    counts = tables["incident_counts"]
    cells = counts.filter(pc.equal(counts.column("level"), "all_hours")).to_pylist()
    environment = [r for r in cells if r["category"] in ENVIRONMENT]
    assert environment and all(r["category_kind"] == "environment" for r in environment)
    observed = tables["observation_counts"]
    threshold = agreement.grant("observation_counts").threshold
    values = [v for v in observed.column("people").to_pylist() if v is not None]
    assert values and not [v for v in values if 0 < v < threshold]
    assert any(observed.column("suppressed").to_pylist())
    assert set(observed.column("measure").drop_null().to_pylist()) <= set(MEASURES.values())
    # Row-level observations never leave the hub: only the suppressed sums are granted.
    assert "observations" not in tables


@pytest.mark.slow
@pytest.mark.parametrize("feed", ["felanmalan", "uppsokande"])
def test_a_dag_run_publishes_each_municipal_feed(tmp_path, feed):
    from devkit.embedded import EmbeddedHub
    from samverkan.connectors.sshd import sshd_available

    if not sshd_available():
        pytest.skip("OpenSSH server not installed; scripts/setup installs it")
    hub = EmbeddedHub(tmp_path / "hub")
    truth = write_night(feed, NIGHT, hub.partners_root, rows=30, population=Population(seed=3, size=300), seed=3)
    with hub:
        hub.start_servers()
        hub.migrate()
        done = hub.run_feed(feed, NIGHT, check=False)
    assert done.returncode == 0, done.stdout[-6000:]
    dataset = load_contracts()[feed].datasets[0]
    files = list(hub.data.dataset(dataset).glob(f"night={NIGHT.isoformat()}/source={feed}/*.parquet"))
    assert len(files) == 1
    (rows,), = duckdb.sql(f"SELECT count(*) FROM read_parquet('{files[0]}')").fetchall()
    assert rows == (truth.incidents if dataset == "incidents" else truth.observations) > 0
    assert not (hub.data.dataset("involvements")).exists()
    log = tmp_path / "run.log"
    log.write_text(done.stdout, encoding="utf-8")
    assert scan([hub.data.published, log], truth.personal_values) == []
