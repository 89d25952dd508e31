"""The proper-noun rule word by word: the straightforward path ``ProperNounScrubber`` was before
it looked only at candidate words (issue 13), kept as the oracle its fast path must equal."""

from __future__ import annotations

import re

from samverkan.privacy.proper_nouns import NAME_TOKEN, ProperNounScrubber, _inside_identifier, _starts_sentence

_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")


def word_by_word(scrubber: ProperNounScrubber, text: str) -> str:
    """Every word in turn; a capitalised one goes unless it is a code, inside a kept phrase, an
    abbreviation, or an ordinary word opening a sentence (and not right after a name)."""
    kept = [m.span() for m in scrubber._keep.finditer(text)] if scrubber._keep else []
    out, last, previous_was_name = [], 0, False
    for match in _WORD.finditer(text):
        start, end = match.span()
        word = match.group(0)
        if not word[0].isupper() or _inside_identifier(text, start) or any(a <= start < b for a, b in kept):
            previous_was_name = False
            continue
        if _is_name(scrubber, word, _starts_sentence(text, start), previous_was_name):
            out.append(text[last:start])
            out.append(NAME_TOKEN)
            last = end
            previous_was_name = True
        else:
            previous_was_name = False
    if not out:
        return text
    out.append(text[last:])
    return "".join(out)


def _is_name(scrubber: ProperNounScrubber, word: str, sentence_start: bool, after_name: bool) -> bool:
    kind = scrubber._classify(word)
    if kind == "abbreviation":
        return False
    if not sentence_start or after_name:
        return True
    return kind == "name"
