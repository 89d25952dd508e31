"""The production stack, really run: docker-compose.yml in Docker on this machine.

What an operations team does (docs/operations.md), with the commands it uses (scripts/docker):
build every image without an image registry, bring the stack up (docker-compose.test.yml keeps
every container on the host network, on 127.0.0.1), and wait for every healthcheck. Then two
nights generated on the partners' servers go through the *scheduler* (runs triggered through
the REST API), the published Parquet is checked against the generator's truth with DuckDB, the
deliveries are fetched from the pull service with the recipient's key (and the manifest's
SHA-256s checked) and found on the push recipients' servers, the lägesbild DAG builds its report
(no personal value, no small count), three workers share the tasks, a
worker killed mid-run does not fail the run, and `down` + `up` loses nothing and ingests nothing
twice. Chromium logs in to the stack's UI and takes screenshots (tests/artifacts/docker/).

One module, one stack (module-scoped), because building and starting it is the expensive part.
The figures (build, start to healthy, the nights through the scheduler, tasks per worker) are
printed and written to tests/artifacts/docker/figures.json.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

# Building cold takes minutes: the module's first test carries the build and the start.
pytestmark = [pytest.mark.docker, pytest.mark.timeout(3600)]

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "docker"
TEST_ENV = REPO / "deploy" / "docker-test.env"
ARTIFACTS = Path(os.environ.get("SAMVERKAN_TEST_ARTIFACTS") or REPO / "tests" / "artifacts") / "docker"
FEEDS = ("police", "transit", "guards", "felanmalan", "uppsokande")
SIZES = {"police": 120, "transit": 60, "guards": 40, "felanmalan": 15, "uppsokande": 6}
SEED, POPULATION = 1, 5000  # devkit.synthetic's defaults: what partner-data generates with
# Within the delivery DAGs' look-back (7 nights), so the deliveries the feeds trigger carry them.
# Not the night before yesterday: before the feeds' morning run time, its run is the latest
# scheduled one, which the scheduler creates itself when a DAG is unpaused (catchup=False), and
# triggering it again through the API is a 409 (seen in a run at 03:36 Stockholm time).
TODAY = datetime.now(ZoneInfo("Europe/Stockholm")).date()
NIGHTS = [TODAY - timedelta(days=4), TODAY - timedelta(days=3)]
WORKERS = 3
# Debian's client, as scripts/docker uses (it matches Debian's dockerd).
DOCKER = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker"


def _ports() -> dict[str, str]:
    from samverkan.ops.secrets import read_env_file

    return read_env_file(TEST_ENV)


@dataclass
class Stack:
    """The test stack, driven through scripts/docker as an operator would drive it."""

    root: Path
    figures: dict[str, object] = field(default_factory=dict)
    started_dockerd: bool = False

    @property
    def env(self) -> dict[str, str]:
        sizes = {f"SAMVERKAN_TEST_{feed.upper()}_ROWS": str(rows) for feed, rows in SIZES.items()}
        return {
            **os.environ,
            "SAMVERKAN_DOCKER_STATE": str(self.root / "state"),
            "SAMVERKAN_SECRETS_DIR": str(self.secrets.dir),
            "SAMVERKAN_TEST_STACK_DIR": str(self.dir),
            "SAMVERKAN_TEST_NIGHT_1": NIGHTS[0].isoformat(),
            "SAMVERKAN_TEST_NIGHT_2": NIGHTS[1].isoformat(),
            **sizes,
        }

    @property
    def dir(self) -> Path:
        return self.root / "stack"

    @property
    def secrets(self):
        from samverkan.ops.secrets import SecretFiles

        return SecretFiles(self.root / "secrets")

    def docker(self, *args: str, timeout: float = 1800, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(
            ["bash", str(SCRIPT), *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check and done.returncode:
            raise AssertionError(
                f"scripts/docker {' '.join(args)} failed ({done.returncode}):\n"
                f"{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
            )
        return done

    def timed(self, name: str, *args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
        started = time.monotonic()
        done = self.docker(*args, timeout=timeout)
        self.figures[name] = round(time.monotonic() - started, 1)
        return done

    def containers(self, service: str | None = None) -> list[dict]:
        ids = self.docker("ps", "-q", *([service] if service else [])).stdout.split()
        if not ids:
            return []
        done = subprocess.run([DOCKER, "inspect", *ids], capture_output=True, text=True, check=True)
        return json.loads(done.stdout)

    def api(self):
        from samverkan.ops.airflow_api import AirflowAPI

        password = json.loads(self.secrets.passwords_file.read_text())["admin"]
        return AirflowAPI(f"http://127.0.0.1:{_ports()['SAMVERKAN_TEST_API_PORT']}", "admin", password, timeout=60)

    def sql(self, query: str, params: tuple | dict | None = None) -> list[tuple]:
        """The deployment's PostgreSQL (metadata DB and the ledger in schema samverkan)."""
        import psycopg

        with psycopg.connect(
            host="127.0.0.1",
            port=int(_ports()["SAMVERKAN_TEST_POSTGRES_PORT"]),
            user="airflow",
            dbname="airflow",
            password=self.secrets.value("postgres_password"),
            connect_timeout=10,
        ) as db:
            return db.execute(query, params).fetchall()


def _listening() -> set[str]:
    """Every listening TCP socket of the machine as "address:port" (from /proc: no tool needed)."""
    import ipaddress
    import socket

    found = set()
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            if state != "0A":  # LISTEN
                continue
            address, port = local.split(":")
            raw = bytes.fromhex(address)
            # /proc prints each 32-bit word in host (little-endian) order.
            raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            ip = ipaddress.ip_address(socket.inet_ntop(family, raw))
            found.add(f"{ip}:{int(port, 16)}" if family == socket.AF_INET else f"[{ip}]:{int(port, 16)}")
    return found


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Stack:
    if os.geteuid() != 0:
        pytest.skip("the Docker test installs packages and starts dockerd: run it as root (CI does)")
    s = Stack(tmp_path_factory.mktemp("compose"))
    s.docker("install", timeout=900)
    pid_file = s.root / "state" / "dockerd.pid"
    s.docker("start")
    s.started_dockerd = pid_file.exists()
    request.addfinalizer(lambda: _tear_down(s))
    s.timed("build_seconds", "build", timeout=3600)
    s.docker("secrets")
    s.docker("down", "-v", "--remove-orphans")  # a clean project, whatever an earlier run left
    s.figures["listening_before"] = sorted(_listening())
    s.timed("up_to_healthy_seconds", "up")
    return s


def _not_green(s: Stack) -> dict:
    """Every run and task try of the stack that did not end in success (the scheduler's own runs
    too, which the tests do not assert on), for tests/artifacts/docker/not-green.json."""
    runs = s.sql("SELECT dag_id, run_id, run_type, state FROM dag_run WHERE state <> 'success' ORDER BY id")
    tries = s.sql(
        "SELECT dag_id, run_id, task_id, map_index, try_number, state, hostname, end_date FROM task_instance "
        "WHERE state NOT IN ('success', 'skipped') UNION ALL "
        "SELECT dag_id, run_id, task_id, map_index, try_number, state, hostname, end_date FROM task_instance_history "
        "WHERE state NOT IN ('success', 'skipped') ORDER BY 1, 2, 3, 5"
    )
    return {"runs": [list(r) for r in runs], "task_tries": [list(t) for t in tries]}


def _tear_down(s: Stack) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        (ARTIFACTS / "not-green.json").write_text(json.dumps(_not_green(s), indent=1, default=str))
    except Exception as exc:  # a record for people, never a reason for the teardown to stop
        (ARTIFACTS / "not-green.json").write_text(json.dumps({"error": repr(exc)}))
    logs = s.docker("logs", "--no-color", "--tail", "300", check=False)
    (ARTIFACTS / "compose.log").write_text(logs.stdout[-400_000:])
    (ARTIFACTS / "figures.json").write_text(json.dumps(s.figures, indent=2, default=str))
    print(json.dumps({k: v for k, v in s.figures.items() if k != "listening_before"}, indent=2, default=str))
    s.docker("down", "-v", "--remove-orphans", check=False)
    if s.started_dockerd:
        s.docker("stop", check=False)


# --- the images and the running stack ------------------------------------------------------------


def test_the_hub_image_has_what_the_dags_need_and_no_test_tools(stack):
    script = (
        "id -u; test -s /usr/share/dict/swedish && echo wordlist; command -v gcc cc || echo no-compiler; "
        "command -v ssh-keygen >/dev/null && echo ssh-keygen; "
        "pip list --format=freeze 2>/dev/null | cut -d= -f1 | tr A-Z_ a-z-; "
        "python -c 'import devkit' 2>/dev/null && echo devkit-present; "
        "python -c 'import samverkan.sharing.agreements as a; print(len(a.load_agreements()))'; "
        "ls /opt/samverkan"
    )
    done = subprocess.run(
        [DOCKER, "run", "--rm", "--network", "none", "--entrypoint", "sh", "samverkan-airflow:local", "-c", script],
        capture_output=True,
        text=True,
        check=True,
    )
    lines = done.stdout.split()
    assert lines[0] == "50000" and {"wordlist", "no-compiler", "ssh-keygen"} <= set(lines), done.stdout
    assert {"apache-airflow", "great-expectations", "samverkan"} <= set(lines)
    assert not {"pytest", "selenium", "aiosmtpd"} & set(lines)
    assert "devkit-present" not in lines
    assert {"agreements", "dags", "expectations", "plugins", "schemas", "web"} <= set(lines)


def test_no_container_environment_holds_the_pseudonymisation_or_sharing_key(stack):
    """The keys are files in a read-only folder, read by each task: `docker inspect` shows paths only."""
    from samverkan.core.settings import secret_file_env
    from samverkan.ops.secrets import COMPOSE_KEYS_DIR, KEY_VALUES

    keys = [stack.secrets.value(name) for name in KEY_VALUES]
    containers = stack.containers()
    assert len(containers) > 10
    for container in containers:
        env = "\n".join(container["Config"]["Env"] or [])
        assert not any(key in env for key in keys), container["Name"]
    for worker in stack.containers("airflow-worker"):
        mounts = {m["Destination"]: m for m in worker["Mounts"]}
        assert mounts[COMPOSE_KEYS_DIR]["RW"] is False, mounts[COMPOSE_KEYS_DIR]
        env = dict(line.split("=", 1) for line in worker["Config"]["Env"])
        assert {env[secret_file_env(v)] for v in KEY_VALUES.values()} == {f"{COMPOSE_KEYS_DIR}/{n}" for n in KEY_VALUES}


def test_every_service_is_healthy_on_the_host_network_and_listens_on_loopback_only(stack):
    containers = stack.containers()
    services = {c["Config"]["Labels"]["com.docker.compose.service"] for c in containers}
    assert {
        "postgres",
        "redis",
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
        "airflow-worker",
        "pull-service",
        *(f"partner-{f}" for f in FEEDS),
    } <= services
    for c in containers:
        assert c["HostConfig"]["NetworkMode"] == "host", c["Name"]
        state = c["State"]
        if state["ExitCode"] == 137 and c["Config"]["Labels"]["com.docker.compose.service"] == "airflow-worker":
            continue  # the worker this module kills on purpose
        assert (state["Status"] == "running" and state["Health"]["Status"] == "healthy") or (
            state["Status"] == "exited" and state["ExitCode"] == 0
        ), (c["Name"], state)
    ports = {v for k, v in _ports().items() if k.endswith("_PORT")}
    listening = _listening()
    for port in ports:
        assert any(a.endswith(f":{port}") for a in listening), f"nothing listens on {port}"
    new = listening - set(stack.figures["listening_before"])
    assert all(a.startswith(("127.0.0.1:", "[::1]:")) for a in new), sorted(new)


def _truth(tmp: Path):
    """The generator's files and truth for the nights partner-data wrote (same arguments, same bytes)."""
    from devkit.synthetic import Population, write_nights

    return write_nights(tmp, NIGHTS, SIZES, SEED, population=Population(SEED, POPULATION))


@pytest.fixture(scope="module")
def truth(stack, tmp_path_factory):
    root = tmp_path_factory.mktemp("truth")
    return root, {(t.feed, t.night): t for t in _truth(root)}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_partners_serve_the_generated_nights(stack, truth):
    root, truths = truth
    for t in truths.values():
        served = stack.dir / "partners" / t.path.relative_to(root)
        assert served.is_file() and _sha256(served) == _sha256(t.path), served


# --- the nights through the scheduler, three workers, one killed ------------------------------------


FEED_DAGS = [f"samverkan_{f}" for f in FEEDS]


def _tries_per_worker(stack: Stack) -> dict[str, int]:
    """Task tries per worker, every try (a retried task's earlier tries are in Airflow's history)."""
    rows = stack.sql(
        "SELECT hostname, count(*) FROM (SELECT hostname, dag_id FROM task_instance UNION ALL "
        "SELECT hostname, dag_id FROM task_instance_history) t "
        "WHERE dag_id LIKE 'samverkan_%' AND hostname LIKE 'worker-%' GROUP BY hostname"
    )
    return dict(rows)


def _kill_a_busy_worker(stack: Stack, workers: set[str], timeout: float = 900) -> dict:
    """Once every worker has run a task, kill (SIGKILL, no warm shutdown) the container of the
    worker running the most tasks at that moment. One SQL query finds it: a demo night's task
    runs for well under a second, and a slower look (the REST API, run by run) could pick a task
    that is done before the kill, as it once did."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if workers <= set(_tries_per_worker(stack)):
            busiest = stack.sql(
                "SELECT hostname, count(*) FROM task_instance WHERE state = 'running' AND dag_id LIKE 'samverkan_%%' "
                "AND hostname = ANY(%s) GROUP BY hostname ORDER BY count(*) DESC LIMIT 1",
                (sorted(workers),),
            )
            if busiest:
                worker, running = busiest[0]
                subprocess.run([DOCKER, "kill", worker.removeprefix("worker-")], check=True, capture_output=True)
                return {"worker": worker, "running_when_chosen": running}
        time.sleep(0.5)
    raise AssertionError(f"not every worker ran a task, or none was running one, in time: {_tries_per_worker(stack)}")


def _interrupted_tries(stack: Stack, worker: str) -> list[tuple]:
    """The tries the killed worker never finished: kept in Airflow's history once retried."""
    return stack.sql(
        "SELECT dag_id, run_id, task_id, map_index, try_number FROM task_instance_history "
        "WHERE hostname = %(w)s AND state NOT IN ('success', 'skipped') UNION "
        "SELECT dag_id, run_id, task_id, map_index, try_number FROM task_instance "
        "WHERE hostname = %(w)s AND state NOT IN ('success', 'skipped')",
        {"w": worker},
    )


def _latest_tries(stack: Stack, tries: list[tuple], timeout: float = 900) -> dict[tuple, tuple]:
    """(state, try number, worker) of each interrupted task once it has finished (its retry waits
    out Airflow's retry delay, whichever run it belongs to)."""
    deadline = time.monotonic() + timeout
    while True:
        latest = {}
        for dag_id, run_id, task_id, map_index, _ in tries:
            latest[(dag_id, run_id, task_id, map_index)] = stack.sql(
                "SELECT state, try_number, hostname FROM task_instance "
                "WHERE dag_id = %s AND run_id = %s AND task_id = %s AND map_index = %s",
                (dag_id, run_id, task_id, map_index),
            )[0]
        if all(state in ("success", "failed", "upstream_failed") for state, _, _ in latest.values()):
            return latest
        if time.monotonic() > deadline:
            raise AssertionError(f"interrupted tasks not finished in time: {latest}")
        time.sleep(5)


@pytest.fixture(scope="module")
def nights(stack):
    """Both nights of every feed, run by the scheduler with three workers, one killed mid-run."""
    from devkit.stack import task_report
    from samverkan.core.contracts import load_contracts

    stack.docker("up", "--no-deps", "--scale", f"airflow-worker={WORKERS}", "airflow-worker")
    workers = stack.containers("airflow-worker")
    assert len(workers) == WORKERS
    api = stack.api()
    deliveries = [d for d in api.dag_ids("samverkan_deliver_")]
    for dag_id in [f"samverkan_{f}" for f in FEEDS] + deliveries:
        api.unpause(dag_id)
    contracts = load_contracts()
    started = time.monotonic()
    runs = [
        (f"samverkan_{f}", api.trigger(f"samverkan_{f}", contracts[f].run_time_for(n))) for n in NIGHTS for f in FEEDS
    ]
    killed = _kill_a_busy_worker(stack, {f"worker-{c['Id'][:12]}" for c in workers})
    states = api.wait_for_runs(runs, timeout=1500, poll=5)
    interrupted = _interrupted_tries(stack, killed["worker"])
    latest = _latest_tries(stack, interrupted)
    stack.figures["two_nights_through_scheduler_seconds"] = round(time.monotonic() - started, 1)
    everything = [(f"samverkan_{f}", r["dag_run_id"]) for f in FEEDS for r in api.runs(f"samverkan_{f}")]
    report = task_report(api, everything)
    stack.figures.update(task_tries_per_worker=_tries_per_worker(stack), killed=killed)
    return {
        "runs": runs,
        "states": states,
        "killed": killed,
        "interrupted": interrupted,
        "latest": latest,
        "report": report,
        "workers": workers,
        "api": api,
        "all_runs": everything,
    }


def test_every_run_succeeds_although_a_worker_was_killed(nights):
    """The kill interrupted at least one task; each was retried on another worker and succeeded."""
    assert set(nights["states"].values()) == {"success"}, nights["states"]
    worker, interrupted, latest = nights["killed"]["worker"], nights["interrupted"], nights["latest"]
    assert interrupted, f"the kill of {worker} interrupted no task: {nights['killed']}"
    for dag_id, run_id, task_id, map_index, try_number in interrupted:
        state, latest_try, host = latest[(dag_id, run_id, task_id, map_index)]
        assert (state, host != worker) == ("success", True) and latest_try > try_number, (
            dag_id, run_id, task_id, map_index, try_number, latest[(dag_id, run_id, task_id, map_index)])


def test_tasks_ran_on_all_three_workers(stack, nights):
    names = {f"worker-{c['Id'][:12]}" for c in nights["workers"]}
    per_worker = _tries_per_worker(stack)
    assert names <= set(per_worker), per_worker
    # Airflow's record of where each task ran agrees with Celery's own (result_extended).
    rows = stack.sql(
        "SELECT ti.hostname, tm.worker FROM task_instance ti JOIN celery_taskmeta tm "
        "ON tm.task_id = ti.external_executor_id WHERE ti.dag_id LIKE 'samverkan_%' AND ti.state = 'success'"
    )
    assert rows and all(worker == f"celery@{hostname}" for hostname, worker in rows), rows[:5]


def _published(stack: Stack, query: str) -> list[tuple]:
    import duckdb

    published = stack.dir / "data" / "published"
    con = duckdb.connect()
    for name in ("incidents", "involvements", "observations"):
        con.execute(
            f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{published}/{name}/**/*.parquet', "
            "hive_partitioning = true, union_by_name = true)"
        )
    return con.execute(query).fetchall()


def test_published_parquet_equals_the_generators_truth(stack, nights, truth):
    _, truths = truth
    for (feed, night), t in truths.items():
        where = f"source = '{feed}' AND night = '{night}'"
        if t.observations:  # an aggregate feed: one row per filled count cell
            ((cells,),) = _published(stack, f"SELECT count(*) FROM observations WHERE {where}")
            assert cells == t.observations, (feed, night)
            continue
        ((incidents,),) = _published(stack, f"SELECT count(*) FROM incidents WHERE {where}")
        ((involvements,),) = _published(stack, f"SELECT count(*) FROM involvements WHERE {where}")
        assert (incidents, involvements) == (t.incidents, t.involvements), (feed, night)
    ledger = stack.sql("SELECT feed, name, count(*) FROM samverkan.files WHERE status = 'published' GROUP BY 1, 2")
    assert len(ledger) == len(truths) and {n for *_, n in ledger} == {1}, ledger  # each file once, in PostgreSQL


# --- deliveries: pull from the pull service, push to the recipients' servers ---------------------


def _agreements():
    from samverkan.sharing.agreements import load_agreements

    return load_agreements()


@pytest.fixture(scope="module")
def delivered(stack, nights):
    """Wait until every recipient's deliveries of both nights are where it fetches them."""
    deadline = time.monotonic() + 900
    while True:
        missing = [(a.id, n) for a in _agreements().values() for n in NIGHTS if not _has_delivery(stack, a, n)]
        if not missing:
            return
        assert time.monotonic() < deadline, f"not delivered: {missing}"
        time.sleep(5)


def _pull_settings(stack: Stack, recipient: str, account: str):
    from samverkan.connectors.sftp import SFTPSettings
    from samverkan.ops.secrets import SecretFiles

    files: SecretFiles = stack.secrets
    host_key = " ".join(Path(f"{files.pull_host_key}.pub").read_text().split()[:2])
    return SFTPSettings(
        host="127.0.0.1",
        port=int(_ports()["SAMVERKAN_TEST_PULL_PORT"]),
        username=account,
        host_key=host_key,
        key_file=str(files.recipient_key(recipient)),
    )


def _has_delivery(stack: Stack, agreement, night: date) -> bool:
    if agreement.mode == "push":
        inbox = stack.dir / "partners" / agreement.id / agreement.delivery["directory"].lstrip("/")
        return (inbox / night.isoformat() / "manifest.json").is_file()
    from samverkan.connectors.sftp import SFTPConnector

    with SFTPConnector(_pull_settings(stack, agreement.id, agreement.delivery["account"])) as sftp:
        return night.isoformat() in sftp.sftp.listdir("/")  # one folder per night


def _check_manifest(folder: Path) -> dict:
    manifest = json.loads((folder / "manifest.json").read_text())
    files = manifest["files"]
    assert files, manifest
    for entry in files:
        assert _sha256(folder / entry["name"]) == entry["sha256"], (folder, entry["name"])
    return manifest


def test_a_pull_recipient_fetches_its_outbox_with_its_key_and_the_sha256s_match(stack, delivered, tmp_path):
    from samverkan.connectors.sftp import SFTPConnector

    pull = [a for a in _agreements().values() if a.mode == "pull"]
    assert pull
    agreement = pull[0]
    with SFTPConnector(_pull_settings(stack, agreement.id, agreement.delivery["account"])) as sftp:
        for night in NIGHTS:
            folder = tmp_path / night.isoformat()
            for remote in sftp.list(f"/{night.isoformat()}"):
                sftp.download(f"/{night.isoformat()}/{remote.name}", folder / remote.name)
            assert _check_manifest(folder)["recipient"] == agreement.id


def test_another_recipients_key_sees_nothing_of_it(stack, delivered):
    from samverkan.connectors.sftp import SFTPConnectionError, SFTPConnector

    pull = sorted((a for a in _agreements().values() if a.mode == "pull"), key=lambda a: a.id)
    assert len(pull) >= 2
    one, other = pull[0], pull[1]
    # The other recipient's own view: its deliveries only, nothing of the first one's.
    with SFTPConnector(_pull_settings(stack, other.id, other.delivery["account"])) as sftp:
        assert set(sftp.sftp.listdir("/")) <= {n.isoformat() for n in NIGHTS}
        assert sftp.sftp.listdir("/../..") == sftp.sftp.listdir("/")  # the chroot: no way up
        for path in (f"/../{one.id}", f"/{one.id}", "/../../outbox", "/var/lib/samverkan"):
            with pytest.raises(OSError):
                sftp.sftp.listdir(path)
    # The other recipient's key does not open the first one's account.
    wrong = _pull_settings(stack, other.id, one.delivery["account"])
    with pytest.raises(SFTPConnectionError, match="authentication failed"):
        with SFTPConnector(wrong) as sftp:
            sftp.list("/")


def test_push_recipients_hold_complete_deliveries_on_their_servers(stack, delivered):
    for agreement in (a for a in _agreements().values() if a.mode == "push"):
        inbox = stack.dir / "partners" / agreement.id / agreement.delivery["directory"].lstrip("/")
        for night in NIGHTS:
            _check_manifest(inbox / night.isoformat())


# --- the lägesbild, built by its DAG in the stack --------------------------------------------------


def test_the_lagesbild_dag_builds_a_release_with_no_personal_value_and_no_small_count(stack, nights, truth):
    """Paused at creation like every DAG (docs/operations.md says to unpause it): unpaused and
    run, it builds the report on a worker from the nights the stack published."""
    from devkit.leakscan import scan
    from samverkan.analysis.lagesbild import HTML_FILE, JSON_FILE, releases
    from samverkan.sharing.agreements import DEFAULT_SUPPRESSION_THRESHOLD

    api, dag_id = stack.api(), "samverkan_lagesbild"
    api.unpause(dag_id)
    started = time.monotonic()
    run_id = api.trigger(dag_id, datetime.now(ZoneInfo("UTC")))
    state = api.wait_for_runs([(dag_id, run_id)], timeout=900, poll=5)[(dag_id, run_id)]
    stack.figures["lagesbild_run_seconds"] = round(time.monotonic() - started, 1)
    assert state == "success", api.task_instances(dag_id, run_id)
    built = releases(stack.dir / "data" / "reports" / "lagesbild")
    assert built, "no release under reports/lagesbild"
    release = built[-1]
    released = json.loads((release / JSON_FILE).read_text(encoding="utf-8"))
    assert released["threshold"] == DEFAULT_SUPPRESSION_THRESHOLD
    values = [v for t in released["tables"] for row in t["values"] for v in row if v is not None]
    assert values and all(v == 0 or v >= released["threshold"] for v in values)
    _, truths = truth
    people = [t.personal_values for t in truths.values()]
    personal = people[0].merge(*people[1:])
    assert not personal.is_empty()
    assert scan([release / HTML_FILE, release / JSON_FILE], personal) == []


def test_deliveries_and_the_register_are_signed_and_pass_the_hubs_self_test(stack, delivered, tmp_path):
    """The production stack signs: every manifest and register event verifies with the
    allowed-signers file the secrets generator writes (the one file recipients are given), and
    the self-test a recipient or auditor runs (`samverkan ops selftest`) passes on the outbox."""
    from samverkan.sharing import selftest

    worker = stack.containers("airflow-worker")[0]["Id"]  # the outbox is a volume of its own
    subprocess.run([DOCKER, "cp", f"{worker}:/var/lib/samverkan/outbox", str(tmp_path)], check=True, timeout=120)
    outbox = tmp_path / "outbox"
    assert any(outbox.rglob("manifest.json.sig")), "no signed manifest in the outbox"
    report = selftest.run(outbox, stack.dir / "data" / "register", stack.secrets.allowed_signers)
    assert report.passed, "\n".join(report.lines)
    assert any("signed, in the register" in line for line in report.lines), report.lines


# --- down and up again ------------------------------------------------------------------------------


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): _sha256(p) for p in sorted(root.rglob("*")) if p.is_file()}


def test_down_and_up_loses_nothing_and_ingests_nothing_twice(stack, nights, delivered):
    from samverkan.core.contracts import load_contracts

    published = stack.dir / "data" / "published"
    before = {
        "published": _tree(published / "incidents") | _tree(published / "involvements"),
        "ledger": stack.sql("SELECT id, status, sha256 FROM samverkan.files ORDER BY id"),
        "runs": stack.sql("SELECT dag_id, run_id, state FROM dag_run ORDER BY id"),
    }
    stack.timed("down_seconds", "down")
    stack.timed("restart_up_to_healthy_seconds", "up")
    api = stack.api()
    assert stack.sql("SELECT dag_id, run_id, state FROM dag_run ORDER BY id")[: len(before["runs"])] == before["runs"]
    contracts = load_contracts()
    # The same nights again (a minute later than their first runs: one run per logical date).
    again = [
        (
            f"samverkan_{f}",
            api.trigger(
                f"samverkan_{f}", contracts[f].run_time_for(n) + timedelta(minutes=1), {"night": n.isoformat()}
            ),
        )
        for n in NIGHTS
        for f in FEEDS
    ]
    assert set(api.wait_for_runs(again, timeout=900, poll=5).values()) == {"success"}
    assert stack.sql("SELECT id, status, sha256 FROM samverkan.files ORDER BY id") == before["ledger"]
    assert _tree(published / "incidents") | _tree(published / "involvements") == before["published"]


# --- the UI, in Chromium -------------------------------------------------------------------------


def _processed_files(stack: Stack, dag_id: str, run_id: str) -> bool:
    """Did this run process a file (and so has Data Docs pages)? Another run may have taken both."""
    return any(
        t["task_id"] == "process_file" and t["state"] == "success" and t.get("map_index", -1) >= 0
        for t in stack.api().task_instances(dag_id, run_id)
    )


def test_the_ui_shows_the_dags_and_a_runs_data_docs(stack, nights):
    chromium, driver_bin = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver_bin):
        pytest.skip("not installed: chromium, chromium-driver (scripts/setup installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    url = f"http://127.0.0.1:{_ports()['SAMVERKAN_TEST_API_PORT']}"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1600,1900",
        "--lang=en-GB",
    ):
        options.add_argument(arg)
    browser = webdriver.Chrome(service=Service(driver_bin), options=options)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        wait = WebDriverWait(browser, 60)
        browser.get(url + "/")
        wait.until(EC.presence_of_element_located((By.NAME, "username"))).send_keys("admin")
        browser.find_element(By.NAME, "password").send_keys(
            json.loads(stack.secrets.passwords_file.read_text())["admin"]
        )
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait.until(lambda d: "/auth/login" not in d.current_url)
        browser.get(url + "/dags")
        for feed in FEEDS:
            wait.until(EC.presence_of_element_located((By.LINK_TEXT, f"samverkan_{feed}")))
        time.sleep(1)
        assert browser.save_screenshot(str(ARTIFACTS / "01-dag-list.png"))
        dag_id, run_id = next(
            r for r in nights["all_runs"] if r[0] == "samverkan_police" and _processed_files(stack, *r)
        )
        browser.get(f"{url}/dags/{dag_id}/runs/{urllib.parse.quote(run_id, safe='')}/plugin/samverkan-data-docs")
        frame = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "iframe[src*='samverkan-reports']"))[0]
        browser.switch_to.frame(frame)
        # A run that took several nights lists them; one night's page opens in place.
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").text.strip())
        nights_listed = browser.find_elements(By.CSS_SELECTOR, "a[href*='nights/']")
        if nights_listed:
            nights_listed[0].click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".bootstrap-table .search input"))
        assert "expectation" in browser.find_element(By.TAG_NAME, "body").text.lower()
        browser.switch_to.default_content()
        time.sleep(1)
        shot = ARTIFACTS / "02-data-docs-tab.png"
        assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    finally:
        browser.quit()
