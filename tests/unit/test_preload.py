"""Celery workers and the embedded hub's LocalExecutor import Great Expectations once at start,
so the task processes they fork need not.

The Celery setting is deploy/airflow.env's, which both production stacks load; the import is
done by Celery's own loader, as a worker does before its pool forks, in a fresh interpreter. The
embedded hub (``airflow standalone``) names a LocalExecutor that imports it before forking.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from samverkan.ops.secrets import shared_settings

pytestmark = pytest.mark.unit

PRELOAD = "samverkan.orchestration.preload"
# What its tasks import of GE's, and GE itself: imported by the worker, never by a task.
PRELOADED = ["great_expectations", "samverkan.ingest.pipeline", "samverkan.quality.reports",
             "samverkan.quality.validation"]


def test_the_shared_celery_settings_name_the_preload_module():
    extra = json.loads(shared_settings()["AIRFLOW__CELERY__EXTRA_CELERY_CONFIG"])
    assert PRELOAD in extra["imports"] and extra["result_extended"] is True


def test_celerys_loader_imports_ge_and_leaves_no_thread_and_the_umask_alone():
    """What the worker's main process does at start (Loader.import_default_modules), measured in
    a process of its own: GE is then imported; no thread, and the umask as it was."""
    script = textwrap.dedent(
        f"""
        import json, os, sys, threading
        from celery import Celery
        from samverkan.ops.secrets import shared_settings

        before = os.umask(0o022); os.umask(before)
        assert "great_expectations" not in sys.modules
        app = Celery("preload-test", set_as_current=False)
        app.config_from_object(json.loads(shared_settings()["AIRFLOW__CELERY__EXTRA_CELERY_CONFIG"]))
        app.loader.import_default_modules()
        after = os.umask(0o022); os.umask(after)
        print(json.dumps({{"missing": [m for m in {PRELOADED!r} if m not in sys.modules],
                           "threads": threading.active_count(), "umask_kept": before == after,
                           "feed_runtime": "samverkan.orchestration.feed_runtime" in sys.modules}}))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found == {"missing": [], "threads": 1, "umask_kept": True, "feed_runtime": False}


def test_the_embedded_hub_names_a_local_executor_that_imports_ge_before_it_forks(tmp_path):
    """What ``airflow standalone`` does with the embedded hub's setting, in a fresh interpreter:
    Airflow's loader resolves the class and finds it local (standalone would otherwise replace
    it), and its ``start`` has GE imported by the time LocalExecutor's own start forks workers."""
    from devkit.embedded import EXECUTOR

    script = textwrap.dedent(
        f"""
        import json, sys
        from airflow.executors.executor_loader import ExecutorLoader
        from airflow.executors.local_executor import LocalExecutor

        cls, _ = ExecutorLoader.import_default_executor_cls()
        seen = {{"before": "great_expectations" in sys.modules}}

        def start(self):  # LocalExecutor's own start forks its workers here
            seen["at_fork"] = [m for m in {PRELOADED!r} if m not in sys.modules]

        LocalExecutor.start = start
        cls().start()
        print(json.dumps({{"class": f"{{cls.__module__}}.{{cls.__name__}}", "local": cls.is_local, **seen}}))
        """
    )
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__EXECUTOR": EXECUTOR}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found == {"class": EXECUTOR, "local": True, "before": False, "at_fork": []}


def test_the_embedded_hub_runs_airflow_with_that_executor(tmp_path):
    from devkit.embedded import EXECUTOR, EmbeddedHub

    assert EmbeddedHub(tmp_path).env()["AIRFLOW__CORE__EXECUTOR"] == EXECUTOR
