"""The synthetic nights must look like the partners' real exports, or the pipeline tested on
them proves nothing; and their truth must be right, or the pipeline is judged against errors.

The checks parse the files independently of the generator (own Luhn, own century rule) and
recompute the truth from the bytes.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from devkit import synthetic
from devkit.synthetic import Faults, Population, write_night, write_nights
from tests.support.feeds import GUARDS_HEADER, POLICE_HEADER

pytestmark = pytest.mark.unit

TZ = ZoneInfo("Europe/Stockholm")
NIGHTS = [date(2026, 11, 20), date(2026, 11, 21)]
SIZES = {"police": 3000, "transit": 400, "guards": 400}
SEED = 5
POLICE_CATEGORIES = {"Misshandel", "Olaga hot", "Ofredande", "Rån", "Stöld", "Skadegörelse",
                     "Narkotikabrott", "Ordningsstörning", "Berusad person (LOB)", "Övrigt"}
POLICE_ROLES = {"Misstänkt", "Målsägande", "Vittne", "Omhändertagen", "Anmälare"}
GUARD_INTERVENTIONS = {"Tillsägelse", "Avvisning", "Omhändertagande", "Gripande",
                       "Första hjälpen", "Övrigt"}
TRANSIT_CATEGORIES = {"THREAT", "VIOLENCE", "VANDALISM", "DISTURBANCE", "INTOXICATION",
                      "FARE_CONFLICT", "OTHER"}
PNR_FORMS = {
    "YYYYMMDDNNNC": re.compile(r"^\d{12}$"),
    "YYYYMMDD-NNNC": re.compile(r"^\d{8}-\d{4}$"),
    "YYMMDD-NNNC": re.compile(r"^\d{6}-\d{4}$"),
    "YYMMDDNNNC": re.compile(r"^\d{10}$"),
    "YYMMDD+NNNC": re.compile(r"^\d{6}\+\d{4}$"),
}


# --- independent helpers ---------------------------------------------------------------

def luhn_ok(ten: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(ten)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d // 10 + d % 10
    return total % 10 == 0


def canonical(written: str, night: date) -> str | None:
    """12-digit form, or None when the number is not valid (checksum, date)."""
    digits = re.sub(r"\D", "", written)
    if len(digits) == 10:  # century from the night: under 100 unless written with '+'
        yy = int(digits[:2])
        year = night.year - (night.year - yy) % 100
        try:
            if birth_of(f"{year:04d}{digits[2:]}") > night:
                year -= 100
        except ValueError:
            return None
        digits = f"{year - (100 if '+' in written else 0):04d}{digits[2:]}"
    if len(digits) != 12 or not luhn_ok(digits[2:]):
        return None
    try:
        birth_of(digits)
    except ValueError:
        return None
    return digits


def birth_of(full: str) -> date:
    day = int(full[6:8])
    return date(int(full[:4]), int(full[4:6]), day - 60 if day > 60 else day)


def age_on(birth: date, night: date) -> int:
    return night.year - birth.year - ((night.month, night.day) < (birth.month, birth.day))


def police_records(path: Path) -> tuple[list[str], list[list[str]]]:
    text = path.read_bytes().decode("cp1252")
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=";"))
    return rows[0], rows[1:]


def guards_records(path: Path) -> tuple[list[str], list[list[str]]]:
    text = path.read_bytes().decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=","))
    return rows[0], rows[1:]


def transit_lines(path: Path) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8", newline="\n") as f:
        return f.read().split("\n")[:-1]


def line_breaks_outside_quotes(text: str) -> list[str]:
    """Each line break that ends a record (outside quotes), as written."""
    breaks, quoted, i = [], False, 0
    while i < len(text):
        ch = text[i]
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "\r":
            breaks.append("\r\n" if text[i + 1:i + 2] == "\n" else "\r")
            i += len(breaks[-1])
            continue
        elif not quoted and ch == "\n":
            breaks.append("\n")
        i += 1
    return breaks


def column(header: list[str], rows: list[list[str]], name: str) -> list[str]:
    i = header.index(name)
    return [r[i] for r in rows]


# --- fixtures --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def population() -> Population:
    return Population(SEED, 2000)


@pytest.fixture(scope="module")
def nights(tmp_path_factory, population) -> dict[tuple[str, date], synthetic.NightTruth]:
    out = tmp_path_factory.mktemp("nights")
    truths = write_nights(out, NIGHTS, SIZES, SEED, population=population)
    return {(t.feed, t.night): t for t in truths}


@pytest.fixture(scope="module")
def dst_nights(tmp_path_factory, population) -> dict[tuple[str, date], synthetic.NightTruth]:
    out = tmp_path_factory.mktemp("dst")
    spring, autumn = date(2026, 3, 29), date(2026, 10, 25)
    truths = write_nights(out, [spring, autumn], {"police": 300, "transit": 200, "guards": 60},
                          SEED, population=population)
    return {(t.feed, t.night): t for t in truths}


FAULTS = {
    "police": Faults(bad_checksum_pnr=3, impossible_date=2, unknown_category=2),
    "guards": Faults(bad_checksum_pnr=2, impossible_date=2, unknown_category=1),
    "transit": Faults(impossible_date=2, unknown_category=2, bad_json_lines=3),
}


@pytest.fixture(scope="module")
def faulty(tmp_path_factory, population) -> dict[tuple[str, date], synthetic.NightTruth]:
    out = tmp_path_factory.mktemp("faulty")
    truths = write_nights(out, NIGHTS, {"police": 400, "transit": 150, "guards": 120}, SEED,
                          FAULTS, population=population)
    return {(t.feed, t.night): t for t in truths}


# --- police format ---------------------------------------------------------------------

@pytest.mark.parametrize("night", NIGHTS)
def test_police_file_is_cp1252_semicolon_crlf_with_the_spec_header(nights, night):
    truth = nights[("police", night)]
    raw = truth.path.read_bytes()
    assert truth.path.name == f"polisen_handelser_{night:%Y%m%d}.csv"
    assert truth.path.parent.as_posix().endswith("police/outbound/trygghet")
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # å ä ö in cp1252 are not valid UTF-8
    text = raw.decode("cp1252")
    assert text.split("\r\n", 1)[0] == POLICE_HEADER
    breaks = line_breaks_outside_quotes(text)
    assert set(breaks) == {"\r\n"}
    assert len(breaks) == truth.records + 1


def test_police_marker_is_an_empty_ok_file(nights):
    truth = nights[("police", NIGHTS[0])]
    marker = truth.path.with_name(truth.path.name + ".ok")
    assert marker.exists() and marker.stat().st_size == 0


def test_police_records_parse_and_match_the_spec(nights):
    truth = nights[("police", NIGHTS[0])]
    header, rows = police_records(truth.path)
    assert len(rows) == truth.records == SIZES["police"]
    assert all(len(r) == 12 for r in rows)
    assert set(column(header, rows, "Händelsetyp")) <= POLICE_CATEGORIES
    assert set(column(header, rows, "Roll")) <= POLICE_ROLES | {""}
    fritext = column(header, rows, "Fritext")
    assert any("\n" in t for t in fritext), "multi-line quoted Fritext"
    assert any(";" in t and '"' in t for t in fritext), "Fritext with ; and doubled quotes"
    assert "" in column(header, rows, "Händelsetid")
    assert "" in column(header, rows, "Koord_N")
    assert all(re.fullmatch(r"\d{4}-K\d{1,7}-\d{2}", d) for d in column(header, rows, "Diarienr"))
    for when in filter(None, column(header, rows, "Händelsetid")):
        assert when.startswith(NIGHTS[0].isoformat())
    names = [n for n in column(header, rows, "Namn") if n]
    assert all(re.fullmatch(r"[^,]+, [^,]+", n) for n in names), "Efternamn, Förnamn"
    assert any("-" in n.split(", ")[1] for n in names), "hyphenated first names"
    assert any(set("åäöéÅÄÖÉ") & set(n) for n in names)


def test_police_events_have_one_row_per_person_or_one_empty_row(nights):
    header, rows = police_records(nights[("police", NIGHTS[0])].path)
    events: dict[str, list[list[str]]] = {}
    for r in rows:
        events.setdefault(r[0], []).append(r)
    sizes = {len(v) for v in events.values()}
    assert {1, 2, 3, 4} <= sizes and max(sizes) <= 4
    nobody = [v for v in events.values() if v[0][header.index("Roll")] == ""]
    assert nobody and all(len(v) == 1 for v in nobody)
    assert all(v[0][header.index("Personnummer")] == v[0][header.index("Namn")] == "" for v in nobody)
    for rows_of_event in events.values():  # event fields repeat on every row
        assert len({(r[1], r[3], r[6]) for r in rows_of_event}) == 1


# --- transit format --------------------------------------------------------------------

def test_transit_file_is_gzip_jsonl_with_nested_fields_and_extras(nights):
    truth = nights[("transit", NIGHTS[0])]
    assert truth.path.name == f"incidents-{NIGHTS[0]:%Y-%m-%d}.jsonl.gz"
    assert truth.path.read_bytes()[:2] == b"\x1f\x8b"
    assert not list(truth.path.parent.glob("*.tmp"))
    objs = [json.loads(line) for line in transit_lines(truth.path)]
    assert len(objs) == truth.records == SIZES["transit"]
    assert all(isinstance(o["reported_by"], dict) and isinstance(o["persons"], list) for o in objs)
    assert any(o["persons"] == [] for o in objs)
    assert any(o["stop_id"] is None for o in objs) and any(o["stop_name"] is None for o in objs)
    assert all(o["category"] in TRANSIT_CATEGORIES for o in objs)
    assert all(o["stop_id"] is None or re.fullmatch(r"SE:030:Quay:40\d\d", o["stop_id"]) for o in objs)
    assert set(o["reported_by"]["role"] for o in objs) <= {"DRIVER", "TICKET_INSPECTOR", "OTHER"}
    known = set(synthetic.TRANSIT_FIELDS)
    assert any(set(o) - known for o in objs), "unknown top-level fields"
    assert any(set(o["reported_by"]) - {"employee_no", "role"} for o in objs)
    assert any(set(p) - {"role", "approx_age", "gender"} for o in objs for p in o["persons"])
    assert any(re.search(r"\d{3}[- ]\d{3} \d\d \d\d|\+46", o["description"]) for o in objs)


@pytest.mark.parametrize("night", [NIGHTS[0], date(2026, 7, 1)])
def test_transit_offsets_are_right_for_stockholm(tmp_path, population, night):
    truth = write_night("transit", night, tmp_path, rows=200, population=population, seed=1)
    for obj in map(json.loads, transit_lines(truth.path)):
        for key in ("occurred_at", "reported_at"):
            stamp = datetime.fromisoformat(obj[key])
            assert stamp.utcoffset() == stamp.astimezone(TZ).utcoffset()
        assert obj["occurred_at"].endswith("+01:00" if night.month == 11 else "+02:00")


# --- guards format ---------------------------------------------------------------------

def test_guards_file_is_utf8_bom_comma_lf(nights):
    truth = nights[("guards", NIGHTS[0])]
    assert truth.path.name == f"vaktrapport_{NIGHTS[0]:%Y-%m-%d}.csv"
    raw = truth.path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    text = raw.decode("utf-8-sig")
    assert text.split("\n", 1)[0] == GUARDS_HEADER
    assert "\r" not in text
    assert len(line_breaks_outside_quotes(text)) == truth.records + 1
    header, rows = guards_records(truth.path)
    assert len(rows) == truth.records == SIZES["guards"]
    assert all(len(r) == 11 for r in rows)
    assert set(column(header, rows, "ingripande")) <= GUARD_INTERVENTIONS
    assert set(column(header, rows, "plats")) <= {"Busstorget", "Resecentrum", "Stortorget", "Prästgatan"}
    for name in ("personnummer", "namn", "telefon"):
        assert "" in column(header, rows, name), f"{name} often empty"
    names = [n for n in column(header, rows, "namn") if n]
    assert names and all("," not in n and " " in n for n in names), "Förnamn Efternamn"
    assert all(re.fullmatch(r"OV-\d{4}", g) for g in column(header, rows, "ordningsvakt_id"))
    assert any('"' in line for line in text.split("\n")), "quoted fields"


# --- personnummer ----------------------------------------------------------------------

def all_written_pnrs(truths) -> list[tuple[str, date]]:
    out = []
    for t in truths:
        if t.feed == "police":
            header, rows = police_records(t.path)
            out += [(p, t.night) for p in column(header, rows, "Personnummer") if p]
        elif t.feed == "guards":
            header, rows = guards_records(t.path)
            out += [(p, t.night) for p in column(header, rows, "personnummer") if p]
    return out


def test_every_written_personnummer_is_valid(nights):
    written = all_written_pnrs(nights.values())
    assert len(written) > 1000
    invalid = [p for p, night in written if canonical(p, night) is None]
    assert invalid == []


def test_every_form_appears_and_plus_marks_exactly_the_centenarians(nights):
    seen = {form: 0 for form in PNR_FORMS}
    for written, night in all_written_pnrs(nights.values()):
        form = next(f for f, rx in PNR_FORMS.items() if rx.match(written))
        seen[form] += 1
        full = canonical(written, night)
        if len(re.sub(r"\D", "", written)) == 10:
            assert (age_on(birth_of(full), night) >= 100) == ("+" in written), written
    assert all(seen.values()), seen


def test_coordination_numbers_appear(nights):
    fulls = {canonical(p, night) for p, night in all_written_pnrs(nights.values())}
    assert any(int(f[6:8]) > 60 for f in fulls)


def test_people_overlap_between_police_and_guards(nights):
    for night in NIGHTS:
        both = nights[("police", night)].persons & nights[("guards", night)].persons
        assert len(both) >= 5, night


def test_regulars_come_back_on_the_next_night(nights):
    assert nights[("police", NIGHTS[0])].persons & nights[("police", NIGHTS[1])].persons


# --- truth -----------------------------------------------------------------------------

def recompute_csv_truth(t) -> tuple[int, int, set[str]]:
    """(incidents, involvements, persons) from the bytes, skipping quarantined records."""
    if t.feed == "police":
        header, rows = police_records(t.path)
        pnr_col, person_cols = "Personnummer", ("Roll",)
    else:
        header, rows = guards_records(t.path)
        pnr_col, person_cols = "personnummer", ("rapport_nr",)  # every row is a person
    good = [r for i, r in enumerate(rows, 1) if i not in t.quarantined_records]
    incidents = len({r[0] for r in good})
    involvements = sum(any(r[header.index(c)] for c in person_cols) for r in good)
    persons = {canonical(p, t.night) for p in column(header, good, pnr_col) if p}
    return incidents, involvements, persons


@pytest.mark.parametrize("feed", ["police", "guards"])
@pytest.mark.parametrize("source", ["nights", "faulty"])
def test_csv_truth_matches_the_file(request, feed, source):
    for night in NIGHTS:
        t = request.getfixturevalue(source)[(feed, night)]
        assert recompute_csv_truth(t) == (t.incidents, t.involvements, t.persons)


@pytest.mark.parametrize("source", ["nights", "faulty"])
def test_transit_truth_matches_the_file(request, source):
    t = request.getfixturevalue(source)[("transit", NIGHTS[0])]
    lines = transit_lines(t.path)
    good = [json.loads(line) for i, line in enumerate(lines, 1) if i not in t.quarantined_records]
    assert len(lines) == t.records
    assert t.incidents == len({o["incident_id"] for o in good})
    assert t.involvements == sum(len(o["persons"]) for o in good)
    assert t.persons == set()


def test_personal_values_cover_everything_written(nights):
    for t in nights.values():
        v = t.personal_values
        if t.feed == "transit":
            objs = [json.loads(line) for line in transit_lines(t.path)]
            assert {o["reported_by"]["employee_no"] for o in objs} <= v.employee_numbers
            continue
        header, rows = (police_records if t.feed == "police" else guards_records)(t.path)
        pnr_col, name_col = ("Personnummer", "Namn") if t.feed == "police" else ("personnummer", "namn")
        assert {p for p in column(header, rows, pnr_col) if p} <= v.personnummer_as_written
        assert t.persons <= v.personnummer_canonical
        assert {n for n in column(header, rows, name_col) if n} <= v.names
        for n in filter(None, column(header, rows, name_col)):
            assert {tok.lower() for tok in re.findall(r"[^\W\d_]+", n)} <= {x.lower() for x in v.name_tokens}
        if t.feed == "guards":
            assert {p for p in column(header, rows, "telefon") if p} <= v.phones
            assert set(column(header, rows, "ordningsvakt_id")) <= v.guard_ids


def test_personal_values_stay_bounded_by_the_population(tmp_path):
    small = Population(3, 100)
    t = write_night("police", NIGHTS[0], tmp_path, rows=5000, population=small, seed=3)
    assert len(t.personal_values.personnummer_canonical) <= 100
    assert len(t.personal_values.personnummer_as_written) <= 400
    assert len(t.personal_values.phones) <= 100 * 5


def test_name_tokens_are_not_ordinary_words():
    ordinary = {"björn", "stig", "per", "klara", "saga", "berg", "holm", "lind", "ström", "dag",
                "liv", "max", "gustav", "torg", "sten", "maj", "axel", "iris"}
    tokens = {t.lower() for n in synthetic.FIRST_NAMES + synthetic.SURNAMES
              for t in re.findall(r"[^\W\d_]+", n)}
    assert not tokens & ordinary
    for name in synthetic.FIRST_NAMES + synthetic.SURNAMES:
        name.encode("cp1252")


# --- DST -------------------------------------------------------------------------------

@pytest.mark.parametrize("night", [date(2026, 3, 29), date(2026, 10, 25)])
def test_dst_nights_have_events_in_the_0200_hour(dst_nights, night):
    header, rows = police_records(dst_nights[("police", night)].path)
    assert any(w.startswith(f"{night} 02:") for w in column(header, rows, "Händelsetid"))
    header, rows = guards_records(dst_nights[("guards", night)].path)
    assert any(k.startswith("02:") for k in column(header, rows, "klockslag"))


def test_transit_autumn_night_has_both_0200_hours(dst_nights):
    stamps = [json.loads(line)["occurred_at"] for line in
              transit_lines(dst_nights[("transit", date(2026, 10, 25))].path)]
    assert any(s.startswith("2026-10-25T02:") and s.endswith("+02:00") for s in stamps)
    assert any(s.startswith("2026-10-25T02:") and s.endswith("+01:00") for s in stamps)


def test_transit_spring_night_has_no_nonexistent_times(dst_nights):
    stamps = [json.loads(line)["occurred_at"] for line in
              transit_lines(dst_nights[("transit", date(2026, 3, 29))].path)]
    assert not any(s.startswith("2026-03-29T02:") for s in stamps)
    assert any(s.startswith("2026-03-29T03:") for s in stamps)
    for s in stamps:
        stamp = datetime.fromisoformat(s)
        assert stamp.utcoffset() == stamp.astimezone(TZ).utcoffset()


def test_normal_nights_are_not_dst():
    assert synthetic.dst_transition(date(2026, 11, 20)) is None
    assert synthetic.dst_transition(date(2026, 3, 22)) is None
    assert synthetic.dst_transition(date(2027, 3, 28)) == "spring"
    assert synthetic.dst_transition(date(2027, 10, 31)) == "autumn"


# --- faults ----------------------------------------------------------------------------

def csv_fault_kind(header, row, night, feed) -> str | None:
    if feed == "police":
        when, cat, pnr, allowed = row[1], row[6], row[8], POLICE_CATEGORIES
        day = when[:10]
    else:
        day, cat, pnr, allowed = row[1], row[4], row[5], GUARD_INTERVENTIONS
    try:
        if day:
            date.fromisoformat(day)
    except ValueError:
        return "impossible_date"
    if cat not in allowed:
        return "unknown_category"
    if pnr and canonical(pnr, night) is None:
        return "bad_checksum_pnr"
    return None


@pytest.mark.parametrize("feed", ["police", "guards"])
def test_csv_faults_are_where_the_truth_says(faulty, feed):
    for night in NIGHTS:
        t = faulty[(feed, night)]
        header, rows = (police_records if feed == "police" else guards_records)(t.path)
        found = {i: k for i, r in enumerate(rows, 1) if (k := csv_fault_kind(header, r, night, feed))}
        assert found == t.quarantined_records
        f = FAULTS[feed]
        expected = {"bad_checksum_pnr": f.bad_checksum_pnr, "impossible_date": f.impossible_date,
                    "unknown_category": f.unknown_category}
        assert {k: list(found.values()).count(k) for k in expected} == expected


def test_transit_faults_are_where_the_truth_says(faulty):
    t = faulty[("transit", NIGHTS[0])]
    found = {}
    for i, line in enumerate(transit_lines(t.path), 1):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            found[i] = "not_json"
            continue
        if not isinstance(obj, dict):
            found[i] = "not_object"
        elif obj["category"] not in TRANSIT_CATEGORIES:
            found[i] = "unknown_category"
        else:
            try:
                datetime.fromisoformat(obj["occurred_at"])
            except ValueError:
                found[i] = "impossible_date"
    assert found == t.quarantined_records
    assert sorted(found.values()) == sorted(
        ["not_json", "not_object", "not_json", "impossible_date", "impossible_date",
         "unknown_category", "unknown_category"])


def test_missing_column_is_missing_from_header_and_rows(tmp_path, population):
    t = write_night("police", NIGHTS[0], tmp_path, rows=200, population=population, seed=2,
                    faults=Faults(missing_column="Koord_N", bad_checksum_pnr=1))
    header, rows = police_records(t.path)
    assert "Koord_N" not in header and len(header) == 11
    assert all(len(r) == 11 for r in rows)
    assert t.missing_column == "Koord_N" and len(t.quarantined_records) == 1
    t = write_night("transit", NIGHTS[0], tmp_path, rows=50, population=population, seed=2,
                    faults=Faults(missing_column="stop_name"))
    assert all("stop_name" not in json.loads(line) for line in transit_lines(t.path))



def test_truth_describes_what_was_written_when_a_column_is_missing(tmp_path, population):
    t = write_night("guards", NIGHTS[0], tmp_path, rows=100, population=population, seed=2,
                    faults=Faults(missing_column="personnummer"))
    assert t.persons == set() and t.involvements > 0
    t = write_night("transit", NIGHTS[0], tmp_path, rows=100, population=population, seed=2,
                    faults=Faults(missing_column="persons"))
    assert t.involvements == 0 and t.incidents == 100


@pytest.mark.parametrize("feed, faults", [
    ("transit", Faults(bad_checksum_pnr=1)),
    ("police", Faults(bad_json_lines=1)),
    ("guards", Faults(missing_column="no such column")),
    ("police", Faults(missing_column="Händelsetyp", unknown_category=1)),
    ("guards", Faults(impossible_date=11)),
])
def test_impossible_fault_requests_are_refused(tmp_path, population, feed, faults):
    with pytest.raises(ValueError):
        write_night(feed, NIGHTS[0], tmp_path, rows=10, population=population, seed=1, faults=faults)


# --- determinism and CLI ----------------------------------------------------------------

def files_under(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_bytes(tmp_path):
    sizes = {"police": 300, "transit": 100, "guards": 50}
    for name in ("a", "b"):
        write_nights(tmp_path / name, NIGHTS, sizes, 9, {"transit": Faults(bad_json_lines=2)},
                     population=Population(9, 500))
    write_nights(tmp_path / "c", NIGHTS, sizes, 10, population=Population(10, 500))
    a, b, c = (files_under(tmp_path / n) for n in "abc")
    assert a == b and len(a) == 8
    assert a.keys() == c.keys() and all(a[k] != c[k] for k in a if not k.endswith(".ok"))


def test_cli_prints_a_json_summary(tmp_path, capsys):
    code = synthetic.main(["--out", str(tmp_path), "--nights", "2026-11-20", "2026-11-21",
                           "--police", "50", "--transit", "20", "--guards", "10", "--seed", "1",
                           "--population", "300"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert [(f["feed"], f["records"]) for f in summary["files"]] == [
        ("police", 50), ("transit", 20), ("guards", 10)] * 2
    assert all(Path(f["path"]).exists() for f in summary["files"])


def test_luhn_of_the_generator_agrees_with_an_independent_one(population):
    for person in population.people[:500]:
        assert luhn_ok(person.pnr[2:])
    assert synthetic.luhn_check_digit("811218987") == 6  # 811218-9876, the textbook example


def _free_texts(feed: str, path: Path) -> list[str]:
    if feed == "transit":
        return [json.loads(line)["description"] for line in transit_lines(path)]
    if feed == "police":
        return column(*police_records(path), "Fritext")
    return column(*guards_records(path), "beskrivning")


@pytest.mark.parametrize("feed", ["police", "transit", "guards"])
def test_distinct_texts_change_only_the_texts_and_make_each_one_of_its_own(tmp_path, feed):
    """The benchmark's --distinct-texts: the same night, each row's free text ending in a case
    word of its own, so scrubbing is timed on narratives that do not repeat (real ones do not)."""
    night = NIGHTS[0]
    plain = write_night(feed, night, tmp_path / "plain", rows=2000, population=Population(SEED, 500), seed=3)
    own = write_night(feed, night, tmp_path / "own", rows=2000, population=Population(SEED, 500), seed=3,
                      distinct_texts=True)
    before, after = _free_texts(feed, plain.path), _free_texts(feed, own.path)
    texts = [t for t in after if t]
    assert len(set(texts)) == len(texts) > 1000
    assert len({t for t in before if t}) < 0.9 * len(texts)  # the generator's own texts repeat
    assert [re.sub(r" \(ärende [a-z]+\)$", "", t) for t in after] == before
    assert (plain.records, plain.incidents, plain.persons) == (own.records, own.incidents, own.persons)
