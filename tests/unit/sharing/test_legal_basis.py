"""Legal basis per granted column: every column names one, ids come from the vocabulary, and
criminal-offence data (art. 10) goes only to a recipient whose basis has an art. 10 ground."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from samverkan.sharing import legal_basis
from samverkan.sharing.agreements import (
    AGREEMENTS_DIR,
    AgreementError,
    load_agreement,
    load_agreements,
)

pytestmark = pytest.mark.unit


def _write(tmp_path: Path, base: str, change) -> Path:
    data = yaml.safe_load((AGREEMENTS_DIR / f"{base}.yaml").read_text(encoding="utf-8"))
    change(data)
    path = tmp_path / f"{base}.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_every_granted_row_column_of_the_shipped_agreements_has_a_basis_and_purpose():
    for agreement in load_agreements().values():
        bases = legal_basis.column_bases(agreement.raw)
        for grant in agreement.datasets():
            if grant.name in legal_basis.ROW_DATASETS:
                assert set(bases[grant.name]) == set(grant.columns), (agreement.id, grant.name)


def test_a_column_override_wins_over_the_dataset_basis():
    bases = legal_basis.column_bases(load_agreements()["municipality"].raw)
    assert bases["incidents"]["area"].id == "kommun_brottsforebyggande"
    assert bases["incidents"]["category"].id == "kommun_brottsuppgifter"
    assert bases["incidents"]["category"].purpose == "orsaksanalys"  # purpose from the dataset
    assert bases["incidents"]["category"].article_10 and not bases["incidents"]["area"].article_10


def test_a_column_without_a_basis_is_refused_naming_file_and_field(tmp_path):
    def drop(d):
        d["datasets"]["incidents"].pop("legal_basis")
    with pytest.raises(AgreementError) as err:
        load_agreement(_write(tmp_path, "police", drop))
    assert "police.yaml: datasets.incidents.columns.0: 'incident_id' has no legal basis or purpose" in str(err.value)


def test_an_unknown_basis_or_purpose_is_refused(tmp_path):
    def unknown(d):
        d["datasets"]["involvements"]["legal_basis"] = {"basis": "because_we_can", "purpose": "curiosity"}
    message = str(pytest.raises(AgreementError, load_agreement, _write(tmp_path, "police", unknown)).value)
    assert "police.yaml: datasets.involvements.legal_basis.basis: unknown legal basis 'because_we_can'" in message
    assert "datasets.involvements.legal_basis.purpose: unknown purpose 'curiosity'" in message


def test_police_offence_categories_need_an_art_10_ground(tmp_path):
    """The bus operator has no art. 10 ground: adding the police's rows back is refused."""
    def police_rows(d):
        d["scope"]["sources"].insert(0, "police")
    message = str(pytest.raises(AgreementError, load_agreement, _write(tmp_path, "transit", police_rows)).value)
    assert ("transit.yaml: datasets.incidents.legal_basis: 'category' of police rows is criminal-offence data "
            "(GDPR art. 10) and basis 'trafik_berattigat_intresse' has no art. 10 ground") in message
    assert "datasets.involvements.legal_basis: 'role' of police rows" in message


def test_the_municipality_without_its_art_10_override_is_refused(tmp_path):
    def no_override(d):
        d["datasets"]["incidents"]["column_legal_basis"].pop("category")
    message = str(pytest.raises(AgreementError, load_agreement, _write(tmp_path, "municipality", no_override)).value)
    assert "municipality.yaml: datasets.incidents.legal_basis: 'category' of police rows" in message


def test_an_override_for_a_column_not_granted_is_refused(tmp_path):
    def stray(d):
        d["datasets"]["incidents"]["column_legal_basis"]["description"] = {"basis": "kommun_brottsforebyggande"}
    message = str(pytest.raises(AgreementError, load_agreement, _write(tmp_path, "municipality", stray)).value)
    assert "datasets.incidents.column_legal_basis.description: 'description' is not a granted column" in message


def test_the_vocabulary_is_schema_checked(tmp_path):
    vocab = yaml.safe_load(legal_basis.VOCABULARY.read_text(encoding="utf-8"))
    vocab["bases"]["kommun_brottsforebyggande"].pop("gdpr_art6")
    path = tmp_path / "legal_bases.yaml"
    path.write_text(yaml.safe_dump(vocab, allow_unicode=True), encoding="utf-8")
    (tmp_path / "legal_bases.schema.json").write_text(legal_basis.VOCABULARY_SCHEMA.read_text(encoding="utf-8"))
    with pytest.raises(legal_basis.LegalBasisError, match="legal_bases.yaml: bases.kommun_brottsforebyggande: "
                                                          "'gdpr_art6' is a required property"):
        legal_basis.vocabulary(path)
