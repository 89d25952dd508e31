"""Feed kinds (issue 17): a contract may declare an incident-only feed (no people) or an aggregate
feed (counts per place and slot); both load like any contract, and a malformed one is refused
with the file and the field named. The common model gives every category a kind."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from samverkan.core import contracts as contracts_module
from samverkan.core.contracts import (
    SCHEMAS_DIR,
    ContractError,
    category_kinds,
    common_model,
    load_contract,
    load_contracts,
)

pytestmark = pytest.mark.unit

ENVIRONMENT = ("graffiti", "litter", "lighting", "damaged_property")


def _variant(tmp_path: Path, base: str, name: str, change) -> Path:
    data = yaml.safe_load((SCHEMAS_DIR / f"{base}.yaml").read_text(encoding="utf-8"))
    change(data)
    data["contract"] = name
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_the_municipal_feeds_load_with_their_kinds():
    shipped = load_contracts()
    assert (shipped["felanmalan"].kind, shipped["felanmalan"].datasets) == ("incidents_only", ("incidents",))
    assert (shipped["uppsokande"].kind, shipped["uppsokande"].datasets) == ("aggregate", ("observations",))
    for feed in ("police", "transit", "guards"):  # no kind: incidents with involvements, as before
        assert shipped[feed].datasets == ("incidents", "involvements")


def test_a_feed_without_involvements_must_say_it_is_incident_only(tmp_path):
    path = _variant(tmp_path, "police", "nopeople", lambda d: d["model"].pop("involvements"))
    with pytest.raises(ContractError, match=r"nopeople\.yaml: model: 'involvements' is a required property "
                                            r"\(a feed that names no people declares kind: incidents_only"):
        load_contract(path)

    def incident_only(d):
        d["model"].pop("involvements")
        d["model"]["kind"] = "incidents_only"

    assert load_contract(_variant(tmp_path, "police", "declared", incident_only)).datasets == ("incidents",)


def test_an_incident_only_feed_with_involvements_is_refused(tmp_path):
    path = _variant(tmp_path, "police", "both", lambda d: d["model"].update(kind="incidents_only"))
    with pytest.raises(ContractError, match=r"both\.yaml: model\.involvements: not allowed in a feed of kind "
                                            r"'incidents_only'"):
        load_contract(path)


def test_an_unknown_kind_is_refused(tmp_path):
    path = _variant(tmp_path, "felanmalan", "oddkind", lambda d: d["model"].update(kind="persons"))
    with pytest.raises(ContractError, match=r"oddkind\.yaml: model\.kind: 'persons' is not one of"):
        load_contract(path)


def test_an_aggregate_feed_needs_its_observations_section(tmp_path):
    path = _variant(tmp_path, "uppsokande", "nocounts", lambda d: d["model"].pop("observations"))
    with pytest.raises(ContractError, match=r"nocounts\.yaml: model: 'observations' is a required property"):
        load_contract(path)


def test_an_aggregate_feed_with_an_incident_section_is_refused(tmp_path):
    def add_incident(d):
        d["model"]["incident"] = {"key": "plats", "category": {"column": "plats", "map": {"x": "other"}}}

    with pytest.raises(ContractError, match=r"mixed\.yaml: model\.incident: not allowed in a feed of kind 'aggregate'"):
        load_contract(_variant(tmp_path, "uppsokande", "mixed", add_incident))


@pytest.mark.parametrize("change, message", [
    (lambda d: d["model"]["observations"]["counts"].update(plats="young_people"),
     r"model\.observations\.counts\.plats: must be an integer column with min: 0"),
    (lambda d: d["model"]["observations"]["counts"].update(unga="teenagers"),
     r"model\.observations\.counts\.unga: 'teenagers' is not a shared measure"),
    (lambda d: d["model"]["observations"]["counts"].update(antal="adults"),
     r"model\.observations\.counts\.antal: unknown column 'antal'"),
    (lambda d: d["model"]["observations"].update(place="adress"),
     r"model\.observations\.place: unknown column 'adress'"),
    (lambda d: d["columns"][-1]["personal"].update(handling="scrub"),
     r"columns\.anteckning\.personal: an aggregate feed publishes no personal data"),
])
def test_a_malformed_aggregate_feed_is_refused_naming_the_field(tmp_path, change, message):
    with pytest.raises(ContractError, match=r"broken\.yaml: " + message):
        load_contract(_variant(tmp_path, "uppsokande", "broken", change))


def test_every_category_has_a_kind_and_the_environment_is_one():
    model = common_model()
    kinds = category_kinds()
    assert set(kinds) == set(model["categories"])
    assert set(kinds.values()) == {"crime", "disorder", "environment", "care"}
    assert {c for c, k in kinds.items() if k == "environment"} == set(ENVIRONMENT)
    assert kinds["violence"] == "crime" and kinds["medical"] == "care"


def test_a_category_without_a_kind_is_refused():
    model = dict(common_model())
    model["category_kind"] = {k: v for k, v in model["category_kind"].items() if k != "litter"}
    with pytest.raises(ContractError, match=r"common_model\.yaml: category_kind\.litter: missing"):
        contracts_module._check_category_kinds(model)
    model["category_kind"] = {**common_model()["category_kind"], "litter": "mess"}
    with pytest.raises(ContractError, match=r"category_kind\.litter: 'mess' is not one of category_kinds"):
        contracts_module._check_category_kinds(model)


def test_the_fault_report_categories_map_onto_the_environment():
    mapping = load_contracts()["felanmalan"].model["incident"]["category"]["map"]
    assert {mapping[k] for k in ("Klotter", "Krossat glas", "Trasig belysning", "Nedskräpning")} == set(ENVIRONMENT)
    # The existing feeds keep their mapping: nothing of theirs moved to the new categories.
    for feed in ("police", "transit", "guards"):
        assert not set(load_contracts()[feed].model["incident"]["category"]["map"].values()) & set(ENVIRONMENT)
