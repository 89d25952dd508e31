"""The leak check is the last line of defence, so it is tested both ways: every planted value in
every form and container is found, and typical clean output yields nothing (a checker that cries
wolf gets switched off). Its own report must not leak either."""

from __future__ import annotations

import gzip
import hashlib
import json
from datetime import date

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from devkit import synthetic
from devkit.leakscan import Finding, PersonalValues, mask, scan

pytestmark = pytest.mark.unit

BIRTH = date(1990, 3, 12)
PNR = synthetic.canonical_pnr(BIRTH, "123")  # 12 digits
OLD_PNR = synthetic.canonical_pnr(date(1921, 6, 2), "456")
COORD_PNR = synthetic.canonical_pnr(date(1985, 1, 17), "789", coordination=True)
PHONE = "070-381 58 40"
LANDLINE = "063-12 34 56"
NAME = "Strömbäck, Lars-Göran"
EMPLOYEE = "48213"
GUARD = "OV-4471"

PNR_FORMS = {
    "12 digits": PNR,
    "12 with dash": f"{PNR[:8]}-{PNR[8:]}",
    "12 with space": f"{PNR[:8]} {PNR[8:]}",
    "10 with dash": f"{PNR[2:8]}-{PNR[8:]}",
    "10 plain": PNR[2:],
    "10 with space": f"{PNR[2:8]} {PNR[8:]}",
    "10 with plus (100+)": f"{OLD_PNR[2:8]}+{OLD_PNR[8:]}",
    "samordningsnummer": f"{COORD_PNR[:8]}-{COORD_PNR[8:]}",
}
PHONE_FORMS = ["070-381 58 40", "0703815840", "070 381 58 40", "+46 70 381 58 40",
               "+46703815840", "070-3815840", "0046 70 381 58 40", "063-12 34 56", "+4663123456"]
OTHER_VALUES = {
    "name": ["Strömbäck", "LARS", "göran", "STRÖMBÄCK", "Lars-Göran Strömbäck"],
    "employee_number": [EMPLOYEE],
    "guard_id": [GUARD, "ov-4471"],
}


@pytest.fixture()
def values() -> PersonalValues:
    return PersonalValues(
        personnummer_canonical={PNR, OLD_PNR, COORD_PNR},
        personnummer_as_written={f"{PNR[2:8]}-{PNR[8:]}"},
        names={NAME},
        name_tokens={"Strömbäck", "Lars", "Göran"},
        phones={PHONE, LANDLINE},
        employee_numbers={EMPLOYEE},
        guard_ids={GUARD},
    )


def planted(kind: str, value: str) -> list[tuple[str, str]]:
    return [(kind, value)]


ALL_PLANTED = ([("personnummer", v) for v in PNR_FORMS.values()]
               + [("phone", v) for v in PHONE_FORMS]
               + [(k, v) for k, vs in OTHER_VALUES.items() for v in vs])
IDS = [f"{k}:{v}" for k, v in ALL_PLANTED]


def kinds(findings: list[Finding]) -> set[str]:
    return {f.kind for f in findings}


def assert_found(findings: list[Finding], kind: str, value: str) -> None:
    assert kind in kinds(findings), findings
    for f in findings:
        assert value not in f.detail and value not in str(f), "the report must mask the value"


# --- planted values are found, in every container ---------------------------------------

@pytest.mark.parametrize("kind, value", ALL_PLANTED, ids=IDS)
def test_found_in_a_log_file(tmp_path, values, kind, value):
    (tmp_path / "run.log").write_text(f"INFO row 17 ok\nWARN parse failed for '{value}'\n")
    findings = scan([tmp_path], values)
    assert_found(findings, kind, value)
    assert any("line 2" in f.detail for f in findings)


@pytest.mark.parametrize("kind, value", ALL_PLANTED, ids=IDS)
def test_found_in_a_json_file(tmp_path, values, kind, value):
    (tmp_path / "out.json").write_text(json.dumps({"rows": [{"note": f"x {value} y"}]}, ensure_ascii=False))
    assert_found(scan([tmp_path], values), kind, value)


@pytest.mark.parametrize("kind, value", ALL_PLANTED, ids=IDS)
def test_found_in_a_gzip_file(tmp_path, values, kind, value):
    with gzip.open(tmp_path / "incidents.jsonl.gz", "wt", encoding="utf-8") as f:
        f.write(json.dumps({"description": value}, ensure_ascii=False) + "\n")
    assert_found(scan([tmp_path], values), kind, value)


@pytest.mark.parametrize("kind, value", ALL_PLANTED, ids=IDS)
def test_found_in_a_parquet_string_column(tmp_path, values, kind, value):
    table = pa.table({"id": ["a", "b", "c"], "description": ["ok", f"... {value} ...", None]})
    pq.write_table(table, tmp_path / "incidents.parquet")
    findings = scan([tmp_path], values)
    assert_found(findings, kind, value)
    assert all("column description" in f.detail for f in findings)


@pytest.mark.parametrize("kind, value", ALL_PLANTED, ids=IDS)
def test_found_in_a_nested_parquet_column(tmp_path, values, kind, value):
    persons = pa.array(
        [[{"role": "suspect", "note": "clean"}], [], [{"role": "victim", "note": value}]],
        type=pa.list_(pa.struct([("role", pa.string()), ("note", pa.large_string())])),
    )
    pq.write_table(pa.table({"persons": persons}), tmp_path / "involvements.parquet")
    findings = scan([tmp_path], values)
    assert_found(findings, kind, value)
    assert any("persons[].note" in f.detail for f in findings)


def test_found_in_dictionary_and_map_columns(tmp_path, values):
    table = pa.table({
        "place": pa.array(["Resecentrum", NAME, "Resecentrum"]).dictionary_encode(),
        "extra": pa.array([[("k", "v")], [("phone", PHONE)], []], type=pa.map_(pa.string(), pa.string())),
    })
    pq.write_table(table, tmp_path / "t.parquet")
    assert kinds(scan([tmp_path], values)) == {"name", "phone"}


def test_found_in_parquet_metadata_and_field_names(tmp_path, values):
    schema = pa.schema([pa.field("n", pa.int32(), metadata={"source": f"pnr {PNR}"})],
                       metadata={"run_note": f"exported for {GUARD}"})
    pq.write_table(pa.table({"n": [1]}, schema=schema), tmp_path / "meta.parquet")
    pq.write_table(pa.table({f"calls_{EMPLOYEE}": [1]}), tmp_path / "names.parquet")
    findings = scan([tmp_path], values)
    assert {(f.path.name, f.kind) for f in findings} == {
        ("meta.parquet", "personnummer"), ("meta.parquet", "guard_id"),
        ("names.parquet", "employee_number")}


def test_found_as_an_integer_column(tmp_path, values):
    pq.write_table(pa.table({"person": pa.array([int(PNR), 5], pa.int64())}), tmp_path / "p.parquet")
    assert kinds(scan([tmp_path], values)) == {"personnummer"}


def test_found_in_a_parquet_gz_and_in_a_file_name(tmp_path, values):
    buf = pa.BufferOutputStream()
    pq.write_table(pa.table({"x": [f"tel {PHONE}"]}), buf)
    (tmp_path / "x.parquet.gz").write_bytes(gzip.compress(buf.getvalue().to_pybytes()))
    (tmp_path / f"person={PNR}").mkdir()
    (tmp_path / f"person={PNR}" / "part-0.txt").write_text("nothing here\n")
    findings = scan([tmp_path], values)
    assert {(f.kind, f.detail.split(":")[0]) for f in findings} == {
        ("phone", "column x"), ("personnummer", "file name")}


def test_cp1252_text_is_scanned_too(tmp_path, values):
    (tmp_path / "export.csv").write_bytes("Diarienr;Namn\r\n5000-K1-26;Strömbäck\r\n".encode("cp1252"))
    assert kinds(scan([tmp_path / "export.csv"], values)) == {"name"}


def test_unreadable_files_are_reported_and_still_scanned(tmp_path, values):
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really " + PNR.encode())
    findings = scan([tmp_path], values)
    assert kinds(findings) == {"unreadable", "personnummer"}


# --- clean output gives no findings ------------------------------------------------------

def pseudonym(value: str) -> str:
    return hashlib.sha256(b"key" + value.encode()).hexdigest()


def test_clean_outputs_give_no_finding(tmp_path, values):
    incidents = pa.table({
        "incident_id": ["police:5000-K123456-26", "guards:AV-2026-048213", "transit:6f1c2a9e-3b7d"],
        "occurred_at_local": ["2026-11-20 23:14", "2026-03-29 02:30", "2026-10-25T02:41:00+01:00"],
        "place": ["Gustav III:s torg", "Prästgatan", "Resecentrum"],
        "coord_n": pa.array([7004400, 6997500, None], pa.int32()),
        "coord_e": pa.array([484000, 497100, None], pa.int32()),
        "category": ["violence", "disorder", "threat"],
        "staff_pseudonym": [pseudonym(EMPLOYEE), pseudonym(GUARD), None],
        "vehicle_id": ["6241", "6204", None],
        "description": [
            'Anmälaren [namn] uppger att personen; "hotade" med kniv.\nTel [telefon].',
            "Person berusad, avvisades från väntsalen. Ambulans via 112.",
            "Passagerare hotade föraren vid avstigning. Ring [telefon]. Linje 3, 14 min sen.",
        ],
        "persons_involved": pa.array([2, 1, 48213 * 0], pa.int32()),
    })
    involvements = pa.table({
        "person_pseudonym": [pseudonym(PNR), pseudonym(OLD_PNR), pseudonym(COORD_PNR)],
        "age_band": ["25-34", "65+", "35-44"],
        "role": ["suspect", "victim", "witness"],
    })
    out = tmp_path / "published"
    out.mkdir()
    pq.write_table(incidents, out / "incidents.parquet")
    pq.write_table(involvements, out / "involvements.parquet")
    (out / "run.log").write_text("2026-11-21 06:31:02 INFO police night=2026-11-20 rows=1234 "
                                 "quarantined=3 took 12.5 s; counts 12345 67890 3.48213\n")
    (out / "report.md").write_text("# Natt 2026-11-20\n\n| källa | rader |\n|---|---|\n| police | 500 |\n")
    assert scan([out], values) == []


def test_a_synthetic_night_leaks_from_raw_but_not_from_its_non_personal_columns(tmp_path):
    population = synthetic.Population(4, 500)
    truths = synthetic.write_nights(tmp_path / "in", [date(2026, 11, 20)],
                                    {"police": 400, "transit": 100, "guards": 100}, 4, population=population)
    values = truths[0].personal_values.merge(*(t.personal_values for t in truths[1:]))
    raw = scan([tmp_path / "in"], values)
    assert kinds(raw) >= {"personnummer", "phone", "name", "employee_number", "guard_id"}

    header, *rows = [line.split(";") for line in
                     truths[0].path.read_text(encoding="cp1252").split("\r\n") if line.count(";") >= 11]
    keep = [header.index(c) for c in ("Diarienr", "Händelsetid", "Registrerad", "Koord_N", "Koord_E", "Händelsetyp")]
    clean = pa.table({header[i]: [r[i] for r in rows] for i in keep})
    (tmp_path / "out").mkdir()
    pq.write_table(clean, tmp_path / "out" / "police.parquet")
    assert scan([tmp_path / "out"], values) == []


def test_ordinary_words_and_short_tokens_do_not_match(tmp_path):
    values = PersonalValues(names={"Li Ek"}, name_tokens={"Li", "Ek", "Anna"})
    (tmp_path / "a.txt").write_text("Ekonomi, ekar och Annas väska. Li-jon-batteri. Annaberg.\n")
    assert scan([tmp_path], values) == []


# --- the report itself ------------------------------------------------------------------

def test_detail_masks_the_value_and_says_where(tmp_path, values):
    (tmp_path / "a.log").write_text("\n".join(["x"] * 4 + [f"{PNR} {NAME} {PHONE} {EMPLOYEE} {GUARD}"]))
    findings = scan([tmp_path], values)
    assert kinds(findings) == {"personnummer", "name", "phone", "employee_number", "guard_id"}
    secrets = [PNR, "Strömbäck", "Göran", PHONE, "0703815840", EMPLOYEE, GUARD]
    for f in findings:
        assert f.detail.startswith("line 5: ")
        assert not any(s in f.detail for s in secrets)
    assert mask("19900312-1234") == "19…"


def test_floods_are_capped_per_kind(tmp_path, values):
    (tmp_path / "a.log").write_text("".join(f"{PNR}\n{GUARD}\n" for _ in range(50)))
    findings = scan([tmp_path], values, max_findings_per_kind=10)
    assert [f.kind for f in findings].count("personnummer") == 10
    assert [f.kind for f in findings].count("guard_id") == 10
    assert findings[-1].kind == "more" and findings[-1].detail.startswith("about 80 ")


def test_missing_path_is_an_error_not_a_clean_result(tmp_path, values):
    with pytest.raises(FileNotFoundError):
        scan([tmp_path / "nope"], values)


def test_merge_combines_nights():
    a = PersonalValues(personnummer_canonical={PNR}, guard_ids={GUARD})
    b = PersonalValues(personnummer_canonical={OLD_PNR}, phones={PHONE})
    merged = a.merge(b)
    assert merged.personnummer_canonical == {PNR, OLD_PNR}
    assert merged.guard_ids == {GUARD} and merged.phones == {PHONE}
    assert a.personnummer_canonical == {PNR}, "merge does not modify its inputs"


def test_a_name_spelled_by_chance_inside_a_base32_pseudonym_is_not_a_leak(tmp_path):
    values = PersonalValues(names={"Jan Ali"})
    (tmp_path / "ok.txt").write_text("pseudonym c44jan2vs6tu3t5uepvpr6p66i and 9ali7\n")
    (tmp_path / "leak.txt").write_text("vittnet Jan, 2 personer\n")
    findings = scan([tmp_path], values)
    assert [(f.path.name, f.kind) for f in findings] == [("leak.txt", "name")]


MACHINE_NUMBERS = [  # the only places an employee number is taken for a coincidence
    "start_date=datetime.datetime(2026, 11, 25, 12, 18, 1, 24876, tzinfo=datetime.timezone.utc)",
    "logical_date=DateTime(2026, 11, 25, 5, 30, 0, 24876, tzinfo=Timezone('UTC'))",
    "at datetime.time(12, 18, 1, 24876)",
    "landed x.csv (24876 bytes)", "{'size': 24876}", '{"size":24876}', "fetched size=24876",
    '{"bytes": 24876, "name": "incidents.parquet"}',
]
REAL_VALUES_NEAR_THEM = [  # the same number in every other place near those shapes: a leak
    "reported by employee 24876, end_date=datetime.datetime(2026, 1, 2)",
    "datetime.datetime(2026, 11, 25, 12, 24876, 1)",  # a datetime holds no five-digit minute
    "datetime(24876)", "time(24876)", "date(2026, 1, 2) 24876", "timedelta(seconds=5) 24876",
    "Size: 24876", "size 24876", "filesize=24876", "'size': 1, 'employee': 24876", "24876 bytesize",
    "rapport 3:24876", '{"bytes": 1, "employee": 24876}', "anställd nr:24876", "root@127.0.0.1:24876", "[1]:24876",
]


@pytest.mark.parametrize("line", MACHINE_NUMBERS)
def test_a_datetimes_microseconds_or_a_byte_count_equal_to_an_employee_number_is_not_a_leak(tmp_path, line):
    (tmp_path / "ok.log").write_text(line + "\n")
    assert scan([tmp_path], PersonalValues(employee_numbers={"24876"})) == []


@pytest.mark.parametrize("line", REAL_VALUES_NEAR_THEM)
def test_an_employee_number_in_any_other_position_is_found(tmp_path, line):
    (tmp_path / "leak.log").write_text(line + "\n")
    findings = scan([tmp_path], PersonalValues(employee_numbers={"24876"}))
    assert [(f.path.name, f.kind) for f in findings] == [("leak.log", "employee_number")]


# --- found where mutation testing showed the checks did not look (scripts/mutation) ---------------


@pytest.mark.parametrize("line", [
    "ärende 5 070-381 58 40",                 # another number before it in the same run of digits
    "0 12345678901234 0703815840",            # a run too long to be a phone before it
])
def test_a_phone_after_other_digits_in_the_same_run_is_found(tmp_path, line):
    (tmp_path / "leak.log").write_text(line + "\n")
    assert [f.kind for f in scan([tmp_path], PersonalValues(phones={PHONE}))] == ["phone"]


def test_an_eight_digit_phone_is_found_and_another_number_is_not(tmp_path):
    (tmp_path / "leak.log").write_text("ring 063-123 45\n")
    (tmp_path / "ok.log").write_text("ring 0709999999 eller 063-123 46\n")
    findings = scan([tmp_path], PersonalValues(phones={"063-123 45"}))
    assert [(f.path.name, f.kind) for f in findings] == [("leak.log", "phone")]


def test_a_byte_count_at_the_very_start_of_a_line_is_a_byte_count(tmp_path):
    (tmp_path / "ok.log").write_text("size=24876\n")
    assert scan([tmp_path], PersonalValues(employee_numbers={"24876"})) == []


def test_a_file_that_cannot_be_read_as_its_name_says_is_scanned_as_bytes_and_said_so(tmp_path):
    (tmp_path / "broken.parquet").write_bytes(b"not parquet " + PNR.encode() + b"\n")
    findings = scan([tmp_path], PersonalValues(personnummer_canonical={PNR}))
    notes = [f for f in findings if f.kind == "unreadable"]
    assert [(f.path.name, f.detail) for f in notes] == [("broken.parquet", "ArrowInvalid; scanned as raw bytes instead")]
    assert [f.kind for f in findings if f.kind != "unreadable"] == ["personnummer"]


def test_parquet_metadata_that_is_not_utf8_is_still_scanned(tmp_path):
    table = pa.table({"x": [1]}).replace_schema_metadata({b"note": b"\xff\xfe " + PNR.encode()})
    pq.write_table(table, tmp_path / "meta.parquet")
    findings = scan([tmp_path], PersonalValues(personnummer_canonical={PNR}))
    assert findings and {f.kind for f in findings} == {"personnummer"}
