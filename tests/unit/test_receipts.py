"""Receipts tell a partner what became of each record, by number and reason, with no values."""

from __future__ import annotations

import json

import pytest

from samverkan.quality import receipts
from samverkan.core.contracts import load_contracts

pytestmark = pytest.mark.unit

FILE = {"name": "polisen_handelser_20261120.csv", "night": "2026-11-20", "sha256": "0123456789ab" + "f" * 52,
        "status": "published", "reason": None, "rows_received": 100, "rows_published": 95, "rows_quarantined": 5}
REASONS = {"expect_column_values_to_be_in_set(handelsetyp)": "Händelsetyp is not one of the allowed values"}


def test_receipt_counts_and_record_numbers_by_reason():
    receipt = receipts.build(load_contracts()["police"], FILE, reasons=REASONS, warnings=["column X ignored"],
                             rows_by_check={"expect_column_values_to_be_in_set(handelsetyp)": [7, 3, 4, 5],
                                            "unreadable record": [99]}, run_id="manual__1")
    assert receipt["records"] == {"received": 100, "accepted": 95, "quarantined": 5, "held_for_correction": 0}
    assert receipt["quarantined_by_reason"][0] == {
        "check": "expect_column_values_to_be_in_set(handelsetyp)", "reason": REASONS[
            "expect_column_values_to_be_in_set(handelsetyp)"], "records": 4, "record_numbers": [3, 4, 5, 7],
        "record_numbers_truncated": False}
    text = receipts.as_text(receipt)
    assert "Händelsetyp is not one of the allowed values" in text and ": 4 record(s): 3-5, 7" in text
    assert "column X ignored" in text and FILE["sha256"] in text


def test_rejected_file_receipt_explains_the_reason():
    rejected = {**FILE, "status": "rejected", "rows_received": 0, "rows_published": 0, "rows_quarantined": 0,
                "reason": "missing required column(s) Roll (is the first line the header row?)"}
    text = receipts.as_text(receipts.build(load_contracts()["police"], rejected))
    assert "missing required column(s) Roll (is the first line the header row?)" in text and "not read" in text


def test_stored_receipt_and_its_text_sit_side_by_side_unique_per_content(tmp_path):
    contract = load_contracts()["police"]
    first = receipts.store(tmp_path, receipts.build(contract, FILE))
    second = receipts.store(tmp_path, receipts.build(contract, {**FILE, "sha256": "9" * 64}))
    assert first != second and first.with_suffix(".txt").exists()
    assert first.name == "polisen_handelser_20261120.csv.0123456789ab.receipt.json"
    assert json.loads(first.read_text(encoding="utf-8"))["file"] == FILE["name"]


def test_long_record_lists_are_cut_in_the_text():
    many = list(range(1, 4 * receipts.MAX_TEXT_RANGES, 2))  # every other record: one range each
    assert receipts._ranges([1, 2, 3, 5]) == "1-3, 5"
    assert "more ranges in the JSON receipt" in receipts._ranges(many)
