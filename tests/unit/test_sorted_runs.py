"""SortedRuns (issue 13, eighth pass): what a file's earlier batches held, as a dict would say it."""

import random

import numpy as np
import pytest

from samverkan.core.arrowops import SortedRuns

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("dtype", [np.uint64, np.int64])
@pytest.mark.parametrize("sizes", ["random", "falling", "rising"])
def test_lookups_equal_a_dict_batch_after_batch(dtype, sizes):
    rng = random.Random(f"{dtype}{sizes}")
    info = np.iinfo(dtype)
    runs, truth = SortedRuns(dtype), {}
    for batch in range(300):
        n = {"random": rng.randint(0, 400), "falling": 400 - batch, "rising": batch}[sizes]
        old = rng.sample(sorted(truth), min(len(truth), n // 3))  # keys an earlier batch brought
        keys = np.array(old + [rng.randint(info.min, info.max) for _ in range(n - len(old))] + [info.min, info.max],
                        dtype)
        found, values = runs.lookup(keys)
        assert found.tolist() == [int(k) in truth for k in keys]
        assert values.tolist() == [truth.get(int(k), 0) for k in keys]
        new = np.unique(keys[~found])
        given = np.array([rng.randint(1, 10**12) for _ in new], np.int64)
        runs.add(new, given)
        truth.update(zip(map(int, new), map(int, given)))
        sizes_held = [len(k) for k, _ in runs._runs]
        assert sum(sizes_held) == len(runs) == len(truth)
        assert all(a > 2 * b for a, b in zip(sizes_held, sizes_held[1:]))  # so at most log2(len) runs
        for keys_held, _ in runs._runs:
            assert keys_held.dtype == dtype and np.all(keys_held[1:] > keys_held[:-1])


def test_keys_without_values_are_known_with_value_zero():
    runs = SortedRuns(np.int64)
    runs.add(np.array([-5, 3, 9], np.int64))
    found, values = runs.lookup(np.array([3, 4, -5], np.int64))
    assert found.tolist() == [True, False, True] and values.tolist() == [0, 0, 0]
