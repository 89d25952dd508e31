"""``normalise_array`` works out the plain written forms with Arrow and numpy; ``normalise`` is the
rule's definition. These tests hold the two equal on every shape of value a partner may type:
every century, separator, blank, month, day (coordination days too), leap day, check digit and
reference date, and values that are no personnummer at all."""

from __future__ import annotations

import random
from collections import Counter
from datetime import date, timedelta

import pyarrow as pa
import pytest

from samverkan.privacy import personnummer
from samverkan.privacy.personnummer import STATUSES, luhn_check_digit, normalise, normalise_array

pytestmark = pytest.mark.unit

BLANKS = ["", "", "", " ", "  ", "\t", "\n", "\r\n", "\x0b", "\x0c", "\x1c", "\xa0", "\u2003", "\x85"]
REFERENCES = [date(2026, 11, 20), date(2024, 2, 29), date(2000, 1, 1), date(2099, 12, 31), date(1950, 3, 1)]


def _ten(rng: random.Random, reference: date) -> str:
    """YYMMDDNNNC around the reference: dates near it and a hundred years before, edge days and
    months, coordination days, and a right check digit more often than not."""
    year = rng.choice([reference.year, reference.year - 1, reference.year - 100, reference.year - 101,
                       rng.randint(1890, 2030), 1900, 2000, 2004, 1896])
    month = rng.choice([reference.month, 1, 2, 2, 12, rng.randint(0, 13)])
    day = rng.choice([reference.day, reference.day + 1, 29, 28, 30, 31, 1, 0, 32, rng.randint(0, 31)])
    if rng.random() < 0.2:
        day += 60  # a samordningsnummer, or with day 0/32 one that cannot be
    yymmdd = f"{year % 100:02d}{month:02d}{day:02d}"[-6:]
    serial = f"{rng.randint(0, 999):03d}"
    check = luhn_check_digit(yymmdd + serial) if rng.random() < 0.8 else rng.randint(0, 9)
    return yymmdd + serial + str(check)


def _value(rng: random.Random, reference: date) -> str:
    ten = _ten(rng, reference)
    century = rng.choice(["", "", "19", "20", "18", "17", "21", "99", "00"])
    separator = rng.choice(["", "", "-", "+", "--", " "]) if rng.random() < 0.95 else "–"
    value = century + ten[:6] + separator + ten[6:]
    shape = rng.random()
    if shape < 0.05:
        value = value[: rng.randint(0, len(value))]  # cut short
    elif shape < 0.08:
        value = value.replace(rng.choice("0123456789"), rng.choice(["O", "٣", "x", "1"]))
    elif shape < 0.10:
        value = rng.choice(["okänd", "-", "+", "19900101", "1990-01-01", "0" * 12, "9" * 10])
    return rng.choice(BLANKS) + value + rng.choice(BLANKS)


@pytest.mark.parametrize("reference", REFERENCES, ids=str)
def test_equal_to_normalise_on_every_shape_of_value(reference):
    rng = random.Random(reference.toordinal())
    values = [_value(rng, reference) for _ in range(20_000)] + [None, "", " "]
    canonical, status = normalise_array(pa.array(values, pa.string()), reference)
    expected = [normalise(v, reference) for v in values]
    assert status.to_pylist() == [p.status for p in expected]
    assert canonical.to_pylist() == [p.canonical for p in expected]
    # Not vacuous: every status, coordination numbers and the century questions all occur.
    seen = Counter(p.status for p in expected)
    assert set(seen) == set(STATUSES) and min(seen.values()) > 50
    assert sum(p.coordination for p in expected if p.status == "valid") > 50
    assert sum(1 for v, p in zip(values, expected) if v and "+" in v and p.status == "valid") > 50


def test_the_plain_forms_do_not_go_through_python(monkeypatch):
    """Only values outside the plain forms (other blanks, other characters) take the per-value
    path; each distinct one once."""
    calls: list[str] = []
    real = personnummer.normalise
    monkeypatch.setattr(personnummer, "normalise", lambda v, r: calls.append(v) or real(v, r))
    plain = ["199001011239", "900101-1239", "19900101+1239", " 9001011239 ", "\t", "", "19999999-9999"]
    other = ["\xa0199001011239", "9001011239\x1c", "okänd", "900101–1239", "٣٣"]
    values = plain + other + other
    canonical, status = normalise_array(pa.array(values, pa.string()), date(2026, 11, 20))
    assert sorted(calls) == sorted(other)
    assert status.to_pylist() == [real(v, date(2026, 11, 20)).status for v in values]
    assert canonical.to_pylist() == [real(v, date(2026, 11, 20)).canonical for v in values]


def test_every_day_of_two_centuries_in_every_form():
    """Each birthday from 1900 to 2100 against one reference: leap days, month ends and the
    hundred-year boundary of the short forms, with a right and a wrong check digit."""
    reference = date(2026, 11, 20)
    values = []
    day = date(1900, 1, 1)
    while day <= date(2100, 12, 31):
        yymmdd = day.strftime("%y%m%d")
        check = luhn_check_digit(yymmdd + "123")
        for tail in (f"123{check}", f"123{(check + 1) % 10}"):
            values += [f"{day.year}{yymmdd[2:]}{tail}", f"{yymmdd}-{tail}", f"{yymmdd}+{tail}", yymmdd + tail]
        day += timedelta(days=1)
    canonical, status = normalise_array(pa.array(values, pa.string()), reference)
    expected = [normalise(v, reference) for v in values]
    assert status.to_pylist() == [p.status for p in expected]
    assert canonical.to_pylist() == [p.canonical for p in expected]
