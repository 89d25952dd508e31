"""The night calendar: which night a run covers, and which run covers a night.

Partners export "the night" (a local calendar date) and the hub fetches it the next morning on
the contract's schedule (cron and time zone). Every place that turns a night into a run or a
run into a night asks here, so the time zone and the morning-after rule live in one place, and
each feed's own schedule is respected (police runs at 06:30, transit at 06:40…).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

HUB_TIMEZONE = "Europe/Stockholm"  # the partnership's local time: nights, deadlines, the UI
RUN_DAYS_AFTER_NIGHT = 1  # a night is fetched on the following morning


def zone(name: str = HUB_TIMEZONE) -> ZoneInfo:
    return ZoneInfo(name)


def night_of_run(logical_date: datetime, timezone: str = HUB_TIMEZONE) -> date:
    """The night a scheduled run covers: the local date of the run, minus one day."""
    if logical_date.tzinfo is None:
        raise ValueError("a run's logical date must carry its time zone")
    return logical_date.astimezone(zone(timezone)).date() - timedelta(days=RUN_DAYS_AFTER_NIGHT)


def run_time(night: date, cron: str = "30 6 * * *", timezone: str = HUB_TIMEZONE) -> datetime:
    """The scheduled run that covers ``night``: the morning after, at the minute and hour of the
    schedule's daily cron (``M H * * *``)."""
    minute, hour = _daily_cron(cron)
    return datetime.combine(night + timedelta(days=RUN_DAYS_AFTER_NIGHT), time(hour, minute), zone(timezone))


def run_window(first_night: date, last_night: date, timezone: str = HUB_TIMEZONE) -> tuple[datetime, datetime]:
    """The range of run times whose daily runs cover exactly these nights (for a backfill)."""
    if last_night < first_night:
        raise ValueError("the last night is before the first")
    days = timedelta(days=RUN_DAYS_AFTER_NIGHT)
    return (
        datetime.combine(first_night + days, time(0, 0), zone(timezone)),
        datetime.combine(last_night + days, time(23, 59, 59), zone(timezone)),
    )


def _daily_cron(cron: str) -> tuple[int, int]:
    fields = cron.split()
    if len(fields) != 5 or fields[2:] != ["*", "*", "*"] or not (fields[0].isdigit() and fields[1].isdigit()):
        raise ValueError(f"not a daily schedule 'M H * * *': {cron!r}")
    return int(fields[0]), int(fields[1])
