"""The production stack without Docker: ``python -m devkit.stack`` (via ``scripts/stack``).

``docker-compose.yml`` runs Airflow with the CeleryExecutor: PostgreSQL for the metadata DB,
Redis as the Celery broker, an api-server, a scheduler, a dag-processor, a triggerer, Celery
workers and one demo SFTP server per partner. This module starts the same parts from packages on
127.0.0.1 (Debian's PostgreSQL and Redis, Airflow and Celery from the pinned requirements,
OpenSSH's sshd for the partners), so the stack is proven on machines without a Docker engine.

Both read the same shared settings, ``deploy/airflow.env``; what differs is only where things
run (endpoints, paths) and the secrets, which both take from files made by ``ensure_secrets``:
``deploy/secrets/`` for Compose (``python -m devkit.stack secrets``), ``<root>/secrets/``
here. The stack proves itself through Airflow's REST API (v2, simple auth manager JWT).

Sub-commands: ``secrets`` (Compose secret files), ``up`` (start, print the URL, run until
Ctrl-C), ``bench`` (a backfill of N nights with 1 and with 2 workers, wall times).
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from samverkan.connectors.sshd import free_port
from samverkan.core.fsutil import Below
from samverkan.ops.airflow_api import AirflowAPI
from samverkan.ops.secrets import (
    ADMIN_USER,
    CELERY_APP,
    COMPOSE_SECRETS_DIR,
    DEFAULT_WORKERS,
    HOST,
    REPO,
    TERMINAL_RUN_STATES,
    WORKER_NAME_ENV,
    Endpoints,
    SecretFiles,
    conn_env_name,
    endpoint_env,
    ensure_secrets,
    secret_env,
    shared_settings,
    write_known_hosts,
    write_private,
)

# --- the stack on 127.0.0.1 --------------------------------------------------------------------


def postgres_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if not found:
        raise RuntimeError("PostgreSQL not installed (no /usr/lib/postgresql/*/bin/initdb); scripts/setup installs it")
    return found[-1].parent


def redis_server() -> str:
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError("redis-server not installed; scripts/setup installs it")
    return found


class StackError(RuntimeError):
    pass


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    log: Path


class LocalStack:
    """PostgreSQL, Redis, partner sshd and the Airflow components, each its own process group.

    ``root`` holds secrets/, partners/, data/, airflow/ and logs/; the PostgreSQL cluster lives in
    a temporary directory its (unprivileged) server user can reach, removed on ``stop()``.
    """

    def __init__(
        self,
        root: Path,
        workers: int = DEFAULT_WORKERS,
        *,
        worker_concurrency: int | None = None,
        quiet_period_seconds: float = 2.0,
    ):
        self.root = Path(root).resolve()
        self.workers = workers
        self.worker_concurrency = worker_concurrency
        self.quiet_period_seconds = quiet_period_seconds
        self.processes: list[Process] = []
        self.servers: dict[str, Any] = {}
        self.pg_dir: Path | None = None
        self.ports: dict[str, int] = {}
        self.files: SecretFiles | None = None
        self._env: dict[str, str] | None = None

    # -- layout --------------------------------------------------------------------------------
    partners_root = Below("partners")
    data_root = Below("data")
    logs = Below("logs")

    @property
    def api_url(self) -> str:
        return f"http://{HOST}:{self.ports['api']}"

    def worker_names(self) -> list[str]:
        return [f"worker-{i}" for i in range(1, self.workers + 1)]

    def api(self) -> AirflowAPI:
        assert self.files is not None
        return AirflowAPI(self.api_url, ADMIN_USER, self.files.value("admin_password"))

    def __enter__(self) -> LocalStack:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- processes -------------------------------------------------------------------------------
    def _spawn(
        self,
        name: str,
        cmd: list[str],
        env: dict[str, str] | None = None,
        *,
        user: str | None = None,
        cwd: Path | None = None,
    ) -> Process:
        self.logs.mkdir(parents=True, exist_ok=True)
        log = self.logs / f"{name}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen(
                cmd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                user=user,
                group=user,
                extra_groups=[] if user else None,
                cwd=cwd,
            )
        process = Process(name, popen, log)
        self.processes.append(process)
        return process

    def _check_alive(self) -> None:
        for p in self.processes:
            if p.popen.poll() is not None:
                raise StackError(f"{p.name} exited with {p.popen.returncode}:\n{_tail(p.log)}")

    def _wait(self, what: str, ready, timeout: float, poll: float = 0.5) -> Any:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                result = ready()
                if result:
                    return result
            except Exception as e:  # noqa: BLE001 - not ready yet; the last error is reported
                last = e
            time.sleep(poll)
        raise StackError(f"{what} not ready after {timeout:g} s" + (f": {last}" if last else ""))

    # -- parts -------------------------------------------------------------------------------------
    def _start_partners(self, contracts: dict[str, Any]) -> None:
        from samverkan.connectors.sshd import start_sftp_server

        assert self.files is not None
        public = Path(f"{self.files.hub_key}.pub").read_text(encoding="ascii").strip()
        for feed in contracts:
            workdir = self.root / "sshd" / feed
            workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
            for suffix in ("", ".pub"):  # the host key pinned in known_hosts and the connection
                shutil.copy2(f"{self.files.host_key(feed)}{suffix}", workdir / f"ssh_host_ed25519_key{suffix}")
            root = self.partners_root / feed
            root.mkdir(parents=True, exist_ok=True)
            self.servers[feed] = start_sftp_server(root, public, workdir)

    def _start_postgres(self) -> None:
        assert self.files is not None
        bin_dir = postgres_bin()
        user = None
        if os.geteuid() == 0:  # initdb refuses to run as root; the cluster belongs to `postgres`
            user = "postgres"
            pw = pwd.getpwnam(user)
            self.pg_dir = Path(tempfile.mkdtemp(prefix="samverkan-pg-"))
            os.chown(self.pg_dir, pw.pw_uid, pw.pw_gid)
        else:
            self.pg_dir = self.root / "postgres"
            self.pg_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.pg_dir.chmod(0o700)
        data = self.pg_dir / "data"
        pwfile = self.pg_dir / "pwfile"
        write_private(pwfile, self.files.value("postgres_password") + "\n")
        if user:
            os.chown(pwfile, pw.pw_uid, pw.pw_gid)
        initdb = subprocess.run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                "airflow",
                f"--pwfile={pwfile}",
                "-E",
                "UTF8",
                "--locale=C",
                "--auth-host=scram-sha-256",
                "--auth-local=scram-sha-256",
            ],
            user=user,
            group=user,
            extra_groups=[] if user else None,
            capture_output=True,
            text=True,
            cwd=self.pg_dir,
        )
        pwfile.unlink()
        if initdb.returncode:
            raise StackError(f"initdb failed:\n{initdb.stdout[-2000:]}{initdb.stderr[-2000:]}")
        port = self.ports["postgres"]
        self._spawn(
            "postgres",
            [str(bin_dir / "postgres"), "-D", str(data), "-h", HOST, "-p", str(port), "-k", str(self.pg_dir)],
            user=user,
            cwd=self.pg_dir,
        )

        def create_db() -> bool:
            import psycopg

            with psycopg.connect(
                host=HOST,
                port=port,
                user="airflow",
                dbname="postgres",
                password=self.files.value("postgres_password"),
                autocommit=True,
                connect_timeout=3,
            ) as db:
                if not db.execute("SELECT 1 FROM pg_database WHERE datname = 'airflow'").fetchone():
                    db.execute("CREATE DATABASE airflow")
            return True

        self._wait("PostgreSQL", create_db, 60)

    def _start_redis(self) -> None:
        port = self.ports["redis"]
        workdir = self.root / "redis"
        workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._spawn(
            "redis",
            [
                redis_server(),
                "--bind",
                HOST,
                "--port",
                str(port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(workdir),
                "--protected-mode",
                "yes",
            ],
        )

        def ping() -> bool:
            with socket.create_connection((HOST, port), timeout=2) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")

        self._wait("Redis", ping, 30, poll=0.2)

    def endpoints(self, contracts: dict[str, Any]) -> Endpoints:
        assert self.files is not None
        return Endpoints(
            postgres=f"{HOST}:{self.ports['postgres']}",
            redis=f"{HOST}:{self.ports['redis']}",
            api_url=self.api_url,
            partners={feed: (server.host, server.port) for feed, server in self.servers.items()},
            partner_login=next(iter(self.servers.values())).username,
            key_file=str(self.files.hub_key),
            signing_key=str(self.files.signing_key),
            keys_dir=str(self.files.keys),
            path_prefix=next(iter(self.servers.values())).path_prefix,
        )

    def env(self) -> dict[str, str]:
        """Environment of every Airflow process: shared settings, then endpoints, paths and secrets."""
        if self._env is not None:
            return self._env
        from samverkan.core.contracts import load_contracts
        from samverkan.core.settings import DATA_ROOT_ENV

        assert self.files is not None
        contracts = load_contracts()
        endpoints = self.endpoints(contracts)
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "SAMVERKAN_"))}
        env = {**base, **shared_settings(), **endpoint_env(endpoints), **secret_env(self.files, endpoints, contracts)}
        if self.quiet_period_seconds is not None:
            for contract in contracts.values():
                conn = json.loads(env[conn_env_name(contract.connection_id)])
                conn["extra"]["quiet_period_seconds"] = self.quiet_period_seconds
                env[conn_env_name(contract.connection_id)] = json.dumps(conn)
        env.update(
            {
                "AIRFLOW_HOME": str(self.root / "airflow"),
                "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.files.passwords_file),
                "AIRFLOW__API__HOST": HOST,
                "AIRFLOW__API__PORT": str(self.ports["api"]),
                "AIRFLOW__API__BASE_URL": self.api_url,
                "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST": HOST,
                "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(self.ports["scheduler_health"]),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(self.ports["trigger_logs"]),
                "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")])),
                DATA_ROOT_ENV: str(self.data_root),
            }
        )
        if self.worker_concurrency:
            env["AIRFLOW__CELERY__WORKER_CONCURRENCY"] = str(self.worker_concurrency)
        self._env = env
        return env

    def airflow(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run([_airflow_bin(), *args], env=self.env(), capture_output=True, text=True)
        if check and done.returncode:
            raise StackError(
                f"airflow {' '.join(args)} failed ({done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
            )
        return done

    def _start_airflow(self) -> None:
        env = self.env()
        airflow = _airflow_bin()
        self.airflow("db", "migrate")
        self._spawn(
            "api-server",
            [airflow, "api-server", "--host", HOST, "--port", str(self.ports["api"]), "--workers", "1"],
            env,
        )
        self._spawn("scheduler", [airflow, "scheduler"], env)
        self._spawn("dag-processor", [airflow, "dag-processor"], env)
        self._spawn("triggerer", [airflow, "triggerer"], env)
        for name in self.worker_names():
            worker_env = {
                **env,
                WORKER_NAME_ENV: name,
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": "samverkan.ops.airflow_api.worker_hostname",
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            }
            self._spawn(name, [airflow, "celery", "worker", "--celery-hostname", f"{name}@%h"], worker_env)

    def wait_ready(self, timeout: float = 240.0) -> None:
        """Health of every component, both workers answering Celery pings, every feed DAG parsed."""
        from samverkan.core.contracts import load_contracts

        api = self.api()
        components = ("metadatabase", "scheduler", "triggerer", "dag_processor")
        self._wait(
            "api-server and its components",
            lambda: all(api.health().get(c, {}).get("status") == "healthy" for c in components),
            timeout,
            2,
        )
        self._wait("Celery workers", lambda: set(self.ping_workers()) >= set(self.worker_names()), timeout, 2)
        wanted = {f"samverkan_{feed}" for feed in load_contracts()}
        self._wait("feed DAGs", lambda: wanted <= set(api.dag_ids()), timeout, 2)

    def ping_workers(self) -> list[str]:
        """Names of the workers answering a Celery ping through the broker."""
        done = subprocess.run(
            [sys.executable, "-m", "celery", "--app", CELERY_APP, "inspect", "ping", "--json", "--timeout", "3"],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        found = []
        for line in done.stdout.splitlines():
            line = line.strip()
            if line.startswith("{"):
                found += [name.split("@")[0] for name in json.loads(line)]
        return found

    def start(self, timeout: float = 240.0) -> LocalStack:
        from samverkan.core.contracts import load_contracts

        contracts = load_contracts()
        try:
            self.files = ensure_secrets(self.root / "secrets", contracts)
            for name in ("api", "scheduler_health", "trigger_logs", "postgres", "redis"):
                self.ports[name] = free_port()
            self._start_partners(contracts)
            write_known_hosts(self.files, self.endpoints(contracts), contracts)
            self._start_postgres()
            self._start_redis()
            self._start_airflow()
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for p in reversed(self.processes):
            _stop_group(p.popen)
        self.processes.clear()
        for server in self.servers.values():
            server.stop()
        self.servers.clear()
        if self.pg_dir is not None and self.pg_dir != self.root / "postgres":
            shutil.rmtree(self.pg_dir, ignore_errors=True)
        self.pg_dir = None

    # -- checks ------------------------------------------------------------------------------------
    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Read the metadata DB directly (PostgreSQL), e.g. to prove that is where Airflow keeps it."""
        import psycopg

        assert self.files is not None
        with psycopg.connect(
            host=HOST,
            port=self.ports["postgres"],
            user="airflow",
            dbname="airflow",
            password=self.files.value("postgres_password"),
            connect_timeout=5,
        ) as db:
            return db.execute(sql, params).fetchall()


def _airflow_bin() -> str:
    return str(Path(sys.executable).parent / "airflow")


def _stop_group(popen: subprocess.Popen, timeout: float = 10.0) -> None:
    if popen.poll() is not None:
        return
    try:
        os.killpg(popen.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        popen.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        popen.wait()
    # Children that outlived their leader (task processes) are in the same group.
    try:
        os.killpg(popen.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --- runs and where their tasks ran -------------------------------------------------------------


def logical_date_for(night: date, feed: str) -> datetime:
    """The scheduled run of ``feed`` that covers ``night`` (each feed's own schedule)."""
    from samverkan.core.contracts import load_contracts

    return load_contracts()[feed].run_time_for(night)


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def task_report(api: AirflowAPI, runs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Task instances of ``runs``: per-worker counts and the most mapped tasks running at once."""
    tis = []
    for dag_id, run_id in runs:
        tis += api.task_instances(dag_id, run_id)
    ran = [t for t in tis if t.get("start_date") and t.get("end_date") and t.get("state") in ("success", "failed")]
    per_host: dict[str, int] = {}
    for t in ran:
        per_host[t.get("hostname") or "?"] = per_host.get(t.get("hostname") or "?", 0) + 1
    mapped = [
        (_parse_time(t["start_date"]), _parse_time(t["end_date"]), t.get("hostname"))
        for t in ran
        if t.get("map_index", -1) >= 0
    ]
    # A task ending at the instant another starts did not overlap it: ends sort first.
    events = sorted([(s, 1, h) for s, _, h in mapped] + [(e, -1, h) for _, e, h in mapped], key=lambda x: (x[0], x[1]))
    running: dict[str, int] = {}
    peak = peak_workers = 0
    for _, delta, host in events:
        running[host] = running.get(host, 0) + delta
        peak = max(peak, sum(running.values()))
        peak_workers = max(peak_workers, sum(1 for v in running.values() if v > 0))
    seconds: dict[str, list[float]] = {}
    for t in ran:
        took = (_parse_time(t["end_date"]) - _parse_time(t["start_date"])).total_seconds()
        seconds.setdefault(t["task_id"], []).append(took)
    return {
        "task_instances": len(tis),
        "ran": len(ran),
        "mean_task_seconds": {task: round(sum(v) / len(v), 2) for task, v in sorted(seconds.items())},
        "per_host": per_host,
        "mapped": len(mapped),
        "peak_mapped_concurrency": peak,
        "peak_workers_running_mapped_at_once": peak_workers,
        "states": sorted({t["state"] for t in tis if t.get("state")}),
    }


# --- the command line ----------------------------------------------------------------------------


def _synthetic(root: Path, nights: list[date], sizes: dict[str, int], seed: int = 2026) -> None:
    from devkit.synthetic import write_nights

    write_nights(root, nights, sizes, seed)


BENCH_SIZES = {"police": 120, "transit": 60, "guards": 40}


def bench(
    root: Path,
    nights: int,
    worker_counts: list[int],
    first_night: date,
    max_active_runs: int,
    worker_concurrency: int | None,
) -> list[dict[str, Any]]:
    """A backfill of ``nights`` nights of each generated feed through the REST API, once per worker count."""
    from samverkan.core.nights import run_window

    results = []
    night_list = [first_night + timedelta(days=i) for i in range(nights)]
    for count in worker_counts:
        stack_root = root / f"workers-{count}"
        shutil.rmtree(stack_root, ignore_errors=True)
        _synthetic(stack_root / "partners", night_list, BENCH_SIZES)
        with LocalStack(stack_root, workers=count, worker_concurrency=worker_concurrency) as stack:
            stack.start()
            api = stack.api()
            from_date, to_date = run_window(night_list[0], night_list[-1])
            # Only the feeds with generated nights: another feed's runs would wait out their
            # retries for files that never come (about a quarter of an hour) and end red.
            for feed in BENCH_SIZES:  # the scheduler leaves a paused DAG's runs alone, backfills too
                api.unpause(f"samverkan_{feed}")
            started = time.monotonic()
            backfills = [
                api.create_backfill(f"samverkan_{feed}", from_date, to_date, max_active_runs=max_active_runs)
                for feed in BENCH_SIZES
            ]
            runs = _wait_backfills(api, backfills, expected=nights, timeout=3600)
            wall = time.monotonic() - started
            report = task_report(api, runs)
            states = {api.run(*r)["state"] for r in runs}
            results.append(
                {
                    "workers": count,
                    "nights": nights,
                    "runs": len(runs),
                    "run_states": sorted(states),
                    "wall_seconds": round(wall, 1),
                    **report,
                }
            )
            print(json.dumps(results[-1]), flush=True)
    return results


def _wait_backfills(
    api: AirflowAPI, backfills: list[dict[str, Any]], expected: int, timeout: float
) -> list[tuple[str, str]]:
    """Every run of the backfills, once all of them are finished."""
    deadline = time.monotonic() + timeout
    while True:
        runs: list[tuple[str, str]] = []
        finished = True
        for b in backfills:
            mine = [r for r in api.runs(b["dag_id"]) if r.get("run_type") == "backfill"]
            runs += [(b["dag_id"], r["dag_run_id"]) for r in mine]
            if len(mine) < expected or any(r["state"] not in TERMINAL_RUN_STATES for r in mine):
                finished = False
        if finished:
            return runs
        if time.monotonic() > deadline:
            raise TimeoutError(f"backfills not finished after {timeout:g} s")
        time.sleep(5)


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/stack", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("secrets", help="create deploy/secrets/ for docker-compose.yml (keeps what exists)")
    s.add_argument("--dir", type=Path, default=COMPOSE_SECRETS_DIR)
    u = sub.add_parser("up", help="start the stack on 127.0.0.1 with demo nights and run until Ctrl-C")
    u.add_argument("--root", type=Path, default=REPO / "var" / "stack")
    u.add_argument("--workers", type=int, default=DEFAULT_WORKERS)
    u.add_argument("--nights", nargs="+", type=date.fromisoformat, default=[date(2026, 11, 20), date(2026, 11, 21)])
    b = sub.add_parser("bench", help="backfill N nights with 1 and with 2 workers; prints wall times")
    b.add_argument("--root", type=Path, default=REPO / "var" / "stack-bench")
    b.add_argument("--nights", type=int, default=30)
    b.add_argument("--first-night", type=date.fromisoformat, default=date(2026, 10, 1))
    b.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    b.add_argument("--max-active-runs", type=int, default=1, help="backfill runs at once per feed (default 1)")
    b.add_argument("--worker-concurrency", type=int, default=None)
    args = parser.parse_args(argv)
    # Stop cleanly (every process group, the temporary PostgreSQL cluster) on SIGTERM as on Ctrl-C.
    signal.signal(signal.SIGTERM, _terminate)

    if args.command == "secrets":  # the product's own command, so both say and do the same
        from samverkan.ops import commands

        return commands.main(["secrets", "--dir", str(args.dir)])
    if args.command == "bench":
        results = bench(
            args.root.resolve(),
            args.nights,
            args.workers,
            args.first_night,
            args.max_active_runs,
            args.worker_concurrency,
        )
        for r in results:
            print(
                f"{r['workers']} worker(s): {r['runs']} runs of {r['nights']} nights in {r['wall_seconds']} s; "
                f"tasks per worker {r['per_host']}; peak mapped tasks at once {r['peak_mapped_concurrency']} "
                f"on {r['peak_workers_running_mapped_at_once']} worker(s); mean seconds per task "
                + ", ".join(f"{task} {took}" for task, took in r["mean_task_seconds"].items())
            )
        return 0
    root = args.root.resolve()
    if not (root / "partners").exists():
        _synthetic(root / "partners", args.nights, {"police": 400, "transit": 150, "guards": 80})
    with LocalStack(root, workers=args.workers) as stack:
        stack.start()
        print(f"Airflow UI and REST API: {stack.api_url} (user {ADMIN_USER}, password in {stack.files.passwords_file})")
        print(f"workers: {', '.join(stack.worker_names())}; logs in {stack.logs}; Ctrl-C stops everything")
        try:
            while True:
                stack._check_alive()
                time.sleep(5)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
