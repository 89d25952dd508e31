"""docker-compose.yml, structurally: the services, the shared anchors, healthchecks, no secret
inline, and the same settings as the no-Docker stack (devkit/stack.py).

No Docker engine runs here, so the file is checked as data; the running stack is proven by
tests/integration/test_celery_stack.py with the same deploy/airflow.env.
"""

from __future__ import annotations

import re
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from devkit import stack
from samverkan.core.contracts import load_contracts
from samverkan.core.settings import secret_file_env, secret_variable_env
from samverkan.ops import secrets as deployment_secrets
from samverkan.sharing.signing import DELIVERY_NAMESPACE, REGISTER_KEY_ENV, file_verifies, sign_file

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
AIRFLOW_SERVICES = {"airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer",
                    "airflow-worker"}
ONE_SHOT = {"airflow-init", "partner-data"}
SECRETISH = re.compile(r"PASSWORD|SECRET|FERNET|TOKEN|PRIVATE|SQL_ALCHEMY_CONN|RESULT_BACKEND|AIRFLOW_CONN_|AIRFLOW_VAR_")


@pytest.fixture(scope="module")
def text() -> str:
    return COMPOSE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def compose(text: str) -> dict:
    """The file as Compose reads it with no variables set: ``${VAR:-default}`` is the default."""
    return yaml.safe_load(re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", text))


@pytest.fixture(scope="module")
def services(compose: dict) -> dict:
    return compose["services"]


def _feeds() -> list[str]:
    return sorted(load_contracts())


def test_all_parts_of_the_celery_stack_are_there(services):
    expected = AIRFLOW_SERVICES | ONE_SHOT | {"postgres", "redis"} | {f"partner-{f}" for f in _feeds()}
    assert expected <= set(services), sorted(expected - set(services))
    assert services["airflow-worker"]["command"] == "celery worker"
    assert services["airflow-apiserver"]["command"] == "api-server"
    assert {services[s]["command"] for s in ("airflow-scheduler", "airflow-dag-processor", "airflow-triggerer")} == {
        "scheduler", "dag-processor", "triggerer"}


def _mapping_node(node: yaml.Node, key: str) -> yaml.Node:
    for k, v in node.value:
        if k.value == key:
            return v
    raise KeyError(key)


def _merged(node: yaml.MappingNode) -> list[yaml.Node]:
    return [v for k, v in node.value if k.tag == "tag:yaml.org,2002:merge"]


def test_airflow_services_share_the_x_airflow_common_anchor(text):
    """Each Airflow service merges the one x-airflow-common node (an alias, not a copy)."""
    root = yaml.compose(text)
    common = _mapping_node(root, "x-airflow-common")
    services = _mapping_node(root, "services")
    for name in AIRFLOW_SERVICES | ONE_SHOT:
        assert any(m is common for m in _merged(_mapping_node(services, name))), name
    common_env = _mapping_node(common, "environment")
    for name in AIRFLOW_SERVICES:
        env = _mapping_node(_mapping_node(services, name), "environment") if any(
            k.value == "environment" for k, _ in _mapping_node(services, name).value) else common_env
        assert env is common_env or any(m is common_env for m in _merged(env)), name


def test_every_airflow_service_builds_the_project_image(compose, services):
    common = compose["x-airflow-common"]
    assert common["build"]["dockerfile"] == "Dockerfile" and (REPO / "Dockerfile").is_file()
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "requirements.txt" in dockerfile and "constraints.txt" in dockerfile
    pinned = re.search(r"^apache-airflow==(\S+)$", (REPO / "requirements.txt").read_text(), re.M).group(1)
    assert f"AIRFLOW_VERSION={pinned}" in dockerfile
    for name in AIRFLOW_SERVICES | {"airflow-init"}:
        assert services[name]["image"] == common["image"], name
    # The demo data comes from the Dockerfile's `demo` target (devkit's generator), never the hub's.
    assert common["build"]["target"] == "hub"
    assert services["partner-data"]["build"]["target"] == "demo"
    assert services["partner-data"]["image"] != common["image"]


def test_long_running_services_have_healthchecks(services):
    for name, service in services.items():
        if name in ONE_SHOT:
            continue
        check = service.get("healthcheck")
        assert check and check.get("test"), f"{name} has no healthcheck"
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name
    worker = " ".join(services["airflow-worker"]["healthcheck"]["test"])
    assert "inspect ping" in worker and deployment_secrets.CELERY_APP in worker


def test_airflow_waits_for_healthy_database_and_broker(services):
    for name in AIRFLOW_SERVICES:
        deps = services[name]["depends_on"]
        assert deps["postgres"]["condition"] == deps["redis"]["condition"] == "service_healthy", name
        assert deps["airflow-init"]["condition"] == "service_completed_successfully", name


def test_workers_scale_and_default_to_the_no_docker_stacks_count(services):
    assert services["airflow-worker"]["deploy"]["replicas"] == deployment_secrets.DEFAULT_WORKERS
    assert "container_name" not in services["airflow-worker"]  # a fixed name would block --scale


def _strings(value) -> list[str]:
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [str(k), *_strings(v)]]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [str(value)]


def test_no_secret_values_inline(compose, services):
    """Secret settings come from env files or Compose secrets, never from the compose file."""
    for name, service in services.items():
        env = service.get("environment") or {}
        for key, value in env.items():
            if SECRETISH.search(key):
                assert str(value).startswith("/run/secrets/") or key.endswith(("_FILE", "_CMD")) or \
                    key == "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", f"{name}: {key} set inline"
    joined = "\n".join(_strings(compose))
    assert not re.search(r"://[^/\s:@]+:[^@\s]+@", joined), "credentials in a URL"
    assert "PRIVATE KEY" not in joined
    assert not re.search(r"\b[0-9a-f]{32,}\b", joined), "a long hex value (a key?) inline"
    for declared in compose["secrets"].values():
        assert declared["file"].startswith("deploy/secrets/"), declared


def test_secret_files_are_git_ignored_and_not_in_the_build_context():
    ignored = (REPO / ".gitignore").read_text().splitlines()
    assert "/deploy/secrets/*" in ignored
    assert "deploy/secrets" in (REPO / ".dockerignore").read_text().splitlines()


def test_generated_secrets_are_private_and_never_in_the_repository_files(tmp_path, text):
    files = deployment_secrets.write_compose_secrets(tmp_path / "secrets")
    assert stat.S_IMODE(files.dir.stat().st_mode) == 0o700
    for path in files.dir.rglob("*"):
        if path.is_file() and not path.name.endswith(".pub"):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    shared = deployment_secrets.SHARED_ENV_FILE.read_text()
    values = [files.value(name) for name in deployment_secrets.SECRET_VALUES]
    for value in values:
        assert value not in text and value not in shared
    env = deployment_secrets.read_env_file(files.env_file)
    # The pseudonymisation and sharing keys are files in keys/ (0700), in no env file: the
    # containers get the folder, and a process environment never holds them.
    assert stat.S_IMODE(files.keys.stat().st_mode) == 0o700
    for name, variable in deployment_secrets.KEY_VALUES.items():
        assert files.path(name).parent == files.keys and len(files.value(name)) == 64
        assert files.value(name) not in files.env_file.read_text()
        assert secret_variable_env(variable) not in env and secret_file_env(variable) not in env
    assert not SECRETISH.search("\n".join(deployment_secrets.shared_settings())), "a secret-looking key in deploy/airflow.env"
    assert deployment_secrets.read_env_file(files.postgres_env_file) == {"POSTGRES_PASSWORD": files.value("postgres_password")}
    # A signing key, and the allowed-signers file recipients verify its signatures with.
    assert files.signing_key.is_file() and stat.S_IMODE(files.signing_key.stat().st_mode) == 0o600
    public = " ".join(Path(f"{files.signing_key}.pub").read_text().split()[:2])
    assert files.allowed_signers.read_text().splitlines() == [
        f'{ns} namespaces="{ns}" {public}' for ns in ("samverkan-delivery", "samverkan-register")
    ]
    # The connections pin the partners' host keys, the same ones the partner servers get as secrets.
    known = files.known_hosts.read_text().splitlines()
    assert sorted(line.split()[0] for line in known) == sorted(f"partner-{f}" for f in _feeds())


def test_compose_secrets_match_the_generated_layout(compose, services):
    layout = deployment_secrets.SecretFiles(Path("deploy/secrets"))
    declared = {name: Path(s["file"]) for name, s in compose["secrets"].items()}
    assert declared["hub_ssh_key"] == layout.hub_key
    # The hub signs deliveries and register events in this deployment too, with a key of its own.
    assert declared["hub_signing_key"] == layout.signing_key
    common = compose["x-airflow-common"]
    assert {"hub_ssh_key", "hub_signing_key"} <= set(common["secrets"])
    assert common["environment"][REGISTER_KEY_ENV] == "/run/secrets/hub_signing_key"
    # keys/ as a read-only folder (a rotated key file is seen at once), where the file variables point.
    assert f"./deploy/secrets/keys:{deployment_secrets.COMPOSE_KEYS_DIR}:ro" in common["volumes"]
    for name, variable in deployment_secrets.KEY_VALUES.items():
        assert common["environment"][secret_file_env(variable)] == f"{deployment_secrets.COMPOSE_KEYS_DIR}/{name}"
    for feed in _feeds():
        assert declared[f"partner_{feed}_host_key"] == layout.host_key(feed)
        mounted = {s["source"]: s["target"] for s in services[f"partner-{feed}"]["secrets"]}
        assert mounted == {"hub_ssh_public_key": "authorized_key", f"partner_{feed}_host_key": "host_key"}
        assert services[f"partner-{feed}"]["environment"]["PARTNER_FEED"] == feed
    env_files = compose["x-airflow-common"]["env_file"]
    assert f"deploy/secrets/{deployment_secrets.SECRETS_ENV_NAME}" in env_files
    assert services["postgres"]["env_file"] == [f"deploy/secrets/{deployment_secrets.POSTGRES_ENV_NAME}"]


def test_same_settings_as_the_no_docker_stack(compose, services, tmp_path):
    """Both load deploy/airflow.env unchanged; Compose adds only endpoints and paths."""
    common = compose["x-airflow-common"]
    assert (REPO / common["env_file"][0]).resolve() == deployment_secrets.SHARED_ENV_FILE
    shared = deployment_secrets.shared_settings()
    assert shared["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    for name in AIRFLOW_SERVICES:
        env = services[name].get("environment") or common["environment"]
        overridden = set(env) & set(shared)
        assert not overridden, f"{name} overrides shared settings {overridden}"
    # Compose's endpoints are the ones the secrets generator writes for it.
    for key, value in deployment_secrets.endpoint_env(deployment_secrets.compose_endpoints(_feeds())).items():
        assert common["environment"][key] == value, key

    # The no-Docker stack's environment carries every shared setting unchanged.
    local = stack.LocalStack(tmp_path / "stack")
    local.files = deployment_secrets.ensure_secrets(tmp_path / "stack" / "secrets", _feeds())
    local.ports = {"api": 1, "scheduler_health": 2, "trigger_logs": 3, "postgres": 4, "redis": 5}
    local.servers = {f: SimpleNamespace(host="127.0.0.1", port=22000 + i, username="hub", path_prefix="")
                     for i, f in enumerate(_feeds())}
    env = local.env()
    for key, value in shared.items():
        assert env[key] == value, key
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://127.0.0.1:5/0"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://airflow:")
    # It signs deliveries and register events too, with its own secrets' signing key, and a
    # signature made with it verifies with the allowed-signers file handed to recipients.
    assert env[REGISTER_KEY_ENV] == str(local.files.signing_key)
    for name, variable in deployment_secrets.KEY_VALUES.items():  # the keys as files, as under Compose
        assert env[secret_file_env(variable)] == str(local.files.path(name)) and secret_variable_env(variable) not in env
    message = tmp_path / "manifest.json"
    message.write_text("{}")
    signature = sign_file(Path(env[REGISTER_KEY_ENV]), message, DELIVERY_NAMESPACE)
    assert file_verifies(local.files.allowed_signers, message, signature, DELIVERY_NAMESPACE, DELIVERY_NAMESPACE)


def test_database_and_broker_versions_match_the_packages_the_stack_test_uses(services):
    image_major = services["postgres"]["image"].split(":")[1].split(".")[0]
    try:
        debian_major = stack.postgres_bin().parent.name
    except RuntimeError:
        pytest.skip("PostgreSQL not installed here")
    assert image_major == debian_major
    assert services["redis"]["image"].startswith("redis:")


def test_only_the_ui_is_published_and_only_on_loopback(services):
    """Ports are published by docker-compose.override.yml only (the tests' host network has none)."""
    assert not {name for name, s in services.items() if s.get("ports")}
    override = yaml.safe_load(re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", (REPO / "docker-compose.override.yml").read_text()))
    published = {name: s["ports"] for name, s in override["services"].items() if s.get("ports")}
    assert published == {"airflow-apiserver": ["127.0.0.1:8080:8080"], "pull-service": ["127.0.0.1:2222:22"]}


def test_read_env_file_rejects_what_compose_would_misread(tmp_path):
    path = tmp_path / "x.env"
    path.write_text("# c\n\nA=1\nB='two'\nC={\"k\": true}\n")
    assert deployment_secrets.read_env_file(path) == {"A": "1", "B": "two", "C": '{"k": true}'}
    path.write_text("not a setting\n")
    with pytest.raises(ValueError, match="x.env:1"):
        deployment_secrets.read_env_file(path)


def test_the_test_stacks_secrets_are_the_same_layout_with_its_own_endpoints(tmp_path):
    """scripts/docker_secrets.py (what `scripts/docker secrets` runs for docker-compose.test.yml):
    it missed a new field of Endpoints once and only the Docker test, at its very end, found out."""
    import importlib.util
    import os

    spec = importlib.util.spec_from_file_location("docker_secrets", REPO / "scripts" / "docker_secrets.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    files = module.write_test_secrets(tmp_path / "secrets", uid=os.getuid())
    env = deployment_secrets.read_env_file(files.env_file)
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].split("@")[1].startswith("127.0.0.1:")
    assert files.signing_key.is_file() and files.path("pseudonym_secret").is_file()
    endpoints = module.test_endpoints(deployment_secrets.read_env_file(module.TEST_ENV), _feeds())
    assert endpoints.keys_dir == deployment_secrets.COMPOSE_KEYS_DIR
    assert endpoints.signing_key == "/run/secrets/hub_signing_key"
