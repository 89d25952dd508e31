"""Celery workers import Great Expectations once at start, so the task processes they fork need not.

The setting is deploy/airflow.env's, which both production stacks load; the import is done by
Celery's own loader, as a worker does before its pool forks, in a fresh interpreter.
"""

from __future__ import annotations

import json
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
