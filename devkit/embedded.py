"""The embedded default: the whole hub on one machine, with local partner servers.

Used by ``scripts/demo`` and by the end-to-end tests. It generates synthetic partner nights,
starts one real OpenSSH SFTP server per partner on 127.0.0.1 with its own host key, writes the
Airflow connections (pinned host keys) and the pseudonymisation secret into an environment file,
and runs the feed DAGs with Airflow's own runner (``airflow dags test``) on a SQLite metadata DB.
Nothing here is a stand-in: the same DAGs, connectors and suites run in production.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import subprocess
import sys
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from samverkan.connectors.sshd import SFTPServer, generate_keypair, public_key_line, start_sftp_server
from samverkan.core import nights
from samverkan.core.contracts import load_contracts
from samverkan.core.fsutil import HUB_UMASK, make_dirs
from samverkan.core.settings import DATA_ROOT_ENV, Paths
from samverkan.ops.secrets import conn_env_name
from samverkan.orchestration.task_secrets import PSEUDONYM_SECRET_VARIABLE, secret_file_env
from samverkan.sharing import attestation
from samverkan.sharing.agreements import load_agreements
from samverkan.sharing.recipient_pseudonyms import SHARING_SECRET_VARIABLE
from samverkan.sharing.register import write_allowed_signers
from samverkan.sharing.signing import REGISTER_KEY_ENV

REPO = Path(__file__).resolve().parent.parent
DELIVERY_CRON = "30 7 * * *"  # deliveries run on published data; in tests, an hour after the feeds
SECRET_FILE_ENV = secret_file_env(PSEUDONYM_SECRET_VARIABLE)
SHARING_SECRET_FILE_ENV = secret_file_env(SHARING_SECRET_VARIABLE)
# By path, so that naming it imports no Airflow here (samverkan/orchestration/executors.py).
EXECUTOR = "samverkan.orchestration.executors.PreloadingLocalExecutor"


@dataclass
class EmbeddedHub:
    """A hub rooted at ``root``: partners/, data/, airflow/, keys/ and env.sh below it."""

    root: Path
    quiet_period_seconds: float = 2.0
    smtp_port: int | None = None  # a mail server on 127.0.0.1 for alerts (tests: aiosmtpd); None: no alerts
    alert_to: str = "data-engineers@samverkan.invalid"
    servers: dict[str, SFTPServer] = field(default_factory=dict)
    inboxes: dict[str, SFTPServer] = field(default_factory=dict)  # push recipients' own servers
    _stack: ExitStack = field(default_factory=ExitStack)

    # --- layout --------------------------------------------------------------------------
    @property
    def partners_root(self) -> Path:
        return self.root / "partners"

    @property
    def data(self) -> Paths:
        return Paths(self.root / "data")

    @property
    def airflow_home(self) -> Path:
        return self.root / "airflow"

    @property
    def keys(self) -> Path:
        return self.root / "keys"

    def partner_root(self, feed: str) -> Path:
        return self.partners_root / feed

    @property
    def recipients_root(self) -> Path:
        """The recipients' side: push recipients' server roots, what pull recipients fetched."""
        return self.root / "recipients"

    def inbox(self, recipient: str) -> Path:
        """Where a push recipient's deliveries land on its own server (``<inbox>/<night>/``)."""
        directory = load_agreements()[recipient].delivery["directory"]
        return self.recipients_root / recipient / directory.lstrip("/")

    # --- set-up ----------------------------------------------------------------------------
    def secret_file(self, name: str) -> Path:
        """A random 32-byte secret of this hub, kept in a 0600 file, never in the repo."""
        path = self.keys / name
        if not path.exists():
            self.keys.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
        return path

    def _random_secret(self, name: str) -> str:
        return self.secret_file(name).read_text().strip()

    def secret(self) -> str:
        """The demo's pseudonymisation secret."""
        return self._random_secret("pseudonym_secret")

    def sharing_secret(self) -> str:
        """The key for recipients' pseudonyms: separate from the hub's (see README, Sharing)."""
        return self._random_secret("sharing_secret")

    def register_key(self) -> Path:
        """The disclosure register's signing key (Ed25519), and beside it the allowed-signers file
        recipients verify receipts with (``ssh-keygen -Y verify -f register_allowed_signers``)."""
        private = self.keys / "register_ed25519"
        if not private.exists():
            self.keys.mkdir(parents=True, exist_ok=True, mode=0o700)
            _, public = generate_keypair(private)
            write_allowed_signers(self.keys / "register_allowed_signers", public)
        if not (self.keys / "allowed_signers").exists():  # what recipients get: manifests' and register's signer
            attestation.write_allowed_signers(self.keys / "allowed_signers", public_key_line(Path(f"{private}.pub")))
        return private

    def client_key(self) -> tuple[Path, str]:
        private = self.keys / "hub_ed25519"
        if not private.exists():
            self.keys.mkdir(parents=True, exist_ok=True, mode=0o700)
            return generate_keypair(private)
        return private, Path(str(private) + ".pub").read_text().strip()

    def start_servers(self) -> dict[str, SFTPServer]:
        private, public = self.client_key()
        for feed in load_contracts():
            root = self.partner_root(feed)
            root.mkdir(parents=True, exist_ok=True)
            server = start_sftp_server(root, public, self.root / "sshd" / feed)
            self._stack.callback(server.stop)
            self.servers[feed] = server
        return self.servers

    def start_inboxes(self) -> dict[str, SFTPServer]:
        """One OpenSSH server per push recipient (the agreement's ``delivery.connection_id``),
        each with its own host key, pinned in that connection by ``env()``: the delivery DAGs
        then push over SFTP exactly as they would to the recipient's real server."""
        _, public = self.client_key()
        for recipient, agreement in load_agreements().items():
            if agreement.mode == "push":
                root = self.recipients_root / recipient
                server = start_sftp_server(root, public, self.root / "sshd" / f"inbox-{recipient}")
                self._stack.callback(server.stop)
                self.inboxes[recipient] = server
        return self.inboxes

    def stop(self) -> None:
        self._stack.close()
        self.servers.clear()
        self.inboxes.clear()

    def __enter__(self) -> EmbeddedHub:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def connection(self, feed: str) -> dict[str, Any]:
        private, _ = self.client_key()
        conn = json.loads(self.servers[feed].airflow_conn_json(private))
        conn.setdefault("extra", {})
        if isinstance(conn["extra"], str):
            conn["extra"] = json.loads(conn["extra"])
        conn["extra"]["quiet_period_seconds"] = self.quiet_period_seconds
        return conn

    def env(self) -> dict[str, str]:
        """Environment for Airflow commands run against this hub."""
        env = {
            "AIRFLOW_HOME": str(self.airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            # LocalExecutor, with GE imported in the scheduler before its workers fork the tasks.
            "AIRFLOW__CORE__EXECUTOR": EXECUTOR,
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),  # Data Docs in the Airflow UI
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            # Private by default: task logs for the hub's account and group, the UI on loopback only.
            "AIRFLOW__LOGGING__FILE_TASK_HANDLER_NEW_FILE_PERMISSIONS": "0o640",
            "AIRFLOW__LOGGING__FILE_TASK_HANDLER_NEW_FOLDER_PERMISSIONS": "0o750",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "GX_ANALYTICS_ENABLED": "False",
            # `airflow standalone` starts its components as `airflow ...` from PATH: this venv's.
            "PATH": os.pathsep.join(filter(None, [str(Path(sys.executable).parent), os.environ.get("PATH", "")])),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")])),
            DATA_ROOT_ENV: str(self.data.root),
            # Key files, read by each task (a rotated key takes effect at the next task; env.sh holds no key).
            SECRET_FILE_ENV: str(self.secret_file("pseudonym_secret")),
            SHARING_SECRET_FILE_ENV: str(self.secret_file("sharing_secret")),
            REGISTER_KEY_ENV: str(self.register_key()),
        }
        if self.smtp_port is not None:  # alerts: Airflow's SMTP connection + the recipients Variable
            env["AIRFLOW_CONN_SMTP_DEFAULT"] = json.dumps(
                {
                    "conn_type": "smtp",
                    "host": "127.0.0.1",
                    "port": self.smtp_port,
                    "extra": {
                        "from_email": "samverkan-hub@samverkan.invalid",
                        "disable_ssl": True,
                        "disable_tls": True,
                        "timeout": 10,
                        "retry_limit": 1,
                    },
                }
            )
            env["AIRFLOW_VAR_SAMVERKAN_ALERT_TO"] = self.alert_to
        contracts = load_contracts()
        for feed in self.servers:
            env[conn_env_name(contracts[feed].connection_id)] = json.dumps(self.connection(feed))
        agreements = load_agreements() if self.inboxes else {}
        for recipient, inbox in self.inboxes.items():
            conn_id = agreements[recipient].delivery["connection_id"]
            env[conn_env_name(conn_id)] = inbox.airflow_conn_json(self.client_key()[0])
        return env

    def write_env_file(self) -> Path:
        """``source``-able settings for running ``airflow`` by hand against this hub."""
        path = self.root / "env.sh"
        lines = [f"export {k}={shlex.quote(v)}" for k, v in sorted(self.env().items())]
        path.write_text(
            "# Generated by devkit.embedded; names the key files (not the keys): keep private.\n"
            + "\n".join(lines)
            + "\n"
        )
        path.chmod(0o600)
        return path

    # --- running ---------------------------------------------------------------------------
    def airflow(self, *args: str, check: bool = True, capture: bool = False) -> subprocess.CompletedProcess:
        env = {**os.environ, **self.env()}
        cmd = [str(Path(sys.executable).parent / "airflow"), *args]
        return subprocess.run(
            cmd,
            env=env,
            check=check,
            text=True,
            umask=HUB_UMASK,
            stdout=subprocess.PIPE if capture else None,
            stderr=subprocess.STDOUT if capture else None,
        )

    def migrate(self) -> None:
        """The metadata DB, and the admin password file the UI fills in: both created 0600 first
        (Airflow keeps an existing file's mode), since both hold what lets anyone act as admin."""
        make_dirs(self.airflow_home, 0o750)
        for directory in (self.root, self.airflow_home):
            directory.chmod(0o750)
        for name in ("airflow.db", "simple_auth_manager_passwords.json.generated"):
            os.close(os.open(self.airflow_home / name, os.O_WRONLY | os.O_CREAT, 0o600))
            (self.airflow_home / name).chmod(0o600)
        self.airflow("db", "migrate", capture=True)

    def run_feed(self, feed: str, night: date, *, check: bool = True) -> subprocess.CompletedProcess:
        """The scheduled DAG run covering ``night`` (the feed's own schedule, the morning after)."""
        logical = load_contracts()[feed].run_time_for(night).isoformat()
        return self.airflow("dags", "test", f"samverkan_{feed}", logical, check=check, capture=True)

    def run_delivery(self, recipient: str, night: date, *, check: bool = True) -> subprocess.CompletedProcess:
        """One run of a recipient's delivery DAG for ``night`` (and its look-back window)."""
        logical = nights.run_time(night, DELIVERY_CRON).isoformat()
        return self.airflow("dags", "test", f"samverkan_deliver_{recipient}", logical, check=check, capture=True)
