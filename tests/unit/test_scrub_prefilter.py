"""Row values scrubbed with the substring short cuts equal scrubbing with every pattern."""

import random

import pyarrow as pa
import pytest

from samverkan.privacy import pseudonymise
from samverkan.privacy.pseudonymise import extra_pattern, name_tokens, scrub_extras, scrub_names

pytestmark = pytest.mark.unit

NAMES = ["Åsa Öberg", "Lars-Göran Persson-Öberg", "Strauß, Anna", "ANNA", None, "", "Li", "Özlem Yilmaz"]
EXTRAS = ["070-123 45 67", "+46 70 123 45 67", "OV-1234", "ov 1234", "12", "١٢٣٤٥", "12345", None, " 0701234567 "]
WORDS = ["Åsa", "åsas", "ÖBERG", "lars-göran", "Persson-Öbergs", "strauss", "Strauß", "anna", "li", "Özlems",
         "070 123 45 67", "0701234567", "+46701234567", "OV-1234", "ov-1234", "OV1234", "١٢٣٤٥", "1 2 3 4 5",
         "123456", "12", "bussen", "Stortorget", "—", "-", "ß", "İ", "K"]


def reference(text, names, extras):
    tokens = frozenset().union(*(name_tokens(n) for n in names if n))
    text = scrub_names(text, tokens)
    return scrub_extras(text, [extra_pattern(v) for v in extras if v])


def test_short_cuts_change_nothing():
    rng = random.Random(7)
    texts, name_col, extra_col = [], [], []
    for _ in range(4000):
        texts.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 8))))
        name_col.append(rng.choice(NAMES))
        extra_col.append(rng.choice(EXTRAS))
    got = pseudonymise._scrub_row_values(pa.array(texts), [pa.array(name_col)], [pa.array(extra_col)]).to_pylist()
    expected = [reference(t, [n], [e]) if (n and n.strip()) or (e and e.strip()) else t
                for t, n, e in zip(texts, name_col, extra_col)]
    assert got == expected
    assert sum(g != t for g, t in zip(got, texts)) > 500  # plenty was scrubbed, so both paths were exercised


@pytest.mark.parametrize("seed", [9, 10])
def test_pattern_short_cut_changes_nothing(seed):
    rng = random.Random(seed)
    pieces = ["0", "7", "46", "+", "-", " ", "(0)", "(", ")", "@", "a.b", "x", "٣", "19", "1212", "ring", "\n", "0046",
              "070", "8", "5", "+46", "19850101", "-1234", "é", "\t", "_", "9"]
    for _ in range(40000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 14)))
        assert pseudonymise.scrub_patterns(text) == pseudonymise._TEXT_PATTERNS_RE.sub(pseudonymise._label, text)
    assert pseudonymise.scrub_patterns("ring 070-12 34 56") != "ring 070-12 34 56"  # the patterns still work
