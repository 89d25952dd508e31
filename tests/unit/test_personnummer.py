"""Personnummer parsing decides who is the same person across feeds, so every written form must
land on one canonical value, and every kind of bad value must be reported for what it is rather
than becoming a person. All numbers are generated here (synthetic dates and serials)."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pyarrow as pa
import pytest

from samverkan.privacy import personnummer
from samverkan.privacy.personnummer import (
    Parsed,
    age_on,
    ages_on,
    birth_date,
    luhn_check_digit,
    luhn_valid,
    normalise,
    normalise_array,
)

pytestmark = pytest.mark.unit

REF = date(2026, 11, 20)


def make(birth: date, serial: str, coordination: bool = False) -> str:
    """Canonical 12-digit value, built with the module's own Luhn (checked by hand below)."""
    day = birth.day + (60 if coordination else 0)
    yymmdd = f"{birth.year % 100:02d}{birth.month:02d}{day:02d}"
    return f"{birth.year:04d}{birth.month:02d}{day:02d}{serial}{luhn_check_digit(yymmdd + serial)}"


def short_forms(canonical: str, sep: str = "-") -> list[str]:
    return [f"{canonical[2:8]}{sep}{canonical[8:]}"] + ([canonical[2:]] if sep == "-" else [])


def long_forms(canonical: str) -> list[str]:
    return [canonical, f"{canonical[:8]}-{canonical[8:]}"]


def with_wrong_check_digit(canonical: str) -> str:
    return canonical[:-1] + str((int(canonical[-1]) + 1) % 10)


# --- Luhn ----------------------------------------------------------------------------------

def test_luhn_hand_computed_examples():
    # 1 2 1 2 1 2 1 2 1 with weights 2 1 2 1 …: 2+2+2+2+2+2+2+2+2 = 18 → (10 - 8) % 10 = 2
    assert luhn_check_digit("121212121") == 2
    assert luhn_valid("1212121212")
    # 9 0 0 1 7 1 1 2 3: 18→9, 0, 0, 1, 14→5, 1, 2, 2, 6 = 26 → 4 (a samordningsnummer shape)
    assert luhn_check_digit("900171123") == 4
    # 8 5 0 3 1 2 4 5 6: 16→7, 5, 0, 3, 2, 2, 8, 5, 12→3 = 35 → 5
    assert luhn_check_digit("850312456") == 5


def test_luhn_on_generated_numbers_and_every_wrong_digit():
    rng = random.Random(4711)
    for _ in range(300):
        birth = date(1930, 1, 1) + timedelta(days=rng.randrange(30_000))
        serial = f"{rng.randrange(1000):03d}"
        ten = make(birth, serial, coordination=rng.random() < 0.2)[2:]
        assert luhn_valid(ten)
        for wrong in set("0123456789") - {ten[-1]}:
            assert not luhn_valid(ten[:-1] + wrong)


def test_luhn_detects_swapped_neighbours_and_rejects_malformed_input():
    assert not luhn_valid("2121121212")  # first two digits of 1212121212 swapped
    assert not luhn_valid("121212121")  # nine digits
    assert not luhn_valid("12121212a2")
    for malformed in ("12121212", "12121212x", "1212121212", "١٢١٢١٢١٢١"):
        with pytest.raises(ValueError, match="^Luhn input must be exactly 9 ASCII digits$"):
            luhn_check_digit(malformed)


# --- forms of one person -------------------------------------------------------------------

PERSON = make(date(1990, 3, 12), "123")  # aged 36 on REF


@pytest.mark.parametrize(
    "written",
    [
        PERSON,
        f"{PERSON[:8]}-{PERSON[8:]}",
        f"{PERSON[2:8]}-{PERSON[8:]}",
        PERSON[2:],
        f"  {PERSON[2:8]}-{PERSON[8:]}\t",
        f" {PERSON} ",
    ],
)
def test_every_form_gives_the_same_canonical_value(written):
    assert normalise(written, REF) == Parsed("valid", PERSON, False)


def test_plus_form_means_a_hundred_years_earlier():
    old = make(date(1921, 6, 2), "456")  # aged 105 on REF
    assert normalise(f"{old[2:8]}+{old[8:]}", REF) == Parsed("valid", old, False)
    # The same digits with '-' are a child born in 2021, a different person.
    assert normalise(f"{old[2:8]}-{old[8:]}", REF).canonical == "20" + old[2:]
    assert normalise(old, REF).canonical == old


def test_short_forms_of_a_young_person_use_this_century():
    young = make(date(2008, 2, 29), "789")
    for written in short_forms(young):
        assert normalise(written, REF).canonical == young


def test_century_edge_born_exactly_a_hundred_years_before_the_reference():
    exactly = make(date(1926, 11, 20), "321")  # turns 100 on REF
    assert normalise(f"{exactly[2:8]}+{exactly[8:]}", REF).canonical == exactly
    # Without '+' the same digits are someone born on REF itself.
    assert normalise(f"{exactly[2:8]}-{exactly[8:]}", REF).canonical == "20" + exactly[2:]
    assert age_on(exactly, REF) == 100


def test_century_edge_born_a_day_after_that():
    day_after = make(date(1926, 11, 21), "321")  # still 99 on REF
    for written in short_forms(day_after):
        assert normalise(written, REF).canonical == day_after
    assert normalise(f"{day_after[2:8]}+{day_after[8:]}", REF).canonical == "18" + day_after[2:]
    assert age_on(day_after, REF) == 99


def test_century_follows_the_reference_date_not_today():
    born_2019 = make(date(2019, 5, 1), "111")
    # Read as of a night in 2018 the person cannot be born yet: the 10-digit form means 1919.
    assert normalise(born_2019[2:], date(2018, 1, 1)).canonical == "19" + born_2019[2:]
    assert normalise(born_2019[2:], REF).canonical == born_2019


# --- samordningsnummer ---------------------------------------------------------------------

COORD = make(date(1990, 1, 11), "123", coordination=True)  # day written as 71


@pytest.mark.parametrize("written", long_forms(COORD) + short_forms(COORD))
def test_samordningsnummer_keeps_day_plus_sixty(written):
    assert COORD == "199001711234"  # matches the hand-computed check digit above
    assert normalise(written, REF) == Parsed("valid", COORD, True)


def test_samordningsnummer_birth_date_and_age_use_day_minus_sixty():
    assert birth_date(COORD) == date(1990, 1, 11)
    assert age_on(COORD, date(2026, 1, 10)) == 35
    assert age_on(COORD, date(2026, 1, 11)) == 36


def test_samordningsnummer_on_an_impossible_day_is_invalid_date():
    # 30 February + 60, with a correct check digit so only the date is wrong.
    yymmdd, serial = "900290", "123"
    written = f"19{yymmdd}-{serial}{luhn_check_digit(yymmdd + serial)}"
    assert normalise(written, REF).status == "invalid_date"


# --- what is not a person ------------------------------------------------------------------

@pytest.mark.parametrize(
    "written",
    [with_wrong_check_digit(PERSON), f"{PERSON[:8]}-{with_wrong_check_digit(PERSON)[8:]}",
     with_wrong_check_digit(PERSON)[2:], with_wrong_check_digit(COORD)],
)
def test_wrong_check_digit(written):
    assert normalise(written, REF) == Parsed("invalid_checksum", None, False)


def _with_check(yymmdd: str, serial: str = "123") -> str:
    return f"{yymmdd}{serial}{luhn_check_digit(yymmdd + serial)}"


@pytest.mark.parametrize(
    "written",
    [
        "20" + _with_check("260230"),  # 30 February, correct check digit
        "19" + _with_check("901301"),  # month 13
        "19" + _with_check("900100"),  # day 0
        "19" + _with_check("900132"),  # day 32 (and not a samordningsnummer)
        "20" + _with_check("261121"),  # 12-digit form born after the reference date
        "17" + _with_check("900101"),  # a century no one on file can have
        _with_check("000229")[:6] + "+" + _with_check("000229")[6:],  # 1900 was no leap year
    ],
)
def test_impossible_dates(written):
    assert normalise(written, REF).status == "invalid_date"


def test_leap_day_in_a_leap_century_is_fine():
    written = _with_check("000229")
    assert normalise(written, REF) == Parsed("valid", "20" + written, False)


@pytest.mark.parametrize(
    "written",
    [
        "okänd", "19900312-12345", "1990-03-12-1234", "900312-123", "9003121234x",
        f"{PERSON[:8]}+{PERSON[8:]}",  # '+' only belongs to the 10-digit form
        f"{PERSON[2:8]} {PERSON[8:]}",  # a space inside is not a form partners use
        f"{PERSON[:8]}--{PERSON[8:]}",
        "١٩٩٠٠٣١٢١٢٣٤",  # Arabic-Indic digits: `str.isdigit` would accept them
    ],
)
def test_malformed_values_are_invalid_format(written):
    assert normalise(written, REF) == Parsed("invalid_format", None, False)


@pytest.mark.parametrize("written", [None, "", "   ", "\t\n"])
def test_empty(written):
    assert normalise(written, REF) == Parsed("empty", None, False)


# --- arrays: per distinct value ------------------------------------------------------------

MIXED = [
    PERSON, f"{PERSON[2:8]}-{PERSON[8:]}", None, "", "okänd", with_wrong_check_digit(PERSON),
    PERSON, COORD[2:], " ", PERSON[2:], None, "20" + _with_check("260230"), COORD[2:],
]


def test_normalise_array_equals_per_row_normalise():
    canonical, status = normalise_array(pa.array(MIXED, pa.string()), REF)
    expected = [normalise(v, REF) for v in MIXED]
    assert canonical.to_pylist() == [p.canonical for p in expected]
    assert status.to_pylist() == [p.status for p in expected]
    assert canonical.type == pa.string() and status.type == pa.string()


def test_normalise_array_works_once_per_distinct_value(monkeypatch):
    calls: list[str | None] = []
    real = personnummer.normalise

    def counting(value, reference):
        calls.append(value)
        return real(value, reference)

    monkeypatch.setattr(personnummer, "normalise", counting)
    values = pa.chunked_array([MIXED[:5], MIXED[5:]], pa.string())
    canonical, _ = normalise_array(values, REF)
    assert calls == ["okänd"]  # the plain forms are worked out all at once (test_personnummer_arrays)
    assert canonical.to_pylist() == [real(v, REF).canonical for v in MIXED]


def test_normalise_array_of_only_nulls_and_empty_input():
    canonical, status = normalise_array(pa.array([None, None], pa.null()), REF)
    assert canonical.to_pylist() == [None, None] and status.to_pylist() == ["empty", "empty"]
    assert (canonical.type, status.type) == (pa.string(), pa.string())  # the published column's type
    canonical, status = normalise_array(pa.array([], pa.string()), REF)
    assert len(canonical) == len(status) == 0


def test_ages_on_equals_per_row_age_and_keeps_nulls():
    old = make(date(1921, 6, 2), "456")
    values = [PERSON, None, COORD, PERSON, old]
    ages = ages_on(pa.array(values, pa.string()), REF)
    assert ages.type == pa.int16()
    assert ages.to_pylist() == [36, None, 36, 36, 105]
    assert ages.to_pylist() == [None if v is None else age_on(v, REF) for v in values]


def test_birth_date_refuses_non_canonical_values_without_echoing_them():
    with pytest.raises(ValueError) as error:
        birth_date(PERSON[2:])
    assert str(error.value) == "not a canonical 12-digit personnummer"  # says what, never which
