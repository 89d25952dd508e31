"""The proper-noun layer looks only at words that can start with a capital (issue 13); what it
removes must be exactly what going word by word removes (``tests/support/proper_noun_oracle``).

Each equivalence test also counts what it exercised, so it cannot pass on texts where neither
path had anything to do.
"""

from __future__ import annotations

import csv
import gzip
import json
import random
from datetime import date
from pathlib import Path

import pytest

from samverkan.privacy.proper_nouns import DEFAULT_LEXICON, NAME_TOKEN, Lexicon, ProperNounScrubber, default_scrubber
from tests.support.proper_noun_oracle import word_by_word

pytestmark = pytest.mark.unit

WORDS = "vittnet såg bråket sprang stad buss kur ring at inga Inga stens Sten Anna Ed skador vid i och hon"
PHRASES = ["Storsjön", "Gustav III:s torg", "region jämtland", "Region Jämtland Härjedalen", "Anna-gatan", "Stora Torget"]

# Words and pieces chosen at the edges of the candidate scan: capitals outside ASCII (Ö, É, Ø, İ,
# the Kelvin sign, a Roman numeral, Greek), letters that are neither case (ª) or title case (ǅ),
# lower-case words with capitals inside (iPhone, McDonald), joiners between letters, digits and
# underscores glued to words, abbreviations, the kept phrases in other cases, and everything that
# may open or end a sentence.
PIECES = [
    "vittnet", "såg", "bråket", "Vittnet", "Bråket", "Anna", "anna", "ANNA", "Inga", "inga", "Sten", "Stens",
    "Zeynep", "Özlem", "Émile", "Øystein", "İlker", "\u212aarin", "Ⅻ", "Ωmega", "ωmega", "ǅemal", "ªb", "ß",
    "iPhone", "McDonald", "NETEX", "LOB", "ZEYNEP", "A", "Ed", "Ed-huset", "Anna-Lena", "anna-Lena", "Lars-göran",
    "O'Brien", "o'Brien", "d’Artagnan", "Storsjön", "storsjön", "STORSJÖN", "Gustav III:s torg", "gustav iii:s torg",
    "region jämtland", "Region Jämtland Härjedalen", "Region", "Jämtland", "Anna-gatan", "Stora Torget", "Stora",
    "Torget", "SE:030:Quay:4021", "AV-2026", "3Quay", "x_Y", "_Zeynep", "12", "Stadsbuss", "Busskur", "Ringat",
]
GLUE = [" ", " ", " ", "", ". ", "! ", "? ", ": ", "\n", "\r\n", ", ", "-", "'", "’", " (", ") ", " «", "» ", " “",
        "” ", " ‘", " [", " – ", "\t", "  ", ".\n", "3", "_", "..."]


@pytest.fixture
def small(tmp_path: Path) -> ProperNounScrubber:
    words = tmp_path / "words"
    words.write_bytes("\n".join(WORDS.split()).encode("iso-8859-1"))
    return ProperNounScrubber(Lexicon.load(words), PHRASES)


def _random_texts(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        parts = [rng.choice(GLUE) if rng.random() < 0.3 else ""]
        for _ in range(rng.randint(1, 9)):
            parts += [rng.choice(PIECES), rng.choice(GLUE)]
        texts.append("".join(parts))
    return texts


def _agree(scrubber: ProperNounScrubber, texts: list[str]) -> dict[str, int]:
    """Both paths on every text; counts of what was exercised."""
    seen = {"texts changed": 0, "names in a row": 0, "kept phrases left": 0}
    for text in texts:
        expected = word_by_word(scrubber, text)
        assert scrubber(text) == expected, text
        seen["texts changed"] += expected != text
        seen["names in a row"] += f"{NAME_TOKEN} {NAME_TOKEN}" in expected
        seen["kept phrases left"] += any(p in expected for p in ("Storsjön", "Gustav III:s torg", "Stora Torget"))
    return seen


@pytest.mark.parametrize("seed", [1, 2])
def test_candidates_only_equal_word_by_word_on_edge_pieces(small, seed):
    seen = _agree(small, _random_texts(seed, 25_000))
    assert seen["texts changed"] > 15_000
    assert seen["names in a row"] > 1_000
    assert seen["kept phrases left"] > 1_000


def test_a_lower_case_word_between_names_ends_the_run(small):
    """The one rule the candidate scan has to restate: 'after a name' means no word in between."""
    for text, expected in [
        ("Zeynep. Bråket sprang.", "[namn]. [namn] sprang."),  # right after a name: a name
        ("Zeynep såg. Bråket sprang.", "[namn] såg. Bråket sprang."),  # a word in between
        ("Zeynep 12. Bråket sprang.", "[namn] 12. [namn] sprang."),  # a number is no word
        ("Zeynep iPhone. Bråket sprang.", "[namn] iPhone. Bråket sprang."),  # a lower-case word with a capital
    ]:
        assert small(text) == expected == word_by_word(small, text)


@pytest.mark.skipif(not DEFAULT_LEXICON.exists(), reason="Debian wswedish not installed (scripts/setup installs it)")
def test_candidates_only_equal_word_by_word_with_the_configured_word_list_and_phrases():
    scrub = default_scrubber()
    seen = _agree(scrub, _random_texts(3, 10_000))
    assert seen["texts changed"] > 6_000


def _feed_texts(out: Path) -> list[str]:
    """Every string the synthetic partners write in one night, free text and names alike."""
    from devkit.synthetic import Population, write_night

    texts: list[str] = []
    for feed, encoding in (("police", "cp1252"), ("guards", "utf-8-sig"), ("transit", None)):
        path = write_night(feed, date(2026, 11, 20), out, rows=1_500, population=Population(seed=5), seed=3).path
        if encoding is None:
            with gzip.open(path, "rt", encoding="utf-8") as lines:
                texts += [v for line in lines for v in _strings(json.loads(line))]
        else:
            with path.open(encoding=encoding, newline="") as f:
                delimiter = ";" if feed == "police" else ","
                texts += [v for row in csv.reader(f, delimiter=delimiter) for v in row]
    return texts


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


@pytest.mark.skipif(not DEFAULT_LEXICON.exists(), reason="Debian wswedish not installed (scripts/setup installs it)")
def test_candidates_only_equal_word_by_word_on_the_partners_kind_of_text(tmp_path):
    texts = _feed_texts(tmp_path)
    seen = _agree(default_scrubber(), texts)
    assert len(texts) > 20_000
    assert seen["texts changed"] > 3_000
    assert seen["names in a row"] > 300
