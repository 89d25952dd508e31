"""Names that no column announces: the proper-noun layer of free-text scrubbing."""

from pathlib import Path

import pyarrow as pa
import pytest

from samverkan.privacy.proper_nouns import DEFAULT_LEXICON, Lexicon, ProperNounScrubber, default_scrubber
from samverkan.privacy.pseudonymise import scrub_text

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


def test_a_capitalised_word_inside_a_sentence_is_a_name(scrubber):
    assert scrubber("Passageraren Özlem vägrade betala") == "Passageraren [namn] vägrade betala"
    assert scrubber("vittnet såg Strömbäck, Märta") == "vittnet såg [namn], [namn]"


def test_known_proper_nouns_go_even_at_a_sentence_start(scrubber):
    assert scrubber("Anna uppger att hon blev slagen.") == "[namn] uppger att hon blev slagen."
    assert scrubber("Inga skador. Lars sprang.") == "[namn] skador. [namn] sprang."


def test_unknown_words_at_a_sentence_start_go_but_ordinary_words_stay(scrubber):
    assert scrubber("Anmälaren uppger att hon blev slagen.") == "Anmälaren uppger att hon blev slagen."
    assert scrubber("Bråket. Zeynep sprang.") == "Bråket. [namn] sprang."
    assert scrubber("Vittnet såg bråket.\nRing 112.") == "Vittnet såg bråket.\nRing 112."


def test_compounds_of_ordinary_words_stay_at_a_sentence_start_but_not_after_a_name(scrubber):
    assert scrubber("Busskur: skador.") == "Busskur: skador."
    assert scrubber("Anna Busskur sprang.") == "[namn] [namn] sprang."


def test_place_phrases_and_abbreviations_stay(scrubber):
    text = "Vittnet såg bråket vid Gustav III:s torg mot Storsjön i Östersund, LOB."
    assert scrubber(text) == text


def test_codes_with_capitals_are_not_names(scrubber):
    text = "buss SE:030:Quay:4021 och AV-2026-018832 och A-huset"
    assert scrubber(text) == text


def test_hyphenated_and_possessive_names(scrubber):
    assert scrubber("vittnet Lars-Göran och Annas buss") == "vittnet [namn] och [namn] buss"


def test_quotes_and_brackets_open_a_sentence_too(scrubber):
    assert scrubber('Hon sa: "Vittnet såg bråket"') == 'Hon sa: "Vittnet såg bråket"'
    assert scrubber("en av dem (Ronja) sprang") == "en av dem ([namn]) sprang"


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
