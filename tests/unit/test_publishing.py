"""Staged Parquet: visible whole or not at all, and nothing left behind by a killed publisher."""

import os
import time
from concurrent.futures import ThreadPoolExecutor

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


# --- written behind: batches encoded in a thread while the caller works on ----------------------


def _batches(count: int) -> list[pa.Table]:
    return [pa.table({"incident_id": [f"{b}-{i}" for i in range(1000 + b)]}) for b in range(count)]


def test_written_behind_gives_the_same_bytes_in_the_same_order(tmp_path):
    files = []
    for behind in (False, True):
        final = partition_file(tmp_path / f"out-{behind}", "2026-11-20", "police", "p.csv")
        staged = StagedParquet(final, SCHEMA, tmp_path / "staging")
        with ThreadPoolExecutor(max_workers=1) as writer:
            staged.write_behind(writer if behind else None)
            for table in _batches(7):
                staged.write(table)
            staged.write_behind(None)
        staged.write(pa.table({"incident_id": ["last"]}))  # in the caller again, after the rest
        assert staged.rows == sum(1000 + b for b in range(7)) + 1
        files.append(staged.commit().read_bytes())
    assert files[0] == files[1]
    assert pq.read_table(final).column("incident_id").to_pylist()[-2:] == ["6-1005", "last"]


def test_a_write_that_failed_behind_is_raised_at_commit_and_abort_cleans_up(tmp_path):
    final = partition_file(tmp_path / "incidents", "2026-11-20", "police", "p.csv")
    staged = StagedParquet(final, SCHEMA, tmp_path / "staging")
    with ThreadPoolExecutor(max_workers=1) as writer:
        staged.write_behind(writer)
        staged.write(pa.table({"another_column": ["x"]}))  # not the file's schema: the cast refuses
        staged.write_behind(None)
    with pytest.raises(ValueError, match="field names"):
        staged.commit()
    assert not final.exists()
    staged.abort()  # the failed write is why the caller aborts: it does not raise again
    assert not list((tmp_path / "staging").iterdir())
