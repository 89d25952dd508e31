"""The record of processing (GDPR art. 30) is generated from the configuration and committed:
it must be regenerated whenever a contract, an agreement or the legal-basis vocabulary changes."""

from __future__ import annotations

import json
import shutil

import pytest

from samverkan.sharing import ropa
from samverkan.sharing.agreements import AGREEMENTS_DIR, agreement_paths

pytestmark = pytest.mark.unit


def test_the_committed_record_is_up_to_date():
    assert ropa.stale() == [], "run `samverkan ropa` and commit docs/record-of-processing.*"


def test_a_changed_agreement_makes_the_committed_record_stale(tmp_path, monkeypatch):
    for path in agreement_paths():
        shutil.copy(path, tmp_path / path.name)
    changed = tmp_path / "transit.yaml"
    changed.write_text(changed.read_text(encoding="utf-8").replace("retention_days: 30", "retention_days: 31"),
                       encoding="utf-8")
    monkeypatch.setattr(ropa, "agreement_paths", lambda: agreement_paths(tmp_path))
    assert ropa.stale() == ["docs/record-of-processing.md", "docs/record-of-processing.json"]


def test_the_record_names_basis_purpose_retention_and_safeguards_per_recipient():
    record = json.loads(ropa.RECORD_JSON.read_text(encoding="utf-8"))
    municipality = next(r for r in record["recipients"] if r["recipient"] == "municipality")
    incidents = next(d for d in municipality["datasets"] if d["dataset"] == "incidents")
    category = next(c for c in incidents["columns"] if c["column"] == "category")
    assert category["basis"] == "kommun_brottsuppgifter" and category["article_10"]
    assert "dataskyddslagen" in category["grounds"]
    assert municipality["retention_days"] == 365 and municipality["safeguards"]["k_anonymity"]["k"] == 5
    police_feed = next(f for f in record["feeds"] if f["feed"] == "police")
    assert {p["role"] for p in police_feed["persons"]} >= {"suspect", "victim"}
    assert {"field": "personnummer", "handling": "pseudonymise", "method": None, "why": None} in \
        police_feed["personal_fields"]
    assert set(record["inputs"]) >= {f"agreements/{p.name}" for p in AGREEMENTS_DIR.glob("*.yaml")}
