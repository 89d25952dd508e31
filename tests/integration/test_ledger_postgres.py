"""The ledger in PostgreSQL (the compose deployment's) behaves as the SQLite one, and a file is
claimed by exactly one run even when several discover it at the same moment.

A real PostgreSQL server on 127.0.0.1 (Debian's packages, started as the no-Docker stack starts
it); every test gets a database of its own. The SQLite ledger's own tests
(tests/unit/test_ledger.py) run here unchanged against PostgreSQL.
"""

from __future__ import annotations

import importlib.util
import itertools
import threading
import urllib.parse
from pathlib import Path

import pytest

from samverkan.core.ledger import Ledger, ledger_location

pytestmark = [pytest.mark.integration]

_counter = itertools.count()


def _sqlite_suite():
    path = Path(__file__).resolve().parents[1] / "unit" / "test_ledger.py"
    spec = importlib.util.spec_from_file_location("sqlite_ledger_suite", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Every test of the SQLite ledger, here with the ``ledger`` fixture below (PostgreSQL).
_suite = _sqlite_suite()
globals().update({name: getattr(_suite, name) for name in dir(_suite) if name.startswith("test_")})


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    from devkit.stack import LocalStack, free_port
    from samverkan.ops.secrets import ensure_secrets

    try:
        from devkit.stack import postgres_bin

        postgres_bin()
    except RuntimeError as missing:
        pytest.skip(str(missing))
    stack = LocalStack(tmp_path_factory.mktemp("ledger-pg"))
    stack.files = ensure_secrets(stack.root / "secrets", [])
    stack.ports["postgres"] = free_port()
    try:
        stack._start_postgres()  # noqa: SLF001 - the no-Docker stack's PostgreSQL, alone
        password = urllib.parse.quote(stack.files.value("postgres_password"), safe="")
        yield f"postgresql://airflow:{password}@127.0.0.1:{stack.ports['postgres']}"
    finally:
        stack.stop()


@pytest.fixture
def pg_url(server: str) -> str:
    import psycopg

    name = f"ledger_{next(_counter)}"
    with psycopg.connect(f"{server}/airflow", autocommit=True) as db:
        db.execute(f"CREATE DATABASE {name}")
    return f"{server}/{name}"


@pytest.fixture
def ledger(pg_url: str) -> Ledger:
    return Ledger(pg_url)


@pytest.fixture(params=["sqlite", "postgres"])
def location(request, tmp_path) -> str | Path:
    return tmp_path / "ledger.sqlite" if request.param == "sqlite" else request.getfixturevalue("pg_url")


def test_the_tables_live_in_postgresql(pg_url):
    import psycopg

    Ledger(pg_url).record_landed("police", "f.csv", "2026-11-20", 1, 2, "a" * 64, "run1")
    with psycopg.connect(pg_url) as db:
        assert db.execute("SELECT count(*) FROM samverkan.files").fetchone()[0] == 1


def test_the_deployment_setting_selects_postgresql(monkeypatch, pg_url, tmp_path):
    monkeypatch.delenv("SAMVERKAN_LEDGER_URL", raising=False)
    assert ledger_location(tmp_path / "l.sqlite") == tmp_path / "l.sqlite"
    monkeypatch.setenv("SAMVERKAN_LEDGER_URL", pg_url)
    assert Ledger(ledger_location(tmp_path / "l.sqlite")).postgres
    assert not (tmp_path / "l.sqlite").exists()


def test_runs_discovering_a_file_together_claim_it_once(location):
    """Eight runs claim the same file at the same instant: one wins, on either database."""
    Ledger(location)  # tables first, as the first task of a deployment makes them
    runs = 8
    barrier = threading.Barrier(runs)
    won: list[str] = []

    def claim(run: int) -> None:
        ledger = Ledger(location)
        barrier.wait()
        if ledger.claim("police", "f.csv", 10, 100, f"run{run}"):
            won.append(f"run{run}")

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(runs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1, won


def test_a_claim_ends_when_the_file_is_settled_and_a_settled_file_is_not_claimed_again(location):
    ledger = Ledger(location)
    assert ledger.claim("police", "f.csv", 10, 100, "run1")
    assert not ledger.claim("police", "f.csv", 10, 100, "run2")  # run1 is receiving it
    assert ledger.claim("police", "f.csv", 10, 100, "run1")  # run1's retry takes it back
    entry = ledger.record_landed("police", "f.csv", "2026-11-20", 10, 100, "a" * 64, "run1")
    ledger.settle(entry, "published", received=1, published=1, quarantined=0)
    assert not ledger.claim("police", "f.csv", 10, 100, "run2")  # settled: nothing to receive
    assert ledger.claim("police", "f.csv", 10, 100, "run3", again=True)  # a deliberate re-run may
    assert ledger.claim("police", "f.csv", 11, 100, "run2")  # the same name re-sent: a new file


def test_a_dead_runs_claim_is_taken_over_after_the_lease(location):
    ledger = Ledger(location)
    assert ledger.claim("guards", "g.csv", 1, 1, "dead-run")
    assert not ledger.claim("guards", "g.csv", 1, 1, "next-run")
    assert ledger.claim("guards", "g.csv", 1, 1, "next-run", lease_seconds=0)
