"""Contract-derived suites catch what the contract forbids, name the records, and keep no values."""

import dataclasses
import json
import shutil

import pandas as pd
import pytest

from samverkan.quality.validation import (
    EXPECTATIONS_DIR,
    BatchOutcome,
    build_suite,
    combine,
    outcome_to_records,
    parts,
    suite_is_current,
    suite_path,
    write_suites,
)
from tests.support.police_rows import int_or_none, police_columns, put_changes

pytestmark = pytest.mark.unit


def suite(contracts, feed, part="rows"):
    return json.loads(suite_path(EXPECTATIONS_DIR, contracts[feed], part).read_text(encoding="utf-8"))


def police_frame(n=6, **changes):
    """Clean synthetic police rows; ``changes`` maps column -> {row number: raw value}."""
    return pd.DataFrame(police_columns(n, changes))


def guards_frame(**changes):
    rows = {
        "_row": [1, 2, 3],
        "rapport_nr": ["AV-2026-000001", "AV-2026-000002", "AV-2026-000003"],
        "datum": ["2026-11-20"] * 3,
        "klockslag": ["23:10", None, "01:05"],
        "plats": ["Busstorget"] * 3,
        "ingripande": ["Tillsägelse", "Avvisning", "Övrigt"],
        "personnummer": [None] * 3,
        "personnummer__status": [None] * 3,
        "namn": [None] * 3,
        "telefon": ["070-123 45 67", None, "+46 (0)70 123"],
        "ordningsvakt_id": ["OV-123"] * 3,
        "polis_underrattad": ["Ja", "Nej", None],
        "beskrivning": [None] * 3,
    }
    put_changes(rows, changes)
    return pd.DataFrame(rows)


def test_clean_frame_passes_every_check(contracts, validator):
    outcome = validator.validate(suite(contracts, "police"), police_frame())
    assert outcome.failures == {} and outcome.table_failures == []
    assert all(e.success and e.unexpected_count == 0 for e in outcome.expectations)
    assert {e.element_count for e in outcome.expectations if e.column} == {6}


def test_no_batch_is_fingerprinted(contracts, validator, monkeypatch):
    """GE hashes every value of a batch for a marker nothing reads (a fifth of validation time):
    the validator turns that off, and the verdicts are the same."""
    from great_expectations.execution_engine import pandas_execution_engine

    def refuse(df):
        raise AssertionError("GE fingerprinted a batch")

    monkeypatch.setattr(pandas_execution_engine, "hash_pandas_dataframe", refuse)
    outcome = validator.validate(suite(contracts, "police"), police_frame(handelsetyp={2: "Okänd"}))
    assert outcome.failures == {2: ["expect_column_values_to_be_in_set(handelsetyp)"]}


@pytest.mark.parametrize("column, bad, label", [
    ("personnummer__status", "invalid_checksum", "expect_column_values_to_be_in_set(personnummer__status)"),
    ("handelsetid", "2026-02-30 10:00", "expect_column_values_to_match_strftime_format(handelsetid)"),
    ("handelsetyp", "Okänd", "expect_column_values_to_be_in_set(handelsetyp)"),
    ("registrerad", None, "expect_column_values_to_not_be_null(registrerad)"),
    ("alder", "131", "expect_column_values_to_be_between(alder__int)"),
    ("alder", "2.5", "expect_column_values_to_match_regex(alder)"),
    ("diarienr", "K123", "expect_column_values_to_match_regex(diarienr)"),
    ("diarienr", "5000-K1-26\n", "expect_column_values_to_match_regex(diarienr)"),
])
def test_each_contract_check_names_exactly_the_bad_records(contracts, validator, column, bad, label):
    frame = police_frame(**{column: {2: bad, 5: bad}})
    outcome = validator.validate(suite(contracts, "police"), frame)
    assert outcome.failures == {2: [label], 5: [label]}
    assert outcome.table_failures == []
    failed = [e for e in outcome.expectations if not e.success]
    assert [(e.label, e.unexpected_count) for e in failed] == [(label, 2)]
    assert outcome.reasons[label]


def test_reasons_use_the_partners_column_names(contracts, validator):
    outcome = validator.validate(suite(contracts, "police"), police_frame())
    assert outcome.reasons["expect_column_values_to_be_in_set(handelsetyp)"] == \
        "Händelsetyp is not one of the allowed values"
    assert "Ålder" in outcome.reasons["expect_column_values_to_be_between(alder__int)"]


def test_bad_boolean_and_phone_in_guards(contracts, validator):
    frame = guards_frame(polis_underrattad={2: "true"}, telefon={3: "ring mig"})
    outcome = validator.validate(suite(contracts, "guards"), frame)
    assert outcome.failures == {2: ["expect_column_values_to_be_in_set(polis_underrattad)"],
                                3: ["expect_column_values_to_match_regex(telefon)"]}


def test_guards_time_format_is_checked(contracts, validator):
    outcome = validator.validate(suite(contracts, "guards"), guards_frame(klockslag={1: "25:10"}))
    assert outcome.failures == {1: ["expect_column_values_to_match_strftime_format(klockslag)"]}


def test_labels_of_a_record_come_in_suite_order(contracts, validator):
    frame = police_frame(alder={3: "999"}, handelsetyp={3: "Okänd"}, diarienr={3: None})
    outcome = validator.validate(suite(contracts, "police"), frame)
    assert outcome.failures == {3: ["expect_column_values_to_not_be_null(diarienr)",
                                    "expect_column_values_to_be_in_set(handelsetyp)",
                                    "expect_column_values_to_be_between(alder__int)"]}


def test_registered_before_it_happened_is_caught_but_unknown_time_is_not(contracts, validator):
    frame = police_frame(registrerad={1: "2026-11-20 22:00"}, handelsetid={4: None})
    outcome = validator.validate(suite(contracts, "police"), frame)
    assert outcome.failures == {1: ["expect_column_pair_values_a_to_be_greater_than_b(registrerad,handelsetid)"]}


def test_combine_sums_counts_across_batches(contracts, validator):
    first = validator.validate(suite(contracts, "police"), police_frame(handelsetyp={2: "Okänd"}))
    second = police_frame(handelsetyp={1: "Okänd", 3: "Okänd"})
    second["_row"] += 6
    total = combine([first, validator.validate(suite(contracts, "police"), second)])
    label = "expect_column_values_to_be_in_set(handelsetyp)"
    assert sorted(total.failures) == [2, 7, 9]
    by_label = {e.label: e for e in total.expectations}
    assert (by_label[label].element_count, by_label[label].unexpected_count, by_label[label].success) == (12, 3, False)
    assert by_label["expect_column_values_to_not_be_null(diarienr)"].success
    assert [e.label for e in total.expectations] == [e.label for e in first.expectations]


def test_outcome_holds_no_raw_values(contracts, validator):
    frame = police_frame(
        personnummer={1: "19121212-1213"}, personnummer__status={1: "invalid_checksum"},
        namn={1: "Hemligsson, Hemlig"}, handelsetyp={2: "Hemlig kategori"}, diarienr={3: "HEMLIGT-DIARIENR"},
        fritext={4: "ring 070-111 22 33"}, alder={5: "4711"}, handelsetid={6: "2026-02-30 10:00"},
    )
    outcome = validator.validate(suite(contracts, "police"), frame)
    assert sorted(outcome.failures) == [1, 2, 3, 5, 6]
    dumps = [repr(outcome), str(outcome), json.dumps(dataclasses.asdict(outcome), ensure_ascii=False),
             json.dumps(outcome_to_records(outcome, "police", "2026-11-20", "f.csv"), ensure_ascii=False)]
    values = {v for c in frame.columns for v in frame[c] if isinstance(v, str)} - {"valid"}  # "valid": a reason's word
    assert {"HEMLIGT-DIARIENR", "19121212-1213", "4711", "Hemlig kategori", "2026-02-30 10:00"} <= values
    leaked = {v for v in values for text in dumps if v in text}
    assert leaked == set()


def test_persons_frame_uses_row_and_item(contracts, validator):
    frame = pd.DataFrame({
        "_row": [1, 1, 2, 3, 3],
        "_item": [0, 1, 0, 0, 1],
        "role": ["OFFENDER", "BYSTANDER", "VICTIM", "WITNESS", "VICTIM"],
        "approx_age": ["30", "25", None, "200", "abc"],
        "gender": ["M", "F", None, "Q", "X"],
    })
    frame["approx_age__int"] = [int_or_none(v) for v in frame["approx_age"]]
    outcome = validator.validate(suite(contracts, "transit", "persons"), frame)
    assert outcome.failures == {
        1: ["expect_column_values_to_be_in_set(persons.role)"],
        3: ["expect_column_values_to_match_regex(persons.approx_age)",
            "expect_column_values_to_be_between(persons.approx_age__int)",
            "expect_column_values_to_be_in_set(persons.gender)"],
    }
    assert outcome.reasons["expect_column_values_to_be_in_set(persons.role)"] == \
        "persons.role is not one of the allowed values"


def test_missing_required_column_is_a_table_failure(contracts, validator):
    outcome = validator.validate(suite(contracts, "police"), police_frame().drop(columns=["handelsetyp"]))
    assert outcome.table_failures == ["expect_table_columns_to_match_set"]
    assert outcome.failures == {}
    assert not any(e.column == "handelsetyp" for e in outcome.expectations)


def test_check_that_cannot_run_is_a_table_failure(contracts, validator):
    outcome = validator.validate(suite(contracts, "police"), police_frame().drop(columns=["alder__int"]))
    assert outcome.table_failures == ["expect_column_values_to_be_between(alder__int)"]
    assert outcome.failures == {}


def test_suite_name_loads_the_committed_file(validator):
    outcome = validator.validate("samverkan.police", police_frame(handelsetyp={1: "Okänd"}))
    assert outcome.failures == {1: ["expect_column_values_to_be_in_set(handelsetyp)"]}


def test_outcome_to_records_has_one_row_per_expectation():
    outcome = BatchOutcome(expectations=[
        dataclasses.replace(_outcome("a(x)"), unexpected_count=2, success=False), _outcome("b(y)")])
    records = outcome_to_records(outcome, "police", "2026-11-20", "polisen_handelser_20261120.csv")
    assert records[0] == {"feed": "police", "night": "2026-11-20", "file": "polisen_handelser_20261120.csv",
                          "expectation": "a(x)", "column": "x", "success": False, "element_count": 10,
                          "unexpected_count": 2}
    assert len(records) == 2


def _outcome(label):
    from samverkan.quality.validation import ExpectationOutcome

    return ExpectationOutcome(label, label.split("(")[0], label[label.index("(") + 1:-1], True, 10, 0)


def test_committed_suites_are_current(contracts):
    for contract in contracts.values():
        for part in parts(contract):
            path = suite_path(EXPECTATIONS_DIR, contract, part)
            assert suite_is_current(contract, path), f"{path.name} is stale: run python -m samverkan.quality.validation build-suites"


def test_committed_suites_carry_the_handwritten_checks(contracts):
    def handwritten(feed):
        return [e["type"] for e in suite(contracts, feed)["expectations"] if e["meta"]["source"] == "handwritten"]

    assert handwritten("police") == ["expect_column_pair_values_a_to_be_greater_than_b"]
    assert handwritten("guards") == ["expect_column_values_to_match_regex"]
    assert all(e["meta"]["reason"] for f in ("police", "guards", "transit") for e in suite(contracts, f)["expectations"])


def test_rebuild_keeps_handwritten_checks_and_is_byte_stable(contracts, tmp_path):
    write_suites(tmp_path, contracts)
    path = tmp_path / "transit.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["expectations"].append({"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "line"},
                                 "meta": {"source": "handwritten", "reason": "line is empty"}})
    data["expectations"] = [e for e in data["expectations"] if e["kwargs"].get("column") != "category"]  # stale part
    path.write_text(json.dumps(data), encoding="utf-8")
    assert not suite_is_current(contracts["transit"], path)
    assert write_suites(tmp_path, contracts) == [path]
    rebuilt = json.loads(path.read_text(encoding="utf-8"))["expectations"]
    assert rebuilt[-1]["kwargs"] == {"column": "line"} and rebuilt[-1]["meta"]["source"] == "handwritten"
    assert any(e["kwargs"].get("column") == "category" for e in rebuilt)
    assert suite_is_current(contracts["transit"], path)
    assert write_suites(tmp_path, contracts) == []


def test_committed_suites_regenerate_identically(contracts, tmp_path):
    for path in EXPECTATIONS_DIR.glob("*.json"):
        shutil.copy(path, tmp_path / path.name)
    assert write_suites(tmp_path, contracts) == []


def test_builder_refuses_a_handwritten_check_ge_cannot_load(contracts):
    bad = {"type": "expect_no_such_thing", "kwargs": {"column": "plats"}, "meta": {"source": "handwritten"}}
    with pytest.raises(Exception):
        build_suite(contracts["police"], handwritten=[bad])
    with pytest.raises(ValueError, match="hand-written"):
        build_suite(contracts["police"], handwritten=[{**bad, "meta": {"source": "contract"}}])
