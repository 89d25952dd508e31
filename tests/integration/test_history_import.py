"""History import (onboarding): many nights through the nightly steps in one process, from real
OpenSSH servers; the same manifests, ledger entries and receipts as the DAG; nothing twice."""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from devkit.history import effects_from_register, write_history
from devkit.leakscan import PersonalValues, scan
from samverkan.analysis.catalog import build_catalog
from samverkan.connectors.sftp import SFTPConnector, SFTPSettings
from samverkan.connectors.sshd import start_sftp_server
from samverkan.core.contracts import load_contracts
from samverkan.core.ledger import Ledger
from samverkan.core.settings import Paths
from samverkan.ingest.history import RUN_ID_PREFIX, import_history
from samverkan.privacy.pseudonymise import Pseudonymiser

FIRST = date(2026, 9, 28)
WEEKS = 3
LAST = FIRST + timedelta(days=7 * WEEKS - 1)
SIZES = {"police": 30, "transit": 12, "guards": 10}
EXPECTATIONS = Path(__file__).resolve().parents[2] / "expectations"


@pytest.fixture(scope="module")
def validator():
    from samverkan.quality.validation import Validator

    return Validator()


@pytest.fixture(scope="module")
def onboarded(tmp_path_factory, client_key, validator):
    """Three weeks of three feeds on their own servers, imported once for the module."""
    tmp_path = tmp_path_factory.mktemp("history")
    partners = tmp_path / "partners"
    values = PersonalValues()
    truth = write_history(partners, FIRST, WEEKS, sizes=SIZES, seed=5, collect=values,
                          effects=effects_from_register({"gustav_iii_torg_lighting": 0.5}))
    truth["personal_values"] = values
    contracts = load_contracts()
    servers = {feed: start_sftp_server(partners / feed, client_key[1], tmp_path / "sshd" / feed) for feed in SIZES}

    @contextmanager
    def connect(contract):
        s = servers[contract.id]
        settings = SFTPSettings(host=s.host, port=s.port, username=s.username, key_file=str(client_key[0]),
                                host_key=s.host_key_line, path_prefix=s.path_prefix)
        with SFTPConnector(settings) as connector:
            yield connector

    data = Paths(tmp_path / "data")
    kwargs = {"connect": connect, "pseudonymiser": Pseudonymiser(os.urandom(32)), "data": data,
              "validator": validator, "expectations_dir": EXPECTATIONS, "quiet_period_seconds": 0.5, "progress": False}
    feeds = [contracts[f] for f in SIZES]
    try:
        first_run = import_history(feeds, FIRST, LAST, **kwargs)
        yield contracts, data, truth, kwargs, partners, first_run
    finally:  # the servers stop even when the import fails
        for server in servers.values():
            server.stop()


def test_history_runs_every_night_once_and_a_rerun_ingests_nothing(onboarded):
    contracts, data, truth, kwargs, partners, first_run = onboarded
    feeds = [contracts[f] for f in SIZES]
    nights = 7 * WEEKS

    for outcome in first_run:
        assert len(outcome.nights) == nights, outcome.line()
        assert outcome.files == {"published": nights}, outcome.line()
        assert outcome.rows_received == outcome.rows_published + outcome.rows_quarantined
        assert outcome.undelivered_receipts == 0
        manifests = sorted(data.manifests(outcome.feed).glob("*.json"))
        assert len(manifests) == nights
        run_nights = sorted(json.loads(m.read_text())["run_night"] for m in manifests)
        assert run_nights == [(FIRST + timedelta(days=d)).isoformat() for d in range(nights)]
        assert all(m.name.startswith(RUN_ID_PREFIX) for m in manifests)
        contract = contracts[outcome.feed]
        delivered = list((partners / outcome.feed).glob(f"{contract.receipts_directory.strip('/')}/*.json"))
        assert len(delivered) == nights
    entries = Ledger(data.ledger).entries()
    assert len(entries) == nights * len(feeds)
    assert {e.status for e in entries} == {"published"}

    # the published incidents per feed and week are what the generator wrote
    con = duckdb.connect()
    got = con.execute(f"""
        SELECT source, strftime(date_trunc('week', night), '%Y-%m-%d') AS week, count(*)
        FROM read_parquet('{data.dataset("incidents")}/**/*.parquet', hive_partitioning = true)
        GROUP BY ALL""").fetchall()
    expected = {}
    for feed, areas in truth["weekly_incidents"].items():
        for weeks in areas.values():
            for week, n in weeks.items():
                expected[(feed, week)] = expected.get((feed, week), 0) + n
    assert {(s, w): n for s, w, n in got} == expected

    second_run = import_history(feeds, FIRST, LAST, **kwargs)
    for outcome in second_run:
        assert outcome.nights == [] and outcome.files == {} and outcome.rows_received == 0, outcome.line()
        assert len(list(data.manifests(outcome.feed).glob("*.json"))) == nights
    assert len(Ledger(data.ledger).entries()) == nights * len(feeds)


def test_catalog_of_the_history_counts_the_truth_and_leaks_nothing(onboarded, tmp_path):
    _, data, truth, _, _, _ = onboarded
    catalog = build_catalog(tmp_path / "catalog", data)

    with duckdb.connect(str(catalog.database), read_only=True) as con:
        got = con.execute("""SELECT source, coalesce(area, '(none)'), strftime(date_trunc('week', night), '%Y-%m-%d'),
                                    count(*) FROM incidents GROUP BY ALL""").fetchall()
    assert {(s, a, w): n for s, a, w, n in got} == {
        (feed, area, week): n for feed, areas in truth["weekly_incidents"].items()
        for area, weeks in areas.items() for week, n in weeks.items()}

    values = truth["personal_values"]
    assert not values.is_empty()
    assert scan([catalog.database, catalog.dictionary], values) == []
    # the scan reaches these files: a planted name is found
    planted = tmp_path / "planted.md"
    planted.write_text(catalog.dictionary.read_text(encoding="utf-8") + "\n" + min(values.names) + "\n",
                       encoding="utf-8")
    assert scan([planted], values) != []
