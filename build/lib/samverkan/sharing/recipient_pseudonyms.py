"""Per-recipient pseudonyms: the hub's pseudonyms never leave the hub.

Inside the hub one person has one pseudonym in every feed (that is what lets the hub link the
police's and the guards' records). Handing that pseudonym to every recipient would let any two
recipients join their files on it without asking anyone. So every identifier column a recipient
receives is re-keyed into the recipient's own domain::

    recipient_value = base32( HMAC-SHA256( K_sharing,
                                           "recipient:<recipient id>:epoch<N>" ␟ hub_value )[:16] )

``K_sharing`` is a secret of at least 32 bytes, separate from the hub's pseudonymisation key
(Airflow Variable ``samverkan_sharing_secret``); ``N`` is the agreement's ``pseudonyms.epoch``.
The same person therefore has a stable pseudonym within one recipient's deliveries over time,
and unrelated pseudonyms at two recipients: without ``K_sharing`` nobody can tell whether two
recipients' values belong to the same person. Incident ids are re-keyed the same way (else two
recipients could join incidents on the id and, through them, their people).

The construction is the hub's own ``Pseudonymiser`` with the recipient and epoch as the domain,
so the key handling (never printed, never pickled) is the same code.
"""

from __future__ import annotations

import pyarrow as pa

from samverkan.privacy.pseudonymise import Pseudonymiser

SHARING_SECRET_VARIABLE = "samverkan_sharing_secret"

# Columns whose values identify something across datasets; re-keyed for every recipient.
IDENTIFIER_COLUMNS = ("incident_id", "person_pseudonym", "staff_pseudonym")


def recipient_domain(recipient: str, epoch: int) -> str:
    if not recipient or ":" in recipient:
        raise ValueError("recipient id must be non-empty and contain no ':'")
    if epoch < 1:
        raise ValueError("pseudonym epoch starts at 1")
    return f"recipient:{recipient}:epoch{epoch}"


class RecipientPseudonyms:
    """Maps hub identifiers into one recipient's domain; holds the sharing key, never shows it."""

    __slots__ = ("_pseudonymiser", "domain")

    def __init__(self, sharing_key: bytes, recipient: str, epoch: int) -> None:
        self._pseudonymiser = Pseudonymiser(sharing_key)
        self.domain = recipient_domain(recipient, epoch)

    def __repr__(self) -> str:
        return f"RecipientPseudonyms(domain={self.domain!r}, key=<hidden>)"

    __str__ = __repr__

    def __reduce__(self):
        raise TypeError("RecipientPseudonyms is not picklable: it would write the sharing key out")

    def one(self, hub_value: str) -> str:
        return self._pseudonymiser.pseudonym(self.domain, hub_value)

    def array(self, hub_values: pa.Array | pa.ChunkedArray) -> pa.Array:
        """Null stays null (an unknown person is not a person)."""
        return self._pseudonymiser.pseudonymise_array(self.domain, hub_values)

    def rekey(self, table: pa.Table) -> pa.Table:
        """Every identifier column present in ``table`` replaced by its recipient value."""
        for name in IDENTIFIER_COLUMNS:
            if name in table.column_names:
                i = table.column_names.index(name)
                table = table.set_column(i, name, self.array(table.column(name)))
        return table
