"""The contract's rules about whole files, each exercised through the real pipeline (parsing, GE,
pseudonymisation, Parquet) on both sides of its line: more than the allowed share of invalid
rows rejects the file, `unexpected_columns: reject` refuses an unannounced column, and a header
that names a column twice is refused."""

from __future__ import annotations

import shutil

import pyarrow.parquet as pq
import pytest

from samverkan.core.contracts import SCHEMAS_DIR, load_contract, load_contracts
from samverkan.ingest.pipeline import process
from samverkan.quality.validation import EXPECTATIONS_DIR
from tests.integration.resilience_support import Hub, assert_balanced, police_row
from tests.support.feeds import POLICE_HEADER

pytestmark = pytest.mark.integration

POLICE_NAME = "polisen_handelser_20261120.csv"


def police_file(tmp_path, rows: list[str], header: str = POLICE_HEADER):
    path = tmp_path / "in" / POLICE_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("\r\n".join([header, *rows]) + "\r\n").encode("cp1252"))
    return path


def published_rows(hub: Hub) -> int:
    return sum(pq.ParquetFile(p).metadata.num_rows for p in (hub.paths.published / "incidents").rglob("*.parquet"))


# --- more than max_invalid_row_fraction invalid rows: the whole file is rejected ----------------


def test_the_police_contract_allows_ten_percent():
    assert load_contracts()["police"].max_invalid_row_fraction == pytest.approx(0.10)


@pytest.mark.parametrize("bad, status", [(10, "published"), (11, "rejected")])
def test_more_than_ten_percent_invalid_rows_rejects_the_file(hub, tmp_path, bad, status):
    """100 records, of which 10 (at the limit) or 11 (over it) have a coordinate that is not a number."""
    rows = [police_row(i) for i in range(100 - bad)] + [police_row(1000 + i, koord_n="1e6") for i in range(bad)]
    result = hub.process("police", police_file(tmp_path, rows))
    assert result.status == status, result.reason
    assert result.rows_received == 100
    assert_balanced(result, hub)
    if status == "published":
        assert (result.rows_published, result.rows_quarantined) == (100 - bad, bad)
        assert published_rows(hub) == 100 - bad
    else:
        assert result.reason.startswith(f"{bad} of 100 records failed validation (11%, limit 10%)")
        assert result.outputs == [] and published_rows(hub) == 0


# --- unexpected_columns: reject ------------------------------------------------------------------


@pytest.fixture
def strict_police(tmp_path):
    """The police contract with `unexpected_columns: reject` (a copy; schemas/ is not touched)."""
    schemas = tmp_path / "schemas"
    shutil.copytree(SCHEMAS_DIR, schemas)
    path = schemas / "police.yaml"
    text = path.read_text(encoding="utf-8")
    assert "unexpected_columns: warn" in text
    path.write_text(text.replace("unexpected_columns: warn", "unexpected_columns: reject"), encoding="utf-8")
    contract = load_contract(path)
    assert contract.unexpected_columns_policy == "reject"
    return contract


def run(hub: Hub, contract, path):
    return process(contract, hub.land(contract.id, path), hub.paths, hub.ledger, hub.pseudonymiser, hub.validator,
                   run_id="file-rules", expectations_dir=EXPECTATIONS_DIR)


def test_a_contract_that_rejects_unexpected_columns_refuses_the_file(hub, tmp_path, strict_police):
    rows = [police_row(i) + ";extra" for i in range(5)]
    result = run(hub, strict_police, police_file(tmp_path, rows, POLICE_HEADER + ";Nytt_falt"))
    assert result.status == "rejected"
    assert result.reason == "1 column(s) not in the contract (this feed's contract refuses unannounced columns)"
    assert "Nytt_falt" not in result.reason  # the name stays in the ledger (private zone)
    assert_balanced(result, hub)
    assert published_rows(hub) == 0


def test_the_same_contract_accepts_a_file_without_unexpected_columns(hub, tmp_path, strict_police):
    result = run(hub, strict_police, police_file(tmp_path, [police_row(i) for i in range(5)]))
    assert (result.status, result.rows_published) == ("published", 5)


def test_the_default_policy_warns_and_publishes(hub, tmp_path):
    rows = [police_row(i) + ";extra" for i in range(5)]
    result = hub.process("police", police_file(tmp_path, rows, POLICE_HEADER + ";Nytt_falt"))
    assert (result.status, result.rows_published, result.unexpected_columns) == ("published", 5, ["Nytt_falt"])


# --- duplicate header names ------------------------------------------------------------------------


@pytest.mark.parametrize("header", [POLICE_HEADER + ";Fritext", POLICE_HEADER + ";Extra;Extra"])
def test_a_header_that_names_a_column_twice_is_refused(hub, tmp_path, header):
    rows = [police_row(i) + ";x" * (header.count(";") - POLICE_HEADER.count(";")) for i in range(5)]
    result = hub.process("police", police_file(tmp_path, rows, header))
    assert result.status == "rejected"
    assert result.reason == "1 duplicate column name(s) in the header"
    assert_balanced(result, hub)
    assert published_rows(hub) == 0
