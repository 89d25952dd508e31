"""The history import with two worker processes gives exactly the serial result (issue 13).

Same partner servers, same key, same start time (so the same run ids): the two data roots must
hold the same Parquet (published, quarantine, private maps; metadata included), the same
manifests apart from when they were written, and the same ledger.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from devkit.synthetic import Faults, write_nights
from samverkan.connectors.sftp import SFTPConnector, SFTPSettings
from samverkan.connectors.sshd import start_sftp_server
from samverkan.core.contracts import load_contracts
from samverkan.core.ledger import Ledger
from samverkan.core.settings import Paths
from samverkan.ingest import history
from samverkan.privacy.pseudonymise import Pseudonymiser

pytestmark = pytest.mark.integration

FIRST = date(2026, 10, 5)
LAST = FIRST + timedelta(days=3)
SIZES = {"police": 40, "transit": 15, "guards": 12}
FAULTS = {"police": Faults(bad_checksum_pnr=2, impossible_date=1, unknown_category=1),
          "transit": Faults(impossible_date=1, bad_json_lines=1),
          "guards": Faults(bad_checksum_pnr=1, impossible_date=1)}
EXPECTATIONS = Path(__file__).resolve().parents[2] / "expectations"


def _parquet(root: Path) -> dict[str, tuple]:
    return {str(p.relative_to(root)): (pq.read_schema(p).metadata, pq.read_table(p).to_pylist())
            for p in sorted(root.rglob("*.parquet"))}


def _manifests(root: Path, data: Paths) -> dict[str, dict]:
    found = {}
    for path in sorted(root.rglob("*.json")):
        if "manifests" not in path.parts:
            continue
        manifest = json.loads(path.read_text(encoding="utf-8").replace(str(data.root), "<root>"))
        manifest.pop("written_at", None)
        found[str(path.relative_to(root))] = manifest
    return found


def _ledger(data: Paths) -> list[tuple]:
    return sorted((e.feed, e.name, e.night, e.sha256, e.status, e.reason, e.run_id, e.rows_received,
                   e.rows_published, e.rows_quarantined) for e in Ledger(data.ledger).entries())


def test_two_workers_give_the_serial_result(tmp_path, client_key):
    nights = [FIRST + timedelta(days=d) for d in range((LAST - FIRST).days + 1)]
    for feed, rows in SIZES.items():
        write_nights(tmp_path / "partners", nights, {feed: rows}, seed=9, faults={feed: FAULTS[feed]})
    servers = {f: start_sftp_server(tmp_path / "partners" / f, client_key[1], tmp_path / "sshd" / f) for f in SIZES}

    @contextmanager
    def connect(contract):  # a closure, as every caller has: the workers are forked, nothing is pickled
        s = servers[contract.id]
        with SFTPConnector(SFTPSettings(host=s.host, port=s.port, username=s.username, key_file=str(client_key[0]),
                                        host_key=s.host_key_line, path_prefix=s.path_prefix)) as connector:
            yield connector

    from samverkan.quality.validation import Validator

    contracts = load_contracts()
    common = {"connect": connect, "pseudonymiser": Pseudonymiser(os.urandom(32)), "validator": Validator(),
              "expectations_dir": EXPECTATIONS, "quiet_period_seconds": 0.5, "progress": False,
              "started": datetime(2026, 11, 30, 12, 0, tzinfo=UTC)}
    outcomes, roots = {}, {}
    try:
        for workers in (1, 2):
            data = Paths(tmp_path / f"data-{workers}")
            outcomes[workers] = history.import_history([contracts[f] for f in SIZES], FIRST, LAST, workers=workers,
                                                       data=data, **common)
            roots[workers] = data
    finally:
        for server in servers.values():
            server.stop()
    serial, parallel = roots[1], roots[2]
    strip = [(o.feed, o.nights, [Path(m).name for m in o.manifests], o.files, o.rows_received, o.rows_published,
              o.rows_quarantined) for o in outcomes[1]]
    assert strip == [(o.feed, o.nights, [Path(m).name for m in o.manifests], o.files, o.rows_received,
                      o.rows_published, o.rows_quarantined) for o in outcomes[2]]
    assert sum(o.rows_quarantined for o in outcomes[1]) > 0 and len(outcomes[1][0].nights) == len(nights)
    published = _parquet(serial.root)
    assert any("quarantine" in p for p in published) and any("incidents" in p for p in published)
    assert published == _parquet(parallel.root)
    assert _manifests(serial.root, serial) == _manifests(parallel.root, parallel)
    assert _ledger(serial) == _ledger(parallel)
