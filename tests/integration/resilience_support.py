"""A small hub for the resilience tests: real parsing, GE validation, pseudonymisation, Parquet."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq

from samverkan.core.contracts import load_contracts
from samverkan.core.ledger import Ledger
from samverkan.ingest.pipeline import FileResult, process
from samverkan.privacy.pseudonymise import Pseudonymiser
from samverkan.core.settings import Paths
from devkit.synthetic import NightTruth, Population, feed_path, write_night
from samverkan.quality.validation import EXPECTATIONS_DIR
from tests.support.feeds import POLICE_HEADER

NIGHT = date(2026, 11, 20)
KEY = bytes(range(32))


def police_row(i: int, *, koord_n: str = "6997480", alder: str = "31", fritext: str = "Bråk vid busskuren.") -> str:
    return (f"5000-K{i}-26;2026-11-20 23:14;2026-11-21 00:02;Stortorget 3, Östersund;{koord_n};497120;Rån;Vittne;;;"
            f"{alder};{fritext}")


@dataclass
class Hub:
    root: Path
    paths: Paths
    ledger: Ledger
    validator: object
    pseudonymiser: Pseudonymiser

    @classmethod
    def create(cls, root: Path, validator, key: bytes = KEY) -> "Hub":
        paths = Paths(root).ensure()
        return cls(root, paths, Ledger(paths.ledger), validator, Pseudonymiser(key))

    def land(self, feed: str, source: Path, *, name: str | None = None, night: date = NIGHT) -> dict:
        """What fetch leaves behind: the file in landing and a ledger entry."""
        name = name or source.name
        target = self.paths.landing(feed, night.isoformat()) / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        data = target.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        entry = self.ledger.record_landed(feed, name, night.isoformat(), len(data), 0, sha, "resilience")
        return {"entry_id": entry, "name": name, "night": night.isoformat(), "path": str(target), "sha256": sha,
                "size": len(data), "action": "process"}

    def process(self, feed: str, source: Path, *, name: str | None = None, night: date = NIGHT,
                batch_rows: int = 100_000) -> FileResult:
        landed = self.land(feed, source, name=name, night=night)
        return process(load_contracts()[feed], landed, self.paths, self.ledger, self.pseudonymiser, self.validator,
                       run_id="resilience", expectations_dir=EXPECTATIONS_DIR, batch_rows=batch_rows)

    def publish(self, truths: Iterable[NightTruth]) -> None:
        """Generated nights through landing and the nightly steps, as the feed DAGs would take them."""
        for truth in truths:
            self.process(truth.feed, truth.path, night=truth.night)


def generated(root: Path, feed: str, rows: int, *, seed: int = 5) -> Path:
    """A good partner file from the project's generator (cached per root)."""
    path = feed_path(feed, NIGHT, root)
    if not path.exists():
        write_night(feed, NIGHT, root, rows=rows, population=Population(seed=seed, size=400), seed=seed)
    return path


def parquet_rows(path: str | Path) -> int:
    return pq.ParquetFile(path).metadata.num_rows


def assert_balanced(result: FileResult, hub: Hub) -> None:
    """Published + quarantined = received, in the result, the ledger and the files on disk. A record
    held for correction (issue 14, item 10) counts as published and is in the quarantine file too."""
    assert result.rows_published + result.rows_quarantined == result.rows_received
    assert 0 <= result.rows_held_for_correction <= result.rows_published
    entry = hub.ledger.entry(result_entry(hub, result))
    assert (entry.rows_received, entry.rows_published, entry.rows_quarantined) == (
        result.rows_received, result.rows_published, result.rows_quarantined)
    if result.status == "published":
        rows_file = _quarantine_file(hub, result)
        on_disk = parquet_rows(rows_file) if rows_file.exists() else 0
        assert on_disk == result.rows_quarantined + result.rows_held_for_correction
        if on_disk:
            held = pq.read_table(rows_file, columns=["held_for_correction"]).column(0).to_pylist()
            assert held.count(True) == result.rows_held_for_correction
    else:
        assert (hub.paths.quarantine_files(result.feed) / result.night / result.name).is_file()


def result_entry(hub: Hub, result: FileResult) -> int:
    entries = [e for e in hub.ledger.entries(result.feed) if e.name == result.name and e.sha256 == result.sha256]
    return entries[-1].id


def _quarantine_file(hub: Hub, result: FileResult) -> Path:
    from samverkan.core.publishing import partition_file

    return partition_file(hub.paths.quarantine_rows(result.feed), result.night, result.feed, result.name)


def quarantined(hub: Hub, result: FileResult) -> list[dict]:
    """The file's quarantined rows, as written to the private quarantine."""
    return pq.read_table(_quarantine_file(hub, result)).to_pylist()
