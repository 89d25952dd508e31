"""Names that no column announces: the proper-noun layer of free-text scrubbing."""

import random
from pathlib import Path

import pyarrow as pa
import pytest

from samverkan.privacy.proper_nouns import DEFAULT_LEXICON, Lexicon, ProperNounScrubber, default_scrubber
from samverkan.privacy.pseudonymise import scrub_text
from tests.support.cases import unchanged

pytestmark = pytest.mark.unit

# A tiny word list in the Debian format (ISO-8859-1, one word a line, proper nouns capitalised),
# so these tests say exactly which words the language knows.
WORDS = """anmälaren
uppger
att
hon
blev
slagen
vittnet
såg
bråket
inga
Inga
skador
buss
kur
huset
passageraren
vägrade
betala
ring
sprang
mot
Anna
Lars
Östersund
"""


@pytest.fixture
def scrubber(tmp_path: Path) -> ProperNounScrubber:
    lexicon_file = tmp_path / "words"
    lexicon_file.write_bytes(WORDS.encode("iso-8859-1"))
    return ProperNounScrubber(Lexicon.load(lexicon_file), ["Gustav III:s torg", "Storsjön", "Östersund"])



@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("Passageraren Özlem vägrade betala", "Passageraren [namn] vägrade betala",
                     id="a capitalised word inside a sentence is a name"),
        pytest.param("vittnet såg Strömbäck, Märta", "vittnet såg [namn], [namn]",
                     id="a capitalised word inside a sentence is a name, before a comma too"),
        pytest.param("Anna uppger att hon blev slagen.", "[namn] uppger att hon blev slagen.",
                     id="a known proper noun goes even at a sentence start"),
        pytest.param("Inga skador. Lars sprang.", "[namn] skador. [namn] sprang.",
                     id="a word that is also a known name goes at a sentence start"),
        unchanged("Anmälaren uppger att hon blev slagen.", "an ordinary word stays at a sentence start"),
        pytest.param("Bråket. Zeynep sprang.", "Bråket. [namn] sprang.",
                     id="an unknown word at a sentence start goes"),
        unchanged("Vittnet såg bråket.\nRing 112.", "an ordinary word stays at the start of a line"),
        unchanged("Busskur: skador.", "a compound of ordinary words stays at a sentence start"),
        pytest.param("Anna Busskur sprang.", "[namn] [namn] sprang.",
                     id="a compound of ordinary words goes after a name"),
        unchanged("Vittnet såg bråket vid Gustav III:s torg mot Storsjön i Östersund, LOB.",
              "place phrases and abbreviations stay"),
        unchanged("buss SE:030:Quay:4021 och AV-2026-018832 och A-huset", "codes with capitals are not names"),
        pytest.param("vittnet Lars-Göran och Annas buss", "vittnet [namn] och [namn] buss",
                     id="hyphenated and possessive names"),
        unchanged('Hon sa: "Vittnet såg bråket"', "a quote opens a sentence"),
        pytest.param("en av dem (Ronja) sprang", "en av dem ([namn]) sprang", id="a bracket opens a sentence"),
    ],
)
def test_names_go_and_ordinary_words_stay(scrubber, text, expected):
    assert scrubber(text) == expected


def test_text_without_capitals_is_returned_unchanged(scrubber):
    text = "inga skador, buss 3"
    assert scrubber(text) is text


def test_without_a_word_list_every_capitalised_word_goes():
    blind = ProperNounScrubber(Lexicon.empty(), ["Storsjön"])
    assert blind("Vittnet såg bråket vid Storsjön.") == "[namn] såg bråket vid Storsjön."


def test_a_very_long_line_is_linear_enough(scrubber):
    text = ("vittnet såg bråket " * 50_000) + "Zeynep"
    assert scrubber(text).endswith("[namn]")


@pytest.mark.skipif(not DEFAULT_LEXICON.exists(), reason="Debian wswedish not installed (scripts/setup installs it)")
def test_the_configured_scrubber_on_the_partners_kind_of_text():
    scrub = default_scrubber()
    assert scrub("Resenären Yusuf Nguyen vägrade betala vid Resecentrum.") == (
        "Resenären [namn] [namn] vägrade betala vid Resecentrum.")
    assert scrub("Patrull på plats. Zoé samarbetade.") == "Patrull på plats. [namn] samarbetade."
    assert scrub("Gärningspersonen sprang mot Storsjön.") == "Gärningspersonen sprang mot Storsjön."


def test_scrub_text_applies_the_layer_by_default_and_not_when_asked():
    texts = pa.array(["Vittnet Özlem Yilmaz såg bråket."])
    assert scrub_text(texts).to_pylist() == ["Vittnet [namn] [namn] såg bråket."]
    assert scrub_text(texts, proper_nouns=False).to_pylist() == ["Vittnet Özlem Yilmaz såg bråket."]


class _CountingSet(frozenset):
    """A word list that counts how often it is asked."""

    asked = 0

    def __contains__(self, item):
        type(self).asked += 1
        return super().__contains__(item)


def test_a_very_long_capitalised_word_costs_what_a_short_one_does():
    """A word as long as a field may be (1 MiB) is classified with as many lookups as a short
    one: every cut of it was tried before, a quadratic amount of copying (minutes per word)."""
    common = _CountingSet({"hej", "buss", "kur", "stad", "huset"})
    scrub = ProperNounScrubber(Lexicon(common=common, proper=frozenset()), [])
    assert scrub("Hej. Stadsbuss sprang.") == "Hej. Stadsbuss sprang."  # a compound at a sentence start
    _CountingSet.asked = 0
    assert scrub("Hej. Ab" + "c" * (1 << 20) + " sprang.") == "Hej. [namn] sprang."
    assert 0 < _CountingSet.asked <= 2 * (len("huset") + 2) + 2


def _every_cut(lexicon: Lexicon, word: str) -> bool:
    """The compound rule as first written: every cut of the word tried."""
    for cut in range(3, len(word) - 3 + 1):
        head, tail = word[:cut], word[cut:]
        if tail in lexicon.common and (head in lexicon.common or (head.endswith("s") and head[:-1] in lexicon.common)):
            return True
    return False


def test_compounds_found_with_bounded_cuts_are_those_of_every_cut():
    rng = random.Random(4)
    words = ["buss", "kur", "stad", "huset", "ab", "abc", "abcdefgh", "s", "vägrade"]
    lexicon = Lexicon(common=frozenset(words), proper=frozenset())
    found = 0
    for _ in range(20_000):
        word = "".join(rng.choice(words + ["x", "s", "ss"]) for _ in range(rng.randint(1, 4)))
        assert lexicon._is_compound(word) == _every_cut(lexicon, word), word
        found += _every_cut(lexicon, word)
    assert found > 1_500


def test_a_field_of_kept_places_and_names_is_scrubbed_in_one_pass(scrubber):
    """1 MiB of alternating kept places and names: each name is checked against the kept spans
    from where the last one left off (every span for every name took minutes on such a field;
    --durations in CI would show it)."""
    text = "Storsjön Zeynep " * 65_536
    assert scrubber(text) == "Storsjön [namn] " * 65_536
    assert scrubber("Zeynep vid Storsjön och Östersund, Özlem.") == "[namn] vid Storsjön och Östersund, [namn]."
