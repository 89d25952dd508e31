"""Imported once by each Celery worker when it starts, so that its tasks need not import it.

Airflow 3 runs a task in a process forked (without exec, on Linux) from the Celery pool process
that took it. What that process has imported, the task has at no cost; what it has not, every
task imports again. Great Expectations takes about 2.4 s to import here, and every
``process_file`` and ``render_data_docs`` task paid that for a demo night whose processing
takes 0.16 s (issue 13: Airflow's own start-up per file). Celery imports this module in the
worker's main process before its pool forks (the ``imports`` setting in deploy/airflow.env).

Imports only: no GE context, connection, file or thread is made here and no process setting
changed, so a fork cannot copy anything half-made.
"""

from __future__ import annotations

import great_expectations  # noqa: F401  # the 2.4 s

from samverkan.ingest import pipeline  # noqa: F401  # what process_file imports (pandas, pyarrow)
from samverkan.quality import reports, validation  # noqa: F401  # what both import of GE's

# Not feed_runtime: importing it sets the umask, which belongs to the task processes.
