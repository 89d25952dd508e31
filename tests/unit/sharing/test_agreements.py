"""Agreements: the shipped set loads, and a bad agreement is refused naming the file and field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from samverkan.core.contracts import common_model
from samverkan.sharing.agreements import (AGREEMENTS_DIR, AgreementError, describe_condition, load_agreement,
                                          load_agreements)

pytestmark = pytest.mark.unit


def test_default_agreements_cover_the_four_partners():
    agreements = load_agreements()
    assert set(agreements) == {"municipality", "police", "transit", "guards"}
    assert {a.mode for a in agreements.values()} == {"pull", "push"}
    assert agreements["guards"].granularity == "aggregates_only"
    assert [g.name for g in agreements["guards"].datasets()] == ["incident_counts", "lagesbild"]
    assert all(a.grant("lagesbild") for a in agreements.values())  # the shared picture goes to everyone
    assert agreements["guards"].grant("incident_counts").threshold == 5
    assert "police" not in agreements["police"].sources  # the police have their own reports


def test_granted_columns_exist_in_the_common_model():
    model = common_model()["datasets"]
    for agreement in load_agreements().values():
        for grant in agreement.datasets():
            if not grant.aggregate and not grant.report:
                assert set(grant.columns) <= set(model[grant.name]["columns"]), (agreement.id, grant.name)


def _write(tmp_path: Path, name: str, change) -> Path:
    data = yaml.safe_load((AGREEMENTS_DIR / "transit.yaml").read_text(encoding="utf-8"))
    data["agreement"] = name
    change(data)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (lambda d: d["datasets"].update(arrests={"columns": ["incident_id"]}), "datasets",
         "'arrests' was unexpected"),
        (lambda d: d["datasets"]["incidents"]["columns"].append("personnummer"), "datasets.incidents.columns.9",
         "unknown column 'personnummer'"),
        (lambda d: d.pop("retention_days"), "(top level)", "'retention_days' is a required property"),
        (lambda d: d.update(retention_days=0), "retention_days", "less than the minimum"),
        (lambda d: d["scope"]["where"]["any_of"].append({"column": "name", "in": ["x"]}),
         "scope.where.any_of.3.column", "unknown column 'name'"),
        (lambda d: d["scope"]["sources"].append("taxi"), "scope.sources.2", "unknown source 'taxi'"),
        (lambda d: d["delivery"].pop("connection_id"), "delivery", "'connection_id' is a required property"),
        (lambda d: d.update(granularity="aggregates_only"), "datasets.incidents", "aggregates_only"),
        (lambda d: d["datasets"]["involvements"]["columns"].remove("incident_id"),
         "datasets.involvements.columns", "must include incident_id"),
    ],
)
def test_bad_agreement_is_refused_naming_file_and_field(tmp_path, change, field, words):
    path = _write(tmp_path, "bad_one", change)
    with pytest.raises(AgreementError) as err:
        load_agreement(path)
    message = str(err.value)
    assert f"bad_one.yaml: {field}" in message
    assert words in message


def test_file_name_must_match_the_id(tmp_path):
    path = _write(tmp_path, "someone", lambda d: None)
    path = path.rename(tmp_path / "else.yaml")
    with pytest.raises(AgreementError, match="else.yaml: agreement: id 'someone' must match the file name"):
        load_agreement(path)


def test_two_recipients_cannot_share_a_pull_account(tmp_path):
    for name in ("one", "two"):
        _write(tmp_path, name, lambda d: d.update(delivery={"mode": "pull", "account": "sv-shared"}))
    with pytest.raises(AgreementError, match="delivery.account: 'sv-shared' is already one's account"):
        load_agreements.__wrapped__(tmp_path)


def test_conditions_read_as_words():
    cond = {"any_of": [{"column": "area", "in": ["a", "b"]}, {"not": {"column": "line", "is_null": True}}]}
    assert describe_condition(cond) == "(`area` is one of a, b or not `line` is empty)"
