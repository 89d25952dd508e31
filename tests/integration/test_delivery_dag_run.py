"""A delivery DAG run by Airflow's own runner (`airflow dags test`) on the embedded hub."""

from __future__ import annotations

import hashlib
import shutil
from datetime import date

import pytest

from samverkan.ingest import pipeline
from samverkan.core.contracts import load_contracts
from devkit.embedded import REPO, EmbeddedHub
from samverkan.core.ledger import Ledger
from samverkan.privacy.pseudonymise import Pseudonymiser, key_from_secret
from samverkan.sharing.delivery import register_for
from samverkan.sharing.outbox import MANIFEST, delivery_dir
from devkit.synthetic import Population, write_nights

pytestmark = [pytest.mark.integration, pytest.mark.slow]

N1, N2 = date(2026, 11, 20), date(2026, 11, 21)


def _publish(hub: EmbeddedHub) -> None:
    from samverkan.quality.validation import Validator

    paths = hub.data.ensure()
    ledger, validator = Ledger(paths.ledger), Validator()
    hub_pseudonyms = Pseudonymiser(key_from_secret(hub.secret()))
    for truth in write_nights(hub.partners_root, [N1, N2], {"police": 80, "transit": 40, "guards": 40}, 5,
                              population=Population(5, 800)):
        target = paths.landing(truth.feed, truth.night.isoformat()) / truth.path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(truth.path, target)
        sha = hashlib.sha256(target.read_bytes()).hexdigest()
        entry = ledger.record_landed(truth.feed, target.name, truth.night.isoformat(), target.stat().st_size, 0, sha, "t")
        pipeline.process(load_contracts()[truth.feed], {"entry_id": entry, "name": target.name,
                         "night": truth.night.isoformat(), "path": str(target), "sha256": sha,
                         "size": target.stat().st_size, "action": "process"}, paths, ledger, hub_pseudonyms,
                         validator, run_id="t", expectations_dir=REPO / "expectations")


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
