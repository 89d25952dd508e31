"""The README's "Add a partner" path (docs/partners.md), from scratch, for a new incident-only feed:
operator commands and a contract edit only, no code change. The new feed's night then goes
through the real pipeline: incidents published, no involvement row, the phone number gone."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import pytest
import yaml

from devkit.leakscan import PersonalValues, scan
from samverkan.core.contracts import load_contract
from samverkan.core.ledger import Ledger
from samverkan.core.settings import Paths
from samverkan.ingest.pipeline import process
from samverkan.ops import commands as ops
from samverkan.privacy.pseudonymise import Pseudonymiser
from samverkan.quality.validation import Validator

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NIGHT = date(2026, 11, 20)
PHONE = "070-931 22 84"
FILE = ("handelse_id;tidpunkt;plats;kategori;beskrivning\n"
        "P-1001;2026-11-20 21:40;Busstorget;Nedskräpning;Fimpar och burkar vid bänkarna.\n"
        f"P-1002;2026-11-20 22:05;Prästgatan 12;Klotter;Klotter på p-automaten. Ring Zoé på {PHONE}.\n"
        "P-1003;2026-11-20 23:50;Stortorget;Trasig belysning;Lampan vid infarten är släckt.\n")


def _make_incident_only(path: Path) -> None:
    """The edit docs/partners.md describes: the partner's real columns, no person, kind incidents_only."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["columns"] = [c for c in data["columns"] if c["name"] != "personnummer"]
    plats = next(c for c in data["columns"] if c["name"] == "plats")
    plats["personal"] = {"handling": "generalise", "method": "street_only", "why": "a resident's own address"}
    kategori = next(c for c in data["columns"] if c["name"] == "kategori")
    kategori["allowed"] = ["Nedskräpning", "Klotter", "Trasig belysning"]
    data["model"]["kind"] = "incidents_only"
    data["model"].pop("involvements")
    data["model"]["incident"]["category"]["map"] = {"Nedskräpning": "litter", "Klotter": "graffiti",
                                                    "Trasig belysning": "lighting"}
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def test_a_new_incident_only_partner_with_no_code_change(tmp_path, capsys):
    schemas, expectations = tmp_path / "schemas", tmp_path / "expectations"
    schemas.mkdir()
    log = ["--log-file", str(tmp_path / "ops.log")]
    assert ops.main(["add-partner", "parkering", "--name", "Östersunds kommun, parkeringsenheten",
                     "--schemas-dir", str(schemas), "--expectations-dir", str(expectations), *log]) == 0
    contract_path = schemas / "parkering.yaml"
    _make_incident_only(contract_path)
    # The suite is stale after the edit: check-contract says so until it is regenerated.
    assert ops.main(["check-contract", str(contract_path), "--expectations-dir", str(expectations), *log]) == 2
    assert ops.main(["check-contract", str(contract_path), "--expectations-dir", str(expectations),
                     "--write-suites", *log]) == 0
    out = capsys.readouterr().out
    assert "contract parkering v1 is valid; DAG samverkan_parkering builds; suites current" in out
    assert "great_expectations" not in out and "Skipping registering" not in out  # library logs went to the file
    # Great Expectations logs its start-up once per process: a fresh process shows where they go.
    fresh = subprocess.run([sys.executable, "-m", "samverkan.cli", "ops", "check-contract", str(contract_path),
                            "--expectations-dir", str(expectations), "--log-file", str(tmp_path / "fresh.log")],
                           capture_output=True, text=True, check=True)
    assert fresh.stdout.strip().endswith("suites current") and "Skipping registering" not in fresh.stdout + fresh.stderr
    assert "Skipping registering" in (tmp_path / "fresh.log").read_text(encoding="utf-8")

    contract = load_contract(contract_path)
    assert contract.datasets == ("incidents",)
    paths = Paths(tmp_path / "data").ensure()
    landing = paths.landing(contract.id, NIGHT.isoformat()) / "parkering_20261120.csv"
    landing.parent.mkdir(parents=True)
    landing.write_text(FILE, encoding="utf-8")
    sha = hashlib.sha256(landing.read_bytes()).hexdigest()
    ledger = Ledger(paths.ledger)
    entry = ledger.record_landed(contract.id, landing.name, NIGHT.isoformat(), landing.stat().st_size, 0, sha, "t")
    landed = {"entry_id": entry, "name": landing.name, "night": NIGHT.isoformat(), "path": str(landing),
              "sha256": sha, "size": landing.stat().st_size, "action": "process"}
    result = process(contract, landed, paths, ledger, Pseudonymiser(bytes(range(32))), Validator(),
                     run_id="scratch", expectations_dir=expectations)

    assert (result.status, result.rows_published, result.incidents, result.involvements) == ("published", 3, 3, 0)
    assert not paths.dataset("involvements").exists()
    rows = duckdb.sql(f"SELECT category, category_kind, area FROM read_parquet('{paths.published}/incidents/**/*.parquet')"
                      " ORDER BY category").fetchall()
    assert rows == [("graffiti", "environment", "prastgatan"), ("lighting", "environment", "stortorget"),
                    ("litter", "environment", "gustav_iii_torg")]
    assert scan([paths.published], PersonalValues(phones={PHONE}, name_tokens={"zoé"})) == []
