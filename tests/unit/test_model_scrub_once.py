"""Free text scrubbed once per (text, row values) combination equals scrubbing every row."""

from datetime import date

import pyarrow as pa
import pytest

from samverkan.core.contracts import load_contracts
from samverkan.ingest.model import FeedModel, distinct_rows
from samverkan.ingest.parsing import read_batches
from samverkan.privacy.pseudonymise import Pseudonymiser, scrub_text
from devkit.leakscan import Matcher
from devkit.synthetic import Population, write_night

pytestmark = pytest.mark.unit

NIGHT = date(2026, 11, 20)


@pytest.mark.parametrize("feed, column", [("police", "fritext"), ("guards", "beskrivning")])
def test_scrub_once_per_combination_equals_every_row(tmp_path, feed, column):
    contract = load_contracts()[feed]
    truth = write_night(feed, NIGHT, tmp_path, rows=2000, population=Population(seed=4, size=150), seed=4)
    model = FeedModel(contract, Pseudonymiser(b"k" * 32), NIGHT, truth.path.name)
    matcher = Matcher(truth.personal_values)
    for batch in read_batches(contract, truth.path, batch_rows=700):
        table = batch.table
        names = [table.column(c.name).combine_chunks() for c in contract.columns
                 if "name_order" in (c.personal or {}) and c.name != column]
        extras = [table.column(c.name).combine_chunks() for c in contract.columns
                  if (c.personal or {}).get("handling") not in (None, "scrub", "generalise")
                  and "name_order" not in c.personal and c.type not in ("personnummer", "array")]
        every_row = scrub_text(table.column(column), names=names or None, extra_values=extras or None)
        scrubbed = model._scrubbed(table, column, table.num_rows).to_pylist()
        assert scrubbed == every_row.to_pylist()
        # The generator's truth, not the scrubber, is the judge of what must be gone.
        raw = table.column(column).to_pylist()
        assert sum(1 for text in raw if text and any(matcher.find(text))) > 0  # there was something to scrub
        assert [hit for text in scrubbed if text for hit in matcher.find(text)] == []
        _, first = distinct_rows([table.column(column).combine_chunks(), *names, *extras])
        assert len(first) < table.num_rows  # combinations really repeat, so the short cut was taken


def test_distinct_rows_treats_null_as_a_value():
    inverse, first = distinct_rows([pa.array(["a", None, "a", None, "b"]), pa.array([None, None, None, "x", None])])
    assert sorted(first) == [0, 1, 3, 4]
    assert inverse[0] == inverse[2] and len({inverse[0], inverse[1], inverse[3], inverse[4]}) == 4
