"""Row values scrubbed with the substring short cuts equal scrubbing with every pattern."""

import random
import re

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


# Worked out by hand from the rules (whole words, any case, a possessive 's'; a hyphenated name
# whole or in parts; digits with any blanks or dashes between them), so the reference above is
# not its own only judge: (text, the row's name, the row's extra value) -> scrubbed text.
BY_HAND = [
    ("Åsa såg ÖBERG och åsas väska", "Åsa Öberg", None, "[namn] såg [namn] och [namn] väska"),
    ("Lars-Göran ringde, sen Persson-Öbergs bror", "Lars-Göran Persson-Öberg", None, "[namn] ringde, sen [namn] bror"),
    ("Lars och Göran-Erik", "Lars-Göran Persson", None, "[namn] och [namn]-Erik"),
    ("Strauß och STRAUSS", "Strauß, Anna", None, "[namn] och [namn]"),
    ("Li och Lisa", "Li", None, "[namn] och Lisa"),
    ("Annalisa och anna", "Anna", None, "Annalisa och [namn]"),
    ("ring 070 123 45 67 eller 0701234567 nu", None, "070-123 45 67", "ring [borttaget] eller [borttaget] nu"),
    ("nr 10701234567 är ett annat", None, "070-123 45 67", "nr 10701234567 är ett annat"),
    ("vakt ov 1234, OV-1234 och OV1234", None, "OV-1234", "vakt [borttaget], [borttaget] och [borttaget]"),
    ("Åsa ringde 0701234567", "Åsa Öberg", "0701234567", "[namn] ringde [borttaget]"),
    ("Åsa ringde 0701234567", None, None, "Åsa ringde 0701234567"),  # no values of its own: untouched
]


@pytest.mark.parametrize("text, name, extra, expected", BY_HAND)
def test_row_values_scrubbed_as_worked_out_by_hand(text, name, extra, expected):
    got = pseudonymise._scrub_row_values(pa.array([text]), [pa.array([name], pa.string())],
                                         [pa.array([extra], pa.string())]).to_pylist()
    assert got == [expected]
    if name or extra:
        assert reference(text, [name], [extra]) == expected


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


def test_squeezing_removes_exactly_the_blanks_and_dashes_a_regex_would():
    """``str.split`` and the regex's \\s agree on every code point, so the short cut is exact."""
    blanks_dashes = re.compile(r"[\s-]")
    every = "".join(map(chr, range(0x110000)))  # every code point, surrogates too
    assert pseudonymise._squeezed(every) == blanks_dashes.sub("", every)
    assert len(every) - len(pseudonymise._squeezed(every)) > 20  # Unicode's blanks, not only ASCII's
    assert pseudonymise._squeezed(" 070-12\u00a034\u200956\n") == "070123456"
