"""Why pseudonyms are keyed: an unkeyed hash of a personnummer is reversed by enumerating birth
dates and serial numbers; the project's pseudonyms are not, without the key.

The enumeration here covers one birth month (30 days x 1,000 serials, the check digit computed),
to keep the test quick; a whole century of birth dates is only ~1,200x that (minutes in C).
"""

import base64
import hashlib
import hmac
import time
from datetime import date, timedelta

import pytest

from samverkan.privacy.personnummer import luhn_check_digit
from samverkan.privacy.pseudonymise import DOMAIN_SEPARATOR, PSEUDONYM_BYTES, Pseudonymiser

pytestmark = pytest.mark.unit

KEY = bytes(range(100, 132))
BORN = date(1987, 6, 14)
SECRET_PERSON = f"{BORN:%Y%m%d}345{luhn_check_digit(f'{BORN:%y%m%d}345')}"


def candidates(year: int, month: int):
    """Every valid 12-digit personnummer born in ``year``-``month``."""
    day = date(year, month, 1)
    while day.month == month:
        short = day.strftime("%y%m%d")
        for serial in range(1000):
            nine = f"{short}{serial:03d}"
            yield f"{day:%Y%m%d}{serial:03d}{luhn_check_digit(nine)}"
        day += timedelta(days=1)


CANDIDATES = list(candidates(BORN.year, BORN.month))


def like_pseudonym(digest: bytes) -> str:
    return base64.b32encode(digest[:PSEUDONYM_BYTES]).decode("ascii").rstrip("=").lower()


def reverse(target: str, guess) -> list[str]:
    return [c for c in CANDIDATES if guess(c) == target]


def test_the_secret_person_is_a_valid_candidate():
    assert SECRET_PERSON in set(CANDIDATES) and len(CANDIDATES) == 30_000


def test_unkeyed_sha256_is_reversed_by_enumeration():
    leaked = hashlib.sha256(SECRET_PERSON.encode()).hexdigest()  # what a user might publish instead
    started = time.perf_counter()
    found = reverse(leaked, lambda c: hashlib.sha256(c.encode()).hexdigest())
    assert found == [SECRET_PERSON]
    assert time.perf_counter() - started < 30


def test_the_projects_pseudonym_is_reversed_only_with_the_key():
    pseudonym = Pseudonymiser(KEY).pseudonym("person", SECRET_PERSON)
    message = lambda c: b"person" + DOMAIN_SEPARATOR + c.encode()  # noqa: E731 - the construction is public
    # Knowing the construction but not the key: unkeyed hashes of the same message never match.
    assert reverse(pseudonym, lambda c: like_pseudonym(hashlib.sha256(message(c)).digest())) == []
    assert reverse(pseudonym, lambda c: like_pseudonym(hashlib.sha256(c.encode()).digest())) == []
    # A guessed key does not help either.
    wrong = Pseudonymiser(bytes(32))
    assert reverse(pseudonym, lambda c: wrong.pseudonym("person", c)) == []
    # The enumeration itself works: with the key it finds the person (which is why the key is the secret).
    assert reverse(pseudonym, lambda c: like_pseudonym(hmac.new(KEY, message(c), hashlib.sha256).digest())) == [
        SECRET_PERSON]
