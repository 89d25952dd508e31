"""Luhn by table lookup equals Luhn by the textbook loop."""

import random

import pytest

from samverkan.privacy.personnummer import luhn_check_digit, luhn_valid

pytestmark = pytest.mark.unit


def textbook(nine: str) -> int:
    total = 0
    for i, ch in enumerate(nine):
        product = int(ch) * (2 if i % 2 == 0 else 1)
        total += product - 9 if product > 9 else product
    return (10 - total % 10) % 10


def test_lookup_equals_textbook_loop():
    rng = random.Random(11)
    for nine in [f"{rng.randrange(10 ** 9):09d}" for _ in range(50_000)] + ["000000000", "999999999", "121212121"]:
        assert luhn_check_digit(nine) == textbook(nine)
        assert luhn_valid(nine + str(textbook(nine)))


@pytest.mark.parametrize("bad", ["12345678", "1234567890", "12345678x", "١٢٣٤٥٦٧٨٩", "         "])
def test_malformed_input_still_refused(bad):
    with pytest.raises(ValueError):
        luhn_check_digit(bad)
