"""Which nights a delivery run hands over: inside the look-back window, with data from the
recipient's sources, and never a night older than the agreement lets the recipient keep."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from samverkan.core.settings import Paths
from samverkan.sharing.agreements import load_agreements
from samverkan.sharing.delivery import plan

pytestmark = pytest.mark.unit

RUN_NIGHT = date(2026, 11, 20)


@pytest.fixture
def transit():
    agreement = load_agreements()["transit"]
    assert (agreement.retention_days, agreement.lookback_nights) == (30, 7)
    return agreement


@pytest.fixture
def paths(tmp_path):
    """Every night of the window published for the guards (a source of the transit agreement)."""
    paths = Paths(tmp_path / "data").ensure()
    for days in range(8):
        night = RUN_NIGHT - timedelta(days=days)
        (paths.dataset("incidents") / f"night={night}" / "source=guards").mkdir(parents=True)
    return paths


def window(oldest_first_kept: date) -> list[str]:
    return [(oldest_first_kept + timedelta(days=d)).isoformat() for d in range((RUN_NIGHT - oldest_first_kept).days + 1)]


def test_the_whole_window_while_every_night_is_within_retention(transit, paths):
    assert plan(transit, paths, RUN_NIGHT, today=RUN_NIGHT + timedelta(days=1)) == window(RUN_NIGHT - timedelta(days=7))


@pytest.mark.parametrize("late_by", [0, 1, 3])
def test_a_night_older_than_retention_is_never_delivered(transit, paths, late_by):
    """A re-run 30 + late_by days after the window's oldest night: the last day it may be kept
    is the 30th, so from the 31st on it is left out, and each later day drops one more."""
    oldest = RUN_NIGHT - timedelta(days=7)
    today = oldest + timedelta(days=30 + late_by)
    assert plan(transit, paths, RUN_NIGHT, today=today) == window(oldest + timedelta(days=late_by))


def test_nights_without_the_recipients_sources_are_not_planned(transit, paths):
    only_other = RUN_NIGHT + timedelta(days=1)
    (paths.dataset("incidents") / f"night={only_other}" / "source=uppsokande").mkdir(parents=True)
    assert only_other.isoformat() not in plan(transit, paths, only_other, today=only_other)
