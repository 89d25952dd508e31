"""A delivery DAG run by Airflow's own runner (`airflow dags test`) on the embedded hub."""

from __future__ import annotations

import hashlib
from datetime import date

import pytest

from devkit.embedded import EmbeddedHub
from samverkan.privacy.pseudonymise import key_from_secret
from samverkan.sharing.delivery import register_for
from samverkan.sharing.outbox import MANIFEST, delivery_dir
from devkit.synthetic import Population, write_nights
from tests.integration.resilience_support import Hub

pytestmark = [pytest.mark.integration, pytest.mark.slow]

N1, N2 = date(2026, 11, 20), date(2026, 11, 21)


def _publish(hub: EmbeddedHub) -> None:
    from samverkan.quality.validation import Validator

    local = Hub.create(hub.data.root, Validator(), key_from_secret(hub.secret()))
    local.publish(write_nights(hub.partners_root, [N1, N2], {"police": 80, "transit": 40, "guards": 40}, 5,
                               population=Population(5, 800)))


def test_delivery_dag_delivers_the_window_and_registers_it(tmp_path):
    hub = EmbeddedHub(tmp_path / "hub")
    _publish(hub)
    hub.migrate()
    done = hub.run_delivery("municipality", N2, check=False)
    assert done.returncode == 0, done.stdout[-3000:]
    assert hub.sharing_secret() not in done.stdout and hub.secret() not in done.stdout
    events = register_for(hub.data).events()
    # One mapped task per night: they may finish in either order.
    assert sorted((e["event"], e["delivery_id"]) for e in events) == [("delivery", N1.isoformat()),
                                                                       ("delivery", N2.isoformat())]
    assert all(e["run_id"].startswith("manual__") for e in events)
    for e in events:
        manifest = delivery_dir(hub.data, "municipality", date.fromisoformat(e["delivery_id"])) / MANIFEST
        assert hashlib.sha256(manifest.read_bytes()).hexdigest() == e["manifest_sha256"]
    again = hub.run_delivery("municipality", N2, check=False)
    assert again.returncode == 0
    assert len(register_for(hub.data).events()) == 2  # nothing changed, nothing re-disclosed
