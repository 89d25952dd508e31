"""The proper-noun layer's rules one at a time, each at its edge (issue 16, mutation testing).

test_proper_nouns.py shows the rules on the partners' kind of text; these cases pin each rule
where a slightly different rule would give another answer: the word list's genitive s, the
shortest compound part and the linking s, the abbreviation length, the sentence start and what
may precede it, hyphenated words, codes, the configured scrubber without its word list.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from samverkan.privacy import proper_nouns
from samverkan.privacy.proper_nouns import Lexicon, ProperNounScrubber
from tests.support.cases import unchanged

pytestmark = pytest.mark.unit

# Debian's format (ISO-8859-1, one word a line, proper nouns capitalised); 'inga' and 'Inga' are
# both, as in the real list, and so are 'stens' (of a stone) and 'Sten' (a name).
WORDS = "vittnet såg bråket sprang stad buss kur ring at inga Inga stens Sten Anna Ed skador vid i"
PHRASES = ["Storsjön", " ", "Gustav III:s torg", "region jämtland", "Region Jämtland Härjedalen"]


@pytest.fixture
def scrub(tmp_path: Path) -> ProperNounScrubber:
    words = tmp_path / "words"
    words.write_bytes("\n".join(WORDS.split()).encode("iso-8859-1"))
    return ProperNounScrubber(Lexicon.load(words), PHRASES)



@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("Stens kniv låg kvar.", "[namn] kniv låg kvar.",
                     id="a name's genitive goes at a sentence start though the word list knows the word"),
        unchanged("Stadsbuss: inga skador.", "a compound with a linking s stays at a sentence start"),
        pytest.param("Zeynepsbuss sprang.", "[namn] sprang.", id="an unknown head before a linking s is no compound"),
        pytest.param("Zeynepbuss sprang.", "[namn] sprang.", id="a known tail alone makes no compound"),
        pytest.param("Ringat sprang.", "[namn] sprang.", id="a two-letter tail makes no compound"),
        pytest.param("Iskador sprang.", "[namn] sprang.", id="a one-letter head makes no compound"),
        pytest.param("vittnet såg Busskur", "vittnet såg [namn]",
                     id="inside a sentence an ordinary word with a capital is a name"),
        unchanged("vittnet såg NETEX vid buss", "an abbreviation of five capitals stays"),
        pytest.param("vittnet såg ZEYNEP vid buss", "vittnet såg [namn] vid buss", id="six capitals are a name"),
        pytest.param("vittnet såg ANNA vid buss", "vittnet såg [namn] vid buss",
                     id="a known name in capitals is no abbreviation"),
        pytest.param("vid Ed-huset", "vid [namn]", id="a two-letter capitalised part makes a hyphenated word a name"),
        pytest.param("Inga-Buss sprang.", "[namn] sprang.", id="one part a name makes a hyphenated word a name"),
        pytest.param("Buss-Zeynep sprang.", "[namn] sprang.",
                     id="one part unknown makes a hyphenated word at a sentence start a name"),
        unchanged("Bråket. Ring 112.", "a full stop starts a sentence"),
        unchanged("Vid Storsjön. Vittnet sprang.", "a kept place is not a name before the next sentence"),
        unchanged("Bråket. Vittnet sprang.", "an ordinary word is not a name before the next sentence"),
        pytest.param("i (Busskur)", "i ([namn])", id="a bracket after a word is inside the sentence"),
        unchanged("3Quay och 7Zeynep", "a word glued to a digit is part of a code"),
        unchanged("vittnet såg STORSJÖN", "place phrases are kept whatever their case"),
        unchanged("vittnet vid Region Jämtland Härjedalen", "the longest phrase wins, whatever its case"),
        pytest.param("vittnet såg bråket\nZeynep sprang", "vittnet såg bråket\n[namn] sprang",
                     id="a name after a line break is no code"),
        pytest.param("Zeynep: Vittnet sprang.", "[namn]: [namn] sprang.",
                     id="the word after a name goes even at a sentence start"),
    ],
)
def test_rule_edges(scrub, text, expected):
    assert scrub(text) == expected


def test_a_scrubber_without_phrases_keeps_nothing():
    assert ProperNounScrubber(Lexicon.empty(), ["", "  "])("vid Storsjön sprang Anna") == "vid [namn] sprang [namn]"


def test_capitalised_words_of_the_word_list_are_its_proper_nouns_and_the_rest_ordinary(tmp_path):
    words = tmp_path / "words"
    words.write_bytes("Östersund\nbuss\neBay\nÅre\n".encode("iso-8859-1"))
    lexicon = Lexicon.load(words)
    assert lexicon.proper == {"östersund", "åre"} and lexicon.common == {"buss", "eBay"}
    assert Lexicon.empty() == Lexicon(frozenset(), frozenset())


def test_without_its_word_list_the_configured_scrubber_warns_and_removes_every_capitalised_word(
    monkeypatch, tmp_path, caplog
):
    from samverkan.core import contracts

    model = contracts.common_model()
    missing = tmp_path / "no-such-list"
    free_text = {**model["free_text"], "lexicon": str(missing)}
    monkeypatch.setattr(contracts, "common_model", lambda: {**model, "free_text": free_text})
    proper_nouns.default_scrubber.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger=proper_nouns.__name__):
            scrub = proper_nouns.default_scrubber()
        assert scrub("Vittnet sprang mot Storsjön vid Resecentrum.") == "[namn] sprang mot Storsjön vid Resecentrum."
        [record] = caplog.records
        assert str(missing) in record.getMessage() and "wswedish" in record.getMessage()
    finally:
        proper_nouns.default_scrubber.cache_clear()
