"""End to end: three partners' SFTP servers → Airflow (`airflow dags test`) → published Parquet.

Nothing is stood in for: real OpenSSH servers with their own host keys, the real DAGs run by
Airflow's own runner on a SQLite metadata DB, the real GE suites, and the published dataset
read back with DuckDB and pandas. The generator's truth says what must come out.

The module tells a partner relationship as it would unfold: two nights with bad records arrive
and are published; a re-run changes nothing; a partner re-sends a corrected file; the same
content turns up under another name; files that are not complete yet wait; a late file for an
earlier night is picked up; a changed host key is refused. The tests pass in any order
(`--random-order`): the tests of the first two nights read a frozen copy of the hub taken right
after them (tests.support.snapshot), and each later step works on a night of its own and leaves
the hub as it found it (the refused host key's test brings the partner's real server back).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from samverkan.core.contracts import load_contracts
from devkit.embedded import EmbeddedHub
from samverkan.connectors.sshd import sshd_available, start_sftp_server
from devkit.leakscan import PersonalValues, scan
from devkit.synthetic import (
    BAD_CHECKSUM_PNR, IMPOSSIBLE_DATE, NOT_JSON, NOT_OBJECT, UNKNOWN_CATEGORY, Faults, NightTruth, Population,
    feed_path, write_night,
)
from samverkan.core.settings import Paths
from tests.support.snapshot import freeze

pytestmark = [pytest.mark.integration, pytest.mark.slow]

N1, N2 = date(2026, 11, 20), date(2026, 11, 21)
N0, N3 = N1 - timedelta(days=1), N2 + timedelta(days=1)
N4, N5 = N2 + timedelta(days=2), N2 + timedelta(days=3)  # nights of their own: a copied file, an impostor
SIZES = {"police": 300, "transit": 120, "guards": 80}
FAULTS = {
    "police": Faults(bad_checksum_pnr=2, impossible_date=1, unknown_category=1),
    "transit": Faults(impossible_date=1, unknown_category=1, bad_json_lines=2),
    "guards": Faults(bad_checksum_pnr=1, unknown_category=1),
}
SEED = 4242
FEEDS = tuple(SIZES)  # the three partners' story; the municipality's own feeds: test_municipal_feeds.py

# Words the quarantine reason must carry for each kind of generated fault (any one of them).
REASON_WORDS = {
    BAD_CHECKSUM_PNR: ("check digit",),
    IMPOSSIBLE_DATE: ("date", "time"),
    UNKNOWN_CATEGORY: ("categor", "allowed values"),
    NOT_JSON: ("json",),
    NOT_OBJECT: ("object",),
}


class Published:
    """What a data root holds, read back with DuckDB and pandas (the live hub or a frozen copy)."""

    def __init__(self, data: Paths) -> None:
        self.data = data

    def sql(self, query: str) -> list[tuple]:
        published = self.data.published
        con = duckdb.connect()
        con.execute(f"""CREATE VIEW incidents AS SELECT * FROM read_parquet(
            '{published}/incidents/**/*.parquet', hive_partitioning = true, union_by_name = true)""")
        con.execute(f"""CREATE VIEW involvements AS SELECT * FROM read_parquet(
            '{published}/involvements/**/*.parquet', hive_partitioning = true, union_by_name = true)""")
        return con.execute(query).fetchall()

    def published(self, feed: str, night: date) -> tuple[int, int]:
        """(incidents, involvements) published for one feed and night."""
        (incidents,), = self.sql(f"SELECT count(*) FROM incidents WHERE source = '{feed}' AND night = '{night}'")
        (involvements,), = self.sql(f"SELECT count(*) FROM involvements WHERE source = '{feed}' AND night = '{night}'")
        return incidents, involvements

    def manifests(self, feed: str) -> list[dict]:
        folder = self.data.published / "_manifests" / feed
        return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime)]

    def quarantined(self, feed: str, night: date) -> pd.DataFrame:
        folder = self.data.private / "quarantine" / feed / "rows" / f"night={night}"
        if not folder.exists():
            return pd.DataFrame()
        return pd.concat([pd.read_parquet(p) for p in folder.rglob("*.parquet")], ignore_index=True)


class First:
    """The hub right after the first two nights: data, truth, run output and Airflow's DB."""

    def __init__(self, story: Story, root: Path) -> None:
        self.data = Published(freeze(story.hub.data, root / "data"))
        self.truth = dict(story.truth)
        self.outputs = list(story.outputs)
        self.airflow_db = Path(shutil.copy(story.hub.airflow_home / "airflow.db", root / "airflow.db"))


class Story(Published):
    """Shared state of the story: the hub, the truth per (feed, night), every run's output."""

    def __init__(self, root: Path) -> None:
        self.hub = EmbeddedHub(root)
        super().__init__(self.hub.data)
        self.population = Population(SEED, 3000)
        self.truth: dict[tuple[str, date], NightTruth] = {}
        self.values = PersonalValues()
        self.outputs: list[str] = []
        self.first: First | None = None

    def write(self, feed: str, night: date, *, seed: int = SEED, rows: int | None = None,
              faults: Faults | None = None) -> NightTruth:
        truth = write_night(feed, night, self.hub.partners_root, rows=rows or SIZES[feed],
                            population=self.population, seed=seed, faults=faults)
        self.truth[(feed, night)] = truth
        self.values = self.values.merge(truth.personal_values)
        return truth

    def run(self, feed: str, night: date, *, check: bool = True):
        done = self.hub.run_feed(feed, night, check=False)
        self.outputs.append(done.stdout)
        if check:
            assert done.returncode == 0, f"airflow dags test samverkan_{feed} {night} failed:\n{done.stdout[-6000:]}"
        return done


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory):
    if not sshd_available():
        pytest.skip("OpenSSH server not installed; scripts/setup installs it")
    story = Story(tmp_path_factory.mktemp("e2e"))
    for night in (N1, N2):
        for feed in FEEDS:
            story.write(feed, night, faults=FAULTS[feed])
    # The guards' server has no completion marker: files must be older than the quiet period.
    _age_files(story.hub.partners_root / "guards")
    with story.hub:
        story.hub.start_servers()
        story.hub.migrate()
        for night in (N1, N2):
            for feed in FEEDS:
                story.run(feed, night)
        story.first = First(story, story.hub.root / "first")
        yield story


@pytest.fixture
def first(story) -> First:
    return story.first


def _age_files(root: Path, seconds: float = 600) -> None:
    old = time.time() - seconds
    for path in root.rglob("*"):
        if path.is_file():
            os.utime(path, (old, old))


# --- two nights with bad records --------------------------------------------------------

@pytest.mark.parametrize("feed", FEEDS)
@pytest.mark.parametrize("night", [N1, N2])
def test_published_counts_equal_the_generated_truth(first, feed, night):
    truth = first.truth[(feed, night)]
    held = len(truth.held_records)  # one incident and one (flagged) involvement each (issue 14, item 10)
    assert first.data.published(feed, night) == (truth.incidents + held, truth.involvements + held)


@pytest.mark.parametrize("feed", FEEDS)
def test_every_received_row_is_published_or_quarantined_with_its_reason(first, feed):
    for night in (N1, N2):
        truth = first.truth[(feed, night)]
        quarantined = first.data.quarantined(feed, night)
        assert sorted(quarantined["record"]) == sorted(truth.quarantined_records)
        for row, kind in truth.quarantined_records.items():
            reasons = " ".join(quarantined.loc[quarantined["record"] == row, "reasons"]).lower()
            assert any(word in reasons for word in REASON_WORDS[kind]), (row, kind, reasons)
        files = [f for m in first.data.manifests(feed) for f in m["files"] if f["night"] == night.isoformat()]
        assert len(files) == 1 and files[0]["status"] == "published"
        f = files[0]
        assert f["rows_received"] == truth.records
        assert f["rows_published"] + f["rows_quarantined"] == f["rows_received"]
        assert f["rows_quarantined"] == len(truth.quarantined_records) - len(truth.held_records)
        assert f["rows_held_for_correction"] == len(truth.held_records)


def test_the_run_log_states_the_balance(first):
    logs = "\n".join(first.outputs)
    for feed in FEEDS:
        for night in (N1, N2):
            truth = first.truth[(feed, night)]
            quarantined = len(truth.quarantined_records) - len(truth.held_records)
            assert f"received {truth.records} = published {truth.records - quarantined} + quarantined {quarantined}" in logs


def test_the_same_person_has_the_same_pseudonym_in_every_feed(first):
    """People shared by the police and guards files (by canonical personnummer in the truth)
    must meet as the same pseudonym in the published involvements."""
    police = set().union(*(first.truth[("police", n)].persons for n in (N1, N2)))
    guards = set().union(*(first.truth[("guards", n)].persons for n in (N1, N2)))
    assert police & guards, "the generator should put some people in both feeds"
    (shared,), = first.data.sql("""
        SELECT count(*) FROM (
            SELECT person_pseudonym FROM involvements WHERE source = 'police' AND person_pseudonym IS NOT NULL
            INTERSECT
            SELECT person_pseudonym FROM involvements WHERE source = 'guards' AND person_pseudonym IS NOT NULL)""")
    assert shared == len(police & guards)
    (distinct,), = first.data.sql("SELECT count(DISTINCT person_pseudonym) FROM involvements WHERE source = 'police'")
    assert distinct == len(police)


def test_pandas_reads_the_dataset_root_directly(first):
    frame = pd.read_parquet(first.data.data.published / "incidents")
    assert set(frame["source"].astype(str)) == set(FEEDS)
    assert frame["occurred_at_utc"].dt.tz is not None
    expected = sum(t.incidents + len(t.held_records) for t in first.truth.values())  # held: issue 14, item 10
    assert len(frame) == expected


def test_manifests_name_the_airflow_run_and_input_hashes(first):
    """Each manifest's run id is a run in Airflow's metadata DB, of that feed's DAG, whose logical
    date is the scheduled run of the manifest's night (`airflow dags test` names its runs after
    the moment they ran, so the id alone says nothing about the night)."""
    contracts = load_contracts()
    with sqlite3.connect(first.airflow_db) as db:
        runs = {(dag_id, run_id): logical for dag_id, run_id, logical in
                db.execute("SELECT dag_id, run_id, logical_date FROM dag_run")}
    for feed in FEEDS:
        for manifest in first.data.manifests(feed):
            logical = runs.get((f"samverkan_{feed}", manifest["run_id"]))
            assert logical is not None, f"{manifest['run_id']} is no run of samverkan_{feed}"
            expected = contracts[feed].run_time_for(date.fromisoformat(manifest["run_night"]))
            assert datetime.fromisoformat(logical).replace(tzinfo=UTC) == expected, manifest["run_id"]
            for f in manifest["files"]:
                assert len(f["sha256"]) == 64


# --- a re-run ingests nothing twice ------------------------------------------------------

def test_a_rerun_ingests_nothing_twice(story):
    before = {(f, n): story.published(f, n) for f in FEEDS for n in (N1, N2)}
    files_before = sorted(p.name for p in story.hub.data.published.rglob("*.parquet"))
    for feed in FEEDS:
        story.run(feed, N2)
        assert story.manifests(feed)[-1]["files"] == []
    assert {(f, n): story.published(f, n) for f in FEEDS for n in (N1, N2)} == before
    assert sorted(p.name for p in story.hub.data.published.rglob("*.parquet")) == files_before


# --- a corrected file replaces that night --------------------------------------------------

def test_a_resent_file_replaces_that_nights_data(story):
    corrected = story.write("guards", N1, seed=SEED + 1, rows=60)  # same name, new content, no faults
    _age_files(story.hub.partner_root("guards"))
    story.run("guards", N1)
    assert story.published("guards", N1) == (corrected.incidents, corrected.involvements)
    other = story.truth[("guards", N2)]
    assert story.published("guards", N2)[0] == other.incidents + len(other.held_records)  # other night untouched
    (files,), = story.sql(f"SELECT count(DISTINCT source_file) FROM incidents WHERE source = 'guards' AND night = '{N1}'")
    assert files == 1
    assert story.quarantined("guards", N1).empty, "the corrected file's night has no quarantined rows left"


# --- the same content under another name ---------------------------------------------------

def test_the_same_content_under_another_name_is_recognised(story):
    first = story.truth[("police", N1)].path
    copy = feed_path("police", N4, story.hub.partners_root)
    shutil.copyfile(first, copy)
    Path(str(copy) + ".ok").touch()
    story.run("police", N4)
    files = story.manifests("police")[-1]
    statuses = {f["name"]: f["status"] for f in files["files"]} | {s["name"]: s["status"] for s in files["not_processed"]}
    assert statuses.get(copy.name) == "duplicate", files
    assert story.published("police", N4) == (0, 0)
    copy.unlink()
    Path(str(copy) + ".ok").unlink()


# --- incomplete files wait; a late file for an earlier night is picked up -------------------

def test_incomplete_files_are_ignored_until_complete(story):
    police = story.write("police", N3)
    Path(str(police.path) + ".ok").unlink()  # the export is still being written
    transit = story.write("transit", N3)
    transit_tmp = transit.path.with_name(transit.path.name + ".tmp")
    transit.path.rename(transit_tmp)  # the operator uploads under .tmp and renames when done
    for feed in ("police", "transit"):
        story.run(feed, N3)
        assert story.published(feed, N3) == (0, 0)
    Path(str(police.path) + ".ok").touch()
    transit_tmp.rename(transit.path)
    for feed in ("police", "transit"):
        story.run(feed, N3)
        truth = story.truth[(feed, N3)]
        assert story.published(feed, N3) == (truth.incidents, truth.involvements)


def test_a_late_file_for_an_earlier_night_is_picked_up(story):
    late = story.write("transit", N0)  # arrives after N1..N3 were run
    story.run("transit", N1 + timedelta(days=1))  # a later run; N0 is inside its look-back
    assert story.published("transit", N0) == (late.incidents, late.involvements)


# --- nothing personal leaves the private zone ---------------------------------------------

def test_no_personal_value_in_any_published_byte_or_log_line(story, tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    for i, text in enumerate(story.outputs):
        (logs / f"airflow-dags-test-{i}.log").write_text(text)
    outputs = [story.hub.data.published, logs]
    airflow_logs = story.hub.airflow_home / "logs"
    if airflow_logs.exists():
        outputs.append(airflow_logs)
    assert not story.values.is_empty()
    findings = scan(outputs, story.values)
    assert findings == [], "\n".join(map(str, findings[:20]))


def test_the_leak_scan_would_have_caught_a_leak(story, tmp_path):
    """The check above can fail: the private landing area holds the raw files."""
    findings = scan([story.hub.data.private / "landing"], story.values)
    assert {f.kind for f in findings} >= {"personnummer", "name"}


# --- a changed host key is refused ----------------------------------------------------------

def test_a_changed_host_key_is_refused_and_other_partners_still_run(story):
    hub = story.hub
    old = hub.servers["guards"]
    old.stop()
    # Same address, same files, a new host key: what a man in the middle would look like.
    impostor = start_sftp_server(hub.partner_root("guards"), hub.client_key()[1], hub.root / "sshd-impostor",
                                 port=old.port)
    try:
        story.write("guards", N5)
        _age_files(hub.partner_root("guards"))
        done = story.run("guards", N5, check=False)
        assert done.returncode != 0
        assert "host key" in done.stdout.lower()
        assert story.published("guards", N5) == (0, 0)
        story.run("police", N5)  # another partner is unaffected
    finally:
        impostor.stop()
        # The partner's real server comes back (same work dir: same host key), for the other tests.
        hub.servers["guards"] = start_sftp_server(hub.partner_root("guards"), hub.client_key()[1],
                                                  hub.root / "sshd" / "guards", port=old.port)
        hub._stack.callback(hub.servers["guards"].stop)
