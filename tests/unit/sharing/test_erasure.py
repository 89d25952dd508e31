"""Erasure's small parts: finding a personnummer in raw bytes in every written form, the rows a
target removes (re-keyed for a recipient), and a tombstone's rows by key."""

from __future__ import annotations

import hashlib

import pyarrow as pa
import pytest

from samverkan.sharing.erasure import Target, _mentions, _rows
from samverkan.sharing.recipient_pseudonyms import RecipientPseudonyms

pytestmark = pytest.mark.unit

CANONICAL = "198501011239"  # synthetic


@pytest.mark.parametrize("raw", [b"x;198501011239;y", b"x;19850101-1239;y", b"850101-1239", b"8501011239",
                                 b'"850101+1239"'])
def test_every_written_form_is_found(raw):
    assert _mentions(raw, CANONICAL)


@pytest.mark.parametrize("raw", [b"1198501011239", b"19850101-12391", b"850101-1238", b"tel 070-850 10 12"])
def test_longer_numbers_and_other_people_are_not(raw):
    assert not _mentions(raw, CANONICAL)


def test_a_target_removes_a_persons_rows_and_a_withdrawn_incidents_rows_in_the_recipients_domain():
    rekey = RecipientPseudonyms(hashlib.sha256(b"unit sharing").digest(), "municipality", 1)
    people = pa.table({"incident_id": [rekey.one(i) for i in ("i1", "i1", "i2", "i3")],
                       "person_pseudonym": [rekey.one(p) for p in ("p1", "p2", "p1", "p3")]})
    assert Target("t", persons={"p1"}).mask(people, rekey).to_pylist() == [True, False, True, False]
    assert Target("t", incidents={"i3"}).mask(people, rekey).to_pylist() == [False, False, False, True]
    assert Target("t", persons={"p1"}).mask(people).to_pylist() == [False] * 4  # hub values match nothing there


def test_tombstone_rows_are_distinct_keys_in_order():
    table = pa.table({"incident_id": ["b", "a", "b"], "person_pseudonym": ["x", "y", "x"], "role": ["r", "s", "r"]})
    assert _rows(table) == [{"incident_id": "a", "person_pseudonym": "y"}, {"incident_id": "b", "person_pseudonym": "x"}]
