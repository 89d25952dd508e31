"""When a night's file is due: local time in the feed's zone on the morning after, whatever the
offset that morning. Expected instants are worked out by hand in UTC (Sweden: CET = UTC+1,
CEST = UTC+2; 2026's changes are on 29 March and 25 October)."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime

import pytest

from samverkan.core.contracts import SCHEMAS_DIR, load_contract, load_contracts

pytestmark = pytest.mark.unit


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize("feed", ["police", "transit", "guards"])
@pytest.mark.parametrize("night, due", [
    (date(2026, 11, 20), utc(2026, 11, 21, 5, 0)),   # winter: 06:00 CET
    (date(2026, 7, 1), utc(2026, 7, 2, 4, 0)),       # summer: 06:00 CEST
    (date(2026, 3, 28), utc(2026, 3, 29, 4, 0)),     # the clocks went forward at 02:00 that morning
    (date(2026, 10, 24), utc(2026, 10, 25, 5, 0)),   # the clocks went back at 03:00 that morning
    (date(2026, 10, 23), utc(2026, 10, 24, 4, 0)),   # the morning before: still summer time
    (date(2026, 12, 31), utc(2027, 1, 1, 5, 0)),     # over the year's end
])
def test_the_deadline_is_six_in_the_morning_after_in_stockholm(feed, night, due):
    contract = load_contracts()[feed]
    assert (contract.timezone, contract.deadline.isoformat()) == ("Europe/Stockholm", "06:00:00")
    assert contract.deadline_for(night) == due


@pytest.fixture
def police_yaml(tmp_path):
    schemas = tmp_path / "schemas"
    shutil.copytree(SCHEMAS_DIR, schemas)
    return schemas / "police.yaml"


def test_days_after_night_and_the_time_come_from_the_contract(police_yaml):
    text = police_yaml.read_text(encoding="utf-8")
    text = text.replace('deadline: "06:00"', 'deadline: "13:30"').replace("deadline_days_after_night: 1",
                                                                        "deadline_days_after_night: 2")
    police_yaml.write_text(text, encoding="utf-8")
    assert load_contract(police_yaml).deadline_for(date(2026, 11, 20)) == utc(2026, 11, 22, 12, 30)
