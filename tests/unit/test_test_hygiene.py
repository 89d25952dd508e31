"""The test run's own guards: the caller's shell cannot redirect the tests, and in CI a skip
whose precondition scripts/setup installs fails the run."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.support.skips import fail_skip_in_ci

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
SET_BY_CONFTEST = {"AIRFLOW_HOME", "AIRFLOW__CORE__LOAD_EXAMPLES", "AIRFLOW__CORE__DAGS_FOLDER", "SAMVERKAN_DATA_ROOT"}


def test_the_tests_see_only_the_environment_conftest_sets():
    leaked = [n for n in os.environ if n.startswith(("SAMVERKAN_", "AIRFLOW_"))
              and n not in SET_BY_CONFTEST and not n.startswith("SAMVERKAN_TEST_")]
    assert leaked == []
    for name in ("AIRFLOW_HOME", "SAMVERKAN_DATA_ROOT"):
        assert Path(os.environ[name]).is_relative_to(tempfile.gettempdir()), name
    assert os.environ["AIRFLOW__CORE__DAGS_FOLDER"] == str(REPO / "dags")


def test_a_shell_that_sourced_the_demo_env_does_not_redirect_the_tests(tmp_path):
    """The test above, run by a pytest started from a shell that sourced the demo's env.sh."""
    demo = REPO / "var" / "demo"
    shell = {"SAMVERKAN_DATA_ROOT": str(demo / "data"), "AIRFLOW_HOME": str(demo / "airflow"),
             "AIRFLOW__CORE__DAGS_FOLDER": str(tmp_path), "SAMVERKAN_PSEUDONYM_SECRET_FILE": str(demo / "keys" / "k"),
             "AIRFLOW__CORE__LOAD_EXAMPLES": "True", "CI": ""}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         f"{Path(__file__).relative_to(REPO)}::test_the_tests_see_only_the_environment_conftest_sets"],
        cwd=REPO, env={**os.environ, **shell}, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "1 passed" in done.stdout


def _skipped(reason: str) -> pytest.TestReport:
    return pytest.TestReport("tests/x.py::t", ("tests/x.py", 1, "t"), {}, "skipped",
                             ("tests/x.py", 1, f"Skipped: {reason}"), "setup")


@pytest.mark.parametrize("ci, reason, outcome", [
    ("true", "OpenSSH server not installed; scripts/setup installs it", "failed"),
    ("true", "the pull service chroots recipients, which needs root", "failed"),
    ("true", "cannot mount tmpfs here: mount: permission denied", "skipped"),  # on the allow-list
    ("", "OpenSSH server not installed; scripts/setup installs it", "skipped"),  # a developer's machine
])
def test_in_ci_a_skip_fails_unless_the_environment_may_legitimately_give_it(monkeypatch, ci, reason, outcome):
    monkeypatch.setenv("CI", ci)
    report = _skipped(reason)
    fail_skip_in_ci(report)
    assert report.outcome == outcome
    if outcome == "failed":
        assert reason in str(report.longrepr)


def test_an_expected_failure_is_not_a_skip(monkeypatch):
    monkeypatch.setenv("CI", "true")
    report = _skipped("xfail")
    report.wasxfail = "known bug"
    fail_skip_in_ci(report)
    assert report.outcome == "skipped"
