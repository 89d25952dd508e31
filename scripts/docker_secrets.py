"""Secrets of the test stack (docker-compose.test.yml): ``scripts/docker secrets``.

The same files ``samverkan ops secrets`` writes to deploy/secrets/ (samverkan/ops/secrets.py),
with the endpoints of the host network (127.0.0.1 and the ports of deploy/docker-test.env) in the
connections and database URL instead of Compose's service names. The files the Airflow
containers mount (the hub's keys, keys/, the UI passwords) are given to their user, uid 50000, so they
stay 0600 and are still readable in the containers.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

from samverkan.core.contracts import load_contracts
from samverkan.ops import secrets as deployment_secrets

REPO = Path(__file__).resolve().parent.parent
TEST_ENV = REPO / "deploy" / "docker-test.env"
AIRFLOW_UID = 50000
HOST = "127.0.0.1"


def test_endpoints(ports: dict[str, str], feeds: list[str]) -> deployment_secrets.Endpoints:
    """Where the test stack's parts listen, as the containers on the host network reach them."""
    # The feeds with a demo partner server in the test stack (a port in deploy/docker-test.env).
    partners = {
        f: (HOST, int(ports[f"SAMVERKAN_TEST_{f.upper()}_PORT"]))
        for f in feeds
        if f"SAMVERKAN_TEST_{f.upper()}_PORT" in ports
    }
    # Compose's own endpoints (container paths, login), with the host network's addresses.
    return dataclasses.replace(
        deployment_secrets.compose_endpoints(feeds),
        postgres=f"{HOST}:{ports['SAMVERKAN_TEST_POSTGRES_PORT']}",
        redis=f"{HOST}:{ports['SAMVERKAN_TEST_REDIS_PORT']}",
        api_url=f"http://{HOST}:{ports['SAMVERKAN_TEST_API_PORT']}",
        partners=partners,
        recipients={r: partners[r] for r in deployment_secrets.push_recipients() if r in partners},
    )


def write_test_secrets(
    directory: Path, env_file: Path = TEST_ENV, uid: int = AIRFLOW_UID
) -> deployment_secrets.SecretFiles:
    endpoints = test_endpoints(deployment_secrets.read_env_file(env_file), sorted(load_contracts()))
    files = deployment_secrets.write_compose_secrets(directory, endpoints)
    for path in files.mounted_by_airflow():
        os.chown(path, uid, 0)
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args()
    files = write_test_secrets(args.dir)
    print(f"test stack secrets in {files.dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
