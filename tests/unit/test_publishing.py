"""Staged Parquet: visible whole or not at all, and nothing left behind by a killed publisher."""

import os
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from samverkan.core.publishing import StagedParquet, partition_file, sweep_staging

pytestmark = pytest.mark.unit

SCHEMA = pa.schema([("incident_id", pa.string())])


def test_a_staged_file_is_visible_only_after_commit(tmp_path):
    final = partition_file(tmp_path / "incidents", "2026-11-20", "police", "polisen_handelser_20261120.csv")
    staged = StagedParquet(final, SCHEMA, tmp_path / "staging")
    staged.write(pa.table({"incident_id": ["a", "b"]}))
    assert not final.exists()
    assert staged.commit() == final
    assert pq.read_table(final).column("incident_id").to_pylist() == ["a", "b"]
    assert not list((tmp_path / "staging").iterdir())


def test_sweep_removes_only_stale_leftovers(tmp_path):
    staging = tmp_path / "staging"
    staging.mkdir()
    stale, fresh, other = staging / "dead.parquet.part", staging / "live.parquet.part", staging / "notes.txt"
    for path in (stale, fresh, other):
        path.write_bytes(b"x")
    day_ago = time.time() - 24 * 3600
    os.utime(stale, (day_ago, day_ago))
    os.utime(other, (day_ago, day_ago))
    assert sweep_staging(staging) == 1
    assert sorted(p.name for p in staging.iterdir()) == ["live.parquet.part", "notes.txt"]


def test_sweep_of_a_missing_staging_area_is_nothing(tmp_path):
    assert sweep_staging(tmp_path / "absent") == 0
