"""GE per distinct value gives exactly the verdicts, counts and records of GE over every record."""

import json
from datetime import date

import pyarrow as pa
import pytest

from samverkan.ingest.parsing import read_batches
from samverkan.ingest.pipeline import array_check_frame, check_frame
from devkit.synthetic import Faults, Population, write_night
from samverkan.quality.validation import EXPECTATIONS_DIR, suite_path
from tests.support.police_rows import police_columns

pytestmark = pytest.mark.unit

NIGHT = date(2026, 11, 20)


def suite(contract, part="rows"):
    return json.loads(suite_path(EXPECTATIONS_DIR, contract, part).read_text(encoding="utf-8"))


def same(a, b):
    assert a.failures == b.failures
    assert a.table_failures == b.table_failures
    assert a.reasons == b.reasons
    assert a.expectations == b.expectations


FAULTS = {
    "police": Faults(bad_checksum_pnr=7, impossible_date=5, unknown_category=4),
    "guards": Faults(bad_checksum_pnr=5, impossible_date=4, unknown_category=3),
    "transit": Faults(impossible_date=4, unknown_category=3, bad_json_lines=2),
}


@pytest.mark.parametrize("feed", ["police", "guards", "transit"])
def test_generated_night_with_faults_same_outcome(contracts, validator, tmp_path, feed):
    contract = contracts[feed]
    truth = write_night(feed, NIGHT, tmp_path, rows=1500, population=Population(seed=3, size=300), seed=5,
                        faults=FAULTS[feed])
    batches = list(read_batches(contract, truth.path, batch_rows=600))
    assert len(batches) >= 3
    failed_any = False
    for batch in batches:
        table = check_frame(contract, batch.table, NIGHT, arrow=True)
        whole = validator.validate(suite(contract), table.to_pandas())
        by_values = validator.validate_table(suite(contract), table)
        same(whole, by_values)
        failed_any = failed_any or bool(whole.failures)
        for c in contract.columns:
            if c.type == "array":
                items = array_check_frame(contract, batch.table, c.name, arrow=True)
                same(validator.validate(suite(contract, c.name), items.to_pandas()),
                     validator.validate_table(suite(contract, c.name), items))
    assert failed_any  # the faults were found, so failing verdicts were compared too


def police_table(n, **changes):
    """Records naming nobody, four incidents among them: fewer distinct values than records."""
    nobody = {column: [None] * n for column in ("roll", "personnummer", "namn", "fritext", "personnummer__status")}
    columns = police_columns(n, changes, diarienr=[f"5000-K{i % 4}-26" for i in range(n)], plats=["Stortorget"] * n,
                             **nobody)
    return pa.table({k: pa.array(v, _arrow_type(k)) for k, v in columns.items()})


def _arrow_type(column: str) -> pa.DataType:
    if column == "_row":
        return pa.int64()
    return pa.float64() if column.endswith("__int") else pa.string()


@pytest.mark.parametrize("changes", [
    {},
    {"registrerad": {3: None, 9: None}},  # not-null on a column padded in the distinct frame
    {"diarienr": {2: None, 5: "K1"}, "alder": {7: "200", 8: "x"}},
    {"registrerad": {4: "2026-11-20 20:00"}},  # the pair check: registered before it happened
    {"handelsetid": {4: "2026-02-30 10:00", 6: "2026-02-30 10:00"}, "handelsetyp": {6: "Okänd"}},
    {"registrerad": {1: None}, "handelsetid": {1: None}},
])
def test_hand_made_cases_same_outcome(contracts, validator, changes):
    table = police_table(12, **changes)
    whole = validator.validate(suite(contracts["police"]), table.to_pandas())
    same(whole, validator.validate_table(suite(contracts["police"]), table))
    if changes:
        assert whole.failures


def test_missing_optional_and_required_columns_same_outcome(contracts, validator):
    table = police_table(8, alder={2: "300"})
    for dropped in (["alder", "alder__int"], ["handelsetyp"]):
        cut = table.drop_columns(dropped)
        same(validator.validate(suite(contracts["police"]), cut.to_pandas()),
             validator.validate_table(suite(contracts["police"]), cut))


def test_uniqueness_and_mostly_checks_still_see_every_record(contracts, validator):
    """Checks whose verdict depends on other records are not reduced to distinct values."""
    base = suite(contracts["police"])
    extra = [
        {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "diarienr"},
         "meta": {"source": "handwritten", "reason": "Diarienr repeats"}},
        {"type": "expect_column_values_to_be_in_set",
         "kwargs": {"column": "handelsetyp", "value_set": ["Misshandel"], "mostly": 0.5},
         "meta": {"source": "handwritten", "reason": "mostly"}},
    ]
    modified = {**base, "name": base["name"] + ".extra", "expectations": base["expectations"] + extra}
    table = police_table(10, handelsetyp={3: "Rån"})
    whole = validator.validate(modified, table.to_pandas())
    by_values = validator.validate_table(modified, table)
    same(whole, by_values)
    assert "expect_column_values_to_be_unique(diarienr)" in {label for labels in whole.failures.values() for label in labels}
