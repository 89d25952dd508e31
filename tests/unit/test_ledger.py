"""The ledger decides what a re-run skips, what a re-send replaces and what is a duplicate."""

from pathlib import Path

import pytest

from samverkan.core.ledger import Ledger

pytestmark = pytest.mark.unit


@pytest.fixture
def ledger(tmp_path):
    return Ledger(tmp_path / "ledger.sqlite")


def land(ledger, name="f.csv", size=10, mtime=100, sha="a" * 64):
    return ledger.record_landed("police", name, "2026-11-20", size, mtime, sha, "run1")


def test_landed_but_unsettled_file_is_fetched_again(ledger):
    land(ledger)
    assert not ledger.is_settled("police", "f.csv", 10, 100)


def test_published_file_is_settled_for_same_name_size_mtime_only(ledger):
    ledger.settle(land(ledger), "published", received=3, published=3, quarantined=0)
    assert ledger.is_settled("police", "f.csv", 10, 100)
    assert not ledger.is_settled("police", "f.csv", 10, 101)
    assert not ledger.is_settled("police", "f.csv", 11, 100)
    assert not ledger.is_settled("transit", "f.csv", 10, 100)


def test_same_content_is_recognised_under_any_name(ledger):
    ledger.settle(land(ledger, sha="b" * 64), "published")
    known = ledger.known_content("police", "b" * 64)
    assert known is not None and known.name == "f.csv"
    assert ledger.known_content("police", "c" * 64) is None
    assert ledger.known_content("guards", "b" * 64) is None


def test_resent_file_supersedes_the_earlier_version(ledger):
    old = land(ledger, sha="1" * 64)
    ledger.settle(old, "published")
    new = land(ledger, mtime=200, sha="2" * 64)
    ledger.settle(new, "published")
    assert ledger.entry(old).status == "superseded"
    assert ledger.entry(new).status == "published"
    assert ledger.known_content("police", "1" * 64) is None  # superseded content may come back


def test_rejected_resend_leaves_published_version_in_place(ledger):
    old = land(ledger, sha="1" * 64)
    ledger.settle(old, "published")
    bad = land(ledger, mtime=200, sha="2" * 64)
    ledger.settle(bad, "rejected", "truncated")
    assert ledger.entry(old).status == "published"
    assert ledger.entry(bad).reason == "truncated"


def test_observations_round_trip(ledger):
    ledger.save_observations("guards", {"a.csv": (5, 10, 1.5)})
    assert ledger.observations("guards") == {"a.csv": (5, 10, 1.5)}
    ledger.save_observations("guards", {})
    assert ledger.observations("guards") == {}


def _open_at_once(path: str, barrier, results) -> None:
    barrier.wait()
    try:
        Ledger(Path(path))
        results.put("ok")
    except Exception as exc:  # the outcome is the test's, not the child's
        results.put(f"{type(exc).__name__}: {exc}")


def test_processes_opening_a_new_ledger_at_once_all_get_it(tmp_path):
    """The history import's workers open one new SQLite ledger together. Switching it to WAL
    answered the losers "database is locked" at once, without SQLite's busy handler (16 of 600
    opens failed, six processes at a time, before the retry)."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    outcomes = []
    for trial in range(30):
        barrier, results = ctx.Barrier(6), ctx.Queue()
        path = tmp_path / f"ledger-{trial}.sqlite"
        workers = [ctx.Process(target=_open_at_once, args=(str(path), barrier, results)) for _ in range(6)]
        for w in workers:
            w.start()
        outcomes += [results.get(timeout=120) for _ in workers]
        for w in workers:
            w.join(timeout=120)
    assert [o for o in outcomes if o != "ok"] == [] and len(outcomes) == 180
