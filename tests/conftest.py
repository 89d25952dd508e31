"""Test-wide settings: Airflow and the hub write only below pytest's temporary directories.

The variables are set, never defaulted: a shell that sourced the demo's env.sh (or a stack's)
would otherwise point the tests at the demo's data root, key and Airflow home. Every other
SAMVERKAN_* and AIRFLOW_* variable of the calling shell is removed for the same reason; only
the test run's own options (SAMVERKAN_TEST_*) pass through.
"""

import os
import tempfile
from pathlib import Path

import pytest

from tests.support import mail
from tests.support.skips import fail_skip_in_ci

KEPT = ("SAMVERKAN_TEST_",)
# pyproject.toml gives every test 300 s; a slow test builds a whole hub in its module fixture.
SLOW_TIMEOUT = 1800

for _name in [n for n in os.environ if n.startswith(("SAMVERKAN_", "AIRFLOW_")) and not n.startswith(KEPT)]:
    del os.environ[_name]

_home = Path(tempfile.mkdtemp(prefix="samverkan-airflow-home-"))
os.environ.update({
    "AIRFLOW_HOME": str(_home),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__DAGS_FOLDER": str(Path(__file__).resolve().parent.parent / "dags"),
    "GX_ANALYTICS_ENABLED": "False",
    "SAMVERKAN_DATA_ROOT": str(_home / "data"),
})


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    fail_skip_in_ci(outcome.get_result())


def pytest_collection_modifyitems(items):
    """A hang fails its own test: tests marked slow get SLOW_TIMEOUT unless they set their own."""
    for item in items:
        if item.get_closest_marker("slow") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(SLOW_TIMEOUT))


@pytest.fixture(autouse=True)
def ordinary_umask():
    """Every test starts with the usual umask and leaves it as it found it: importing the task
    runtimes sets the hub's restrictive umask (they run inside tasks), which must not leak into
    the next test's files (a pull test's outbox would become unreadable to its chroot user)."""
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture
def smtp(monkeypatch):
    """A real SMTP server on 127.0.0.1 receiving the hub's alerts (tests/support/mail.py)."""
    yield from mail.serve(monkeypatch)
