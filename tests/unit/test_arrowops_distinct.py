"""distinct_rows of one column, without a sort, equals np.unique over Arrow's codes (null first)."""

import random

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from samverkan.core.arrowops import distinct_rows

pytestmark = pytest.mark.unit


def _by_sorting(values):
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    codes = pc.fill_null(pc.dictionary_encode(values).indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    _, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
    return inverse.reshape(-1), first


def test_one_column_equals_the_sorted_way():
    rng = random.Random(1)
    for _ in range(3000):
        n = rng.choice([0, 1, 2, 3, 10, 100, 1000])
        pool = [None] * rng.randint(0, 3) + [str(x) for x in range(rng.randint(1, 20))]
        values = pa.array([rng.choice(pool) for _ in range(n)], pa.string()).cast(
            rng.choice([pa.string(), pa.large_string(), pa.binary()])
        )
        if n > 2 and rng.random() < 0.3:
            values = pa.chunked_array([values.slice(0, n // 2), values.slice(n // 2)])
        inverse, first = distinct_rows([values])
        expected_inverse, expected_first = _by_sorting(values)
        assert np.array_equal(inverse, expected_inverse) and np.array_equal(first, expected_first)


def test_null_is_a_value_of_its_own_and_comes_first():
    inverse, first = distinct_rows([pa.array(["b", None, "a", "b", None])])
    assert inverse.tolist() == [1, 0, 2, 1, 0] and first.tolist() == [1, 0, 2]
