"""Each partner format, exactly as its spec allows, read in batches into raw text."""

import gzip
import json

import pytest

from samverkan.ingest.parsing import FileInfo, FileRejected, read_batches
from tests.support.feeds import POLICE_HEADER

pytestmark = pytest.mark.unit

GUARDS_HEADER = "rapport_nr,datum,klockslag,plats,ingripande,personnummer,namn,telefon,ordningsvakt_id,polis_underrattad,beskrivning"


def read_all(contract, path, batch_rows=100_000):
    info = FileInfo()
    batches = list(read_batches(contract, path, batch_rows=batch_rows, info=info))
    rows = [r for b in batches for r in b.table.to_pylist()]
    bad = [r for b in batches for r in b.bad_records]
    return rows, bad, info, batches


def police_file(tmp_path, records, header=POLICE_HEADER, name="polisen_handelser_20261120.csv"):
    text = "\r\n".join([header, *records]) + "\r\n"
    path = tmp_path / name
    path.write_bytes(text.encode("cp1252"))
    return path


def test_police_cp1252_crlf_quoted_multiline(contracts, tmp_path):
    path = police_file(tmp_path, [
        '5000-K1-26;2026-11-20 23:14;2026-11-21 00:02;"Gustav III:s torg, Östersund";6997480;497120;Misshandel;'
        'Misstänkt;19990312-1234;Svensson, Åsa;17;"Anmälaren säger; ""hotade""\r\nrad två"',
        "5000-K2-26;;2026-11-21 01:00;Resecentrum, Östersund;;;Övrigt;;;;;",
    ])
    rows, bad, info, _ = read_all(contracts["police"], path)
    assert bad == [] and info.records == 2
    first, second = rows
    assert first["_row"] == 1 and second["_row"] == 2
    assert first["plats"] == "Gustav III:s torg, Östersund"
    assert first["namn"] == "Svensson, Åsa"
    assert first["fritext"] == 'Anmälaren säger; "hotade"\r\nrad två'
    assert second["handelsetid"] is None and second["personnummer"] is None and second["koord_n"] is None


def test_police_wrong_field_count_is_a_bad_record_not_a_lost_one(contracts, tmp_path):
    path = police_file(tmp_path, [
        "5000-K1-26;2026-11-20 23:14;2026-11-21 00:02;Plats;1;2;Rån;;;;;",
        "5000-K2-26;2026-11-20 23:14;extra;2026-11-21 00:02;Plats;1;2;Rån;;;;;",
        "5000-K3-26;2026-11-20 23:14;2026-11-21 00:02;Plats;1;2;Rån;;;;;",
    ])
    rows, bad, info, _ = read_all(contracts["police"], path)
    assert [r["_row"] for r in rows] == [1, 3]
    assert [(b.row, b.reason) for b in bad] == [(2, "expected 12 fields, found 13")]
    assert info.records == 3


def test_police_missing_required_column_rejects_file(contracts, tmp_path):
    path = police_file(tmp_path, ["5000-K1-26;x"], header=POLICE_HEADER.replace(";Händelsetyp", ""))
    with pytest.raises(FileRejected, match="missing required column\\(s\\) Händelsetyp"):
        read_all(contracts["police"], path)


def test_unexpected_new_column_is_noted_and_ignored(contracts, tmp_path):
    path = police_file(tmp_path, ["5000-K1-26;2026-11-20 23:14;2026-11-21 00:02;P;1;2;Rån;;;;;;ny"],
                       header=POLICE_HEADER + ";Nytt fält")
    rows, bad, info, _ = read_all(contracts["police"], path)
    assert len(rows) == 1 and not bad and info.unexpected_columns == ["Nytt fält"]


def test_empty_file_is_rejected(contracts, tmp_path):
    path = tmp_path / "polisen_handelser_20261120.csv"
    path.write_bytes(b"")
    with pytest.raises(FileRejected, match="empty"):
        read_all(contracts["police"], path)


def test_batches_bound_memory_and_keep_numbering(contracts, tmp_path):
    records = [f"5000-K{i}-26;2026-11-20 10:00;2026-11-20 11:00;P;1;2;Rån;;;;;" for i in range(1, 26)]
    rows, _, _, batches = read_all(contracts["police"], police_file(tmp_path, records), batch_rows=10)
    assert [b.table.num_rows for b in batches] == [10, 10, 5]
    assert [r["_row"] for r in rows] == list(range(1, 26))


def test_guards_utf8_bom_lf(contracts, tmp_path):
    path = tmp_path / "vaktrapport_2026-11-20.csv"
    body = (GUARDS_HEADER + "\n" +
            'AV-2026-000001,2026-11-20,23:40,Busstorget,Avvisning,,,,OV-4471,Ja,"Berusad, avvisades\nfrån väntsalen."\n')
    path.write_bytes(b"\xef\xbb\xbf" + body.encode("utf-8"))
    rows, bad, info, _ = read_all(contracts["guards"], path)
    assert not bad and info.header[0] == "rapport_nr"
    assert rows[0]["rapport_nr"] == "AV-2026-000001"
    assert rows[0]["beskrivning"] == "Berusad, avvisades\nfrån väntsalen."


def test_guards_in_the_wrong_encoding_is_rejected(contracts, tmp_path):
    path = tmp_path / "vaktrapport_2026-11-20.csv"
    path.write_bytes((GUARDS_HEADER + "\nAV-2026-000001,2026-11-20,23:40,Prästgatan,Övrigt,,,,OV-1,Nej,x\n").encode("cp1252"))
    with pytest.raises(FileRejected, match="not valid utf-8-sig"):
        read_all(contracts["guards"], path)


def transit_file(tmp_path, lines: list[bytes]):
    path = tmp_path / "incidents-2026-11-20.jsonl.gz"
    with gzip.open(path, "wb") as f:
        f.write(b"\n".join(lines) + b"\n")
    return path


def test_transit_nested_and_unknown_fields(contracts, tmp_path):
    record = {
        "incident_id": "6f1c2a9e-3b7d-4e21-9a55-0c8f1d2e3a4b", "occurred_at": "2026-11-20T22:41:00+01:00",
        "line": "3", "stop_id": None, "category": "THREAT", "severity": 2, "police_called": True,
        "reported_by": {"employee_no": "48213", "role": "DRIVER", "depot": "new field"},
        "persons": [{"role": "OFFENDER", "approx_age": 19, "gender": "M", "shoe": 44}, {"role": "WITNESS"}],
        "description": "Hotade föraren", "new_top_level": {"x": 1},
    }
    path = transit_file(tmp_path, [json.dumps(record, ensure_ascii=False).encode()])
    rows, bad, _, _ = read_all(contracts["transit"], path)
    assert not bad
    row = rows[0]
    assert row["reporter_employee_no"] == "48213" and row["reporter_role"] == "DRIVER"
    assert row["severity"] == "2" and row["police_called"] == "true" and row["stop_id"] is None
    assert row["persons"] == [{"role": "OFFENDER", "approx_age": "19", "gender": "M"},
                              {"role": "WITNESS", "approx_age": None, "gender": None}]


def test_transit_bad_lines_are_records_with_reasons(contracts, tmp_path):
    good = json.dumps({"incident_id": "a", "persons": []}).encode()
    path = transit_file(tmp_path, [good, b"{not json", b"[1, 2]", b"", json.dumps({"persons": {"role": "X"}}).encode(), good])
    rows, bad, info, _ = read_all(contracts["transit"], path)
    assert [r["_row"] for r in rows] == [1, 5]
    assert [(b.row, b.reason.split(" (")[0]) for b in bad] == [
        (2, "line is not valid JSON"), (3, "line is JSON but not an object"), (4, "persons is not a list")]
    assert info.records == 5


def test_truncated_gzip_is_rejected(contracts, tmp_path):
    path = transit_file(tmp_path, [json.dumps({"incident_id": str(i), "description": "x" * 200}).encode() for i in range(500)])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(FileRejected, match="not a complete gzip stream"):
        read_all(contracts["transit"], path)


def test_not_gzip_at_all_is_rejected(contracts, tmp_path):
    path = tmp_path / "incidents-2026-11-20.jsonl.gz"
    path.write_bytes(b'{"incident_id": "plain json, not gzip"}\n')
    with pytest.raises(FileRejected):
        read_all(contracts["transit"], path)


# --- counting the records of a file refused before they were read ---------------------------

def test_count_records_of_a_refused_csv_counts_multi_line_records_once(contracts, tmp_path):
    from samverkan.ingest.parsing import count_records

    header_without_roll = POLICE_HEADER.replace(";Roll", "")
    path = police_file(tmp_path, ['a;b;c;d;e;f;g;h;i;j;"rad ett\r\nrad två"', "a;b;c;d;e;f;g;h;i;j;k"],
                       header=header_without_roll)
    with pytest.raises(FileRejected):
        read_all(contracts["police"], path)
    assert count_records(contracts["police"], path) == 2


def test_count_records_of_jsonl_gz_skips_blank_lines_and_gives_none_for_a_broken_stream(contracts, tmp_path):
    from samverkan.ingest.parsing import count_records

    good = tmp_path / "incidents-2026-11-20.jsonl.gz"
    good.write_bytes(gzip.compress(b'{"a": 1}\n\n{"b": 2}\nnot json\n'))
    assert count_records(contracts["transit"], good) == 3
    broken = tmp_path / "incidents-2026-11-21.jsonl.gz"
    whole = gzip.compress("".join(f'{{"id": "{i * 7919 % 10007}"}}\n' for i in range(5000)).encode())
    broken.write_bytes(whole[: len(whole) // 2])
    assert count_records(contracts["transit"], broken) is None
