"""Pseudonymisation and generalisation: what makes a partner's rows safe to share.

Pseudonyms are keyed (HMAC), not plain hashes: personnummer and phone numbers come from small
spaces that anyone could hash exhaustively. The key is the one secret that links pseudonyms back
to people, so it never appears in a repr, a log line or an error message.

Free text is scrubbed on three levels: patterns (personnummer, phone numbers, e-mail) that are
personal wherever they appear; words that read as proper nouns (names no column announced, see
``samverkan.privacy.proper_nouns``); and the row's own personal values (names, ids) that only mean
something next to that row. The first two run once per distinct text; the row values only on
rows that have any.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import re
from collections import Counter
from collections.abc import Sequence
from functools import cache
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from samverkan.privacy.personnummer import distinct, luhn_valid, map_distinct
from samverkan.privacy.proper_nouns import default_scrubber

MIN_KEY_BYTES = 32
PSEUDONYM_BYTES = 16  # 128 bits: collisions stay negligible across every person in the country
DOMAIN_SEPARATOR = b"\x1f"

PNR_TOKEN = "[personnummer]"
PHONE_TOKEN = "[telefon]"
EMAIL_TOKEN = "[e-post]"
NAME_TOKEN = "[namn]"
REMOVED_TOKEN = "[borttaget]"


# --- keyed pseudonyms ----------------------------------------------------------------------


class Pseudonymiser:
    """Holds the key; pseudonyms are stable for one key, domain and value, everywhere."""

    __slots__ = ("_mac",)

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, (bytes, bytearray)):
            raise TypeError("pseudonymisation key must be bytes")
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"pseudonymisation key must be at least {MIN_KEY_BYTES} bytes, got {len(key)}")
        # Only the keyed HMAC state is kept (copied per value), so the key bytes themselves
        # are not an attribute anyone can print by accident.
        self._mac = hmac.new(bytes(key), digestmod=hashlib.sha256)

    def __repr__(self) -> str:
        return "Pseudonymiser(key=<hidden>)"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("a Pseudonymiser is not picklable: it would write the key out")

    def pseudonym(self, domain: str, value: str) -> str:
        """The domain keeps e.g. a guard id and an employee number with the same digits apart."""
        _check_domain(domain)
        return base64.b32encode(self._digest(self._keyed(domain), value)).decode("ascii").rstrip("=").lower()

    def _keyed(self, domain: str) -> Any:
        """The keyed hash with the domain fed in (HMAC is a stream: the same as feeding both at once)."""
        mac = self._mac.copy()
        mac.update(domain.encode() + DOMAIN_SEPARATOR)
        return mac

    def _digest(self, keyed: Any, value: str) -> bytes:
        mac = keyed.copy()
        mac.update(value.encode())
        return mac.digest()[:PSEUDONYM_BYTES]

    def pseudonymise_array(self, domain: str, values: pa.Array | pa.ChunkedArray) -> pa.Array:
        """Values as typed (surrounding whitespace ignored; empty means absent, so null).

        ``pseudonym`` once per distinct value, but with the domain hashed once and the base32
        text made by numpy for all values at once (Python's base32 was half the cost)."""
        _check_domain(domain)
        uniques, indices = distinct(values)
        keyed = self._keyed(domain)
        texts = [str(v).strip() for v in uniques]
        digests = b"".join(self._digest(keyed, text) for text in texts if text)
        pseudonyms = _base32_lower(np.frombuffer(digests, np.uint8).reshape(-1, PSEUDONYM_BYTES))
        present = np.array([bool(text) for text in texts], bool)
        at = pa.array(np.cumsum(present) - 1, pa.int64(), mask=~present)  # blank: null
        return pc.take(pc.take(pseudonyms, at), indices)


_BASE32 = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz234567", np.uint8)  # RFC 4648, lower case


def _base32_lower(digests: np.ndarray) -> pa.Array:
    """``base64.b32encode(d).decode().rstrip("=").lower()`` of each 16-byte row, as one array:
    three 5-byte groups of 8 characters each, and the last byte's two."""
    if digests.shape[1] != 16:
        raise ValueError("base32 here is for 16-byte digests")
    d = digests.astype(np.uint64)
    out = np.empty((len(d), 26), np.uint8)
    for g in range(3):
        group = sum(d[:, 5 * g + i] << np.uint64(8 * (4 - i)) for i in range(5))
        for k in range(8):
            out[:, 8 * g + k] = _BASE32[(group >> np.uint64(35 - 5 * k)) & np.uint64(31)]
    out[:, 24] = _BASE32[d[:, 15] >> np.uint64(3)]
    out[:, 25] = _BASE32[(d[:, 15] & np.uint64(7)) << np.uint64(2)]
    offsets = np.arange(0, 26 * (len(d) + 1), 26, dtype=np.int32)
    return pa.Array.from_buffers(pa.string(), len(d), [None, pa.py_buffer(offsets), pa.py_buffer(out.tobytes())])


def _check_domain(domain: str) -> None:
    """A separator inside a domain would let two (domain, value) pairs share one message."""
    if not domain or "\x1f" in domain:
        raise ValueError("pseudonym domain must be non-empty and must not contain \\x1f")


_HEX_RE = re.compile(r"[0-9a-fA-F]{64,}")


def key_from_secret(secret: str | bytes) -> bytes:
    """Airflow stores secrets as text, so a binary key arrives as hex or 'base64:…'; anything
    else is a passphrase used as its UTF-8 bytes. Errors never quote the secret."""
    if isinstance(secret, bytes):
        try:
            text = secret.decode("utf-8").strip()
        except UnicodeDecodeError:
            return _long_enough(secret)
    else:
        text = secret.strip()
    if _HEX_RE.fullmatch(text):
        if len(text) % 2:
            raise ValueError("pseudonymisation secret looks like hex but has an odd number of digits")
        return _long_enough(bytes.fromhex(text))
    if text.startswith("base64:"):
        try:
            return _long_enough(base64.b64decode(text[len("base64:") :], validate=True))
        except binascii.Error:
            raise ValueError("pseudonymisation secret has a 'base64:' prefix but is not valid base64") from None
    return _long_enough(text.encode("utf-8"))


MIN_BITS_PER_BYTE = 3.5  # random keys: 4.4 and more at 32 bytes; "Password"*4: 2.75
MIN_DISTINCT_STEPS = 8  # steps between neighbouring bytes; "abcd…" or bytes 0..31 have one
NEW_KEY_HINT = (
    "generate one with `samverkan ops new-key` or python -c 'import secrets; print(secrets.token_urlsafe(32))'"
)


def _long_enough(key: bytes) -> bytes:
    """Length alone lets "a"*32 through; a key must also look random (see ``key_weakness``)."""
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(
            f"pseudonymisation secret must give at least {MIN_KEY_BYTES} bytes, got {len(key)}; {NEW_KEY_HINT}"
        )
    weakness = key_weakness(key)
    if weakness:
        raise ValueError(f"pseudonymisation secret is too weak ({weakness}); {NEW_KEY_HINT}")
    return key


def key_weakness(key: bytes) -> str | None:
    """Why ``key`` is guessable, in words that never quote it; None for a random-looking key.

    A keyed hash is only as strong as the key is hard to guess: a key that repeats a pattern,
    walks a sequence, or uses few distinct bytes is found by the first guesses of an attacker
    who holds a known person's pseudonym. The thresholds leave a wide margin under what random
    32-byte keys and ``secrets.token_urlsafe(32)`` measure."""
    period = next((p for p in range(1, len(key) // 2 + 1) if key[p:] == key[:-p]), None)
    if period is not None:
        return f"it repeats a pattern of {period} byte(s)"
    steps = {(b - a) % 256 for a, b in zip(key, key[1:])}
    if len(steps) < MIN_DISTINCT_STEPS:
        return "it walks a sequence"
    if _bits_per_byte(key) < MIN_BITS_PER_BYTE:
        return "too few distinct characters"
    return None


def _bits_per_byte(key: bytes) -> float:
    """Shannon entropy of the key's byte frequencies."""
    n = len(key)
    return -sum(c / n * math.log2(c / n) for c in Counter(key).values())


# --- free text: patterns -------------------------------------------------------------------

# One pass over the text with every pattern as an alternative: at each position e-mail comes
# first (addresses contain digits), then the personnummer shapes, then phone numbers. Shapes
# that cannot be a date do not match at all, so the engine goes on to try a phone number there.
# A local part is at most 64 characters; the bound keeps a long word without '@' linear.
_EMAIL = r"(?P<email>[\w.%+-]{1,64}@[\w-]+(?:\.[\w-]+)+)"
# Month and day (or day + 60) in range; looser than a calendar on purpose: a mistyped number is
# still somebody's.
_MMDD = r"(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01]|6[1-9]|[78]\d|9[01])"
# Written-out century, or a separator: the structure alone says personnummer (a typo in the
# check digit does not make it less personal).
_PNR_STRUCTURED = rf"(?P<pnr>(?<![\d+])(?:(?:18|19|20)\d\d{_MMDD}[-+ ]?|\d\d{_MMDD}[-+ ])\d{{4}}(?!\d))"
# Plain ten digits: a personnummer or a phone number; decided in _plain_ten.
_PNR_PLAIN = rf"(?P<plain>(?<![\d+])\d\d{_MMDD}\d{{4}}(?!\d))"
# National: 0 + area code; international: +46 (the '+' is boundary enough) or 0046, optionally
# with '(0)'. Then 7–9 digits in all, single spaces or dashes allowed between them, ending in a
# group of at least two digits (so a count after the number, "… 56 2 personer", stays).
_PHONE = r"(?:\+46[ -]?(?:\(0\)[ -]?)?|(?<![\d+])(?:0046[ -]?(?:\(0\)[ -]?)?|0))[1-9](?:[ -]?\d){6,8}(?<=\d\d)(?!\d)"
_PHONE_RE = re.compile(_PHONE)
_TEXT_PATTERNS_RE = re.compile("|".join((_EMAIL, _PNR_STRUCTURED, _PNR_PLAIN, _PHONE)))


def _label(match: re.Match) -> str:
    if match["email"]:
        return EMAIL_TOKEN
    if match["pnr"]:
        return PNR_TOKEN
    if match["plain"]:
        return _plain_ten(match[0])
    return PHONE_TOKEN


def _plain_ten(digits: str) -> str:
    """A number with a right check digit is a personnummer even when it starts like a mobile
    number (born 2007: 07…); else a phone number if shaped like one; else a mistyped
    personnummer (its date is plausible, or the pattern would not have matched)."""
    if luhn_valid(digits) or not _PHONE_RE.fullmatch(digits):
        return PNR_TOKEN
    return PHONE_TOKEN


# Without an '@' only the number patterns can match, and each such match starts with a digit or
# '+' and holds nothing but digits, blanks, dashes, '+' and '(0)'. So the patterns run on the
# maximal stretches of those characters alone: at a stretch's ends the lookarounds see what they
# would see in the text (no digit, no '+'), and the regex engine skips the words in C.
_NUMBER_STRETCH_RE = re.compile(r"[\d+][\d +\-()]*")
_NUMBERS_RE = re.compile("|".join((r"(?P<email>(?!))", _PNR_STRUCTURED, _PNR_PLAIN, _PHONE)))


def _scrub_numbers(stretch: re.Match) -> str:
    return _NUMBERS_RE.sub(_label, stretch.group())


def scrub_patterns(text: str) -> str:
    if "@" in text:
        return _TEXT_PATTERNS_RE.sub(_label, text)
    return _NUMBER_STRETCH_RE.sub(_scrub_numbers, text)


# --- free text: the row's own values -------------------------------------------------------

_WORD_RE = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*")
_DIGITISH_RE = re.compile(r"\+?[\d\s-]+")
_MIN_EXTRA_CHARS = 3  # shorter values ("3") would wipe ordinary numbers out of every text


def name_tokens(name: str) -> frozenset[str]:
    """'Lars-Göran Öberg' → {lars-göran, lars, göran, öberg}: people write either part alone."""
    tokens: set[str] = set()
    for word in _WORD_RE.findall(name):
        tokens.update(part.casefold() for part in (word, *word.split("-")) if len(part) >= 2)
    return frozenset(tokens)


def scrub_names(text: str, tokens: frozenset[str] | set[str]) -> str:
    """Whole words only, any case, with a possessive 's' ('Annas'); a hyphenated word is
    replaced whole when it is a name, else part by part."""
    if not tokens:
        return text

    def one(word: str) -> str:
        folded = word.casefold()
        if folded in tokens or (folded.endswith("s") and folded[:-1] in tokens):
            return NAME_TOKEN
        return word

    def replace(match: re.Match) -> str:
        whole = one(match.group(0))
        if whole == NAME_TOKEN or "-" not in whole:
            return whole
        return "-".join(one(part) for part in whole.split("-"))

    return _WORD_RE.sub(replace, text)


def extra_pattern(value: str) -> re.Pattern | None:
    """Digit strings are found with any spaces or dashes between the digits, since people
    retype them; other values verbatim up to space/dash, any case."""
    value = value.strip()
    if sum(ch.isalnum() for ch in value) < _MIN_EXTRA_CHARS:
        return None
    if _DIGITISH_RE.fullmatch(value):
        digits = re.sub(r"\D", "", value)
        body = r"[\s-]?".join(digits)
        return re.compile(rf"(?<!\d)\+?{body}(?!\d)")
    body = r"[\s-]?".join(re.escape(part) for part in re.split(r"[\s-]+", value))
    return re.compile(rf"(?<!\w){body}(?!\w)", re.IGNORECASE)


def scrub_extras(text: str, patterns: Sequence[re.Pattern | None]) -> str:
    for pattern in patterns:
        if pattern is not None:
            text = pattern.sub(REMOVED_TOKEN, text)
    return text


# --- free text: arrays ---------------------------------------------------------------------


def scrub_text(
    texts: pa.Array | pa.ChunkedArray,
    names: list[pa.Array] | None = None,
    extra_values: list[pa.Array] | None = None,
    *,
    proper_nouns: bool = True,
) -> pa.Array:
    """Free text with personal data replaced by bracketed labels, so a reader still sees that
    a number or a name was there. `names` and `extra_values` are row-aligned with `texts`.
    `proper_nouns=False` leaves capitalised words to the row values alone (for tests of one layer)."""
    texts = _as_string_array(texts)
    names = [_as_string_array(a) for a in names or []]
    extras = [_as_string_array(a) for a in extra_values or []]
    for column in (*names, *extras):
        if len(column) != len(texts):
            raise ValueError("names and extra_values must have one entry per text")
    texts = pc.replace_substring(texts, "\r\n", "\n")
    if proper_nouns:
        names_in_text = default_scrubber()
        texts = map_distinct(texts, lambda text: names_in_text(scrub_patterns(text)), pa.string())
    else:
        texts = map_distinct(texts, scrub_patterns, pa.string())
    return _scrub_row_values(texts, names, extras)


def _as_string_array(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return values if pa.types.is_string(values.type) else values.cast(pa.string())


def _scrub_row_values(texts: pa.Array, names: list[pa.Array], extras: list[pa.Array]) -> pa.Array:
    """Python work only on rows that have text and at least one personal value. Tokens and
    patterns are cached for this call only (people repeat across rows), so no personal value
    outlives it in a module-level cache."""
    has_values = pa.repeat(False, len(texts))
    for column in (*names, *extras):
        has_values = pc.or_(has_values, _non_blank(column))
    mask = pc.and_(has_values, pc.is_valid(texts))
    rows = pc.indices_nonzero(mask)
    if len(rows) == 0:
        return texts
    tokens_of, pattern_of = cache(name_tokens), cache(extra_pattern)
    row_names = [pc.take(a, rows).to_pylist() for a in names]
    row_extras = [pc.take(a, rows).to_pylist() for a in extras]
    digits_of = cache(_extra_digits)
    scrubbed = []
    for i, text in enumerate(pc.take(texts, rows).to_pylist()):
        tokens = frozenset().union(*(tokens_of(col[i]) for col in row_names if col[i]))
        # Same result, less work: a name token matches only where it occurs in the folded
        # text, and a number only where its digits occur once blanks and dashes are gone.
        if tokens and _any_in(tokens, text.casefold()):
            text = scrub_names(text, tokens)
        values = [col[i] for col in row_extras if col[i]]
        if values:
            squeezed = _squeezed(text)
            values = [v for v in values if (digits := digits_of(v)) is None or digits in squeezed]
        scrubbed.append(scrub_extras(text, [pattern_of(v) for v in values]) if values else text)
    return pc.replace_with_mask(texts, mask, pa.array(scrubbed, pa.string()))


def _squeezed(text: str) -> str:
    """The text without blanks and dashes (``re.sub(r"[\\s-]", "", text)``: ``str.split`` splits
    on the same blanks, and is three times as fast)."""
    return "".join(text.split()).replace("-", "")


def _any_in(tokens: frozenset[str], folded: str) -> bool:
    """The text folded once, not once per token."""
    return any(token in folded for token in tokens)


def _extra_digits(value: str) -> str | None:
    """The digits ``extra_pattern`` looks for when ``value`` is a number (else None)."""
    value = value.strip()
    return re.sub(r"\D", "", value) if _DIGITISH_RE.fullmatch(value) else None


def _non_blank(values: pa.Array) -> pa.Array:
    blank = pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(values)), 0)
    return pc.fill_null(pc.invert(blank), False)


# --- generalisation ------------------------------------------------------------------------


def age_band(ages: pa.Array | pa.ChunkedArray, bands: list[dict[str, Any]]) -> pa.Array:
    """Lower bounds inclusive, last band open-ended (common_model.yaml); ages below the first
    bound, negative ages and nulls have no band."""
    if not bands:
        raise ValueError("at least one age band is needed")
    if isinstance(ages, pa.ChunkedArray):
        ages = ages.combine_chunks()
    result = pa.nulls(len(ages), pa.string())
    for band in sorted(bands, key=lambda b: b["min"]):
        lower = max(int(band["min"]), 0)
        result = pc.if_else(pc.greater_equal(ages, lower), pa.scalar(band["label"], pa.string()), result)
    return result


def round_coordinate(values: pa.Array | pa.ChunkedArray, metres: int = 100) -> pa.Array:
    """Nearest multiple of `metres` (halves up): a 100 m square holds many doors, not one."""
    if metres <= 0:
        raise ValueError("metres must be positive")
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    scaled = pc.divide(values.cast(pa.float64()), float(metres))
    rounded = pc.multiply(pc.round(scaled, round_mode="half_up"), float(metres))
    return rounded.cast(pa.int32())


# A number right after a word ('Prästgatan 22'), with an optional entrance letter ('12B',
# '12 B') or range ('12-14'); a number opening a segment (a postcode) is not a house number.
_HOUSE_NUMBER_RE = re.compile(
    r"(?<=[^\W\d_])\s+\d+(?:\s?[A-Za-zÅÄÖåäö])?(?:\s?[-–]\s?\d+(?:\s?[A-Za-zÅÄÖåäö])?)?(?!\w)"
)
# The flat number, with what leads up to it. A match never starts inside a run of blanks (one
# starting a blank earlier always wins), so ``(?<!\s)`` only saves the engine from trying there:
# without it each position scanned the rest of the run (64 Ki blanks took 54 s, a 1 MiB field hours).
_FLAT_RE = re.compile(r"(?:,|(?<!\s))\s*\b(?:lgh|lägenhet)\.?\s*\d+\b", re.IGNORECASE)
_BLANKS_BEFORE_COMMA_RE = re.compile(r"(?<!\s)\s+,")  # the same, for the blanks a removal leaves


def street_only(places: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Street without house number: the street is a place, the door is a household."""
    return map_distinct(places, _street_only, pa.string())


def _street_only(place: str) -> str:
    place = _FLAT_RE.sub("", place)
    place = _HOUSE_NUMBER_RE.sub("", place)
    return _BLANKS_BEFORE_COMMA_RE.sub(",", place).strip()
