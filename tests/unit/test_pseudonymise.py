"""Pseudonymisation is where personal data stops: the same person must get the same pseudonym in
every feed and form, the key must never show, free text must lose every personal value in every
way people write it, and ordinary text (times, dates, lines, stops, case numbers) must survive,
or the published data is useless. All persons, numbers and keys here are synthetic."""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import random
import re
from datetime import date

import pyarrow as pa
import pytest

from samverkan.privacy import pseudonymise
from samverkan.privacy.personnummer import luhn_check_digit, normalise_array
from samverkan.privacy.pseudonymise import (
    Pseudonymiser,
    age_band,
    key_from_secret,
    key_weakness,
    round_coordinate,
    scrub_text,
    street_only,
)

pytestmark = pytest.mark.unit

KEY = hashlib.sha256(b"test_pseudonymise key").digest()  # random-looking: weak keys are refused
OTHER_KEY = hashlib.sha256(b"test_pseudonymise other key").digest()
REF = date(2026, 11, 20)


def make(yyyymmdd: str, serial: str) -> str:
    return yyyymmdd + serial + str(luhn_check_digit(yyyymmdd[2:] + serial))


PNR = make("19900312", "123")
OLD = make("19210602", "456")  # 105 on REF: written with '+'
COORD = make("19850177", "789")  # samordningsnummer for 17 January 1985


# --- the key -------------------------------------------------------------------------------

@pytest.mark.parametrize("length", [0, 16, 31])
def test_short_keys_are_refused_without_showing_the_key(length):
    key = b"S" * length
    with pytest.raises(ValueError) as error:
        Pseudonymiser(key)
    message = str(error.value)
    assert "32" in message
    if length:
        assert key.decode() not in message and key.hex() not in message


def test_non_bytes_key_is_refused():
    with pytest.raises(TypeError):
        Pseudonymiser("k" * 40)  # type: ignore[arg-type]


def test_repr_and_str_never_show_the_key():
    key = b"secret-synthetic-key-0123456789-ABCDEF"
    p = Pseudonymiser(key)
    for shown in (repr(p), str(p), f"{p}", repr([p])):
        assert "secret" not in shown and key.hex()[:16] not in shown and "ABCDEF" not in shown
    assert not hasattr(p, "key") and not hasattr(p, "__dict__")


def test_a_pseudonymiser_cannot_be_pickled():
    import pickle

    with pytest.raises(TypeError):
        pickle.dumps(Pseudonymiser(KEY))


# --- pseudonyms ----------------------------------------------------------------------------

def test_pseudonym_is_truncated_hmac_sha256_in_lowercase_base32():
    value = Pseudonymiser(KEY).pseudonym("person", PNR)
    digest = hmac.new(KEY, b"person\x1f" + PNR.encode(), hashlib.sha256).digest()
    assert value == base64.b32encode(digest[:16]).decode().rstrip("=").lower()
    assert re.fullmatch(r"[a-z2-7]{26}", value)


def test_pseudonyms_are_stable_and_differ_by_domain_and_key():
    one, again, other_key = Pseudonymiser(KEY), Pseudonymiser(bytes(KEY)), Pseudonymiser(OTHER_KEY)
    assert one.pseudonym("person", PNR) == again.pseudonym("person", PNR)
    assert one.pseudonym("person", PNR) != one.pseudonym("guard", PNR)
    assert one.pseudonym("transit_employee", "48213") != one.pseudonym("guard", "48213")
    assert one.pseudonym("person", PNR) != other_key.pseudonym("person", PNR)
    assert one.pseudonym("person", PNR) != one.pseudonym("person", make("19900312", "124"))


def test_domain_separator_cannot_be_smuggled_into_a_domain():
    p = Pseudonymiser(KEY)
    with pytest.raises(ValueError):
        p.pseudonym("per\x1fson", "x")
    with pytest.raises(ValueError):
        p.pseudonym("", "x")


@pytest.mark.parametrize(
    ("canonical", "forms"),
    [
        (PNR, [PNR, f"{PNR[:8]}-{PNR[8:]}", f"{PNR[2:8]}-{PNR[8:]}", PNR[2:], f" {PNR[2:]} "]),
        (OLD, [OLD, f"{OLD[:8]}-{OLD[8:]}", f"{OLD[2:8]}+{OLD[8:]}"]),
        (COORD, [COORD, f"{COORD[:8]}-{COORD[8:]}", f"{COORD[2:8]}-{COORD[8:]}", COORD[2:]]),
    ],
)
def test_every_form_of_one_person_gets_one_pseudonym(canonical, forms):
    p = Pseudonymiser(KEY)
    normalised, _ = normalise_array(pa.array(forms), REF)
    pseudonyms = p.pseudonymise_array("person", normalised).to_pylist()
    assert pseudonyms == [p.pseudonym("person", canonical)] * len(forms)


def test_pseudonymise_array_strips_and_keeps_absent_values_null():
    p = Pseudonymiser(KEY)
    values = pa.array(["48213", " 48213 ", None, "", "   ", "51100"])
    expected = [p.pseudonym("transit_employee", "48213")] * 2 + [None] * 3 + [p.pseudonym("transit_employee", "51100")]
    assert p.pseudonymise_array("transit_employee", values).to_pylist() == expected


def test_pseudonymise_array_hashes_each_distinct_value_once(monkeypatch):
    calls = []
    real, digest = Pseudonymiser.pseudonym, Pseudonymiser._digest

    def counting(self, keyed, value):
        calls.append(value)
        return digest(self, keyed, value)

    monkeypatch.setattr(Pseudonymiser, "_digest", counting)
    rows = ["OV-4471", "OV-1002", None, "OV-4471", "OV-4471", "", "OV-1002"] * 50
    p = Pseudonymiser(KEY)
    result = p.pseudonymise_array("guard", pa.chunked_array([rows[:100], rows[100:]]))
    assert sorted(calls) == ["OV-1002", "OV-4471"]
    assert result.to_pylist() == [real(p, "guard", v) if v else None for v in rows]


# --- secrets -------------------------------------------------------------------------------

def test_key_from_hex_secret():
    assert key_from_secret(KEY.hex()) == KEY
    assert key_from_secret(KEY.hex().upper() + "\n") == KEY
    assert key_from_secret((KEY + OTHER_KEY).hex().encode()) == KEY + OTHER_KEY


def test_hex_looking_secret_with_an_odd_number_of_digits_is_refused_as_such():
    with pytest.raises(ValueError, match="odd"):
        key_from_secret(KEY.hex() + "a")


def test_key_from_base64_secret():
    assert key_from_secret("base64:" + base64.b64encode(OTHER_KEY).decode()) == OTHER_KEY


def test_key_from_passphrase_is_its_utf8_bytes():
    phrase = "en lång synthetisk lösenfras för test"
    assert key_from_secret(phrase) == phrase.encode("utf-8")
    raw = b"\xff" + KEY  # raw bytes that are not text
    assert key_from_secret(raw) == raw


@pytest.mark.parametrize(
    "secret",
    ["kort-hemlighet", "base64:" + base64.b64encode(b"s" * 31).decode(), "base64:inte*giltig*base64!",
     "a" * 65, "ab" * 15],
)
def test_bad_secrets_are_refused_without_showing_them(secret):
    with pytest.raises(ValueError) as error:
        key_from_secret(secret)
    assert secret not in str(error.value)
    assert secret.removeprefix("base64:") not in str(error.value)
    assert error.value.__cause__ is None


# --- free text: patterns -------------------------------------------------------------------

def scrub_one(text: str, **kwargs) -> str:
    return scrub_text(pa.array([text]), **kwargs)[0].as_py()


PNR_FORMS = [
    PNR, f"{PNR[:8]}-{PNR[8:]}", f"{PNR[:8]} {PNR[8:]}", f"{PNR[2:8]}-{PNR[8:]}", PNR[2:],
    f"{PNR[2:8]} {PNR[8:]}", f"{OLD[2:8]}+{OLD[8:]}", f"{COORD[:8]}-{COORD[8:]}", COORD[2:],
    PNR[:-1] + str((int(PNR[-1]) + 1) % 10),  # a mistyped check digit is still somebody's number
    PNR[2:-1] + str((int(PNR[-1]) + 1) % 10),  # also in the plain ten-digit form
]


@pytest.mark.parametrize("written", PNR_FORMS)
def test_personnummer_in_text_in_every_form(written):
    assert scrub_one(f"Vittnet, {written}, såg bråket.") == "Vittnet, [personnummer], såg bråket."
    assert scrub_one(f"pnr:{written}") == "pnr:[personnummer]"


PHONES = [
    "070-381 58 40", "0703815840", "070 381 58 40", "070-3815840", "+46 70 381 58 40",
    "+46703815840", "0046 70-381 58 40", "0046 70 381 58 40", "+46 (0)70-381 58 40",
    "063-12 34 56", "063123456", "+4663123456", "08-123 456 78", "08-12345678", "0317 12 34 56",
]


@pytest.mark.parametrize("written", PHONES)
def test_phone_numbers_in_every_form(written):
    assert scrub_one(f"Ring {written}.") == "Ring [telefon]."
    assert scrub_one(f"tel:{written}\nslut") == "tel:[telefon]\nslut"


def test_phone_followed_by_a_count_keeps_the_count():
    assert scrub_one("Ring 063-12 34 56 2 personer") == "Ring [telefon] 2 personer"


def test_a_valid_ten_digit_personnummer_that_looks_like_a_mobile_number_is_a_personnummer():
    born_2007 = make("20070123", "456")[2:]  # starts with 070 like a mobile number
    assert scrub_one(f"id {born_2007}") == "id [personnummer]"


def test_email_addresses():
    text = "Mejla anna.svensson85@exempel.se eller ov-4471@vakt.exempel.com."
    assert scrub_one(text, proper_nouns=False) == "Mejla [e-post] eller [e-post]."


def test_multi_line_text_with_crlf_becomes_lf_and_every_line_is_scrubbed():
    text = f"Rad ett {PNR[2:8]}-{PNR[8:]}\r\nRad två 070-381 58 40\r\n\r\nRad fyra"
    assert scrub_one(text) == "Rad ett [personnummer]\nRad två [telefon]\n\nRad fyra"


@pytest.mark.parametrize(
    "text",
    [
        "buss 3 kl 23:14 den 2026-11-20",
        "hållplats 4021",
        "Diarienr 5000-K123456-26",
        "Hållplats SE:030:Quay:4021, linje 164, fordon 6241",
        "Händelsetid 2026-11-20 23:14, registrerad 2026-11-21 00:02",
        "Anställd 48213 ringde",
        "ambulans larmad via 112",
        "Klotter på säte 14.",
        "Rapport AV-2026-018832 kl 23:40",
        "Koordinater 6997480 497120",
        "Skadan uppskattas till 12 500 kr, 3 personer, 20261120",
        "Gustav III:s torg",
        "Mellan 2019-2026 och 0,5 promille",
    ],
)
def test_ordinary_text_is_left_alone(text):
    assert scrub_one(text) == text


def test_twelve_digits_that_cannot_be_a_date_are_left_alone():
    for text in ["Order 202613451530", "Order 202613011530", "Order 990000-1234", "Order 991301-1234",
                 "Order 9913011234", "Order 990332 1234", "Order 199900011234"]:
        assert scrub_one(text) == text


def test_nulls_and_empty_texts_stay():
    assert scrub_text(pa.array([None, "", "ok"])).to_pylist() == [None, "", "ok"]


# --- free text: the row's own values -------------------------------------------------------

def test_names_of_the_row_in_every_way_they_are_written():
    texts = pa.array([
        "Anna Svensson sa att Annas väska togs. SVENSSON grät, anna gick.",
        "Lars-Göran Öberg och Göran, Lars, Öbergs bil; Lars-Görans hund.",
        "Anna Svensson nämns här, men hör inte till raden.",
    ])
    names = [pa.array(["Svensson, Anna", "Lars-Göran Öberg", None])]
    assert scrub_text(texts, names=names, proper_nouns=False).to_pylist() == [
        "[namn] [namn] sa att [namn] väska togs. [namn] grät, [namn] gick.",
        "[namn] [namn] och [namn], [namn], [namn] bil; [namn] hund.",
        "Anna Svensson nämns här, men hör inte till raden.",
    ]


def test_names_are_whole_words_only():
    texts = pa.array(["Ekström gick till Eken; Ek och Eks cykel. Annastina kom."])
    assert scrub_text(texts, names=[pa.array(["Ek, Anna"])], proper_nouns=False).to_pylist() == [
        "Ekström gick till Eken; [namn] och [namn] cykel. Annastina kom."
    ]


def test_a_hyphenated_word_is_scrubbed_part_by_part_when_only_a_part_is_the_name():
    texts = pa.array(["Lars-Åke och Karl-Lars kom"])
    assert scrub_text(texts, names=[pa.array(["Lars Nyberg"])], proper_nouns=False).to_pylist() == ["[namn]-Åke och Karl-[namn] kom"]


def test_single_letter_name_parts_are_not_scrubbed():
    texts = pa.array(["Han fick en skada i A-huset, sa Jan"])
    assert scrub_text(texts, names=[pa.array(["Jan A. Nyberg"])], proper_nouns=False).to_pylist() == [
        "Han fick en skada i A-huset, sa [namn]"
    ]


def test_names_from_several_columns_and_a_name_in_a_row_without_text():
    texts = pa.array(["Märta mötte Özlem", None])
    names = [pa.array(["Märta Lindén", "Anna Ali"]), pa.array([None, None]), pa.array(["Özlem Demir", None])]
    assert scrub_text(texts, names=names, proper_nouns=False).to_pylist() == ["[namn] mötte [namn]", None]


def test_extra_values_verbatim_and_with_spacing_variations():
    texts = pa.array([
        "Förare 48213 (48 213, 48-213) rapporterade; 148213 är något annat.",
        "Vakt OV-4471 och ov 4471 och OV4471 ingrep; OV-44710 är något annat.",
        "Ring 070-381 58 40 eller 0703815840 eller 0046703815840",
    ])
    extras = [pa.array(["48213", "OV-4471", None]), pa.array([None, None, "070-381 58 40"])]
    assert scrub_text(texts, extra_values=extras, proper_nouns=False).to_pylist() == [
        "Förare [borttaget] ([borttaget], [borttaget]) rapporterade; 148213 är något annat.",
        "Vakt [borttaget] och [borttaget] och [borttaget] ingrep; OV-44710 är något annat.",
        "Ring [telefon] eller [telefon] eller [telefon]",
    ]


def test_extra_value_in_an_unusual_form_that_the_phone_pattern_misses():
    assert scrub_one("Nr 12 34 567 89 ringd", extra_values=[pa.array(["123456789"])], proper_nouns=False) == "Nr [borttaget] ringd"


def test_very_short_extra_values_do_not_wipe_ordinary_numbers():
    assert scrub_one("buss 3 kl 23:14", extra_values=[pa.array(["3"])]) == "buss 3 kl 23:14"


def test_row_values_apply_only_to_their_row():
    texts = pa.array(["48213 och Anna", "48213 och Anna"])
    result = scrub_text(texts, names=[pa.array(["Anna Ali", None])], extra_values=[pa.array([None, "48213"])], proper_nouns=False)
    assert result.to_pylist() == ["48213 och [namn]", "[borttaget] och Anna"]


def test_row_work_runs_only_on_rows_with_personal_values(monkeypatch):
    calls = []
    real = pseudonymise.scrub_names
    monkeypatch.setattr(pseudonymise, "scrub_names", lambda t, tokens: calls.append(t) or real(t, tokens))
    texts = pa.array([f"Rad {i} om Anna" for i in range(100)])
    names = pa.array(["Anna Ali" if i in (3, 50, 99) else (" " if i == 4 else None) for i in range(100)])
    result = scrub_text(texts, names=[names], proper_nouns=False).to_pylist()
    assert sorted(calls) == ["Rad 3 om Anna", "Rad 50 om Anna", "Rad 99 om Anna"]
    assert [i for i, t in enumerate(result) if t.endswith("[namn]")] == [3, 50, 99]


def test_row_values_must_align_with_the_texts():
    with pytest.raises(ValueError):
        scrub_text(pa.array(["a", "b"]), names=[pa.array(["Anna Ali"])])


def test_patterns_are_applied_once_per_distinct_text(monkeypatch):
    calls = []
    real = pseudonymise.scrub_patterns
    monkeypatch.setattr(pseudonymise, "scrub_patterns", lambda t: calls.append(t) or real(t))
    texts = ["Ring 070-381 58 40", "Inga skador.", None, "Ring 070-381 58 40"] * 25
    result = scrub_text(pa.chunked_array([texts[:30], texts[30:]]), proper_nouns=False)
    assert sorted(calls) == ["Inga skador.", "Ring 070-381 58 40"]
    assert result.to_pylist() == [None if t is None else real(t) for t in texts]


def test_mixed_array_equals_row_by_row_scrubbing():
    texts = [f"Anna ringde {p}, anställd 48213" for p in PHONES[:4]] + [None, "Inga skador."] * 2
    names = [None, "Svensson, Anna", None, "Anna Ali", "Anna Ali", None, "", None]
    extras = ["48213", None, "48213", None, None, "48213", None, " "]
    batch = scrub_text(pa.array(texts), names=[pa.array(names)], extra_values=[pa.array(extras)], proper_nouns=False).to_pylist()
    one_by_one = [
        scrub_text(pa.array([t]), names=[pa.array([n])], extra_values=[pa.array([e])], proper_nouns=False)[0].as_py()
        for t, n, e in zip(texts, names, extras)
    ]
    assert batch == one_by_one
    assert batch[0] == "Anna ringde [telefon], anställd [borttaget]"
    assert batch[1] == "[namn] ringde [telefon], anställd 48213"


# --- generalisation ------------------------------------------------------------------------

BANDS = [
    {"label": "0-14", "min": 0}, {"label": "15-17", "min": 15}, {"label": "18-24", "min": 18},
    {"label": "25-34", "min": 25}, {"label": "35-44", "min": 35}, {"label": "45-64", "min": 45},
    {"label": "65+", "min": 65},
]


def test_age_band_boundaries():
    ages = pa.array([0, 14, 15, 17, 18, 24, 25, 34, 35, 44, 45, 64, 65, 105, None, -1], pa.int16())
    assert age_band(ages, BANDS).to_pylist() == [
        "0-14", "0-14", "15-17", "15-17", "18-24", "18-24", "25-34", "25-34", "35-44", "35-44",
        "45-64", "45-64", "65+", "65+", None, None,
    ]


def test_age_band_order_of_bands_does_not_matter_and_ages_below_the_first_band_have_none():
    bands = [{"label": "65+", "min": 65}, {"label": "18-64", "min": 18}]
    assert age_band(pa.array([17, 18, 64, 65], pa.int64()), bands).to_pylist() == [None, "18-64", "18-64", "65+"]


def test_negative_ages_have_no_band_even_when_a_band_starts_below_zero():
    assert age_band(pa.array([-3, 0, 7]), [{"label": "alla", "min": -10}]).to_pylist() == [None, "alla", "alla"]


def test_round_coordinate_to_the_nearest_hundred_metres():
    result = round_coordinate(pa.array([6997481, 497149, 497150, 497250, 6997449, None], pa.int64()))
    assert result.type == pa.int32()
    assert result.to_pylist() == [6997500, 497100, 497200, 497300, 6997400, None]  # halves up
    assert round_coordinate(pa.array([497499, 497500], pa.int32()), 1000).to_pylist() == [497000, 498000]
    with pytest.raises(ValueError):
        round_coordinate(pa.array([1]), 0)


@pytest.mark.parametrize(
    ("place", "expected"),
    [
        ("Prästgatan 22, Östersund", "Prästgatan, Östersund"),
        ("Gustav III:s torg, Östersund", "Gustav III:s torg, Östersund"),
        ("Storgatan 12B", "Storgatan"),
        ("Storgatan 12 B, Östersund", "Storgatan, Östersund"),
        ("Storgatan 12-14", "Storgatan"),
        ("Storgatan 12 lgh 1102", "Storgatan"),
        ("Storgatan 12, lgh 1102, Östersund", "Storgatan, Östersund"),
        ("Kyrkgatan 5 Bar Centrum", "Kyrkgatan Bar Centrum"),  # 'B' of 'Bar' is no entrance
        ("Prästgatan 22, 831 30 Östersund", "Prästgatan, 831 30 Östersund"),  # postcode stays
        ("Resecentrum", "Resecentrum"),
    ],
)
def test_street_only(place, expected):
    assert street_only(pa.array([place]))[0].as_py() == expected


def test_street_only_keeps_nulls():
    assert street_only(pa.array([None, "Storgatan 1"])).to_pylist() == [None, "Storgatan"]


def test_street_only_equals_the_patterns_as_first_written():
    """The flat-number and comma patterns no longer start inside a run of blanks; the places
    they give are those of the patterns without that look-behind."""
    flat = re.compile(r",?\s*\b(?:lgh|lägenhet)\.?\s*\d+\b", re.IGNORECASE)
    comma = re.compile(r"\s+,")

    def first_written(place: str) -> str:
        place = pseudonymise._HOUSE_NUMBER_RE.sub("", flat.sub("", place))
        return comma.sub(",", place).strip()

    rng = random.Random(3)
    pieces = [" ", "  ", ",", ", ", "lgh", "LGH", "Lägenhet", "lägenhet.", "lgh.", "12", "3", "Gatan", "a", "B",
              "\t", "\n", "\u00a0", ".", "-", "_"]
    places = ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 12))) for _ in range(30_000)]
    got = street_only(pa.array(places)).to_pylist()
    assert got == [first_written(p) for p in places]
    assert sum(g != p for g, p in zip(got, places)) > 10_000  # flat numbers and commas were there to find


def test_street_only_of_a_field_of_blanks_is_linear():
    """A 1 MiB field of blanks after a word: the patterns try once per run of blanks, not once
    per blank (64 Ki blanks took 54 s before, growing with the square; --durations shows it)."""
    place = "Storgatan" + " " * (1 << 20) + ", lgh 12"
    assert street_only(pa.array([place, "a" + " " * (1 << 20)])).to_pylist() == ["Storgatan", "a"]


# --- what mutation testing found unchecked (scripts/mutation) -------------------------------------


def test_age_band_of_chunked_all_null_and_no_bands():
    chunked = pa.chunked_array([pa.array([16], pa.int16()), pa.array([None, 70], pa.int16())])
    result = age_band(chunked, BANDS)
    assert (result.type, result.to_pylist()) == (pa.string(), ["15-17", None, "65+"])
    nothing = age_band(pa.array([None, -1], pa.int16()), BANDS)
    assert (nothing.type, nothing.to_pylist()) == (pa.string(), [None, None])  # still the column's type
    with pytest.raises(ValueError, match="^at least one age band is needed$"):
        age_band(pa.array([1]), [])


@pytest.mark.parametrize("metres", [0, -100])
def test_round_coordinate_refuses_a_grid_that_is_not_positive(metres):
    with pytest.raises(ValueError, match="^metres must be positive$"):
        round_coordinate(pa.array([1]), metres)


def test_round_coordinate_to_the_metre_and_of_chunked_values():
    assert round_coordinate(pa.array([6997481], pa.int64()), 1).to_pylist() == [6997481]
    chunked = pa.chunked_array([pa.array([497149], pa.int64()), pa.array([497150], pa.int64())])
    assert round_coordinate(chunked).to_pylist() == [497100, 497200]


@pytest.mark.parametrize("domain", ["", "person\x1fx"])
def test_a_bad_domain_is_refused_in_words(domain):
    with pytest.raises(ValueError, match="^pseudonym domain must be non-empty and must not contain \\\\x1f$"):
        Pseudonymiser(KEY).pseudonym(domain, "x")


# Keys that are weak in exactly one way (or in none), so each of key_weakness's three checks is
# seen on its own; the shapes and their preconditions are built and checked here, by hand.
def _walk(steps: list[int], seed: int, n: int = 32) -> bytes:
    rng, value, out = random.Random(seed), 17, []
    for _ in range(n):
        out.append(value)
        value = (value + rng.choice(steps)) % 256
    return bytes(out)


def _entropy(key: bytes) -> float:
    return -sum(key.count(b) / len(key) * math.log2(key.count(b) / len(key)) for b in set(key))


def _distinct_steps(key: bytes) -> int:
    return len({(b - a) % 256 for a, b in zip(key, key[1:])})


def test_a_key_that_only_repeats_a_block_is_weak_for_that():
    block = random.Random(1).randbytes(12)
    key = block * 4  # 48 bytes: 12 distinct values (3.58 bits each), no walk
    assert _entropy(key) >= 3.5 and _distinct_steps(key) >= 8
    assert key_weakness(key) == "it repeats a pattern of 12 byte(s)"
    half = random.Random(2).randbytes(16)
    assert key_weakness(half * 2) == "it repeats a pattern of 16 byte(s)"


def test_a_key_that_only_walks_a_few_steps_is_weak_for_that():
    key = _walk([53, 61, 71, 83], seed=3)  # wraps around 256 many times
    assert len(set(key)) == 32 and len({b - a for a, b in zip(key, key[1:])}) >= 8  # without the modulo: 8
    assert _distinct_steps(key) == 4
    assert key_weakness(key) == "it walks a sequence"


def test_eight_distinct_steps_are_not_a_walk():
    key = _walk([3, 29, 41, 67, 97, 131, 163, 211], seed=4)
    assert _distinct_steps(key) == 8 and _entropy(key) >= 3.5
    assert key_weakness(key) is None


def test_few_distinct_bytes_in_a_random_order_are_weak_for_that_and_exactly_3_5_bits_is_enough():
    rng = random.Random(5)
    few = [rng.randrange(256) for _ in range(6)]
    key = bytes(rng.choice(few) for _ in range(32))
    assert _entropy(key) < 3.5 and _distinct_steps(key) >= 8
    assert key_weakness(key) == "too few distinct characters"
    symbols = rng.sample(range(256), 12)
    exact = bytearray(symbols[:8] * 2 + symbols[8:] * 4)  # 8 values twice, 4 values four times: 3.5 bits
    rng.shuffle(exact)
    assert _entropy(bytes(exact)) == 3.5 and _distinct_steps(bytes(exact)) >= 8
    assert key_weakness(bytes(exact)) is None


def test_refusals_say_why_in_words():
    with pytest.raises(ValueError, match=r"^pseudonymisation secret must give at least 32 bytes, got 31; generate"):
        key_from_secret("x" * 31)
    with pytest.raises(ValueError, match=r"^pseudonymisation secret looks like hex but has an odd number of digits$"):
        key_from_secret("a" * 65)
    with pytest.raises(ValueError, match=r"^pseudonymisation secret has a 'base64:' prefix but is not valid base64$"):
        text = base64.b64encode(random.Random(6).randbytes(32)).decode()
        key_from_secret(f"base64:{text[:10]}*{text[10:]}")  # a stray character is not skipped over
    with pytest.raises(ValueError, match=r"^pseudonymisation secret is too weak \(it repeats a pattern of 12 byte"):
        key_from_secret(random.Random(1).randbytes(12).hex() * 4)
    with pytest.raises(TypeError, match="^pseudonymisation key must be bytes$"):
        Pseudonymiser("not bytes" * 4)
    assert repr(Pseudonymiser(KEY)) == str(Pseudonymiser(KEY)) == "Pseudonymiser(key=<hidden>)"
    with pytest.raises(TypeError, match="^a Pseudonymiser is not picklable: it would write the key out$"):
        Pseudonymiser(KEY).__reduce__()
