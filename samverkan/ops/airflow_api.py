"""Airflow's REST API (v2) as operators and tests use it: a JWT from the simple auth manager,
DAG runs, backfills and task instances; and the worker host name hook for Celery workers.
"""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

WORKER_NAME_ENV = "SAMVERKAN_WORKER_NAME"
TERMINAL_RUN_STATES = {"success", "failed"}


# --- the REST API --------------------------------------------------------------------------------


class AirflowAPIError(RuntimeError):
    pass


@dataclass
class AirflowAPI:
    """Airflow's REST API v2 with a JWT from the simple auth manager's ``/auth/token``."""

    base_url: str
    username: str
    password: str
    timeout: float = 30.0
    _token: str | None = field(default=None, repr=False)

    def token(self) -> str:
        if self._token is None:
            body = self._raw("POST", "/auth/token", {"username": self.username, "password": self.password}, auth=False)
            self._token = body["access_token"]
        return self._token

    def _raw(self, method: str, path: str, body: Any = None, *, auth: bool = True) -> Any:
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if auth:
            headers["Authorization"] = f"Bearer {self.token()}"
        request = urllib.request.Request(self.base_url.rstrip("/") + path, data=data, method=method, headers=headers)
        attempts = 3 if method == "GET" else 1  # reads are retried when a busy server is slow to answer
        for attempt in range(1, attempts + 1):
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    text = response.read().decode()
                break
            except urllib.error.HTTPError as e:
                detail = e.read().decode(errors="replace")[:500]
                raise AirflowAPIError(f"{method} {path}: HTTP {e.code}: {detail}") from None
            except (TimeoutError, urllib.error.URLError, ConnectionError):
                if attempt == attempts:
                    raise
                time.sleep(1)
        return json.loads(text) if text else None

    def get(self, path: str, **params: Any) -> Any:
        query = f"?{urllib.parse.urlencode(params, doseq=True)}" if params else ""
        return self._raw("GET", path + query)

    def post(self, path: str, body: Any) -> Any:
        return self._raw("POST", path, body)

    def patch(self, path: str, body: Any) -> Any:
        return self._raw("PATCH", path, body)

    # -- what the stack and the ops commands use ------------------------------------------------
    def health(self) -> dict[str, Any]:
        return self._raw("GET", "/api/v2/monitor/health", auth=False)

    def dag_ids(self, prefix: str = "samverkan_") -> list[str]:
        dags = self.get("/api/v2/dags", dag_id_pattern=prefix, limit=100)["dags"]
        return sorted(d["dag_id"] for d in dags)

    def unpause(self, dag_id: str) -> None:
        self.patch(f"/api/v2/dags/{dag_id}", {"is_paused": False})

    def trigger(self, dag_id: str, logical_date: datetime, conf: dict[str, Any] | None = None) -> str:
        run = self.post(
            f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": logical_date.isoformat(), "conf": conf or {}}
        )
        return run["dag_run_id"]

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns", limit=500, order_by="logical_date")["dag_runs"]

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}/taskInstances"
        return self.get(path, limit=500)["task_instances"]

    def create_backfill(
        self,
        dag_id: str,
        from_date: datetime,
        to_date: datetime,
        *,
        max_active_runs: int,
        reprocess_behavior: str = "none",
    ) -> dict[str, Any]:
        return self.post(
            "/api/v2/backfills",
            {
                "dag_id": dag_id,
                "from_date": from_date.isoformat(),
                "to_date": to_date.isoformat(),
                "run_backwards": False,
                "dag_run_conf": {},
                "reprocess_behavior": reprocess_behavior,
                "max_active_runs": max_active_runs,
            },
        )

    def backfill(self, backfill_id: int) -> dict[str, Any]:
        return self.get(f"/api/v2/backfills/{backfill_id}")

    def wait_for_runs(
        self, runs: list[tuple[str, str]], timeout: float, poll: float = 3.0
    ) -> dict[tuple[str, str], str]:
        """Wait until every (dag_id, run_id) is finished; returns their states."""
        deadline = time.monotonic() + timeout
        states: dict[tuple[str, str], str] = {}
        while True:
            for key in runs:
                if states.get(key) not in TERMINAL_RUN_STATES:
                    states[key] = self.run(*key)["state"]
            if all(s in TERMINAL_RUN_STATES for s in states.values()):
                return states
            if time.monotonic() > deadline:
                pending = {k: s for k, s in states.items() if s not in TERMINAL_RUN_STATES}
                raise TimeoutError(f"runs not finished after {timeout:g} s: {pending}")
            time.sleep(poll)


def worker_hostname() -> str:
    """``[core] hostname_callable`` for workers sharing one machine: the name each is started with.

    Airflow records ``get_hostname()`` on every task instance. In Compose every worker is its own
    container with its own host name; on one machine the stack gives each worker a name (the
    same one as its ``--celery-hostname``) so the task instances say which worker ran them.
    """
    return os.environ.get(WORKER_NAME_ENV) or socket.getfqdn()
