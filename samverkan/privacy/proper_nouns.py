"""Names in free text that no column announces.

The transit operator's descriptions "may contain names" but the feed has no name column, and a
police narrative may name a witness who is not the row's person. Row values cannot catch those,
so free text also loses every word that reads as a proper noun. In Swedish only proper nouns are
capitalised inside a sentence, which makes the rule sharp:

* inside a sentence, a capitalised word is a name unless it belongs to a known place phrase
  (the shared areas and ``free_text.keep_phrases`` in ``schemas/common_model.yaml``) or is a
  short all-capitals abbreviation (LOB, SMS);
* at the start of a sentence capitals say nothing, so the word goes only when the Swedish word
  list (Debian's ``wswedish``) knows it as a proper noun, does not know it at all (Özlem,
  Strömbäck …) and it is not a compound of ordinary words, or when it follows a name
  (``Anna Svensson``).

The rule errs towards removing: a place nobody listed becomes ``[namn]``, which costs a reader a
word; a name left in place would cost a person their privacy. Without the word list every
capitalised word goes, and a warning says so.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path

log = logging.getLogger(__name__)

NAME_TOKEN = "[namn]"
DEFAULT_LEXICON = Path("/usr/share/dict/swedish")  # Debian wswedish, ISO-8859-1
ABBREVIATION_MAX = 5
MIN_COMPOUND_PART = 3

# A word: letters with inner hyphens or apostrophes (Lars-Göran, O'Brien). Only words whose
# first letter may be a capital are candidates: any letter but the lower-case ones of Latin-1
# (word[0].isupper() decides). The look-behinds put the start where a word begins, not inside
# one (Anna-Lena's Lena is part of it): the words found are exactly those of a scan word by word.
_CANDIDATE = re.compile(r"[^\W\d_a-zß-öø-ÿ](?<![^\W\d_].)(?<![^\W\d_]['’-].)[^\W\d_]*(?:['’-][^\W\d_]+)*")
_LETTER = re.compile(r"[^\W\d_]")
# Between a sentence end (. ! ? : or a line break) and the next word: spaces, quotes, brackets.
_OPENERS = " \t\"'([«»”“‘’–-"
_SENTENCE_ENDS = ".!?:\n\r"
_LOOK_BACK = 16


@dataclass(frozen=True)
class Lexicon:
    """Ordinary words (lower case) and known proper nouns (as written) of the language."""

    common: frozenset[str]
    proper: frozenset[str]

    @classmethod
    def load(cls, path: Path = DEFAULT_LEXICON) -> Lexicon:
        words = path.read_text(encoding="iso-8859-1").split()
        return cls(
            common=frozenset(w for w in words if w[:1].islower()),
            proper=frozenset(w.casefold() for w in words if w[:1].isupper()),
        )

    @classmethod
    def empty(cls) -> Lexicon:
        return cls(frozenset(), frozenset())

    def is_proper(self, word: str) -> bool:
        folded = word.casefold()
        return folded in self.proper or (folded.endswith("s") and folded[:-1] in self.proper)

    def is_ordinary(self, word: str) -> bool:
        """A word of the language, or a compound of two (with an optional linking s)."""
        folded = word.casefold()
        return folded in self.common or self._is_compound(folded)

    @cached_property
    def _longest_common(self) -> int:
        return max(map(len, self.common), default=0)

    def _is_compound(self, word: str) -> bool:
        """Only cuts that leave both parts no longer than the list's longest word are tried (a
        longer part is no word of it), so a 1 MiB capitalised word costs what a short one does;
        trying every cut made it quadratic, minutes for one word."""
        first = max(MIN_COMPOUND_PART, len(word) - self._longest_common)
        last = min(len(word) - MIN_COMPOUND_PART, self._longest_common + 1)  # +1: the linking s
        for cut in range(first, last + 1):
            head, tail = word[:cut], word[cut:]
            if tail in self.common and (head in self.common or (head.endswith("s") and head[:-1] in self.common)):
                return True
        return False


class ProperNounScrubber:
    """Replaces names that no column announced; built once per process from configuration."""

    def __init__(self, lexicon: Lexicon, keep_phrases: Iterable[str]) -> None:
        self.lexicon = lexicon
        phrases = sorted({p.strip() for p in keep_phrases if p.strip()}, key=len, reverse=True)
        # One lookbehind before the alternation: the same matches as one per phrase, but a position
        # inside a word is given up at once instead of once per phrase; and a word whose first
        # letter starts no phrase (most words) at once too, by one character class, which
        # IGNORECASE widens exactly as it widens the phrases. A third of the scrubber's time before.
        first = "".join(sorted({p[0] for p in phrases}))
        self._keep = (
            re.compile(
                rf"(?<!\w)(?=[{re.escape(first)}])(?:{'|'.join(re.escape(p) for p in phrases)})(?!\w)", re.IGNORECASE
            )
            if phrases
            else None
        )
        self._word_kind = cache(self._classify)

    def __call__(self, text: str) -> str:
        """Only words that can start with a capital are looked at, and the place phrases are
        searched once a word would go: the same result as going word by word (the tests hold it
        to that), at two thirds of the time (issue 13)."""
        out: list[str] = []
        last, words_end, previous_was_name = 0, 0, False
        kept: list[tuple[int, int]] | None = None
        k = 0  # the first kept span that ends after the word: spans and words both go left to right
        for match in _CANDIDATE.finditer(text):
            start, end = match.span()
            # A lower-case word in between ends a run of names, as a word of its own would.
            after_name = previous_was_name and not _LETTER.search(text, words_end, start)
            words_end, previous_was_name = end, False
            if not self._is_name(match.group(), text, start, after_name):
                continue
            if kept is None:
                kept = [m.span() for m in self._keep.finditer(text)] if self._keep else []
            while k < len(kept) and kept[k][1] <= start:
                k += 1
            if k < len(kept) and kept[k][0] <= start:
                continue  # inside a kept place phrase
            out += (text[last:start], NAME_TOKEN)
            last, previous_was_name = end, True
        if not out:
            return text
        out.append(text[last:])
        return "".join(out)

    def _is_name(self, word: str, text: str, start: int, after_name: bool) -> bool:
        """Inside a sentence (or after a name) every capitalised word is one; at a sentence
        start only a proper noun or an unknown word is. Abbreviations and codes never are."""
        if not word[0].isupper() or _inside_identifier(text, start):
            return False
        kind = self._word_kind(word)
        if kind == "abbreviation":
            return False
        return kind == "name" or after_name or not _starts_sentence(text, start)

    def _classify(self, word: str) -> str:
        """'abbreviation', 'name' (known or unknown proper noun) or 'ordinary' (sentence-initial
        word of the language). Hyphenated words are names when any part is."""
        if word.isupper() and len(word) <= ABBREVIATION_MAX and not self.lexicon.is_proper(word):
            return "abbreviation"
        parts = [p for p in re.split(r"['’-]", word) if len(p) > 1]
        if not any(p[0].isupper() for p in parts):  # 'A-huset': only a letter is capitalised
            return "abbreviation"
        if any(self.lexicon.is_proper(p) for p in parts):
            return "name"
        if all(self.lexicon.is_ordinary(p) for p in parts):
            return "ordinary"
        return "name"


def _inside_identifier(text: str, start: int) -> bool:
    """'SE:030:Quay:4021', 'AV-2026', 'A-huset': a word glued to what precedes it is part of a code."""
    return start > 0 and not text[start - 1].isspace() and text[start - 1] not in _OPENERS


def _starts_sentence(text: str, start: int) -> bool:
    """Looks back a few characters only, so a 10 MB line stays linear."""
    head = text[max(0, start - _LOOK_BACK) : start].rstrip(_OPENERS)
    return not head or head[-1] in _SENTENCE_ENDS


@cache
def default_scrubber() -> ProperNounScrubber:
    """The scrubber configured in ``schemas/common_model.yaml`` (place phrases, word list)."""
    from samverkan.core.contracts import common_model

    model = common_model()
    settings = model.get("free_text", {})
    phrases = [alias for aliases in model.get("areas", {}).values() for alias in aliases]
    phrases += settings.get("keep_phrases", [])
    path = Path(settings.get("lexicon", DEFAULT_LEXICON))
    try:
        lexicon = Lexicon.load(path)
    except OSError:
        log.warning(
            "Swedish word list %s not found (Debian package wswedish): every capitalised word "
            "in free text will be treated as a name",
            path,
        )
        lexicon = Lexicon.empty()
    return ProperNounScrubber(lexicon, phrases)
