"""Where the hub reads its configuration and keeps what it writes.

The configuration (schemas/, expectations/, agreements/, measures/, plugins/) sits in one folder,
the project root: the checkout, or the folder an image copies it to, set by
``SAMVERKAN_CONFIG_ROOT`` when the package is installed elsewhere.

What it writes goes below one data root, set by ``SAMVERKAN_DATA_ROOT``.

Everything lives below it, split into a private zone (landing, ledger, quarantine, staging:
raw personal data, never shared) and a published zone (pseudonymised Parquet and manifests,
what partners fetch and analysts query). Keeping both under one root on one filesystem lets
every publish be an atomic rename.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from samverkan.core.fsutil import SHARED_DIR_MODE, Below

PSEUDONYM_SECRET_VARIABLE = "samverkan_pseudonym_secret"  # the Airflow Variable holding the key


def secret_file_env(variable: str) -> str:
    """``samverkan_pseudonym_secret`` → ``SAMVERKAN_PSEUDONYM_SECRET_FILE`` (a key file's path)."""
    return f"{variable.upper()}_FILE"


def secret_variable_env(variable: str) -> str:
    """The environment form of an Airflow Variable: ``AIRFLOW_VAR_SAMVERKAN_PSEUDONYM_SECRET``."""
    return f"AIRFLOW_VAR_{variable.upper()}"


CONFIG_ROOT_ENV = "SAMVERKAN_CONFIG_ROOT"
CONFIG_ROOT = Path(os.environ.get(CONFIG_ROOT_ENV) or Path(__file__).resolve().parents[2])
DATA_ROOT_ENV = "SAMVERKAN_DATA_ROOT"
DEFAULT_DATA_ROOT = CONFIG_ROOT / "var" / "data"


@dataclass(frozen=True)
class Paths:
    """The one description of the data root's layout::

    private/    landing/<feed>/<night>/, ledger.sqlite, quarantine/<feed>/{rows,files}/, incident_ids/, staging/
    published/  <dataset>/night=…/source=…/*.parquet, _manifests/<feed>/
    reports/    validation records, Data Docs, expectation outcomes, receipts (value-free)
    outbox/     <recipient>/<delivery>/ (what recipients pull)
    register/   the disclosure register
    """

    root: Path

    private = Below("private")
    published = Below("published")
    reports = Below("reports")
    outbox = Below("outbox")
    register = Below("register")
    ledger = Below("private", "ledger.sqlite")
    staging = Below("private", "staging")
    incident_ids = Below("private", "incident_ids")  # partner incident keys <-> published (keyed) ids, for corrections

    def landing(self, feed: str, night: str) -> Path:
        return self.private / "landing" / feed / night

    def quarantine_rows(self, feed: str) -> Path:
        return self.private / "quarantine" / feed / "rows"

    def quarantine_files(self, feed: str) -> Path:
        return self.private / "quarantine" / feed / "files"

    def dataset(self, name: str) -> Path:
        return self.published / name

    def manifests(self, feed: str) -> Path:
        return self.published / "_manifests" / feed

    def ensure(self) -> Paths:
        for p in (self.private, self.staging):
            p.mkdir(parents=True, exist_ok=True)
            p.chmod(0o700)
        self.published.mkdir(parents=True, exist_ok=True)
        # The analysts' group reads published/ (a set-group-id bit an operator set is kept); others never.
        self.published.chmod((self.published.stat().st_mode & 0o2000) | SHARED_DIR_MODE)
        return self


def data_root() -> Path:
    return Path(os.environ.get(DATA_ROOT_ENV) or DEFAULT_DATA_ROOT).resolve()


def paths() -> Paths:
    return Paths(data_root())
