"""A transit and a guards night across the autumn DST change, end to end (issue 16).

On Sunday 25 October 2026 Stockholm's clocks go back at 03:00 summer time (01:00 UTC), so
02:00–02:59 local happens twice. The generator writes the night of Saturday 24 October as people
live it, into the Sunday morning, with incidents in both passes of that hour, and its truth keeps
the UTC instant of every incident. The transit feed writes the offset (02:30+02:00 and 02:30+01:00
are an hour apart) and must be read exactly; the guards feed writes a local date and a local time
only, so a time in the repeated hour is ambiguous and the common model's rule decides
(samverkan/ingest/model.py: the first occurrence, summer time). The real DAGs run with
``airflow dags test`` against real SFTP servers, and the published Parquet is read back with DuckDB,
joined to the private map of partner incident keys.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, date, datetime, timedelta

import duckdb
import pytest

from devkit.embedded import EmbeddedHub
from devkit.synthetic import Faults, Population, write_night
from samverkan.connectors.sshd import sshd_available
from samverkan.core import nights
from samverkan.core.contracts import load_contracts

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # two `airflow dags test` runs in the fixture

NIGHT = date(2026, 10, 24)  # Saturday; the clocks go back in the small hours after it
CHANGE = datetime(2026, 10, 25, 1, 0, tzinfo=UTC)  # 03:00 summer time becomes 02:00 winter time
TZ = nights.zone()
SEED = 1025
SIZES = {"transit": 60, "guards": 60}
FAULTS = {
    "transit": Faults(impossible_date=1, unknown_category=1, bad_json_lines=1),
    "guards": Faults(impossible_date=1, unknown_category=1),
}


def _local(instant: datetime) -> datetime:
    """The Stockholm wall clock of a UTC instant, naive (as the published local column is)."""
    return instant.astimezone(TZ).replace(tzinfo=None)


def _first_occurrence(wall: datetime) -> datetime:
    """The model's documented rule for a wall-clock time, computed with zoneinfo, not the model."""
    return wall.replace(tzinfo=TZ, fold=0).astimezone(UTC)


def _in_repeated_hour(instant: datetime) -> bool:
    return CHANGE - timedelta(hours=1) <= instant < CHANGE + timedelta(hours=1)


@pytest.fixture(scope="module")
def dst_night(tmp_path_factory):
    if not sshd_available():
        pytest.skip("OpenSSH server not installed; scripts/setup installs it")
    hub = EmbeddedHub(tmp_path_factory.mktemp("dst") / "hub")
    population = Population(SEED, 400)
    truths = {
        feed: write_night(feed, NIGHT, hub.partners_root, rows=rows, population=population, seed=SEED,
                          faults=FAULTS[feed], across_dst=True)
        for feed, rows in SIZES.items()
    }
    old = time.time() - 600  # the guards' upload has no marker: it must have stood still a while
    os.utime(truths["guards"].path, (old, old))
    with hub:
        hub.start_servers()
        hub.migrate()
        runs = {feed: hub.run_feed(feed, NIGHT, check=False) for feed in SIZES}
        yield {"hub": hub, "truths": truths, "runs": runs}


def published(hub: EmbeddedHub, feed: str) -> dict[str, dict]:
    """Published incidents of a feed by the partner's own key (through the private id map)."""
    data = hub.data
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    rows = con.execute(f"""
        SELECT m.partner_incident_id, i.occurred_at_utc, i.occurred_at_local, i.night
        FROM read_parquet('{data.published}/incidents/**/*.parquet', hive_partitioning = true) i
        JOIN read_parquet('{data.incident_ids}/**/*.parquet', hive_partitioning = true) m
          ON m.incident_id = i.incident_id AND m.source::VARCHAR = i.source::VARCHAR
        WHERE i.source::VARCHAR = '{feed}'""").fetchall()
    return {key: {"utc": utc, "local": local, "night": str(night)} for key, utc, local, night in rows}


def test_both_runs_succeeded(dst_night):
    for feed, done in dst_night["runs"].items():
        assert done.returncode == 0, f"{feed}:\n{done.stdout[-4000:]}"


@pytest.mark.parametrize("feed", SIZES)
def test_the_generated_night_really_crosses_the_change(dst_night, feed):
    """The precondition of every check below: incidents in both passes of the repeated hour."""
    instants = dst_night["truths"][feed].occurred_utc.values()
    assert any(CHANGE - timedelta(hours=1) <= t < CHANGE for t in instants)  # 02:xx summer time
    assert any(CHANGE <= t < CHANGE + timedelta(hours=1) for t in instants)  # 02:xx winter time
    assert any(_local(t).date() == NIGHT for t in instants)  # Saturday evening too


def test_transit_times_are_the_instants_their_offsets_say(dst_night):
    truth = dst_night["truths"]["transit"].occurred_utc
    found = published(dst_night["hub"], "transit")
    assert set(found) == set(truth)
    for key, row in found.items():
        assert row["utc"] == truth[key], key
        assert row["local"] == _local(truth[key]), key
    # 02:xx local on both sides of the change: two hours ahead of UTC before it, one after.
    repeated = [row for row in found.values() if _in_repeated_hour(row["utc"])]
    assert all(row["local"].hour == 2 for row in repeated)
    ahead = {row["utc"] >= CHANGE: row["local"] - row["utc"].replace(tzinfo=None) for row in repeated}
    assert ahead == {False: timedelta(hours=2), True: timedelta(hours=1)}


def test_guards_ambiguous_times_are_the_first_occurrence(dst_night):
    truth = dst_night["truths"]["guards"].occurred_utc
    found = published(dst_night["hub"], "guards")
    timed = {key: row for key, row in found.items() if row["utc"] is not None}
    assert set(timed) == set(truth)  # a row without a clock time has no instant
    moved = 0
    for key, row in timed.items():
        wall = _local(truth[key])
        assert row["local"] == wall, key
        assert row["utc"] == _first_occurrence(wall), key
        if truth[key] >= CHANGE and _in_repeated_hour(truth[key]):
            assert row["utc"] == truth[key] - timedelta(hours=1), key  # read as summer time
            moved += 1
        else:
            assert row["utc"] == truth[key], key
    assert moved > 0  # the rule was exercised on a time of the second pass


@pytest.mark.parametrize("feed", SIZES)
def test_nothing_is_lost(dst_night, feed):
    truth = dst_night["truths"][feed]
    hub = dst_night["hub"]
    [manifest] = [json.loads(p.read_text()) for p in (hub.data.published / "_manifests" / feed).glob("*.json")]
    [f] = manifest["files"]
    assert f["status"] == "published"
    assert f["rows_received"] == truth.records
    assert f["rows_published"] + f["rows_quarantined"] == f["rows_received"]
    assert f["rows_quarantined"] == len(truth.quarantined_records) - len(truth.held_records)
    assert len(published(hub, feed)) == truth.incidents + len(truth.held_records)


@pytest.mark.parametrize("feed", SIZES)
def test_every_incident_belongs_to_the_night_of_the_file(dst_night, feed):
    """Saturday evening, Sunday's 02:xx before and after the change: one night, one partition,
    and the run that covers it is scheduled after the change (winter time) but still finds it."""
    contract = load_contracts()[feed]
    run = contract.run_time_for(NIGHT)
    assert run.utcoffset() == timedelta(hours=1) and nights.night_of_run(run) == NIGHT
    hub = dst_night["hub"]
    found = published(hub, feed)
    assert {row["night"] for row in found.values()} == {NIGHT.isoformat()}
    days = {row["local"].date() for row in found.values() if row["local"] is not None}
    assert days == {NIGHT, NIGHT + timedelta(days=1)}
    [manifest] = [json.loads(p.read_text()) for p in (hub.data.published / "_manifests" / feed).glob("*.json")]
    assert manifest["run_night"] == NIGHT.isoformat()
    assert {f["night"] for f in manifest["files"]} == {NIGHT.isoformat()}
