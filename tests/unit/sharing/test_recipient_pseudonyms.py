"""Per-recipient pseudonyms follow the construction the README documents, and do not link."""

from __future__ import annotations

import base64
import hashlib
import hmac
import pickle

import pyarrow as pa
import pytest

from samverkan.sharing.recipient_pseudonyms import RecipientPseudonyms, recipient_domain

pytestmark = pytest.mark.unit

KEY = bytes(range(32))
HUB_VALUES = ["q3m2k5x7w4v6", "a1b2c3d4e5f6", "zzzzyyyyxxxx"]


def documented(key: bytes, recipient: str, epoch: int, hub_value: str) -> str:
    """README: base32(HMAC-SHA256(K_sharing, "recipient:<id>:epoch<N>" ␟ hub_value)[:16])."""
    message = f"recipient:{recipient}:epoch{epoch}".encode() + b"\x1f" + hub_value.encode()
    digest = hmac.new(key, message, hashlib.sha256).digest()[:16]
    return base64.b32encode(digest).decode().rstrip("=").lower()


def test_matches_the_documented_construction():
    p = RecipientPseudonyms(KEY, "transit", 1)
    assert [p.one(v) for v in HUB_VALUES] == [documented(KEY, "transit", 1, v) for v in HUB_VALUES]


def test_recipients_and_epochs_get_unrelated_values():
    values = {(r, e): {RecipientPseudonyms(KEY, r, e).one(v) for v in HUB_VALUES}
              for r in ("transit", "police") for e in (1, 2)}
    for a in values:
        for b in values:
            if a != b:
                assert not values[a] & values[b], (a, b)
    assert not values[("transit", 1)] & set(HUB_VALUES)


def test_rekey_replaces_every_identifier_and_keeps_nulls():
    table = pa.table({"incident_id": ["police:1", "police:2"], "person_pseudonym": [HUB_VALUES[0], None],
                      "role": ["victim", "suspect"]})
    out = RecipientPseudonyms(KEY, "police", 1).rekey(table)
    assert out.column("incident_id").to_pylist() == [documented(KEY, "police", 1, "police:1"),
                                                     documented(KEY, "police", 1, "police:2")]
    assert out.column("person_pseudonym").to_pylist() == [documented(KEY, "police", 1, HUB_VALUES[0]), None]
    assert out.column("role").to_pylist() == ["victim", "suspect"]


def test_key_is_never_shown_or_pickled():
    p = RecipientPseudonyms(KEY, "guards", 3)
    assert KEY.hex() not in repr(p) and "hidden" in repr(p)
    with pytest.raises(TypeError):
        pickle.dumps(p)
    with pytest.raises(ValueError):
        RecipientPseudonyms(KEY[:16], "guards", 1)


@pytest.mark.parametrize(("recipient", "epoch"), [("", 1), ("a:b", 1), ("x", 0)])
def test_bad_domains_are_refused(recipient, epoch):
    with pytest.raises(ValueError):
        recipient_domain(recipient, epoch)
