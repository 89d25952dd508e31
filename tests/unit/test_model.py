"""Mapping onto the common model: Stockholm time with the DST rule, taxonomy, areas, people."""

import random
from datetime import date, datetime, timezone

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from samverkan.core.contracts import load_contracts
from samverkan.ingest.model import FeedModel, area_of, local_to_utc, map_values
from samverkan.ingest.parsing import FileInfo, read_batches
from samverkan.privacy.pseudonymise import Pseudonymiser

pytestmark = pytest.mark.unit

KEY = b"k" * 32


def utc(*args):
    return datetime(*args, tzinfo=timezone.utc)


def naive(values):
    return pc.strptime(pa.array(values), format="%Y-%m-%d %H:%M", unit="us")


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        ("2026-11-20 23:14", utc(2026, 11, 20, 22, 14)),  # winter, +01:00
        ("2026-07-01 12:00", utc(2026, 7, 1, 10, 0)),  # summer, +02:00
        ("2026-10-25 01:59", utc(2026, 10, 24, 23, 59)),  # before the repeated hour
        ("2026-10-25 02:30", utc(2026, 10, 25, 0, 30)),  # repeated hour: first occurrence (+02:00)
        ("2026-10-25 03:00", utc(2026, 10, 25, 2, 0)),  # after it, +01:00
        ("2026-03-29 01:59", utc(2026, 3, 29, 0, 59)),
        ("2026-03-29 02:30", utc(2026, 3, 29, 1, 30)),  # skipped hour: read with +01:00 → 03:30 CEST
        ("2026-03-29 03:00", utc(2026, 3, 29, 1, 0)),
    ],
)
def test_stockholm_local_time_and_dst_rule(local, expected):
    assert local_to_utc(naive([local]))[0].as_py() == expected


def test_dst_rule_keeps_nulls_and_mixes():
    result = local_to_utc(naive(["2026-03-29 02:10", None, "2026-11-20 10:00"])).to_pylist()
    assert result == [utc(2026, 3, 29, 1, 10), None, utc(2026, 11, 20, 9, 0)]


def test_areas_match_partner_place_names():
    places = pa.array(["Gustav III:s torg, Östersund", "Busstorget", "resecentrum", "Okänd plats", None])
    assert area_of(places).to_pylist() == ["gustav_iii_torg", "gustav_iii_torg", "resecentrum", None, None]


def test_areas_of_many_rows_equal_each_place_on_its_own():
    """Worked out once per distinct place: the same as one place at a time, in chunks, with nulls."""
    rng = random.Random(7)
    names = ["Gustav III:s torg", "busstorget", "Resecentrum", "Okänd plats", "Stortorget", ""]
    places = [None if rng.random() < 0.1 else
              rng.choice(["", " ", "  "]) + rng.choice([n, n.upper()]) + rng.choice(["", ", Östersund", "  ,x"])
              for n in (rng.choice(names) for _ in range(3000))]
    one_by_one = [area_of(pa.array([p], pa.string()))[0].as_py() for p in places]
    assert area_of(pa.chunked_array([places[:1000], places[1000:]], pa.string())).to_pylist() == one_by_one
    assert {"gustav_iii_torg", "resecentrum", None} <= set(one_by_one)


def test_unmapped_values_become_null():
    assert map_values(pa.array(["Rån", "Okänt", None]), {"Rån": "robbery"}).to_pylist() == ["robbery", None, None]


POLICE = (
    "Diarienr;Händelsetid;Registrerad;Plats;Koord_N;Koord_E;Händelsetyp;Roll;Personnummer;Namn;Ålder;Fritext\r\n"
    '5000-K1-26;2026-11-20 23:14;2026-11-21 00:02;Prästgatan 22, Östersund;6997481;497149;Misshandel;Misstänkt;'
    '19990312-1235;Svensson, Åsa;;"Åsa ringde från 070-123 45 67"\r\n'
    "5000-K1-26;2026-11-20 23:14;2026-11-21 00:05;Prästgatan 22, Östersund;6997481;497149;Misshandel;Målsägande;"
    "990312-1235;Berg, Nils;41;Nils skadad\r\n"
    "5000-K2-26;;2026-11-21 01:00;Resecentrum, Östersund;;;Övrigt;;;;;\r\n"
)


def test_police_rows_become_incidents_and_involvements(tmp_path):
    contract = load_contracts()["police"]
    path = tmp_path / "polisen_handelser_20261120.csv"
    path.write_bytes(POLICE.encode("cp1252"))
    (batch,) = read_batches(contract, path, info=FileInfo())
    model = FeedModel(contract, Pseudonymiser(KEY), date(2026, 11, 20), path.name)
    incidents = model.incidents(batch.table).to_pylist()
    involvements = model.involvements(batch.table).to_pylist()

    keyed = Pseudonymiser(KEY)  # published ids are keyed (issue 14 item 3), never the diarienummer
    assert [i["incident_id"] for i in incidents] == [keyed.pseudonym("incident_id", f"police:5000-K{n}-26")
                                                     for n in (1, 2)]
    assert {i["incident_id"] for i in involvements} == {incidents[0]["incident_id"]}
    first = incidents[0]
    assert first["occurred_at_utc"] == utc(2026, 11, 20, 22, 14)
    assert first["occurred_at_local"] == datetime(2026, 11, 20, 23, 14)
    assert first["category"] == "violence" and first["source_category"] == "Misshandel"
    assert first["place"] == "Prästgatan, Östersund" and first["area"] == "prastgatan"
    assert (first["coord_n"], first["coord_e"]) == (6997500, 497100)
    assert "Åsa" not in first["description"] and "070" not in first["description"]
    assert incidents[1]["occurred_at_utc"] is None

    # Two forms of one personnummer: one pseudonym; the row without a person is no involvement.
    assert len(involvements) == 2
    assert involvements[0]["person_pseudonym"] == involvements[1]["person_pseudonym"] is not None
    assert [i["role"] for i in involvements] == ["suspect", "victim"]
    # Age stated in the row wins; without it, age comes from the personnummer (born 1999-03-12).
    assert [i["age_band"] for i in involvements] == ["25-34", "35-44"]
