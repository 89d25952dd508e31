"""Writing Parquet datasets so that readers never see half a file or a duplicate.

Datasets are hive-partitioned: ``<dataset>/night=YYYY-MM-DD/source=<feed>/<file>.parquet``, one
Parquet file per partner file. A file is written batch by batch into the private staging area
(same filesystem) and moved into place with one ``os.replace`` only after every batch is written
and synced. A re-run or a corrected file therefore replaces its own partition file atomically,
DuckDB or pandas pointed at the dataset root see either the old or the new version, and a crash
leaves only a stray file in staging, never in the dataset.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
import uuid
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from samverkan.core.fsutil import SHARED_FILE_MODE, fsync_dir, make_dirs

COMPRESSION = "zstd"
SCHEMA_VERSION = 1


def partition_file(dataset_root: Path, night: str, source: str, source_file: str) -> Path:
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", source_file)
    return dataset_root / f"night={night}" / f"source={source}" / f"{stem}.parquet"


class StagedParquet:
    """A Parquet file written in batches to staging and published by ``commit``.

    ``write_behind(executor)``: batches are encoded and compressed there (Arrow lets go of the
    GIL), overlapping the caller's work on the next batch; at most one batch per file waits,
    and ``commit`` raises what a write raised."""

    def __init__(self, final_path: Path, schema: pa.Schema, staging: Path, metadata: dict[str, str] | None = None):
        self.final_path = final_path
        self.schema = schema.with_metadata(
            {**(schema.metadata or {}), **{k.encode(): v.encode() for k, v in (metadata or {}).items()}}
        )
        staging.mkdir(parents=True, exist_ok=True)
        self.tmp_path = staging / f"{uuid.uuid4().hex}.parquet.part"
        self._writer = pq.ParquetWriter(self.tmp_path, self.schema, compression=COMPRESSION)
        self.rows = 0
        self._behind: Executor | None = None
        self._pending: Future | None = None

    def write_behind(self, executor: Executor | None) -> None:
        """Write the next batches in ``executor``; None: in the caller. A batch already handed
        over stays the executor's: whoever shuts it down waits for it."""
        self._behind = executor

    def write(self, table: pa.Table) -> None:
        if not table.num_rows:
            return
        self.rows += table.num_rows
        self._wait()  # the batch before is in the file first
        if self._behind is None:
            self._write_now(table)
        else:
            self._pending = self._behind.submit(self._write_now, table)

    def _write_now(self, table: pa.Table) -> None:
        self._writer.write_table(table.cast(self.schema))

    def _wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def commit(self) -> Path:
        self._wait()
        self._writer.close()
        with open(self.tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        make_dirs(self.final_path.parent)
        self.tmp_path.chmod(SHARED_FILE_MODE)
        os.replace(self.tmp_path, self.final_path)
        fsync_dir(self.final_path.parent)
        return self.final_path

    def abort(self) -> None:
        try:
            if self._pending is not None:
                self._pending.exception()  # waits; a failed write is why we are here, or moot
            self._writer.close()
        finally:
            self.tmp_path.unlink(missing_ok=True)


STALE_STAGING_SECONDS = 12 * 3600  # far longer than any run; younger files may be in use


def sweep_staging(staging: Path, *, older_than: float = STALE_STAGING_SECONDS, now: float | None = None) -> int:
    """Remove what a killed publisher left in staging (never visible in the datasets, but it
    holds data, quarantined raw rows included, that nobody would ever delete otherwise)."""
    if not staging.is_dir():
        return 0
    cutoff = (time.time() if now is None else now) - older_than
    removed = 0
    for leftover in staging.glob("*.part"):
        try:
            if leftover.stat().st_mtime < cutoff:
                leftover.unlink()
                removed += 1
        except FileNotFoundError:
            pass  # another run swept it first
    return removed


def write_json_atomic(path: Path, data: Any) -> Path:
    text = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n"
    return write_text_atomic(path, text)


def write_text_atomic(path: Path, text: str) -> Path:
    """``text`` at ``path`` through a temporary file of its own, renamed over it: a reader, or a
    second writer of the same page (two nights' tasks rewriting one index), never sees a torn file."""
    make_dirs(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".part")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, SHARED_FILE_MODE)  # mkstemp makes 0600: the analysts' group reads manifests
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def manifest_name(run_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", run_id) + ".json"
