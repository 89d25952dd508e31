"""The deployment's secrets and shared settings: files, never in the repository or a compose file.

``docker-compose.yml`` and the no-Docker stack read the same shared settings,
``deploy/airflow.env``; what differs is where things run (endpoints) and the secrets, which both
take from files made by ``ensure_secrets``: ``deploy/secrets/`` for Compose
(``samverkan ops secrets``), ``<root>/secrets/`` for the no-Docker stack.
"""

from __future__ import annotations

import json
import os
import secrets as random_secrets
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from samverkan.core.fsutil import Below
from samverkan.core.ledger import LEDGER_URL_ENV
from samverkan.core.settings import CONFIG_ROOT, PSEUDONYM_SECRET_VARIABLE, secret_file_env
from samverkan.sharing.attestation import allowed_signers_lines
from samverkan.sharing.recipient_pseudonyms import SHARING_SECRET_VARIABLE
from samverkan.sharing.signing import REGISTER_KEY_ENV

REPO = CONFIG_ROOT
DEPLOY = REPO / "deploy"
SHARED_ENV_FILE = DEPLOY / "airflow.env"
COMPOSE_SECRETS_DIR = DEPLOY / "secrets"
SECRETS_ENV_NAME = "airflow-secrets.env"
POSTGRES_ENV_NAME = "postgres.env"
DEFAULT_WORKERS = 2
HOST = "127.0.0.1"
ADMIN_USER = "admin"
# The hub's two keys are files in ``keys/``, which the Airflow processes get as a directory (a
# read-only mount under Compose) and read afresh in every task (``task_secrets.read_secret``):
# no process environment holds them, and ``ops rotate-key`` takes effect from the next task on.
KEY_VALUES = {"pseudonym_secret": PSEUDONYM_SECRET_VARIABLE, "sharing_secret": SHARING_SECRET_VARIABLE}
WORKER_NAME_ENV = "SAMVERKAN_WORKER_NAME"
CELERY_APP = "airflow.providers.celery.executors.celery_executor.app"
TERMINAL_RUN_STATES = {"success", "failed"}
# Files in a secrets directory, each a random value of its own; made once, never overwritten.
SECRET_VALUES = (
    "pseudonym_secret",
    "sharing_secret",
    "postgres_password",
    "fernet_key",
    "jwt_secret",
    "api_secret_key",
    "admin_password",
)


def conn_env_name(conn_id: str) -> str:
    """The environment variable Airflow reads an Airflow connection from."""
    return "AIRFLOW_CONN_" + conn_id.upper()


# --- the shared settings -----------------------------------------------------------------------


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines as Compose's ``env_file`` reads them (comments and blanks skipped)."""
    values: dict[str, str] = {}
    for number, raw in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip().replace("_", "").isalnum():
            raise ValueError(f"{path}:{number}: not a KEY=VALUE line")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def shared_settings() -> dict[str, str]:
    return read_env_file(SHARED_ENV_FILE)


def write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    path.chmod(0o600)


def env_line(key: str, value: str) -> str:
    if "\n" in value:
        raise ValueError(f"{key}: multi-line values do not fit an env file")
    return f"{key}={value}"


# --- secrets: files, never in the repository or the compose file ------------------------------


@dataclass(frozen=True)
class SecretFiles:
    """A secrets directory: random values, the hub's SSH key, the demo partners' host keys."""

    dir: Path

    keys = Below("keys", base="dir")  # KEY_VALUES: mounted as a directory, never in an env file
    hub_key = Below("hub_ed25519", base="dir")
    # Signs every delivery's manifest and every disclosure register event (samverkan.sharing.signing);
    # recipients verify with ``allowed_signers``, given to each of them once.
    signing_key = Below("hub_signing_ed25519", base="dir")
    allowed_signers = Below("allowed_signers", base="dir")
    pull_host_key = Below("pull", "ssh_host_ed25519_key", base="dir")  # recipients pin its public half
    known_hosts = Below("known_hosts", base="dir")
    passwords_file = Below("simple_auth_manager_passwords.json", base="dir")
    env_file = Below(SECRETS_ENV_NAME, base="dir")
    postgres_env_file = Below(POSTGRES_ENV_NAME, base="dir")

    def mounted_by_airflow(self) -> list[Path]:
        """What the Airflow containers read (as uid 50000): their keys, the UI passwords, ``keys/``."""
        return [self.hub_key, self.signing_key, self.passwords_file, self.keys, *map(self.path, KEY_VALUES)]

    def path(self, name: str) -> Path:
        return (self.keys if name in KEY_VALUES else self.dir) / name

    def value(self, name: str) -> str:
        return self.path(name).read_text(encoding="utf-8").strip()

    def host_key(self, feed: str) -> Path:
        return self.dir / "partners" / feed / "ssh_host_ed25519_key"

    def host_key_line(self, feed: str) -> str:
        key_type, data = Path(f"{self.host_key(feed)}.pub").read_text(encoding="ascii").split()[:2]
        return f"{key_type} {data}"

    def recipient_key(self, recipient: str) -> Path:
        """A pull recipient's key pair (demo and tests; a real recipient sends only the public half)."""
        return self.dir / "recipients" / recipient / "id_ed25519"


def _new_value(name: str) -> str:
    if name == "fernet_key":
        from cryptography.fernet import Fernet

        return Fernet.generate_key().decode("ascii")
    if name == "admin_password":
        return random_secrets.token_urlsafe(18)
    return random_secrets.token_hex(32)


def move_keys_into_place(files: SecretFiles) -> None:
    """``keys/`` (0700), with a key an earlier layout kept beside the other values moved into it:
    the same key, so pseudonyms stay stable across the change."""
    files.keys.mkdir(parents=True, exist_ok=True, mode=0o700)
    files.keys.chmod(0o700)
    for name in KEY_VALUES:
        if (files.dir / name).exists() and not files.path(name).exists():
            os.replace(files.dir / name, files.path(name))


def ensure_secrets(directory: Path, feeds: Iterable[str], pull_recipients: Iterable[str] = ()) -> SecretFiles:
    """Create whatever is missing below ``directory`` (0700/0600); existing files are kept.
    With ``pull_recipients``, also the pull service's host key and a key pair per recipient."""
    from samverkan.connectors.sshd import generate_keypair, public_key_line

    files = SecretFiles(Path(directory).resolve())
    files.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    files.dir.chmod(0o700)
    move_keys_into_place(files)
    for name in SECRET_VALUES:
        if not files.path(name).exists():
            write_private(files.path(name), _new_value(name) + "\n")
    if not files.hub_key.exists():
        generate_keypair(files.hub_key)
    if not files.signing_key.exists():
        generate_keypair(files.signing_key)
    public = public_key_line(Path(f"{files.signing_key}.pub"))
    write_private(files.allowed_signers, allowed_signers_lines(public))  # public, but in a private folder
    for feed in feeds:
        if not files.host_key(feed).exists():
            generate_keypair(files.host_key(feed))
    pull_recipients = list(pull_recipients)
    for key in [files.pull_host_key] * bool(pull_recipients) + [files.recipient_key(r) for r in pull_recipients]:
        if not key.exists():
            generate_keypair(key)
    # Airflow's simple auth manager reads (and would otherwise generate) this file.
    write_private(files.passwords_file, json.dumps({ADMIN_USER: files.value("admin_password")}) + "\n")
    return files


@dataclass(frozen=True)
class Endpoints:
    """Where the parts are, as the Airflow processes reach them."""

    postgres: str  # host:port
    redis: str  # host:port
    api_url: str  # the api-server's base URL
    partners: dict[str, tuple[str, int]]  # feed -> (host, port) of its SFTP server
    partner_login: str
    key_file: str  # the hub's private SSH key, as the workers see it
    signing_key: str  # the hub's signing key (deliveries, register events), as the workers see it
    keys_dir: str  # the secrets' keys/ (the pseudonymisation and sharing keys), as the workers see it
    path_prefix: str = ""  # prefix of remote paths (empty when sshd chroots)
    # push recipient (agreement id) -> (host, port) of its SFTP server; the demo's recipients
    # receive on the server they export from, so its host key is that partner's
    recipients: dict[str, tuple[str, int]] = field(default_factory=dict)


def push_recipients() -> list[str]:
    """The agreements delivered by push (each needs an SFTP connection to its recipient's server)."""
    from samverkan.sharing.agreements import load_agreements

    return sorted(a.id for a in load_agreements().values() if a.mode == "push")


def pull_recipients() -> list[str]:
    """The agreements delivered by pull (each gets an account on the pull service)."""
    from samverkan.sharing.agreements import load_agreements

    return sorted(a.id for a in load_agreements().values() if a.mode == "pull")


COMPOSE_KEYS_DIR = "/run/samverkan/keys"  # docker-compose.yml mounts deploy/secrets/keys/ here, read-only


def compose_endpoints(feeds: Iterable[str]) -> Endpoints:
    """Service names and container paths of docker-compose.yml."""
    feeds = list(feeds)
    return Endpoints(
        postgres="postgres:5432",
        redis="redis:6379",
        api_url="http://airflow-apiserver:8080",
        partners={feed: (f"partner-{feed}", 22) for feed in feeds},
        partner_login="partner",
        key_file="/run/secrets/hub_ssh_key",
        signing_key="/run/secrets/hub_signing_key",
        keys_dir=COMPOSE_KEYS_DIR,
        recipients={r: (f"partner-{r}", 22) for r in push_recipients() if r in feeds},
    )


def database_url(files: SecretFiles, endpoints: Endpoints, driver: str = "postgresql+psycopg2") -> str:
    password = urllib.parse.quote(files.value("postgres_password"), safe="")
    return f"{driver}://airflow:{password}@{endpoints.postgres}/airflow"


def endpoint_env(endpoints: Endpoints) -> dict[str, str]:
    """Not secret: where the broker, the execution API and the keys are (paths, not keys)."""
    return {
        "AIRFLOW__CELERY__BROKER_URL": f"redis://{endpoints.redis}/0",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{endpoints.api_url}/execution/",
        # Every deployment sets it: without it deliveries and register events go unsigned.
        REGISTER_KEY_ENV: endpoints.signing_key,
        **{secret_file_env(variable): f"{endpoints.keys_dir}/{name}" for name, variable in KEY_VALUES.items()},
    }


def secret_env(files: SecretFiles, endpoints: Endpoints, contracts: dict[str, Any]) -> dict[str, str]:
    """The secret settings of every Airflow process: DB URL, Airflow's keys, SFTP connections
    (the pseudonymisation and sharing keys are files in ``keys/``, see ``endpoint_env``)."""

    env = {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database_url(files, endpoints),
        "AIRFLOW__CELERY__RESULT_BACKEND": database_url(files, endpoints, "db+postgresql"),
        "AIRFLOW__CORE__FERNET_KEY": files.value("fernet_key"),
        "AIRFLOW__API_AUTH__JWT_SECRET": files.value("jwt_secret"),
        "AIRFLOW__API__SECRET_KEY": files.value("api_secret_key"),
        # The ledger in the same PostgreSQL (schema samverkan): workers in separate containers or
        # machines claim and settle files in one place.
        LEDGER_URL_ENV: database_url(files, endpoints, "postgresql"),
    }
    for feed, contract in contracts.items():
        env[conn_env_name(contract.connection_id)] = sftp_connection(files, endpoints, feed, endpoints.partners[feed])
    env.update(delivery_connections(files, endpoints))
    return env


def delivery_connections(files: SecretFiles, endpoints: Endpoints) -> dict[str, str]:
    """The SFTP connection of each push recipient in ``endpoints``, its host key pinned."""
    from samverkan.sharing.agreements import load_agreements

    agreements = load_agreements()
    env = {}
    for recipient, address in endpoints.recipients.items():
        connection = sftp_connection(files, endpoints, recipient, address)
        env[conn_env_name(agreements[recipient].delivery["connection_id"])] = connection
    return env


def sftp_connection(files: SecretFiles, endpoints: Endpoints, server: str, address: tuple[str, int]) -> str:
    """An Airflow SFTP connection (JSON) to a partner's or recipient's server, its host key pinned."""
    host, port = address
    extra = {
        "key_file": endpoints.key_file,
        "host_key": files.host_key_line(server),
        "path_prefix": endpoints.path_prefix,
    }
    return json.dumps(
        {"conn_type": "sftp", "host": host, "port": port, "login": endpoints.partner_login, "extra": extra}
    )


def write_known_hosts(files: SecretFiles, endpoints: Endpoints, feeds: Iterable[str]) -> Path:
    lines = []
    for feed in feeds:
        host, port = endpoints.partners[feed]
        name = host if port == 22 else f"[{host}]:{port}"
        lines.append(f"{name} {files.host_key_line(feed)}")
    write_private(files.known_hosts, "\n".join(lines) + "\n")
    return files.known_hosts


def write_compose_secrets(directory: Path = COMPOSE_SECRETS_DIR, endpoints: Endpoints | None = None) -> SecretFiles:
    """Everything docker-compose.yml mounts or loads from ``deploy/secrets/``; ``endpoints``
    other than Compose's service names for another network (docker-compose.test.yml's)."""
    from samverkan.core.contracts import load_contracts

    contracts = load_contracts()
    endpoints = endpoints or compose_endpoints(contracts)
    # The feeds this deployment has a server for (all of them in docker-compose.yml).
    contracts = {feed: c for feed, c in contracts.items() if feed in endpoints.partners}
    files = ensure_secrets(directory, contracts, pull_recipients())
    write_known_hosts(files, endpoints, contracts)
    env = secret_env(files, endpoints, contracts)
    header = "# Generated by `samverkan ops secrets`: secret values, keep private, never commit.\n"
    write_private(files.env_file, header + "\n".join(env_line(k, v) for k, v in sorted(env.items())) + "\n")
    write_private(
        files.postgres_env_file, header + env_line("POSTGRES_PASSWORD", files.value("postgres_password")) + "\n"
    )
    return files
