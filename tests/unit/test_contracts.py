"""Contracts load strictly: shape errors and dangling references name the file and the field."""

from datetime import date
from pathlib import Path

import pytest
import yaml

from samverkan.core.contracts import ContractError, load_contract, load_contracts, SCHEMAS_DIR

pytestmark = pytest.mark.unit


def _write_variant(tmp_path: Path, name: str, change) -> Path:
    data = yaml.safe_load((SCHEMAS_DIR / "police.yaml").read_text(encoding="utf-8"))
    change(data)
    path = tmp_path / f"{name}.yaml"
    data["contract"] = name
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_shipped_contracts_load():
    contracts = load_contracts()
    assert set(contracts) == {"police", "transit", "guards", "felanmalan", "uppsokande"}
    assert contracts["police"].night_of("polisen_handelser_20261120.csv") == date(2026, 11, 20)
    assert contracts["transit"].night_of("incidents-2026-11-20.jsonl.gz") == date(2026, 11, 20)
    assert contracts["guards"].night_of("vaktrapport_2026-11-20.csv") == date(2026, 11, 20)


@pytest.mark.parametrize(
    "name",
    ["polisen_handelser_20261120.csv.ok", "polisen_handelser_20261320.csv", "../polisen_handelser_20261120.csv",
     "xpolisen_handelser_20261120.csv", "polisen_handelser_20261120.csv.tmp"],
)
def test_names_that_are_not_the_feed(name):
    assert load_contracts()["police"].night_of(name) is None


def test_every_personal_column_declares_its_handling():
    for contract in load_contracts().values():
        for column in contract.personal_columns():
            assert column.handling in {"pseudonymise", "drop", "generalise", "scrub"}


def test_unknown_field_is_refused_with_file_and_field(tmp_path):
    path = _write_variant(tmp_path, "broken", lambda d: d["file"].update(lookback="2"))
    with pytest.raises(ContractError, match=r"broken\.yaml: file: Additional properties"):
        load_contract(path)


def test_model_naming_a_missing_column_is_refused(tmp_path):
    path = _write_variant(tmp_path, "dangling", lambda d: d["model"]["incident"].update(place="adress"))
    with pytest.raises(ContractError, match=r"dangling\.yaml: model\.incident\.place: unknown column 'adress'"):
        load_contract(path)


def test_category_outside_the_shared_taxonomy_is_refused(tmp_path):
    path = _write_variant(tmp_path, "taxo", lambda d: d["model"]["incident"]["category"]["map"].update(Rån="heist"))
    with pytest.raises(ContractError, match=r"'heist' is not a shared category"):
        load_contract(path)


def test_allowed_value_without_category_mapping_is_refused(tmp_path):
    path = _write_variant(tmp_path, "unmapped", lambda d: d["model"]["incident"]["category"]["map"].pop("Rån"))
    with pytest.raises(ContractError, match=r"no mapping for \['Rån'\]"):
        load_contract(path)


def test_pseudonymised_column_needs_a_domain(tmp_path):
    def drop_domain(d):
        next(c for c in d["columns"] if c["name"] == "personnummer")["personal"].pop("domain")

    with pytest.raises(ContractError, match=r"columns\.8\.personal: 'domain' is a required property"):
        load_contract(_write_variant(tmp_path, "nodomain", drop_domain))
