"""Luhn by table lookup equals Luhn as the textbook writes it out by hand."""

import random

import pytest

from samverkan.privacy.personnummer import luhn_check_digit, luhn_valid

pytestmark = pytest.mark.unit


def textbook(nine: str) -> int:
    """The oracle, shaped unlike both the lookup and the generator's loop: write the products
    (2, 1, 2, … from the left) side by side, add up all their digits, round up to a ten."""
    products = "".join(str(int(ch) * (2 - i % 2)) for i, ch in enumerate(nine))
    return -sum(map(int, products)) % 10


def test_lookup_equals_textbook_digit_sum():
    assert textbook("811218987") == 6  # 811218-9876, the textbook example: the oracle itself is right
    rng = random.Random(11)
    for nine in [f"{rng.randrange(10 ** 9):09d}" for _ in range(50_000)] + ["000000000", "999999999", "121212121"]:
        assert luhn_check_digit(nine) == textbook(nine)
        assert luhn_valid(nine + str(textbook(nine)))


@pytest.mark.parametrize("bad", ["12345678", "1234567890", "12345678x", "١٢٣٤٥٦٧٨٩", "         "])
def test_malformed_input_still_refused(bad):
    with pytest.raises(ValueError):
        luhn_check_digit(bad)
