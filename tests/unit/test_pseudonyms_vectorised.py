"""Pseudonyms of a whole array (domain hashed once, base32 by numpy) equal ``pseudonym`` one by one."""

import random

import pyarrow as pa
import pytest

from samverkan.privacy.pseudonymise import Pseudonymiser

pytestmark = pytest.mark.unit

ALPHABET = "abcXYZ019 -:åäöÅÄÖéß€\u00a0\t"


def one_by_one(p, domain, values):
    return [p.pseudonym(domain, str(v).strip()) if v is not None and str(v).strip() else None for v in values]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_array_pseudonyms_equal_one_by_one(seed):
    rng = random.Random(seed)
    p = Pseudonymiser(rng.randbytes(32))
    values = ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 14))) for _ in range(3000)]
    values += [None, "", "   ", " x ", "x", values[5], values[5]]
    for domain in ("person", "incident_id", "guard"):
        got = p.pseudonymise_array(domain, pa.array(values, pa.string())).to_pylist()
        assert got == one_by_one(p, domain, values)
    assert len({g for g in got if g}) > 2000 and all(len(g) == 26 for g in got if g)


def test_chunked_integer_and_empty_input():
    p = Pseudonymiser(bytes(range(32)))
    chunked = pa.chunked_array([pa.array([1, 22, None]), pa.array([22, 333])])
    assert p.pseudonymise_array("n", chunked).to_pylist() == one_by_one(p, "n", [1, 22, None, 22, 333])
    assert p.pseudonymise_array("n", pa.array([], pa.string())).to_pylist() == []
    assert p.pseudonymise_array("n", pa.nulls(3, pa.string())).to_pylist() == [None] * 3
