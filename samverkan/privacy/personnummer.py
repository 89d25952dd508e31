"""Swedish personal identity numbers (personnummer and samordningsnummer) as partners type them.

One person must get one pseudonym whichever form a partner used, so every written form is reduced
to a single canonical 12-digit value first. A value that is not a valid number is a data quality
finding with a reason, never silently treated as a person. Error messages never repeat a value:
it may be a real person's number.

Partner files hold millions of rows but few distinct persons, so the array functions do their
Python work once per distinct value and spread the results back with `take`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from samverkan.core.arrowops import encoded

VALID = "valid"
EMPTY = "empty"
INVALID_FORMAT = "invalid_format"
INVALID_DATE = "invalid_date"
INVALID_CHECKSUM = "invalid_checksum"
STATUSES = (VALID, EMPTY, INVALID_FORMAT, INVALID_DATE, INVALID_CHECKSUM)

COORDINATION_DAY_OFFSET = 60
# ASCII digits only: `\d` would also accept other scripts' digits, which no register issues.
_FORM_RE = re.compile(r"([0-9]{2})?([0-9]{6})([-+]?)([0-9]{4})")
_CANONICAL_RE = re.compile(r"[0-9]{12}")
# A written-out century outside these is a typo, not a person (the register began in 1947 and
# also numbered people then alive, born in the 1800s).
_CENTURIES = ("18", "19", "20")


@dataclass(frozen=True)
class Parsed:
    status: str
    canonical: str | None
    coordination: bool


_EMPTY = Parsed(EMPTY, None, False)
_BAD_FORMAT = Parsed(INVALID_FORMAT, None, False)
_BAD_DATE = Parsed(INVALID_DATE, None, False)
_BAD_CHECKSUM = Parsed(INVALID_CHECKSUM, None, False)


# --- Luhn ----------------------------------------------------------------------------------


def luhn_check_digit(nine_digits: str) -> int:
    """The check digit is computed over the 10-digit form (YYMMDDNNN), never the century."""
    if len(nine_digits) != 9 or not nine_digits.isascii() or not nine_digits.isdigit():
        raise ValueError("Luhn input must be exactly 9 ASCII digits")
    d = nine_digits.encode("ascii")  # bytes: each digit is its code, 48 + value
    total = (
        _DOUBLED[d[0]]
        + d[1]
        + _DOUBLED[d[2]]
        + d[3]
        + _DOUBLED[d[4]]
        + d[5]
        + _DOUBLED[d[6]]
        + d[7]
        + _DOUBLED[d[8]]
        - 4 * 48
    )
    return (10 - total % 10) % 10


# Luhn's doubled digit (digits summed when two) by ASCII code, so the loop above is a lookup.
_DOUBLED = {48 + v: (2 * v if v < 5 else 2 * v - 9) for v in range(10)}


def luhn_valid(ten_digits: str) -> bool:
    """A predicate: malformed input is simply not valid, so callers need no try/except."""
    if len(ten_digits) != 10 or not ten_digits.isascii() or not ten_digits.isdigit():
        return False
    return luhn_check_digit(ten_digits[:9]) == int(ten_digits[9])


# --- one value -----------------------------------------------------------------------------


def normalise(value: str | None, reference: date) -> Parsed:
    """`reference` is the day the value was written (the file's night): the short forms only
    say whether the person was under 100 on that day, so the century depends on it."""
    if value is None or not value.strip():
        return _EMPTY
    match = _FORM_RE.fullmatch(value.strip())
    if match is None:
        return _BAD_FORMAT
    century, yymmdd, separator, tail = match.groups()
    if century is not None and separator == "+":
        return _BAD_FORMAT
    month, day = int(yymmdd[2:4]), int(yymmdd[4:6])
    coordination = day > COORDINATION_DAY_OFFSET
    birth_day = day - COORDINATION_DAY_OFFSET if coordination else day
    if century is None:
        year = _short_form_year(int(yymmdd[:2]), month, birth_day, separator == "+", reference)
    elif century in _CENTURIES:
        year = int(century + yymmdd[:2])
    else:
        return _BAD_DATE
    born = _date_or_none(year, month, birth_day)
    if born is None or born > reference:
        return _BAD_DATE
    if not luhn_valid(yymmdd + tail):
        return _BAD_CHECKSUM
    return Parsed(VALID, f"{year:04d}{yymmdd[2:]}{tail}", coordination)


def _short_form_year(yy: int, month: int, day: int, centenarian: bool, reference: date) -> int:
    """Latest year ending in `yy` whose birthday is not after the reference date; '+' means a
    hundred years before that. Compared as tuples so an impossible date still gets a year and
    is then reported as invalid_date, not mistaken for a century question."""
    year = reference.year - (reference.year - yy) % 100
    if (year, month, day) > (reference.year, reference.month, reference.day):
        year -= 100
    return year - 100 if centenarian else year


def _date_or_none(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def birth_date(canonical: str) -> date:
    """A samordningsnummer carries day + 60; the person's birthday is the day without it."""
    if not isinstance(canonical, str) or _CANONICAL_RE.fullmatch(canonical) is None:
        raise ValueError("not a canonical 12-digit personnummer")
    day = int(canonical[6:8])
    if day > COORDINATION_DAY_OFFSET:
        day -= COORDINATION_DAY_OFFSET
    return date(int(canonical[:4]), int(canonical[4:6]), day)


def age_on(canonical: str, on: date) -> int:
    born = birth_date(canonical)
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


# --- arrays --------------------------------------------------------------------------------


def distinct(values: pa.Array | pa.ChunkedArray) -> tuple[list[Any], pa.Array]:
    """(distinct non-null values, each row's index into them; null for null rows), so work
    done per distinct value can be spread back to the rows with one `take`."""
    if pa.types.is_null(values.type):
        return [], pa.nulls(len(values), pa.int32())
    codes = encoded(values)
    return codes.dictionary.to_pylist(), codes.indices


def map_distinct(values: pa.Array | pa.ChunkedArray, fn: Callable[[Any], Any], type_: pa.DataType) -> pa.Array:
    """`fn` once per distinct non-null value, so expensive work scales with persons, not rows."""
    uniques, indices = distinct(values)
    return pc.take(pa.array([fn(v) for v in uniques], type_), indices)


def normalise_array(values: pa.Array | pa.ChunkedArray, reference: date) -> tuple[pa.Array, pa.Array]:
    """(canonical, status) per row, as ``normalise`` gives them; null and empty input are both
    'empty' with a null canonical.

    Once per distinct value. Values in the plain written forms (ASCII digits, an optional
    separator, ASCII blanks around) are worked out for all at once by Arrow and numpy
    (``_plain_forms``): in Python they were a tenth of a 1M-row police file's time. Any other
    value goes through ``normalise``, which stays the rule's definition; the tests hold the two
    equal on every shape of value."""
    if pa.types.is_null(values.type):
        return pa.nulls(len(values), pa.string()), pa.array([EMPTY] * len(values), pa.string())
    codes = encoded(values)
    canonical, status = _distinct_forms(codes.dictionary, reference)
    return pc.take(canonical, codes.indices), pc.fill_null(pc.take(status, codes.indices), EMPTY)


# Blanks ``str.strip`` removes that are ASCII; a value with any other blank at its ends is left to
# ``normalise``, whose ``strip`` knows them all.
_ASCII_BLANKS = " \t\n\r\x0b\x0c"
_PLAIN_FORM = r"\A(?P<century>[0-9]{2})?(?P<date>[0-9]{6})(?P<separator>[-+]?)(?P<tail>[0-9]{4})\z"  # _FORM_RE
_STATUS_CODES = pa.array(STATUSES, pa.string())
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], np.int64)  # by month, 1-12


def _distinct_forms(uniques: pa.Array, reference: date) -> tuple[pa.Array, pa.Array]:
    """(canonical, status) of each distinct value: the plain forms at once, the rest one by one."""
    trimmed = pc.utf8_trim(uniques, _ASCII_BLANKS)
    forms = pc.extract_regex(trimmed, _PLAIN_FORM)
    plain = np.asarray(pc.is_valid(forms))
    blank = np.asarray(pc.equal(trimmed, "").fill_null(False))
    to_python = ~plain & ~blank  # to ``normalise``, one by one
    parsed = [normalise(v, reference) for v in uniques.filter(pa.array(to_python)).to_pylist()]
    status = np.full(len(uniques), STATUSES.index(EMPTY), np.int8)
    canonical = np.zeros(len(uniques), np.int64)
    status[plain], canonical[plain] = _plain_forms(forms.filter(pa.array(plain)), reference)
    status[to_python] = [STATUSES.index(p.status) for p in parsed]
    text = pc.cast(pa.array(canonical, pa.int64()), pa.string())  # 12 digits: the year has four
    text = pc.if_else(pa.array(plain & (status == STATUSES.index(VALID))), text, pa.scalar(None, pa.string()))
    from_python = pa.array([p.canonical for p in parsed], pa.string())
    text = pc.replace_with_mask(text, pa.array(to_python), from_python)  # in the same order
    return text, pc.take(_STATUS_CODES, pa.array(status))


def _plain_forms(forms: pa.StructArray, reference: date) -> tuple[np.ndarray, np.ndarray]:
    """(status code, canonical as a number) of values in the plain forms: ``normalise``'s steps,
    in its order, on numpy arrays."""

    def number(field: str) -> np.ndarray:
        return np.asarray(pc.cast(forms.field(field), pa.int64()), np.int64)

    century_text = forms.field("century")
    has_century = np.asarray(pc.not_equal(century_text, ""))
    century = np.asarray(pc.cast(pc.if_else(has_century, century_text, "0"), pa.int64()), np.int64)
    plus = np.asarray(pc.equal(forms.field("separator"), "+"))
    yymmdd, tail = number("date"), number("tail")
    yy, month, day = yymmdd // 10_000, yymmdd // 100 % 100, yymmdd % 100
    birth_day = np.where(day > COORDINATION_DAY_OFFSET, day - COORDINATION_DAY_OFFSET, day)
    ref_year, ref_month, ref_day = reference.year, reference.month, reference.day
    short = ref_year - (ref_year - yy) % 100  # _short_form_year
    after_reference = (short == ref_year) & ((month > ref_month) | ((month == ref_month) & (birth_day > ref_day)))
    short = short - 100 * after_reference - 100 * plus
    year = np.where(has_century, century * 100 + yy, short)
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    in_month = _DAYS_IN_MONTH[np.clip(month, 0, 12)] + ((month == 2) & leap)
    real_date = (month >= 1) & (month <= 12) & (birth_day >= 1) & (birth_day <= in_month)
    born_later = (year > ref_year) | (
        (year == ref_year) & ((month > ref_month) | ((month == ref_month) & (birth_day > ref_day)))
    )
    bad_century = has_century & ~np.isin(century, [int(c) for c in _CENTURIES])
    status = np.full(len(yymmdd), STATUSES.index(VALID), np.int8)
    status[~_luhn_valid(yymmdd * 10_000 + tail)] = STATUSES.index(INVALID_CHECKSUM)
    status[bad_century | ~real_date | born_later] = STATUSES.index(INVALID_DATE)
    status[has_century & plus] = STATUSES.index(INVALID_FORMAT)
    return status, year * 100_000_000 + (yymmdd % 10_000) * 10_000 + tail


def _luhn_valid(ten_digits: np.ndarray) -> np.ndarray:
    """``luhn_valid`` of 10-digit numbers (YYMMDDNNNC), all at once."""
    digits = [ten_digits // 10 ** (9 - k) % 10 for k in range(10)]
    doubled = [np.where(d < 5, 2 * d, 2 * d - 9) for d in digits[0:9:2]]
    total = sum(doubled) + sum(digits[1:9:2])
    return (10 - total % 10) % 10 == digits[9]


def ages_on(canonical: pa.Array | pa.ChunkedArray, on: date) -> pa.Array:
    """Ages from canonical values (nulls stay null); for age bands when no age was stated."""
    return map_distinct(canonical, lambda c: age_on(c, on), pa.int16())
