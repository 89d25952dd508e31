"""One incident row per key and file, however the key's rows are spread over batches."""

import random
from datetime import date

import pyarrow as pa
import pytest

from samverkan.core.contracts import load_contracts
from samverkan.ingest.model import FeedModel
from samverkan.privacy.pseudonymise import Pseudonymiser

pytestmark = pytest.mark.unit


def reference(batches):
    seen, out = set(), []
    for keys in batches:
        mask = []
        for k in keys:
            mask.append(k not in seen)
            seen.add(k)
        out.append(mask)
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_first_occurrences_match_a_set_over_the_whole_file(seed):
    rng = random.Random(seed)
    model = FeedModel(load_contracts()["police"], Pseudonymiser(b"k" * 32), date(2026, 11, 20), "f.csv")
    pool = [f"5000-K{i}-26" for i in range(300)] + [None]
    batches = [[rng.choice(pool) for _ in range(rng.randint(0, 200))] for _ in range(12)]
    got = [model.first_occurrences(pa.array(b, pa.string())).to_pylist() for b in batches]
    assert got == reference(batches)
    assert sum(map(sum, got)) == len({k for b in batches for k in b})


def test_first_occurrences_of_a_chunked_batch():
    model = FeedModel(load_contracts()["police"], Pseudonymiser(b"k" * 32), date(2026, 11, 20), "f.csv")
    chunked = pa.chunked_array([["a", "b"], ["a", "c", "b"]])
    assert model.first_occurrences(chunked).to_pylist() == [True, True, False, True, False]
    assert model.first_occurrences(pa.array(["c", "d", "d"])).to_pylist() == [False, True, False]
