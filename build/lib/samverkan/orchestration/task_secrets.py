"""Reading the hub's keys inside a task: from a key file when one is named, else an Airflow Variable.

A key held in an environment variable is copied into every process at start (and into the
``env.sh`` that started it), so replacing the key file changes nothing until everything that
copied it is restarted or regenerated: a rotation that silently does nothing. When
``SAMVERKAN_<NAME>_FILE`` names a file (the embedded hub's ``keys/``, a mounted secret), each
task reads the key from it afresh, so ``ops rotate-key`` takes effect from the next task on.
Without it, the Airflow Variable (a secrets backend, or ``AIRFLOW_VAR_…``) is the source.
Either way the value is registered with Airflow's log masker the moment it is read.
"""

from __future__ import annotations

import os
from pathlib import Path

from samverkan.core.settings import PSEUDONYM_SECRET_VARIABLE, secret_file_env

__all__ = ["PSEUDONYM_SECRET_VARIABLE", "read_secret", "secret_file_env"]


def read_secret(variable: str) -> str:
    """The secret's current text (the key file's, if named), masked in logs from now on."""
    from airflow.sdk import Variable
    from airflow.sdk.log import mask_secret

    path = os.environ.get(secret_file_env(variable))
    secret = Path(path).read_text(encoding="utf-8").strip() if path else Variable.get(variable)
    mask_secret(secret)
    return secret
