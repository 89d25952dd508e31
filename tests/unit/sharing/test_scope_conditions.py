"""The agreement scope's row conditions (`in`, `starts_with`, `is_null`, `any_of`, `all_of`, `not`)
against an oracle in DuckDB SQL, written by hand from the rule the hub states: a comparison with
a missing value never matches (so `not` of it does)."""

from __future__ import annotations

import itertools

import duckdb
import pyarrow as pa
import pytest

from samverkan.sharing.outbox import condition_mask, filtered

pytestmark = pytest.mark.unit

AREAS, LINES, CATEGORIES = ["torg", "station", None], ["3", None], ["violence", "vandalism", "theft", None]
TABLE = pa.table({
    "id": pa.array(range(len(AREAS) * len(LINES) * len(CATEGORIES)), pa.int64()),
    **dict(zip(("area", "line", "category"), map(list, zip(*itertools.product(AREAS, LINES, CATEGORIES))))),
})

# (condition, the same in SQL; "x IN (…)" and "starts_with" are false, never NULL, on a NULL value)
CASES = [
    ({"column": "line", "is_null": True}, "line IS NULL"),
    ({"column": "line", "is_null": False}, "line IS NOT NULL"),
    ({"not": {"column": "area", "in": ["torg"]}}, "NOT coalesce(area IN ('torg'), false)"),
    ({"not": {"column": "line", "is_null": True}}, "line IS NOT NULL"),
    ({"all_of": [{"column": "area", "in": ["torg", "station"]}, {"column": "category", "starts_with": "v"}]},
     "coalesce(area IN ('torg', 'station'), false) AND coalesce(starts_with(category, 'v'), false)"),
    ({"all_of": [{"not": {"column": "line", "is_null": True}},
                 {"any_of": [{"column": "area", "in": ["torg"]}, {"column": "category", "in": ["theft"]}]}]},
     "line IS NOT NULL AND (coalesce(area = 'torg', false) OR coalesce(category = 'theft', false))"),
    ({"not": {"all_of": [{"column": "area", "is_null": False}, {"column": "category", "starts_with": "van"}]}},
     "NOT (area IS NOT NULL AND coalesce(starts_with(category, 'van'), false))"),
    ({"all_of": [{"column": "area", "in": []}]}, "false"),
]


def sql_ids(where: str) -> list[int]:
    con = duckdb.connect()
    con.register("t", TABLE)
    return [i for (i,) in con.execute(f"SELECT id FROM t WHERE {where} ORDER BY id").fetchall()]


@pytest.mark.parametrize("cond, where", CASES, ids=[w for _, w in CASES])
def test_condition_selects_the_rows_sql_selects(cond, where):
    expected = sql_ids(where)
    assert 0 < len(expected) < TABLE.num_rows or where == "false"  # a case that tells rows apart
    assert filtered(TABLE, cond).column("id").to_pylist() == expected


def test_a_mask_is_never_null():
    for cond, _ in CASES:
        assert condition_mask(TABLE, cond).null_count == 0
