"""The night calendar: run ↔ night for every feed's own schedule, across the DST changes."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

from samverkan.core import nights
from samverkan.core.contracts import load_contracts
from samverkan.orchestration.feed_dags import run_night

pytestmark = pytest.mark.unit

TZ = ZoneInfo("Europe/Stockholm")  # written out here on purpose: an oracle independent of the module


def test_run_window_covers_exactly_the_morning_runs_after_the_nights():
    start, end = nights.run_window(date(2026, 10, 1), date(2026, 10, 30))
    for contract in load_contracts().values():
        ticks, it = [], croniter(contract.cron, start - timedelta(seconds=1))
        while (tick := it.get_next(datetime)) <= end:
            ticks.append(tick)
        assert len(ticks) == 30, contract.id
        covered = [run_night(t, {}) for t in ticks]
        assert covered == [date(2026, 10, 1) + timedelta(days=i) for i in range(30)], contract.id


def test_run_window_across_the_dst_change_and_refuses_a_reversed_range():
    start, end = nights.run_window(date(2026, 10, 24), date(2026, 10, 25))  # clocks go back on the 25th
    assert start == datetime(2026, 10, 25, 0, 0, tzinfo=TZ) and end.date() == date(2026, 10, 26)
    with pytest.raises(ValueError):
        nights.run_window(date(2026, 10, 2), date(2026, 10, 1))


@pytest.mark.parametrize("night", [date(2026, 3, 28), date(2026, 3, 29), date(2026, 10, 24), date(2026, 10, 25),
                                   date(2026, 11, 20)])
def test_each_feed_runs_on_its_own_schedule_and_its_run_covers_the_night(night):
    for contract in load_contracts().values():
        run = contract.run_time_for(night)
        minute, hour = (int(f) for f in contract.cron.split()[:2])
        assert (run.date(), run.hour, run.minute) == (night + timedelta(days=1), hour, minute), contract.id
        assert run.utcoffset() == run.astimezone(TZ).utcoffset()  # the right offset on both sides of DST
        assert nights.night_of_run(run.astimezone(timezone.utc)) == night


def test_feeds_do_not_share_one_run_time():
    times = {c.id: c.run_time_for(date(2026, 11, 20)) for c in load_contracts().values()}
    assert len(set(times.values())) == len(times), times


def test_a_naive_run_time_and_a_non_daily_cron_are_refused():
    with pytest.raises(ValueError, match="time zone"):
        nights.night_of_run(datetime(2026, 11, 21, 6, 30))
    with pytest.raises(ValueError, match="daily"):
        nights.run_time(date(2026, 11, 20), "*/5 * * * *")
