"""Completeness rules: a file still being written must never be fetched as if it were whole."""

import re

import pytest

from samverkan.connectors.completeness import Observation, Selection, observe, select_complete
from samverkan.connectors.sftp import RemoteFile
from samverkan.core.contracts import load_contracts

pytestmark = pytest.mark.unit

POLICE = re.compile(r"polisen_handelser_(?P<night>\d{8})\.csv")
TRANSIT = re.compile(r"incidents-(?P<night>\d{4}-\d{2}-\d{2})\.jsonl\.gz")
GUARDS = re.compile(r"vaktrapport_(?P<night>\d{4}-\d{2}-\d{2})\.csv")
MARKER = {"rule": "marker", "marker_suffix": ".ok"}
RENAME = {"rule": "rename", "temp_suffix": ".tmp"}
QUIET = {"rule": "quiet_period", "seconds": 120}


def f(name: str, size: int = 100, mtime: int = 1_700_000_000) -> RemoteFile:
    return RemoteFile(name, size, mtime)


def names(selection: Selection) -> tuple[list[str], list[str]]:
    return [x.name for x in selection.complete], [x.name for x, _ in selection.pending]


def reasons(selection: Selection) -> dict[str, str]:
    return {x.name: why for x, why in selection.pending}


# --- every rule: a pending file is pending, and says why -----------------------------------


@pytest.mark.parametrize(
    ("name", "rule", "pattern", "why"),
    [
        pytest.param("polisen_handelser_20261120.csv", MARKER, POLICE, "no .ok marker yet", id="without marker"),
        pytest.param("incidents-2026-11-20.jsonl.gz.tmp", RENAME, TRANSIT, "still uploading (.tmp)", id="temp name"),
    ],
)
def test_pending_file_says_so(name, rule, pattern, why):
    selection = select_complete([f(name)], rule, pattern)
    assert names(selection) == ([], [name])
    assert reasons(selection) == {name: why}


# --- marker -------------------------------------------------------------------------------


def test_marker_makes_file_complete():
    listing = [f("polisen_handelser_20261120.csv"), f("polisen_handelser_20261120.csv.ok", 0)]
    assert names(select_complete(listing, MARKER, POLICE)) == (["polisen_handelser_20261120.csv"], [])


def test_marker_for_another_file_does_not_count():
    listing = [f("polisen_handelser_20261120.csv"), f("polisen_handelser_20261119.csv.ok", 0)]
    assert names(select_complete(listing, MARKER, POLICE)) == ([], ["polisen_handelser_20261120.csv"])


def test_marker_alone_is_not_a_candidate():
    assert names(select_complete([f("polisen_handelser_20261120.csv.ok", 0)], MARKER, POLICE)) == ([], [])


def test_marker_is_not_a_candidate_even_when_the_pattern_matches_it():
    listing = [f("a.csv"), f("a.csv.ok", 0)]
    assert names(select_complete(listing, MARKER, re.compile(r".*"))) == (["a.csv"], [])


def test_marker_needs_the_exact_suffix():
    listing = [f("polisen_handelser_20261120.csv"), f("polisen_handelser_20261120.csv.OK", 0),
               f("polisen_handelser_20261120.ok", 0)]
    assert names(select_complete(listing, MARKER, POLICE)) == ([], ["polisen_handelser_20261120.csv"])


def test_names_outside_the_pattern_are_ignored():
    listing = [f("polisen_handelser_20261120.csv.bak"), f("polisen_handelser_20261120.csv.bak.ok", 0),
               f("xpolisen_handelser_20261120.csv"), f("xpolisen_handelser_20261120.csv.ok", 0)]
    assert names(select_complete(listing, MARKER, POLICE)) == ([], [])


# --- rename -------------------------------------------------------------------------------


def test_renamed_file_is_complete():
    assert names(select_complete([f("incidents-2026-11-20.jsonl.gz")], RENAME, TRANSIT)) == (
        ["incidents-2026-11-20.jsonl.gz"], [])


def test_temp_beside_final_leaves_final_complete_and_temp_pending():
    # A corrected re-send being uploaded next to the version already there.
    listing = [f("incidents-2026-11-20.jsonl.gz"), f("incidents-2026-11-20.jsonl.gz.tmp", 50)]
    assert names(select_complete(listing, RENAME, TRANSIT)) == (
        ["incidents-2026-11-20.jsonl.gz"], ["incidents-2026-11-20.jsonl.gz.tmp"])


def test_temp_name_is_never_complete_even_if_the_pattern_matches_it():
    listing = [f("x.gz.tmp")]
    assert names(select_complete(listing, RENAME, re.compile(r".*"))) == ([], ["x.gz.tmp"])


def test_temp_name_of_a_foreign_file_is_ignored():
    assert names(select_complete([f("other.jsonl.gz.tmp")], RENAME, TRANSIT)) == ([], [])


# --- quiet period -------------------------------------------------------------------------

NAME = "vaktrapport_2026-11-20.csv"


def quiet(listing, observations, now, rule=QUIET):
    return select_complete(listing, rule, GUARDS, observations, now)


def test_unchanged_for_the_quiet_period_is_complete():
    obs = {NAME: Observation(100, 1_700_000_000, first_seen=1000.0)}
    assert names(quiet([f(NAME)], obs, now=1200.0)) == ([NAME], [])


def test_exactly_at_the_boundary_is_complete():
    obs = {NAME: Observation(100, 1_700_000_000, first_seen=1000.0)}
    assert names(quiet([f(NAME)], obs, now=1120.0)) == ([NAME], [])


def test_just_before_the_boundary_is_pending_with_the_age():
    obs = {NAME: Observation(100, 1_700_000_000, first_seen=1000.0)}
    selection = quiet([f(NAME)], obs, now=1119.5)
    assert names(selection) == ([], [NAME])
    assert reasons(selection)[NAME] == "size/mtime changed 120 s ago; quiet period 120 s"


def test_pending_reason_counts_the_seconds():
    obs = {NAME: Observation(100, 1_700_000_000, first_seen=1000.0)}
    assert reasons(quiet([f(NAME)], obs, now=1012.0))[NAME] == "size/mtime changed 12 s ago; quiet period 120 s"


def test_never_seen_is_pending():
    selection = quiet([f(NAME)], {}, now=5000.0)
    assert names(selection) == ([], [NAME])
    assert reasons(selection)[NAME] == "first seen just now; quiet period 120 s"


@pytest.mark.parametrize("changed", [f(NAME, size=101), f(NAME, mtime=1_700_000_001)], ids=["size", "mtime"])
def test_changed_size_or_mtime_is_pending_however_old_the_observation(changed):
    obs = {NAME: Observation(100, 1_700_000_000, first_seen=0.0)}
    selection = quiet([changed], obs, now=10_000.0)
    assert names(selection) == ([], [NAME])
    assert reasons(selection)[NAME] == "size/mtime changed just now; quiet period 120 s"


def test_fractional_quiet_period_from_a_deployment_override():
    rule = {"rule": "quiet_period", "seconds": 2.5}
    obs = {NAME: Observation(100, 1_700_000_000, first_seen=10.0)}
    assert names(quiet([f(NAME)], obs, now=12.4, rule=rule)) == ([], [NAME])
    assert reasons(quiet([f(NAME)], obs, now=12.4, rule=rule))[NAME].endswith("quiet period 2.5 s")
    assert names(quiet([f(NAME)], obs, now=12.5, rule=rule)) == ([NAME], [])


def test_quiet_period_ignores_foreign_names():
    obs = {"notes.txt": Observation(100, 1_700_000_000, first_seen=0.0)}
    assert names(quiet([f("notes.txt")], obs, now=10_000.0)) == ([], [])


def test_a_foreign_name_listed_first_does_not_hide_the_feeds_files():
    obs = {n: Observation(100, 1_700_000_000, first_seen=0.0) for n in ("a_notes.txt", NAME)}
    assert names(quiet([f("a_notes.txt"), f(NAME)], obs, now=10_000.0)) == ([NAME], [])


@pytest.mark.parametrize("observations, now", [(None, None), ({}, None), (None, 0.0)])
def test_quiet_period_needs_observations_and_now(observations, now):
    with pytest.raises(ValueError, match="^the quiet_period rule needs observations and now$"):
        select_complete([f(NAME)], QUIET, GUARDS, observations, now)


# --- observe ------------------------------------------------------------------------------


def test_observe_records_new_files_at_now():
    assert observe([f(NAME)], {}, now=50.0) == {NAME: Observation(100, 1_700_000_000, 50.0)}


def test_observe_keeps_first_seen_while_unchanged():
    previous = {NAME: Observation(100, 1_700_000_000, 10.0)}
    assert observe([f(NAME)], previous, now=50.0) == previous


@pytest.mark.parametrize("changed", [f(NAME, size=200), f(NAME, mtime=1_700_000_005)], ids=["size", "mtime"])
def test_observe_restarts_the_clock_on_change(changed):
    previous = {NAME: Observation(100, 1_700_000_000, 10.0)}
    assert observe([changed], previous, now=50.0) == {NAME: Observation(changed.size, changed.mtime, 50.0)}


def test_observe_forgets_files_that_are_gone():
    previous = {NAME: Observation(100, 1_700_000_000, 10.0)}
    assert observe([], previous, now=50.0) == {}


def test_growing_upload_becomes_complete_only_after_it_stops():
    """The guards' case over a sequence of listings, as the discover task sees it."""
    obs: dict[str, Observation] = {}
    timeline = [(0, 10), (60, 500), (120, 900), (180, 900), (239, 900), (240, 900)]
    outcomes = []
    for now, size in timeline:
        listing = [f(NAME, size=size, mtime=1_700_000_000 + min(now, 120))]
        obs = observe(listing, obs, float(now))
        outcomes.append(bool(quiet(listing, obs, float(now)).complete))
    assert outcomes == [False, False, False, False, False, True]


# --- the real contracts -------------------------------------------------------------------


UPLOADS = {"police": "polisen_handelser_20261120.csv", "transit": "incidents-2026-11-20.jsonl.gz",
           "guards": "vaktrapport_2026-11-20.csv"}


def finished_and_unfinished(rule: dict, name: str) -> tuple[tuple, tuple]:
    """(listing, observations, now) of an upload the partner finished, and of one still being
    written, in the way the contract's rule says a partner signals it (written out here)."""
    seen = {name: Observation(100, 1_700_000_000, 1000.0)}
    if rule["rule"] == "marker":
        return ([f(name), f(name + rule["marker_suffix"], 0)], None, None), ([f(name)], None, None)
    if rule["rule"] == "rename":
        return ([f(name)], None, None), ([f(name + rule["temp_suffix"])], None, None)
    quiet = float(rule["seconds"])
    return ([f(name)], seen, 1000.0 + quiet), ([f(name)], seen, 1000.0 + quiet - 1)


@pytest.mark.parametrize("feed", sorted(UPLOADS))
def test_every_contract_rule_is_understood(feed):
    """The real contract's rule: its partner's finished upload is fetched, an unfinished one waits."""
    contract = load_contracts()[feed]
    finished, unfinished = finished_and_unfinished(contract.completeness, UPLOADS[feed])
    done = select_complete(finished[0], contract.completeness, contract.file_regex, *finished[1:])
    busy = select_complete(unfinished[0], contract.completeness, contract.file_regex, *unfinished[1:])
    assert names(done) == ([UPLOADS[feed]], [])
    assert names(busy) == ([], [unfinished[0][0].name])


def test_unknown_rule_is_an_error():
    with pytest.raises(ValueError, match="unknown completeness rule"):
        select_complete([], {"rule": "sometime"}, GUARDS, {}, 0.0)
