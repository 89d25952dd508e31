"""Test-wide settings: Airflow and the hub write only below pytest's temporary directories."""

import os
import tempfile
from pathlib import Path

_home = Path(tempfile.mkdtemp(prefix="samverkan-airflow-home-"))
os.environ.setdefault("AIRFLOW_HOME", str(_home))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(Path(__file__).resolve().parent.parent / "dags"))
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
os.environ.setdefault("SAMVERKAN_DATA_ROOT", str(_home / "data"))
