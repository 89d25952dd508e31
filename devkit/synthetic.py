"""Synthetic partner nights: the hub's only source of test data, since real data may never be used.

The files imitate the partners' exports byte for byte (encodings, delimiters, line endings,
quoting, completion markers), including the awkward parts the pipeline must survive: multi-line
free text full of names and phone numbers, personnummer in every written form, people aged 100+,
samordningsnummer, unknown JSON fields and the two DST nights. One `Population` is shared by all
feeds, so the same person turns up at the police and the guards, which is what cross-feed
pseudonyms are for.

Every night comes with a `NightTruth`: what the pipeline must find (records, quarantined records
and why, incidents, involvements, persons) and every personal value written, for the leak check.
Generation streams in chunks and keeps per-row work small, so a million-row night stays cheap.
"""

from __future__ import annotations

import argparse
import codecs
import gzip
import hashlib
import json
import os
import random
import sys
import time
import uuid
from bisect import bisect
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import accumulate
from pathlib import Path

from devkit.leakscan import PersonalValues, name_tokens_of
from samverkan.core import nights

TZ = nights.zone()
FEEDS = ("police", "transit", "guards", "felanmalan", "uppsokande")
CHUNK_ROWS = 20_000

# Fault kinds, as recorded in NightTruth.quarantined_records.
BAD_CHECKSUM_PNR = "bad_checksum_pnr"
HELD_KINDS = frozenset({BAD_CHECKSUM_PNR})  # faults in person fields only: published, and held for correction
IMPOSSIBLE_DATE = "impossible_date"
UNKNOWN_CATEGORY = "unknown_category"
NOT_JSON = "not_json"
NOT_OBJECT = "not_object"

# Names are chosen so that no token is an ordinary Swedish word (no Björn, Stig, Per, Klara,
# Saga, Berg, Holm, Lind …) and none matches a place name: the leak check looks for name tokens
# as whole words, and an ordinary word would make it cry wolf on clean output.
FIRST_NAMES = (
    "Anna",
    "Märta",
    "Åsa",
    "Özlem",
    "Lars-Göran",
    "Karl-Erik",
    "Anna-Karin",
    "Eva-Lena",
    "Jan-Åke",
    "Ann-Sofie",
    "Britt-Marie",
    "Carl-Johan",
    "Lars-Åke",
    "Sven-Olof",
    "Elsa",
    "Alice",
    "Astrid",
    "Sigrid",
    "Ingrid",
    "Kerstin",
    "Birgitta",
    "Margareta",
    "Agneta",
    "Solveig",
    "Gunilla",
    "Ulrika",
    "Johanna",
    "Linnéa",
    "Renée",
    "Zoé",
    "Hélène",
    "Maja",
    "Wilma",
    "Alva",
    "Ronja",
    "Tilda",
    "Selma",
    "Agnes",
    "Greta",
    "Frida",
    "Hanna",
    "Sara",
    "Emma",
    "Julia",
    "Rebecka",
    "Fatima",
    "Amina",
    "Leyla",
    "Zeynep",
    "Nadia",
    "Yasmin",
    "Lars",
    "Göran",
    "Håkan",
    "Örjan",
    "Åke",
    "Jörgen",
    "Mikael",
    "Johan",
    "Anders",
    "Magnus",
    "Fredrik",
    "Henrik",
    "Mattias",
    "Oskar",
    "Ludvig",
    "Vilhelm",
    "Malte",
    "Elias",
    "Hampus",
    "Albin",
    "Filip",
    "Isak",
    "Melvin",
    "Viktor",
    "Anton",
    "Emil",
    "Sixten",
    "Ragnar",
    "Gunnar",
    "Arne",
    "Bertil",
    "Evert",
    "Harald",
    "Sigvard",
    "Valdemar",
    "Yngve",
    "Torsten",
    "Kjell",
    "Gösta",
    "Olle",
    "Omar",
    "Karim",
    "Samir",
    "Yusuf",
    "Mehmet",
    "André",
    "José",
)
SURNAMES = (
    "Svensson",
    "Andersson",
    "Johansson",
    "Karlsson",
    "Nilsson",
    "Eriksson",
    "Larsson",
    "Olsson",
    "Persson",
    "Pettersson",
    "Jonsson",
    "Hansson",
    "Bengtsson",
    "Jönsson",
    "Lindberg",
    "Magnusson",
    "Lindström",
    "Olofsson",
    "Lindqvist",
    "Lindgren",
    "Axelsson",
    "Bergström",
    "Lundberg",
    "Lundgren",
    "Mattsson",
    "Berglund",
    "Fredriksson",
    "Sandberg",
    "Henriksson",
    "Forsberg",
    "Sjöberg",
    "Wallin",
    "Engström",
    "Eklund",
    "Danielsson",
    "Håkansson",
    "Gunnarsson",
    "Wikström",
    "Isaksson",
    "Nyström",
    "Holmberg",
    "Arvidsson",
    "Löfgren",
    "Söderberg",
    "Nyberg",
    "Blomqvist",
    "Mårtensson",
    "Åkesson",
    "Öberg",
    "Häggström",
    "Strömbäck",
    "Sjögren",
    "Ekström",
    "Åström",
    "Östlund",
    "Hedström",
    "Dahlberg",
    "Söderström",
    "Lindén",
    "Rosén",
    "Nordén",
    "Sandén",
    "Lidén",
    "Ali",
    "Hassan",
    "Mohammed",
    "Yilmaz",
    "Demir",
    "Nguyen",
    "Persson-Öberg",
    "Sandberg-Åkesson",
)

POLICE_HEADER = (
    "Diarienr",
    "Händelsetid",
    "Registrerad",
    "Plats",
    "Koord_N",
    "Koord_E",
    "Händelsetyp",
    "Roll",
    "Personnummer",
    "Namn",
    "Ålder",
    "Fritext",
)
GUARDS_HEADER = (
    "rapport_nr",
    "datum",
    "klockslag",
    "plats",
    "ingripande",
    "personnummer",
    "namn",
    "telefon",
    "ordningsvakt_id",
    "polis_underrattad",
    "beskrivning",
)
TRANSIT_FIELDS = (
    "incident_id",
    "occurred_at",
    "reported_at",
    "line",
    "stop_id",
    "stop_name",
    "vehicle_id",
    "category",
    "severity",
    "police_called",
    "reported_by",
    "persons",
    "description",
)

POLICE_CATEGORIES = (
    "Misshandel",
    "Olaga hot",
    "Ofredande",
    "Rån",
    "Stöld",
    "Skadegörelse",
    "Narkotikabrott",
    "Ordningsstörning",
    "Berusad person (LOB)",
    "Övrigt",
)
POLICE_ROLES = ("Misstänkt", "Målsägande", "Vittne", "Omhändertagen", "Anmälare")
GUARD_INTERVENTIONS = ("Tillsägelse", "Avvisning", "Omhändertagande", "Gripande", "Första hjälpen", "Övrigt")
TRANSIT_CATEGORIES = ("THREAT", "VIOLENCE", "VANDALISM", "DISTURBANCE", "INTOXICATION", "FARE_CONFLICT", "OTHER")
UNKNOWN_CATEGORIES = {
    "police": ("Trafikbrott", "Bedrägeri", "Okänd händelse"),
    "guards": ("Visitation", "Avlägsnande"),
    "transit": ("LOST_PROPERTY", "ANIMAL_ON_BOARD"),
    "felanmalan": ("Vägskada", "Snöröjning"),
}

# (address as the police write it, SWEREF 99 TM northing, easting)
POLICE_PLACES = (
    ("Gustav III:s torg, Östersund", 7004450, 483880),
    ("Prästgatan {}, Östersund", 7004660, 484030),
    ("Resecentrum, Östersund", 7004020, 483600),
    ("Storsjöstrand, Östersund", 7005215, 483410),
    ("Stortorget, Östersund", 7004560, 483950),
)
GUARD_PLACES = ("Busstorget", "Resecentrum", "Stortorget", "Prästgatan")
TRANSIT_STOPS = (
    ("Gustav III:s torg", range(4021, 4030)),
    ("Resecentrum", range(4040, 4052)),
    ("Stortorget", range(4060, 4064)),
    ("Prästgatan", range(4070, 4074)),
    ("Sjukhuset", range(4080, 4083)),
    ("Frösön centrum", range(4090, 4094)),
)
TRANSIT_LINES = ("1", "2", "3", "4", "5", "6", "9", "Flygbuss", "164")

POLICE_PERSON_TEXTS = (
    'Anmälaren {first} uppger att personen; "hotade" med kniv.\nTel {phone}.',
    "{first} {last} påträffades kraftigt berusad vid {place}. Omhändertogs enligt LOB.",
    "Vittnet {first} {last}, {pnr}, nås på {phone}.\nSåg bråket från busskuren.\nInga skador.",
    "Målsägande {first} uppger att hen blev knuffad och fick mobiltelefonen stulen.\r\n"
    "Gärningspersonen sprang mot Storsjön.",
    "Personen uppgav namnet {last}, {first} och pnr {pnr}.",
    "Patrull på plats fyra minuter efter larm. {first} samarbetade.",
    "Ordningsstörning utanför krogen; flera personer inblandade.\n{first} {last} avvisades. Kontakt {phone}.",
    "Anmälan om skadegörelse på busskur.",
)
POLICE_ANONYMOUS_TEXTS = (
    "Okänd gärningsperson. Inga vittnen på plats.",
    'Anonym anmälare ringde från {phone} och rapporterade "stökigt" vid {place}.',
    "Skadegörelse på busskur; glasruta krossad.\nTeknisk undersökning ej aktuell.",
    "Larm från väktare. Ingen person anträffad.",
)
GUARD_TEXTS = (
    "Person berusad, avvisades från väntsalen.",
    "Tillsägelse om nedskräpning vid {place}.",
    "{first} {last} omhändertogs, kraftigt berusad.\nÖverlämnad till polis.",
    "Person uppgav namnet {first}, tel {phone}.",
    'Bråk mellan två personer; "lugnades" ned.',
    "Första hjälpen gavs, ambulans larmad via 112.",
    "Gripen för snatteri i kiosken. Pnr enligt legitimation: {pnr}.",
)
TRANSIT_TEXTS = (
    "Passagerare hotade föraren vid avstigning. Ring {phone}.",
    "Berusad resenär somnade på bussen, väcktes vid ändhållplatsen.",
    "Bråk mellan två ungdomar längst bak i bussen; en av dem ({first}) blödde näsblod.",
    "Resenären {first} {last} vägrade betala och blev aggressiv. Kontrollant nås på {phone}.",
    "Klotter på säte 14.",
    "Passageraren uppgav namnet {first} {last}, tel {phone}.",
    "Fönsterruta krossad vid hållplatsen.",
)

# The municipality: fault reports (felanmälan) and the outreach team's observations (uppsökande).
FELANMALAN_HEADER = ("Ärendenr", "Skapad", "Plats", "Kategori", "Beskrivning", "Anmälarens telefon")
UPPSOKANDE_HEADER = ("Datum", "Från", "Till", "Plats", "Unga", "Vuxna", "Påverkade", "Grupper", "Anteckning")
FAULT_PLACES = (
    "Busstorget",
    "Gustav III:s torg",
    "Resecentrum, busskur 3",
    "Prästgatan {}",
    "Stortorget",
    "Storsjöstrand",
    "Badhusparken",
)
FAULT_TEXTS = {  # category → what residents and staff write; {first} {last} {phone}: the reporter
    "Klotter": (
        "Klotter på busskuren vid {place}.",
        "Nytt klotter på väggen mot {place}. Anmälare {first} {last}, ring {phone}.",
        "Taggar på elskåpet, ungefär två meter brett.",
    ),
    "Krossat glas": (
        "Krossad glasruta i väntkuren vid {place}.",
        "Glasrutan i entrédörren är krossad. Ring mig på {phone}, mvh {first}.",
    ),
    "Trasig belysning": (
        "Belysningen längs gångvägen är trasig, mörkt hela kvällen.",
        "Två stolpar släckta vid {place}. Frågor till {first} {last} på {phone}.",
    ),
    "Nedskräpning": (
        "Mycket skräp och flaskor vid {place} efter helgen.",
        "Nedskräpat runt bänkarna.\nAnmält av {first}, tel {phone}.",
    ),
    "Övrigt": ("Bänken sitter löst i fästet.",),
}
FAULT_CATEGORIES = (
    "Klotter",
    "Klotter",
    "Krossat glas",
    "Trasig belysning",
    "Trasig belysning",
    "Nedskräpning",
    "Nedskräpning",
    "Övrigt",
)
OUTREACH_PLACES = ("Busstorget", "Resecentrum", "Stortorget", "Badhusparken", "Storsjöstrand")
OUTREACH_SLOTS = (("18:00", "20:00"), ("20:00", "22:00"), ("22:00", "00:00"))
OUTREACH_NOTES = (
    "",
    "",
    "Lugnt.",
    "Pratade med {first} som brukar vara här.",
    "Stökigt vid kiosken, polis på plats.",
    "{first} {last} frågade efter fritidsgården.",
)

# Events per local hour: quiet mornings, busy evenings and nights.
HOUR_WEIGHTS = (6, 5, 5, 3, 2, 1, 1, 2, 3, 3, 3, 4, 4, 4, 4, 5, 5, 6, 6, 7, 8, 9, 9, 8)
_HOUR_CUM = tuple(accumulate(HOUR_WEIGHTS))
DST_HOUR_SHARE = 0.06
DST_GUARANTEED = 4


# --- personnummer ----------------------------------------------------------------------


def luhn_check_digit(digits: str) -> int:
    """Check digit over YYMMDDNNN (weights 2,1,2,…); kept here so the generator stands alone."""
    total = 0
    for i, ch in enumerate(digits):
        product = int(ch) * (2 if i % 2 == 0 else 1)
        total += product - 9 if product > 9 else product
    return (10 - total % 10) % 10


def canonical_pnr(birth: date, serial: str, coordination: bool = False) -> str:
    """12 digits, YYYYMMDDNNNC; a samordningsnummer has 60 added to the day."""
    day = birth.day + (60 if coordination else 0)
    yymmdd = f"{birth.year % 100:02d}{birth.month:02d}{day:02d}"
    check = luhn_check_digit(yymmdd + serial)
    return f"{birth.year:04d}{birth.month:02d}{day:02d}{serial}{check}"


def pnr_forms(canonical: str, centenarian: bool) -> tuple[str, ...]:
    """The ways people write the number; '+' marks 100+, so the short forms depend on age."""
    full, short, tail = canonical[:8], canonical[2:8], canonical[8:]
    if centenarian:
        return (canonical, f"{full}-{tail}", f"{short}+{tail}")
    return (canonical, f"{full}-{tail}", f"{short}-{tail}", f"{short}{tail}")


def with_wrong_check_digit(canonical: str, rng: random.Random) -> str:
    right = int(canonical[-1])
    return canonical[:-1] + str((right + rng.randint(1, 9)) % 10)


def age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


# --- phone numbers ---------------------------------------------------------------------


def phone_forms(national: str) -> tuple[str, ...]:
    """Written forms of a national number, the usual '070-123 45 67' first and most often."""
    split = 6 if national.startswith("07") else 5  # 070-123 45 67, 063-12 34 56
    a, b, c, d = national[:3], national[3:split], national[split : split + 2], national[split + 2 :]
    dashed = f"{a}-{b} {c} {d}"
    return (dashed, dashed, dashed, national, f"{a} {b} {c} {d}", f"+46 {a[1:]} {b} {c} {d}", "+46" + national[1:])


# --- population ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Person:
    first_name: str
    surname: str
    birth_date: date
    pnr: str  # canonical, 12 digits
    coordination: bool
    phone: str  # national digits, e.g. 0703815840

    @property
    def name_last_first(self) -> str:
        return f"{self.surname}, {self.first_name}"

    @property
    def name_first_last(self) -> str:
        return f"{self.first_name} {self.surname}"


class Population:
    """Synthetic people and staff shared by all feeds, so cross-feed links really occur."""

    def __init__(self, seed: int, size: int = 5000, *, employees: int = 300, guards: int = 60):
        rng = random.Random(derive_seed(seed, "population"))
        self.seed = seed
        self.people: list[Person] = _make_people(rng, size)
        # Below Linux's ephemeral port range (32768+): logs name the test servers' ports, and a
        # port that equals an employee number would make the leak check cry wolf.
        self.transit_employees = _unique(employees, lambda: str(rng.randint(10000, 29999)))
        self.guard_ids = _unique(guards, lambda: f"OV-{rng.randint(1000, 9999)}")
        self.regulars: list[int] = rng.sample(range(size), k=min(size, 40))
        self._crowds: dict[date, list[int]] = {}

    def __len__(self) -> int:
        return len(self.people)

    def crowd(self, night: date) -> list[int]:
        """The people out and about on a night: every feed draws mostly from them, so the
        police and the guards meet the same people; regulars come back night after night."""
        if night not in self._crowds:
            rng = random.Random(derive_seed(self.seed, "crowd", night.isoformat()))
            size = len(self.people)
            crowd = list(self.regulars) + rng.sample(range(size), k=min(size, 160))
            old = [i for i, p in enumerate(self.people) if age_on(p.birth_date, night) >= 100]
            crowd += rng.sample(old, k=min(len(old), 4))
            self._crowds[night] = crowd
        return self._crowds[night]


def _make_people(rng: random.Random, size: int) -> list[Person]:
    seen_pnr: set[str] = set()
    seen_phone: set[str] = set()
    people = []
    while len(people) < size:
        birth = _birth_date(rng)
        coordination = rng.random() < 0.03
        pnr = canonical_pnr(birth, f"{rng.randint(1, 999):03d}", coordination)
        phone = _phone_number(rng)
        if pnr in seen_pnr or phone in seen_phone:
            continue
        seen_pnr.add(pnr)
        seen_phone.add(phone)
        people.append(Person(rng.choice(FIRST_NAMES), rng.choice(SURNAMES), birth, pnr, coordination, phone))
    return people


def _birth_date(rng: random.Random) -> date:
    r = rng.random()
    year = rng.randint(1920, 1924) if r < 0.015 else (rng.randint(1925, 1984) if r < 0.3 else rng.randint(1985, 2012))
    return date(year, 1, 1) + timedelta(days=rng.randrange(365))


def _phone_number(rng: random.Random) -> str:
    if rng.random() < 0.1:
        return f"063{rng.randint(100000, 999999)}"
    return f"07{rng.choice('02369')}{rng.randint(0, 9999999):07d}"


def _unique(n: int, make: Callable[[], str]) -> list[str]:
    out: dict[str, None] = {}
    while len(out) < n:
        out[make()] = None
    return list(out)


def derive_seed(*parts: object) -> int:
    """Stable across runs and Python versions (unlike hash()), so same seed → same bytes."""
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big")


# --- faults and truth ------------------------------------------------------------------


@dataclass(frozen=True)
class Faults:
    """Known bad records to inject; each is its own record, so the truth can name it."""

    bad_checksum_pnr: int = 0
    impossible_date: int = 0
    unknown_category: int = 0
    bad_json_lines: int = 0  # transit only: alternately not JSON, and JSON but not an object
    missing_column: str | None = None

    def record_kinds(self) -> list[str]:
        return (
            [BAD_CHECKSUM_PNR] * self.bad_checksum_pnr
            + [IMPOSSIBLE_DATE] * self.impossible_date
            + [UNKNOWN_CATEGORY] * self.unknown_category
            + [NOT_JSON if i % 2 == 0 else NOT_OBJECT for i in range(self.bad_json_lines)]
        )


@dataclass
class NightTruth:
    """What the pipeline must find in one partner file.

    incidents: number of distinct incident ids among good records. involvements: police rows
    naming a person (Roll set), every guards row (the spec: one row per intervention and person,
    identified or not) and transit `persons` entries, among good records. persons: canonical personnummer in the personnummer
    column of good records. Record numbers are 1-based data records (header excluded).
    With `missing_column`, the counts describe what was written: no personnummer column means
    no persons, no `persons` field means no involvements; personal_values may then hold a few
    values that were generated but not written (a superset is safe for the leak check).
    """

    feed: str
    night: date
    path: Path
    records: int
    quarantined_records: dict[int, str]
    incidents: int
    involvements: int
    persons: set[str]
    personal_values: PersonalValues
    missing_column: str | None = None
    observations: int = 0  # aggregate feeds: filled count cells (place × slot × measure) among good records
    # DST nights only (transit, guards): partner incident key -> the UTC instant it really happened
    # (for guards the instant the generator meant; the written wall clock may be ambiguous).
    occurred_utc: dict[str, datetime] = field(default_factory=dict)

    @property
    def held_records(self) -> dict[int, str]:
        """Quarantined records the hub publishes too: only a person field is wrong (issue 14, item
        10), so each is one more incident with one involvement, its person without pseudonym."""
        return {record: kind for record, kind in self.quarantined_records.items() if kind in HELD_KINDS}

    def summary(self) -> dict:
        return {
            "feed": self.feed,
            "night": self.night.isoformat(),
            "path": str(self.path),
            "records": self.records,
            "quarantined_records": self.quarantined_records,
            "incidents": self.incidents,
            "involvements": self.involvements,
            "persons": len(self.persons),
            "missing_column": self.missing_column,
            "observations": self.observations,
        }


class _Tracker:
    """Collects the truth while rows stream past; holds population-sized sets, never per-row."""

    def __init__(self, population: Population) -> None:
        self.population = population
        self.records = 0
        self.quarantined: dict[int, str] = {}
        self.incidents = 0
        self.involvements = 0
        self.observations = 0
        self.persons: set[str] = set()
        self.people: set[int] = set()
        self.values = PersonalValues()
        self.occurred_utc: dict[str, datetime] = {}

    def person(self, idx: int) -> None:
        self.people.add(idx)

    def pnr(self, written: str, canonical: str | None) -> None:
        self.values.personnummer_as_written.add(written)
        if canonical:
            self.values.personnummer_canonical.add(canonical)

    def finish(self, feed: str, night: date, path: Path, missing: str | None) -> NightTruth:
        if missing in ("Personnummer", "personnummer"):
            self.persons = set()  # nothing to find when the column was never written
        values = self.values
        for idx in self.people:
            person = self.population.people[idx]
            values.names.update((person.name_last_first, person.name_first_last))
            values.name_tokens.update(name_tokens_of(person.name_first_last))
        return NightTruth(
            feed,
            night,
            path,
            self.records,
            dict(sorted(self.quarantined.items())),
            self.incidents,
            self.involvements,
            self.persons,
            values,
            missing,
            self.observations,
            self.occurred_utc,
        )


# --- the night -------------------------------------------------------------------------


def dst_transition(night: date) -> str | None:
    """'spring' (02:00–03:00 does not exist) or 'autumn' (it happens twice), else None."""
    last_sunday = night.weekday() == 6 and (night + timedelta(7)).month != night.month
    if night.month not in (3, 10) or not last_sunday:
        return None
    return "spring" if night.month == 3 else "autumn"


class _Face:
    """One person as written on one night (the '+' form depends on the age that night)."""

    __slots__ = ("pnr", "age", "pnr_forms", "phone_forms", "first", "last", "last_first", "first_last")

    def __init__(self, person: Person, night: date) -> None:
        self.pnr = person.pnr
        self.age = age_on(person.birth_date, night)
        self.pnr_forms = pnr_forms(person.pnr, self.age >= 100)
        self.phone_forms = phone_forms(person.phone)
        self.first, self.last = person.first_name, person.surname
        self.last_first, self.first_last = person.name_last_first, person.name_first_last


class _Night:
    """Per-night, per-feed state: randomness, the crowd, cached per-person strings, truth."""

    def __init__(
        self,
        feed: str,
        night: date,
        population: Population,
        seed: int,
        across_dst: bool = False,
        distinct_texts: bool = False,
    ) -> None:
        self.feed, self.night, self.pop = feed, night, population
        self.distinct_texts, self.texts_written = distinct_texts, 0
        self.rng = random.Random(derive_seed(seed, feed, night.isoformat()))
        self.rnd = self.rng.random
        self.crowd = population.crowd(night)
        self.dst, self.dst_minute = dst_transition(night), 120  # the 02:00 hour, in minutes of the night's day
        if across_dst:
            self.dst, self.dst_minute = dst_transition(night + timedelta(days=1)), 1440 + 120
            if self.dst is None:
                raise ValueError(f"the morning after {night} has no DST change")
        self.truth = _Tracker(population)
        self.events = 0
        self.local_minutes = _minute_strings(night, 2)
        self._faces: dict[int, _Face] = {}

    def pick(self, items: Sequence):
        return items[int(self.rnd() * len(items))]

    def person(self, crowd_share: float) -> int:
        if self.rnd() < crowd_share:
            return self.pick(self.crowd)
        return int(self.rnd() * len(self.pop.people))

    def face(self, idx: int) -> _Face:
        """A person's strings on this night, computed once: rows repeat people a lot."""
        face = self._faces.get(idx)
        if face is None:
            face = self._faces[idx] = _Face(self.pop.people[idx], self.night)
        return face

    def written_pnr(self, idx: int) -> str:
        face = self.face(idx)
        forms = face.pnr_forms
        written = forms[int(self.rnd() * len(forms))]
        self.truth.pnr(written, face.pnr)
        return written

    def wrong_pnr(self, idx: int) -> str:
        face = self.face(idx)
        wrong = with_wrong_check_digit(face.pnr, self.rng)
        written = self.pick(pnr_forms(wrong, face.age >= 100))
        self.truth.pnr(written, None)
        return written

    def written_phone(self, idx: int) -> str:
        forms = self.face(idx).phone_forms
        written = forms[int(self.rnd() * len(forms))]
        self.truth.values.phones.add(written)
        return written

    def event_minute(self) -> int:
        """Minute of the night's local day; on DST nights the 02:xx hour is always exercised."""
        self.events += 1
        if self.dst and (self.events <= DST_GUARANTEED or self.rnd() < DST_HOUR_SHARE):
            return self.dst_minute + int(self.rnd() * 60)
        return self.plain_minute()

    def in_dst_hour(self, minute: int) -> bool:
        return self.dst is not None and self.dst_minute <= minute < self.dst_minute + 60

    def wall_instant(self, minute: int, fold: int) -> datetime:
        """The UTC instant of a minute of the night's local day (fold 1: the repeated hour's second pass)."""
        wall = datetime.strptime(self.local_minutes[minute], "%Y-%m-%d %H:%M")
        return wall.replace(tzinfo=TZ, fold=fold).astimezone(UTC)

    def plain_minute(self) -> int:
        hour = bisect(_HOUR_CUM, self.rnd() * _HOUR_CUM[-1])
        return hour * 60 + int(self.rnd() * 60)

    def later_minute(self, minute: int, max_delay: int) -> int:
        """A registration time after the event that exists on the wall clock."""
        later = minute + 1 + int(self.rnd() * max_delay)
        if self.dst == "spring" and self.in_dst_hour(later):
            later += 60
        return later

    def text(self, template: str, idx: int | None, place: str) -> str:
        """Free text as staff type it: about the row's person, or someone from the crowd. With
        ``distinct_texts`` each text ends in a case word of its own (lower-case letters only,
        so it holds nothing to scrub): no two rows share a narrative, as in real exports."""
        text = self._text(template, idx, place)
        if not self.distinct_texts:
            return text
        self.texts_written += 1
        return f"{text} (ärende {_letters(self.texts_written)})"

    def _text(self, template: str, idx: int | None, place: str) -> str:
        if "{" not in template:
            return template
        named = "{first}" in template or "{last}" in template
        if idx is None and (named or "{pnr}" in template or "{phone}" in template):
            idx = self.person(0.6)
        if named:
            self.truth.person(idx)
        p = self.face(idx) if idx is not None else None
        return template.format(
            first=p.first if p else "",
            last=p.last if p else "",
            place=place,
            phone=self.written_phone(idx) if "{phone}" in template else "",
            pnr=self.written_pnr(idx) if "{pnr}" in template else "",
        )


def _letters(number: int) -> str:
    """1 → 'b', 26 → 'ba': the number in base 26 with the letters a–z as digits."""
    out = ""
    while True:
        number, digit = divmod(number, 26)
        out = "abcdefghijklmnopqrstuvwxyz"[digit] + out
        if not number:
            return out


def _minute_strings(night: date, days: int) -> list[str]:
    start = datetime(night.year, night.month, night.day)
    return [(start + timedelta(minutes=m)).strftime("%Y-%m-%d %H:%M") for m in range(days * 1440)]


def _fault_plan(rows: int, faults: Faults | None, rng: random.Random) -> dict[int, str]:
    kinds = faults.record_kinds() if faults else []
    if len(kinds) > rows:
        raise ValueError(f"{len(kinds)} fault records do not fit in {rows} records")
    positions = rng.sample(range(1, rows + 1), k=len(kinds))
    return dict(zip(positions, kinds))


def _check_faults(feed: str, faults: Faults | None, columns: Sequence[str]) -> None:
    if not faults:
        return
    if feed in ("transit", "felanmalan", "uppsokande") and faults.bad_checksum_pnr:
        raise ValueError(f"{feed} has no personnummer field for a bad checksum")
    if feed == "uppsokande" and faults.unknown_category:
        raise ValueError("uppsokande has no category column")
    if feed != "transit" and faults.bad_json_lines:
        raise ValueError(f"{feed} is CSV: bad_json_lines applies to transit only")
    if faults.missing_column is not None and faults.missing_column not in columns:
        raise ValueError(f"{feed} has no column {faults.missing_column!r}")
    target = {  # the column each fault is written into
        "police": ("Händelsetid", "Händelsetyp", "Personnummer"),
        "guards": ("datum", "ingripande", "personnummer"),
        "transit": ("occurred_at", "category", None),
        "felanmalan": ("Skapad", "Kategori", None),
        "uppsokande": ("Datum", None, None),
    }[feed]
    counts = (faults.impossible_date, faults.unknown_category, faults.bad_checksum_pnr)
    for count, column in zip(counts, target):
        if count and column == faults.missing_column:
            raise ValueError(f"cannot inject a fault into the missing column {column!r}")


def _record_numbers(rows: int, plan: dict[int, str], event_size: Callable[[], int]) -> Iterator[tuple[int, int | str]]:
    """(first record number, number of records) of each normal event, or (record, fault kind).

    A normal event is cut short rather than run into a fault record, so every fault record is a
    single-record event of its own and quarantining it leaves all other events whole."""
    faults = sorted(plan)
    next_fault = 0
    record = 1
    while record <= rows:
        if record in plan:
            yield record, plan[record]
            next_fault += 1
            record += 1
            continue
        while next_fault < len(faults) and faults[next_fault] < record:
            next_fault += 1
        limit = faults[next_fault] if next_fault < len(faults) else rows + 1
        size = min(event_size(), limit - record)
        yield record, size
        record += size


# --- CSV writing -----------------------------------------------------------------------


def _quote(value: str, delimiter: str) -> str:
    if delimiter in value or '"' in value or "\n" in value or "\r" in value:
        return '"' + value.replace('"', '""') + '"'
    return value


def _quote_all(fields: list[str], d: str) -> list[str]:
    """`_quote` over a row, inlined because half the police rows carry multi-line text."""
    return ['"' + v.replace('"', '""') + '"' if (d in v or '"' in v or "\n" in v or "\r" in v) else v for v in fields]


@dataclass(frozen=True)
class _CsvExport:
    """How one partner's CSV export looks on disk, and how its upload says it is complete."""

    header: tuple[str, ...]
    rows: Callable[[_Night, int, dict[int, str]], Iterator[list[str]]]
    delimiter: str
    newline: str
    encoding: str
    bom: bool
    ok_marker: bool = False  # police: an empty <file>.ok appears once the file is whole
    upload_as_part: bool = False  # felanmälan: uploaded as <file>.part, then renamed


def _write_csv(path: Path, export: _CsvExport, rows: Iterator[list[str]], drop: str | None) -> None:
    """Stream rows to disk in chunks; quoting is decided on the joined line, which is cheap."""
    header, delimiter, newline, encoding = export.header, export.delimiter, export.newline, export.encoding
    drop_at = header.index(drop) if drop else None
    columns = [h for h in header if h != drop]
    separators = len(columns) - 1
    with open(path, "wb") as f:
        if export.bom:
            f.write(codecs.BOM_UTF8)
        buf = [delimiter.join(_quote(h, delimiter) for h in columns)]
        for fields in rows:
            if drop_at is not None:
                del fields[drop_at]
            line = delimiter.join(fields)
            if line.count(delimiter) != separators or '"' in line or "\n" in line or "\r" in line:
                line = delimiter.join(_quote_all(fields, delimiter))
            buf.append(line)
            if len(buf) >= CHUNK_ROWS:
                f.write((newline.join(buf) + newline).encode(encoding))
                buf.clear()
        if buf:
            f.write((newline.join(buf) + newline).encode(encoding))


# --- police ----------------------------------------------------------------------------


def _police_event_size(n: _Night) -> int:
    r = n.rnd()
    return 0 if r < 0.12 else 1 if r < 0.62 else 2 if r < 0.84 else 3 if r < 0.94 else 4


def _police_rows(n: _Night, rows: int, plan: dict[int, str]) -> Iterator[list[str]]:
    last = [0]  # persons of the event being planned; 0 still takes one row

    def event_size() -> int:
        last[0] = _police_event_size(n)
        return max(1, last[0])

    kno = (n.night.timetuple().tm_yday * 20_000 + int(n.rnd() * 5_000)) % 10_000_000
    yy = n.night.year % 100
    for record, what in _record_numbers(rows, plan, event_size):
        kno = (kno + 1 + int(n.rnd() * 3)) % 10_000_000
        diarienr = f"5000-K{kno}-{yy:02d}"
        if isinstance(what, str):
            n.truth.quarantined[record] = what
            yield _police_fault_row(n, diarienr, what)
        else:
            persons = min(last[0], what)
            n.truth.incidents += 1
            yield from _police_event(n, diarienr, what, persons)
    n.truth.records = rows


def _police_event(n: _Night, diarienr: str, size: int, persons: int) -> Iterator[list[str]]:
    rnd, minutes = n.rnd, n.local_minutes
    minute = n.event_minute()
    when = "" if rnd() < 0.03 else minutes[minute]
    address, north, east = n.pick(POLICE_PLACES)
    place = address.format(2 + int(rnd() * 40)) if "{}" in address else address
    short_place = place.split(",")[0]
    category = n.pick(POLICE_CATEGORIES)
    for _ in range(size):
        registered = minutes[n.later_minute(minute, 600)]
        if rnd() < 0.08:
            coord_n = coord_e = ""
        else:
            coord_n, coord_e = str(north + int(rnd() * 100) - 50), str(east + int(rnd() * 100) - 50)
        head = [diarienr, when, registered, place, coord_n, coord_e, category]
        yield head + (_police_person(n, short_place) if persons else _police_nobody(n, short_place))


def _police_person(n: _Night, place: str) -> list[str]:
    rnd, truth = n.rnd, n.truth
    idx = n.person(0.6)
    truth.people.add(idx)
    truth.involvements += 1
    face = n.face(idx)
    pnr = ""
    if rnd() >= 0.08:
        pnr = n.written_pnr(idx)
        truth.persons.add(face.pnr)
    name = "" if rnd() < 0.05 else face.last_first
    age = "" if rnd() < 0.05 else str(face.age)
    text = n.text(POLICE_PERSON_TEXTS[int(rnd() * len(POLICE_PERSON_TEXTS))], idx, place)
    return [POLICE_ROLES[int(rnd() * len(POLICE_ROLES))], pnr, name, age, text]


def _police_nobody(n: _Night, place: str) -> list[str]:
    return ["", "", "", "", n.text(n.pick(POLICE_ANONYMOUS_TEXTS), None, place)]


def _police_fault_row(n: _Night, diarienr: str, kind: str) -> list[str]:
    """One complete single-person row, wrong in exactly one way."""
    minute = n.plain_minute()
    idx = n.person(0.6)
    n.truth.person(idx)
    face = n.face(idx)
    when = n.local_minutes[minute]
    if kind == IMPOSSIBLE_DATE:
        when = f"{n.night.year}-02-30 {when[11:]}"
    categories = UNKNOWN_CATEGORIES["police"] if kind == UNKNOWN_CATEGORY else POLICE_CATEGORIES
    category = n.pick(categories)
    pnr = n.wrong_pnr(idx) if kind == BAD_CHECKSUM_PNR else n.written_pnr(idx)
    address, north, east = POLICE_PLACES[2]
    text = n.text(POLICE_PERSON_TEXTS[0], idx, "Resecentrum")
    return [
        diarienr,
        when,
        n.local_minutes[n.later_minute(minute, 600)],
        address,
        str(north),
        str(east),
        category,
        n.pick(POLICE_ROLES),
        pnr,
        face.last_first,
        str(face.age),
        text,
    ]


# --- guards ----------------------------------------------------------------------------


def _guards_rows(n: _Night, rows: int, plan: dict[int, str]) -> Iterator[list[str]]:
    def report_size() -> int:
        return 2 if n.rnd() < 0.15 else 1

    number = (n.night.timetuple().tm_yday * 2_500) % 1_000_000
    for record, what in _record_numbers(rows, plan, report_size):
        number = (number + 1) % 1_000_000
        report = f"AV-{n.night.year}-{number:06d}"
        if isinstance(what, str):
            n.truth.quarantined[record] = what
            yield _guards_fault_row(n, report, what)
        else:
            n.truth.incidents += 1
            yield from _guards_report(n, report, what)
    n.truth.records = rows


def _guards_report(n: _Night, report: str, size: int) -> Iterator[list[str]]:
    minute = n.event_minute()
    clock = "" if n.rnd() < 0.02 else n.local_minutes[minute][11:]
    if n.dst and clock:
        fold = n.events % 2 if n.dst == "autumn" and n.in_dst_hour(minute) else 0
        n.truth.occurred_utc[report] = n.wall_instant(minute, fold)
    place = n.pick(GUARD_PLACES)
    intervention = n.pick(GUARD_INTERVENTIONS)
    guard = n.pick(n.pop.guard_ids)
    n.truth.values.guard_ids.add(guard)
    police = "Ja" if n.rnd() < 0.3 else "Nej"
    anonymous = size == 1 and n.rnd() < 0.35
    for _ in range(size):
        n.truth.involvements += 1  # one row per intervention and person, named or not
        if anonymous:
            person, text = ["", "", ""], n.text(n.pick(GUARD_TEXTS[:2]), None, place)
        else:
            idx = n.person(0.8)
            person, text = _guards_person(n, idx), n.text(n.pick(GUARD_TEXTS), idx, place)
        yield [report, n.local_minutes[minute][:10], clock, place, intervention, *person, guard, police, text]


def _guards_person(n: _Night, idx: int) -> list[str]:
    n.truth.person(idx)
    person = n.pop.people[idx]
    has_pnr = n.rnd() < 0.8
    pnr = n.written_pnr(idx) if has_pnr else ""
    if has_pnr:
        n.truth.persons.add(person.pnr)
    name = person.name_first_last if (not has_pnr or n.rnd() < 0.85) else ""
    phone = n.written_phone(idx) if n.rnd() < 0.5 else ""
    return [pnr, name, phone]


def _guards_fault_row(n: _Night, report: str, kind: str) -> list[str]:
    minute = n.plain_minute()
    idx = n.person(0.8)
    n.truth.person(idx)
    person = n.pop.people[idx]
    day = f"{n.night.year}-02-30" if kind == IMPOSSIBLE_DATE else n.night.isoformat()
    intervention = n.pick(UNKNOWN_CATEGORIES["guards"]) if kind == UNKNOWN_CATEGORY else "Avvisning"
    pnr = n.wrong_pnr(idx) if kind == BAD_CHECKSUM_PNR else n.written_pnr(idx)
    guard = n.pick(n.pop.guard_ids)
    n.truth.values.guard_ids.add(guard)
    return [
        report,
        day,
        n.local_minutes[minute][11:],
        "Busstorget",
        intervention,
        pnr,
        person.name_first_last,
        "",
        guard,
        "Nej",
        GUARD_TEXTS[0],
    ]


# --- the municipality ------------------------------------------------------------------


def _felanmalan_rows(n: _Night, rows: int, plan: dict[int, str]) -> Iterator[list[str]]:
    """One fault report per row; no person is involved, the reporter is named only in the text."""
    for record in range(1, rows + 1):
        kind = plan.get(record)
        minute = n.plain_minute()
        created = n.local_minutes[minute]
        if kind == IMPOSSIBLE_DATE:
            created = f"{n.night.year}-02-30 {created[11:]}"
        category = n.pick(UNKNOWN_CATEGORIES["felanmalan"] if kind == UNKNOWN_CATEGORY else FAULT_CATEGORIES)
        place = n.pick(FAULT_PLACES)
        place = place.format(2 + int(n.rnd() * 40)) if "{}" in place else place
        reporter = n.person(0.3)
        text = n.text(n.pick(FAULT_TEXTS.get(category, FAULT_TEXTS["Övrigt"])), reporter, place.split(",")[0])
        phone = n.written_phone(reporter) if n.rnd() < 0.6 else ""
        if kind:
            n.truth.quarantined[record] = kind
        else:
            n.truth.incidents += 1
        yield [
            f"FA-{n.night.year}-{n.night.timetuple().tm_yday * 1000 + record:06d}",
            created,
            place,
            category,
            text,
            phone,
        ]
    n.truth.records = rows


def _outreach_count(n: _Night, most: int) -> str:
    """A count as the team writes it: mostly small, sometimes left empty (not counted)."""
    return "" if n.rnd() < 0.05 else str(int(n.rnd() ** 2 * (most + 1)))


def _uppsokande_rows(n: _Night, rows: int, plan: dict[int, str]) -> Iterator[list[str]]:
    """Counts per place and evening slot: no identities, but the note may name someone (dropped)."""
    for record in range(1, rows + 1):
        kind = plan.get(record)
        start, end = n.pick(OUTREACH_SLOTS)
        day = f"{n.night.year}-02-30" if kind == IMPOSSIBLE_DATE else n.night.isoformat()
        counts = [_outreach_count(n, 25), _outreach_count(n, 8), _outreach_count(n, 4), _outreach_count(n, 3)]
        note = n.pick(OUTREACH_NOTES)
        note = n.text(note, n.person(0.8), "") if "{" in note else note
        if kind:
            n.truth.quarantined[record] = kind
        else:
            n.truth.observations += sum(1 for c in counts if c)
        yield [day, start, end, n.pick(OUTREACH_PLACES), *counts, note]
    n.truth.records = rows


# --- transit ---------------------------------------------------------------------------


class _TransitClock:
    """ISO timestamps with the right Stockholm offset; on the autumn night 02:xx gets both."""

    def __init__(self, night: date) -> None:
        self.night = night
        self._cache: dict[tuple[int, int], datetime] = {}

    def instant(self, minute: int, fold: int) -> datetime:
        key = (minute, fold)
        if key not in self._cache:
            midnight = datetime(self.night.year, self.night.month, self.night.day, tzinfo=TZ)
            wall = (midnight + timedelta(minutes=minute)).replace(fold=fold)
            self._cache[key] = wall.astimezone(UTC).astimezone(TZ)
        return self._cache[key]


def _transit_lines(n: _Night, rows: int, plan: dict[int, str], drop: str | None) -> Iterator[str]:
    clock = _TransitClock(n.night)
    encode = json.JSONEncoder(ensure_ascii=False).encode
    for record in range(1, rows + 1):
        kind = plan.get(record)
        if kind in (NOT_JSON, NOT_OBJECT):
            n.truth.quarantined[record] = kind
            yield _bad_json_line(n, kind)
            continue
        obj = _transit_incident(n, clock, kind)
        if drop:
            obj.pop(drop, None)
        if kind:
            n.truth.quarantined[record] = kind
        else:
            n.truth.incidents += 1
            n.truth.involvements += len(obj.get("persons") or ())
        yield encode(obj)
    n.truth.records = rows


def _transit_incident(n: _Night, clock: _TransitClock, kind: str | None) -> dict:
    minute = n.plain_minute() if kind else n.event_minute()
    fold = n.events % 2 if n.dst == "autumn" and n.in_dst_hour(minute) else 0
    occurred = clock.instant(minute, fold)
    delay = timedelta(seconds=60 + int(n.rnd() * 7200))
    reported = (occurred.astimezone(UTC) + delay).astimezone(TZ)
    occurred_at = occurred.isoformat()
    if kind == IMPOSSIBLE_DATE:
        occurred_at = f"{n.night.year}-02-30T{occurred_at[11:]}"
    stop_id, stop_name = _transit_stop(n)
    employee = n.pick(n.pop.transit_employees)
    n.truth.values.employee_numbers.add(employee)
    obj = {
        "incident_id": str(uuid.UUID(int=n.rng.getrandbits(128), version=4)),
        "occurred_at": occurred_at,
        "reported_at": reported.isoformat(),
        "line": n.pick(TRANSIT_LINES),
        "stop_id": stop_id,
        "stop_name": stop_name,
        "vehicle_id": str(6200 + int(n.rnd() * 100)),
        "category": n.pick(UNKNOWN_CATEGORIES["transit"] if kind == UNKNOWN_CATEGORY else TRANSIT_CATEGORIES),
        "severity": 1 + int(n.rnd() * 3),
        "police_called": n.rnd() < 0.3,
        "reported_by": {"employee_no": employee, "role": _reporter_role(n)},
        "persons": [_transit_person(n) for _ in range(_transit_person_count(n))],
        "description": n.text(n.pick(TRANSIT_TEXTS), None, stop_name or "hållplatsen"),
    }
    if n.rnd() < 0.1:
        _add_unknown_fields(n, obj)
    if n.dst and not kind:
        n.truth.occurred_utc[obj["incident_id"]] = occurred.astimezone(UTC)
    return obj


def _transit_stop(n: _Night) -> tuple[str | None, str | None]:
    r = n.rnd()
    if r < 0.1:
        return None, None
    name, quays = n.pick(TRANSIT_STOPS)
    return f"SE:030:Quay:{n.pick(quays)}", None if r < 0.13 else name


def _reporter_role(n: _Night) -> str:
    r = n.rnd()
    return "DRIVER" if r < 0.75 else "TICKET_INSPECTOR" if r < 0.95 else "OTHER"


def _transit_person_count(n: _Night) -> int:
    r = n.rnd()
    return 0 if r < 0.25 else 1 if r < 0.7 else 2 if r < 0.92 else 3


def _transit_person(n: _Night) -> dict:
    return {
        "role": n.pick(("OFFENDER", "OFFENDER", "VICTIM", "WITNESS")),
        "approx_age": None if n.rnd() < 0.1 else 12 + int(n.rnd() * 70),
        "gender": n.pick(("M", "M", "F", "X", None)),
    }


def _add_unknown_fields(n: _Night, obj: dict) -> None:
    """The operator's system gains fields a few times a year; the feed must not break."""
    obj["app_version"] = "5.4.1"
    obj["weather"] = n.pick(("snö", "regn", "klart"))
    obj["reported_by"]["shift"] = n.pick(("K1", "K2", "N1"))
    for person in obj["persons"]:
        person["clothing"] = n.pick(("mörk jacka", "reflexväst", None))


def _bad_json_line(n: _Night, kind: str) -> str:
    incident = str(uuid.UUID(int=n.rng.getrandbits(128), version=4))
    if kind == NOT_JSON:
        return '{"incident_id": "' + incident + '", "occurred_at": '
    return json.dumps([incident, "THREAT", 2])


def _write_jsonl_gz(final: Path, lines: Iterator[str]) -> None:
    """Upload as .tmp, then rename: the partner's own completion signal."""
    tmp = final.with_name(final.name + ".tmp")
    with (
        open(tmp, "wb") as raw,
        gzip.GzipFile(filename=final.name[:-3], mode="wb", fileobj=raw, compresslevel=6, mtime=0) as gz,
    ):
        buf: list[str] = []
        for line in lines:
            buf.append(line)
            if len(buf) >= CHUNK_ROWS:
                gz.write(("\n".join(buf) + "\n").encode("utf-8"))
                buf.clear()
        if buf:
            gz.write(("\n".join(buf) + "\n").encode("utf-8"))
    os.replace(tmp, final)


# --- public API ------------------------------------------------------------------------


def feed_path(feed: str, night: date, out_root: Path) -> Path:
    """Where the partner puts the night's file, under out_root/<feed>/."""
    root = Path(out_root) / feed
    if feed == "police":
        return root / "outbound/trygghet" / f"polisen_handelser_{night:%Y%m%d}.csv"
    if feed == "transit":
        return root / "export/incidents" / f"incidents-{night:%Y-%m-%d}.jsonl.gz"
    if feed == "guards":
        return root / "rapporter" / f"vaktrapport_{night:%Y-%m-%d}.csv"
    if feed == "felanmalan":
        return root / "export/felanmalan" / f"felanmalan_{night:%Y%m%d}.csv"
    if feed == "uppsokande":
        return root / "uppsokande" / f"observationer_{night:%Y-%m-%d}.csv"
    raise ValueError(f"unknown feed {feed!r}; expected one of {FEEDS}")


_CSV_EXPORTS = {
    "police": _CsvExport(POLICE_HEADER, _police_rows, ";", "\r\n", "cp1252", bom=False, ok_marker=True),
    "guards": _CsvExport(GUARDS_HEADER, _guards_rows, ",", "\n", "utf-8", bom=True),
    "felanmalan": _CsvExport(FELANMALAN_HEADER, _felanmalan_rows, ";", "\r\n", "utf-8", bom=True, upload_as_part=True),
    "uppsokande": _CsvExport(UPPSOKANDE_HEADER, _uppsokande_rows, ";", "\n", "utf-8", bom=False),
}


def _write_export(export: _CsvExport, path: Path, rows: Iterator[list[str]], drop: str | None) -> None:
    """Write the file with the partner's own completion signal, so the hub's waiting is exercised."""
    marker = path.with_name(path.name + ".ok")
    if export.ok_marker:
        marker.unlink(missing_ok=True)
    target = path.with_name(path.name + ".part") if export.upload_as_part else path
    _write_csv(target, export, rows, drop)
    if export.upload_as_part:
        os.replace(target, path)
    if export.ok_marker:
        marker.touch()


def write_night(
    feed: str,
    night: date,
    out_root: Path,
    *,
    rows: int,
    population: Population,
    seed: int,
    faults: Faults | None = None,
    across_dst: bool = False,
    distinct_texts: bool = False,
) -> NightTruth:
    """Write one partner's file for one night exactly as the partner would, and its truth.

    ``across_dst``: the night before a DST Sunday as people live it, Saturday evening into
    Sunday morning: the guaranteed 02:00-hour events fall in the Sunday's changed hour (dated
    the Sunday), and the truth records every incident's UTC instant. ``distinct_texts``: no two
    free texts alike (the benchmark's ``--distinct-texts``); the generator's texts otherwise
    repeat, as its people and templates do."""
    path = feed_path(feed, night, out_root)
    export = _CSV_EXPORTS.get(feed)  # None: transit, the one JSON Lines feed
    _check_faults(feed, faults, export.header if export else TRANSIT_FIELDS)
    n = _Night(feed, night, population, seed, across_dst, distinct_texts)
    plan = _fault_plan(rows, faults, n.rng)
    drop = faults.missing_column if faults else None
    path.parent.mkdir(parents=True, exist_ok=True)
    if export is None:
        _write_jsonl_gz(path, _transit_lines(n, rows, plan, drop))
    else:
        _write_export(export, path, export.rows(n, rows, plan), drop)
    return n.truth.finish(feed, night, path, drop)


def write_nights(
    out_root: Path,
    nights: list[date],
    sizes: dict[str, int],
    seed: int,
    faults: dict[str, Faults] | None = None,
    *,
    population: Population | None = None,
) -> list[NightTruth]:
    """Several nights of several feeds from one population; faults apply to every night."""
    population = population or Population(seed)
    faults = faults or {}
    return [
        write_night(feed, night, out_root, rows=rows, population=population, seed=seed, faults=faults.get(feed))
        for night in nights
        for feed, rows in sizes.items()
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devkit.synthetic", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--nights", type=date.fromisoformat, nargs="+", required=True)
    parser.add_argument("--police", type=int, default=500)
    parser.add_argument("--transit", type=int, default=150)
    parser.add_argument("--guards", type=int, default=80)
    parser.add_argument("--felanmalan", type=int, default=0, help="the municipality's fault reports (e.g. 40)")
    parser.add_argument("--uppsokande", type=int, default=0, help="the outreach team's observations (e.g. 15)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--population", type=int, default=5000, help="number of synthetic people")
    args = parser.parse_args(argv)
    sizes = {f: getattr(args, f) for f in FEEDS if getattr(args, f) > 0}
    started = time.perf_counter()
    truths = write_nights(args.out, args.nights, sizes, args.seed, population=Population(args.seed, args.population))
    seconds = time.perf_counter() - started
    summary = {"seconds": round(seconds, 3), "files": [t.summary() for t in truths]}
    json.dump(summary, sys.stdout, ensure_ascii=False, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
