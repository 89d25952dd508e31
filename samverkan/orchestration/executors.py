"""Airflow's LocalExecutor, with what the hub's tasks import loaded before its workers fork.

Airflow 3's LocalExecutor forks its worker processes from the scheduler when it starts (``fork``,
Linux's default), and each worker forks a process per task without exec. So a task has for free
what the scheduler had imported, and imports the rest itself: Great Expectations alone takes
about 2.4 s, paid by every ``process_file`` and ``render_data_docs`` task of ``airflow standalone``
(the embedded hub, ``scripts/demo --ui``). The Celery stacks load the same module through
Celery's ``imports`` setting (deploy/airflow.env).
"""

from __future__ import annotations

from airflow.executors.local_executor import LocalExecutor


class PreloadingLocalExecutor(LocalExecutor):
    """``LocalExecutor`` that imports ``samverkan.orchestration.preload`` when it starts, in the
    scheduler, before it forks its workers. Imports only: see that module."""

    def start(self) -> None:
        import samverkan.orchestration.preload  # noqa: F401 - the 2.4 s, once, before the fork

        super().start()
