"""What a task needs from its environment: connections, the secret, the data root.

Imported inside tasks only. Credentials come from Airflow connections (one per partner, with
the pinned host key in the ``host_key`` extra) and the pseudonymisation secret from an Airflow
Variable, so a secrets backend can hold both; the secret is registered with Airflow's log
masker the moment it is read.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Any

from connectors.sftp import SFTPConnector, SFTPSettings
from samverkan import pipeline
from samverkan.contracts import Contract
from samverkan.ledger import Ledger
from samverkan.pseudonymise import Pseudonymiser, key_from_secret
from samverkan.settings import paths

log = logging.getLogger(__name__)

PSEUDONYM_SECRET_VARIABLE = "samverkan_pseudonym_secret"


def _connector(contract: Contract) -> SFTPConnector:
    return SFTPConnector(SFTPSettings.from_airflow_connection(contract.connection_id))


def _ledger() -> Ledger:
    return Ledger(paths().ensure().ledger)


def pseudonymiser_from_airflow() -> Pseudonymiser:
    from airflow.sdk import Variable
    from airflow.sdk.log import mask_secret

    secret = Variable.get(PSEUDONYM_SECRET_VARIABLE)
    mask_secret(secret)
    return Pseudonymiser(key_from_secret(secret))


def _quiet_period_override(contract: Contract) -> float | None:
    from airflow.sdk import BaseHook

    value = BaseHook.get_connection(contract.connection_id).extra_dejson.get("quiet_period_seconds")
    return float(value) if value is not None else None


def discover(contract: Contract, night: date) -> list[dict[str, Any]]:
    with _connector(contract) as connector:
        return pipeline.discover(contract, connector, _ledger(), night,
                                 quiet_period_seconds=_quiet_period_override(contract))


def fetch(contract: Contract, candidate: dict[str, Any], run_id: str) -> dict[str, Any]:
    with _connector(contract) as connector:
        return pipeline.fetch(contract, connector, _ledger(), paths().ensure(), candidate, run_id)


def process(contract: Contract, landed: dict[str, Any], run_id: str, expectations_dir: Path) -> dict[str, Any]:
    if landed.get("action") == "skip":
        return {"feed": contract.id, "name": landed["name"], "night": landed["night"], "sha256": landed["sha256"],
                "status": landed["status"], "reason": landed["reason"]}
    from samverkan.validation import Validator

    result = pipeline.process(contract, landed, paths().ensure(), _ledger(), pseudonymiser_from_airflow(), Validator(),
                              run_id=run_id, expectations_dir=expectations_dir)
    return asdict(result)


def summarise(contract: Contract, landed: list[dict[str, Any]], results: list[dict[str, Any]], run_id: str,
              night: date) -> dict[str, Any]:
    processed = [r for r in results if r and r.get("status") in ("published", "rejected")]
    skipped = [r for r in results if r and r.get("status") not in ("published", "rejected")]
    done = {r["name"] for r in results if r}
    failed = [{"name": l["name"], "night": l["night"], "sha256": l.get("sha256"), "status": "failed",
               "reason": "processing task failed; see its log"} for l in landed if l and l["name"] not in done]
    manifest = pipeline.summarise(contract, paths().ensure(), processed, skipped + failed, run_id, night.isoformat())
    if failed:
        raise RuntimeError(f"{len(failed)} file(s) could not be processed: {', '.join(f['name'] for f in failed)}")
    return manifest["totals"]
