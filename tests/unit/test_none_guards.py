"""Where an optional value is required, asking for it fails loudly, naming what is missing
(issue 10, item 5: the explicit checks that replaced silent ``None`` in the typed code)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from samverkan.core.contracts import SCHEMAS_DIR, Column, ContractError, load_contract, load_contracts
from samverkan.quality.validation import _range_words
from samverkan.sharing.agreements import load_agreements

pytestmark = pytest.mark.unit


def test_a_personal_column_names_its_domain_and_another_column_refuses():
    transit = load_contracts()["transit"]
    personal = next(c for c in transit.columns if c.handling == "pseudonymise")
    assert personal.domain == personal.personal["domain"]
    with pytest.raises(ContractError, match=r"column 'plain' is not personal"):
        _ = Column("plain", "Plain", "string").domain


def test_only_an_aggregate_grant_has_a_suppression_threshold():
    guards = load_agreements()["guards"]
    assert guards.required_grant("incident_counts").suppression == 5
    row_grant = next(g for a in load_agreements().values() for g in a.datasets() if g.name == "incidents")
    with pytest.raises(ValueError, match=r"dataset 'incidents' is not an aggregate"):
        _ = row_grant.suppression


def test_a_required_grant_the_agreement_lacks_is_named():
    guards = load_agreements()["guards"]
    assert guards.grant("incidents") is None
    with pytest.raises(ValueError, match=rf"agreement {guards.label} grants no dataset 'incidents'"):
        guards.required_grant("incidents")


@pytest.mark.parametrize(
    "bounds, words",
    [
        ({"min": 0, "max": 5}, "outside the allowed range 0–5"),
        ({"min": 1.5}, "below the minimum 1.5"),
        ({"max": 9}, "above the maximum 9"),
    ],
)
def test_range_words_name_the_bounds(bounds, words):
    assert _range_words(Column("n", "N", "integer", **bounds)) == words


def test_range_words_without_a_range_is_a_bug_named():
    with pytest.raises(ValueError, match=r"column 'n' has neither min nor max"):
        _range_words(Column("n", "N", "integer"))


def _uppsokande_with(tmp_path: Path, change) -> Path:
    data = yaml.safe_load((SCHEMAS_DIR / "uppsokande.yaml").read_text(encoding="utf-8"))
    change(next(c for c in data["columns"] if c["name"] == "unga"))
    data["contract"] = "counts"
    path = tmp_path / "counts.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize("change", [lambda c: c.pop("min"), lambda c: c.update(min=-1)])
def test_a_count_column_must_rule_out_negative_counts(tmp_path, change):
    with pytest.raises(
        ContractError, match=r"model\.observations\.counts\.unga: must be an integer column with min: 0"
    ):
        load_contract(_uppsokande_with(tmp_path, change))
