"""What a delivery task needs from Airflow: the sharing secret and the recipients' connections.

Imported inside tasks only. The sharing secret (Airflow Variable ``samverkan_sharing_secret``,
so a secrets backend can hold it) is registered with Airflow's log masker as soon as it is read;
a push recipient's SFTP server is an Airflow connection with its host key pinned, exactly like a
partner's.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from samverkan.connectors.sftp import SFTPConnector, SFTPSettings
from samverkan.core.fsutil import restrict_umask
from samverkan.core.settings import paths
from samverkan.orchestration.task_secrets import read_secret
from samverkan.privacy.pseudonymise import key_from_secret
from samverkan.sharing import delivery, retention
from samverkan.sharing.agreements import Agreement
from samverkan.sharing.recipient_pseudonyms import SHARING_SECRET_VARIABLE, RecipientPseudonyms

restrict_umask()  # imported inside tasks only: everything a task creates is for the hub and its group


def sharing_key() -> bytes:
    return key_from_secret(read_secret(SHARING_SECRET_VARIABLE))


def plan(agreement: Agreement, night: date, today: date) -> list[str]:
    return delivery.plan(agreement, paths().ensure(), night, today=today)


def deliver(agreement: Agreement, night: str, run_id: str) -> dict[str, Any]:
    pseudonyms = RecipientPseudonyms(sharing_key(), agreement.id, agreement.pseudonym_epoch)
    if agreement.mode == "push":
        settings = SFTPSettings.from_airflow_connection(agreement.delivery["connection_id"])
        with SFTPConnector(settings) as connector:
            return delivery.deliver(
                agreement, paths().ensure(), date.fromisoformat(night), pseudonyms, run_id, connector=connector
            )
    return delivery.deliver(agreement, paths().ensure(), date.fromisoformat(night), pseudonyms, run_id)


def apply_retention(agreement: Agreement, today: date, run_id: str) -> list[dict[str, Any]]:
    p = paths().ensure()
    return retention.apply_retention(agreement, p, delivery.register_for(p), today, run_id)
