"""Arrow's CSV reader is used only where it gives exactly what the csv module gives.

Every case is read twice: by ``read_batches`` (fast path where it applies, the csv module from
where it does not) and by the csv module alone. Records, record numbers, bad records, file
information and the rejection message must be identical.
"""

import csv
import dataclasses
import gzip
import io
import json
import random
from datetime import date

import pyarrow as pa
import pytest

from samverkan.ingest import parsing
from samverkan.core.contracts import load_contracts
from samverkan.ingest.parsing import FileInfo, FileRejected, read_batches
from devkit.synthetic import Population, write_night
from tests.support.feeds import POLICE_HEADER

pytestmark = pytest.mark.unit

GOOD = "5000-K1-26;2026-11-20 23:14;2026-11-21 00:02;Stortorget, Östersund;6997480;497120;Rån;Vittne;;Åberg, Åsa;31;text"


@pytest.fixture(scope="module")
def police():
    return load_contracts()["police"]


def outcome(reader, contract, path, batch_rows):
    info = FileInfo()
    try:
        batches = list(reader(contract, path, batch_rows=batch_rows, info=info))
    except FileRejected as exc:
        return ("rejected", str(exc), info.records)
    return ("read", [b.table.to_pylist() for b in batches], [b.bad_records for b in batches],
            info.records, info.header, info.unexpected_columns)


def exact(contract, path, batch_rows, info):
    return parsing._python_csv_batches(contract, path, batch_rows, info)


def same_as_csv_module(contract, path, batch_rows=3):
    fast = outcome(read_batches, contract, path, batch_rows)
    slow = outcome(lambda c, p, batch_rows, info: exact(c, p, batch_rows, info), contract, path, batch_rows)
    assert fast == slow
    return fast


def write(tmp_path, body: str, *, encoding="cp1252", name="polisen_handelser_20261120.csv"):
    path = tmp_path / name
    path.write_bytes(body.encode(encoding))
    return path


CASES = {
    "clean": [GOOD] * 7,
    "quoted multi-line and doubled quotes": [GOOD[:-4] + '"rad ett\r\nhon sa ""nej"""'] * 4,
    "quoted delimiter": [GOOD[:-4] + '"a; b"'] * 2,
    "empty quoted value": [GOOD[:-4] + '""'],
    "text after a closing quote": [GOOD, GOOD[:-4] + '"ab"c', GOOD],
    "blank after a closing quote": [GOOD, GOOD[:-4] + '"ab" ', GOOD],
    "quote inside an unquoted value": [GOOD, GOOD[:-4] + 'ab"c', GOOD],
    "unterminated quote at the end": [GOOD, GOOD, GOOD[:-4] + '"never closed'],
    "unterminated quote in the middle": [GOOD, GOOD[:-4] + '"open', GOOD, GOOD],
    "too many fields": [GOOD, GOOD, GOOD, GOOD + ";extra", GOOD],
    "too few fields": [GOOD] * 4 + ["5000-K2-26;2026-11-20 23:14"] + [GOOD] * 3,
    "blank and whitespace lines": [GOOD, "", GOOD, "   ", GOOD],
    "header only": [],
    "trailing delimiter": [GOOD + ";"] * 2,
}


def csv_module_reading(contract, path):
    """The oracle: Python's csv module on the same bytes with the contract's dialect, written out
    here and not through the module. Good records as {column: value, '' as None} by record
    number (blank lines are no record), the numbers of records of the wrong width; or 'rejected'
    when the csv module finds the structure broken."""
    fmt = contract.format
    text = path.read_bytes().decode(fmt["encoding"])
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=fmt["delimiter"], quotechar=fmt["quotechar"],
                        doublequote=True, strict=True)
    good, bad, number = {}, [], 0
    try:
        header = next(reader)
        for fields in reader:
            if fields in ([], [""]):
                continue
            number += 1
            if len(fields) != len(header):
                bad.append(number)
                continue
            by_source = dict(zip(header, fields))
            good[number] = {c.name: by_source[c.source] or None for c in contract.columns}
    except csv.Error:
        return "rejected"
    return good, bad


def module_reading(contract, path):
    try:
        batches = list(read_batches(contract, path, batch_rows=3))
    except FileRejected:
        return "rejected"
    good = {row.pop(parsing.ROW): row for b in batches for row in b.table.to_pylist()}
    return good, [r.row for b in batches for r in b.bad_records]


@pytest.mark.parametrize("case", sorted(CASES))
def test_corpus_read_as_pythons_csv_module_reads_it(police, tmp_path, case):
    records = CASES[case]
    body = "\r\n".join([POLICE_HEADER, *records]) + ("\r\n" if not case.startswith("unterminated quote at") else "")
    path = write(tmp_path, body)
    assert module_reading(police, path) == csv_module_reading(police, path)


@pytest.mark.parametrize("case", sorted(CASES))
def test_corpus_same_as_csv_module(police, tmp_path, case):
    records = CASES[case]
    body = "\r\n".join([POLICE_HEADER, *records]) + ("\r\n" if not case.startswith("unterminated quote at") else "")
    same_as_csv_module(police, write(tmp_path, body))


def test_reader_switch_mid_file_keeps_numbers_and_batches(police, tmp_path):
    """A bad record after several full batches: the csv module takes over exactly there."""
    records = [GOOD.replace("K1", f"K{i}") for i in range(40)]
    records[33] = records[33] + ";extra"
    result = same_as_csv_module(police, write(tmp_path, "\r\n".join([POLICE_HEADER, *records]) + "\r\n"), batch_rows=5)
    assert result[0] == "read" and result[3] == 40
    assert [b.row for bs in result[2] for b in bs] == [34]


def test_encoding_errors_same_as_csv_module(police, tmp_path):
    path = tmp_path / "polisen_handelser_20261120.csv"
    path.write_bytes(("\r\n".join([POLICE_HEADER, GOOD, GOOD]) + "\r\n").encode("cp1252").replace(b"text", b"t\x81xt"))
    assert same_as_csv_module(police, path)[0] == "rejected"


def test_utf8_file_for_a_cp1252_contract_is_read_as_cp1252_by_both(police, tmp_path):
    same_as_csv_module(police, write(tmp_path, "\r\n".join([POLICE_HEADER, GOOD]) + "\r\n", encoding="utf-8"))


def test_field_over_the_limit_same_as_csv_module(police, tmp_path):
    big = GOOD[:-4] + "x" * (parsing.MAX_FIELD_BYTES + 10)
    assert same_as_csv_module(police, write(tmp_path, "\r\n".join([POLICE_HEADER, GOOD, big]) + "\r\n"))[0] == "rejected"


@pytest.mark.parametrize("feed", ["police", "guards"])
def test_generated_nights_same_as_csv_module(tmp_path, feed):
    contract = load_contracts()[feed]
    truth = write_night(feed, date(2026, 11, 20), tmp_path, rows=3000, population=Population(seed=2, size=400), seed=9)
    assert parsing._quoting_is_plain(contract, truth.path)  # the fast path is really taken, to the end
    assert sum(b.table.num_rows for b in parsing._arrow_csv_batches(contract, truth.path, 700, FileInfo())) == 3000
    same_as_csv_module(contract, truth.path, batch_rows=700)


def test_quote_runs_across_scan_blocks(police, tmp_path, monkeypatch):
    monkeypatch.setattr(parsing, "_QUOTE_SCAN_BYTES", 7)
    body = "\r\n".join([POLICE_HEADER] + [GOOD[:-4] + '"x ""y"" ;z"'] * 5 + [GOOD[:-4] + '"ab"""c']) + "\r\n"
    path = write(tmp_path, body)
    assert not parsing._quoting_is_plain(police, path)
    same_as_csv_module(police, path)
    ok = write(tmp_path, "\r\n".join([POLICE_HEADER] + [GOOD[:-4] + '"x ""y"" ;z"'] * 5) + "\r\n", name="ok.csv")
    assert parsing._quoting_is_plain(police, ok)


def test_gzip_csv_same_as_csv_module(tmp_path):
    contract = load_contracts()["police"]
    raw = {**contract.raw, "format": {**contract.format, "compression": "gzip"}}
    gz = dataclasses.replace(contract, raw=raw)
    body = ("\r\n".join([POLICE_HEADER, GOOD, GOOD]) + "\r\n").encode("cp1252")
    path = tmp_path / "polisen_handelser_20261120.csv.gz"
    path.write_bytes(gzip.compress(body))
    assert same_as_csv_module(gz, path)[0] == "read"
    path.write_bytes(gzip.compress(body)[:-12])
    assert same_as_csv_module(gz, path)[0] == "rejected"


def test_json_reader_gives_what_json_record_gives(tmp_path):
    contract = load_contracts()["transit"]
    truth = write_night("transit", date(2026, 11, 20), tmp_path, rows=500, population=Population(seed=2, size=100), seed=3)
    objects = [json.loads(line) for line in gzip.decompress(truth.path.read_bytes()).decode().splitlines() if line.strip()]
    objects = [o for o in objects if isinstance(o, dict)]
    objects += [{"incident_id": "", "reported_by": "not an object", "severity": 2.0, "police_called": True},
                {"reported_by": {"employee_no": 123, "role": None}, "line": {"a": [1, "å"]}, "stop_id": ["x"]},
                {"incident_id": "x", "reported_by": {"employee_no": {"deeper": 1}}, "description": 1e400}, {}]
    fast = parsing._json_reader(contract)
    for obj in objects:
        try:
            slow = ("ok", parsing._json_record(contract, obj))
        except parsing._RecordError as exc:
            slow = ("error", str(exc))
        try:
            got = ("ok", fast(obj))
        except parsing._RecordError as exc:
            got = ("error", str(exc))
        assert got == slow


# --- a column of raw bytes to text, on its buffers --------------------------------------------

SINGLE_BYTE = ["cp1252", "iso8859-1", "iso8859-15"]


def decoded_one_by_one(values: list[bytes], encoding: str) -> list[str | None]:
    return [v.decode(encoding) or None for v in values]


def random_fields(rng, alphabet: list[int], count: int) -> list[bytes]:
    """Fields of 0 to 40 bytes; one in five empty, so nulls fall at the start, inside and at the end."""
    return [bytes(rng.choice(alphabet) for _ in range(rng.choice([0, 0, *range(1, 41)]))) for _ in range(count)]


@pytest.mark.parametrize("encoding", SINGLE_BYTE)
def test_text_column_is_bytes_decode_of_each_value(encoding):
    rng = random.Random(encoding)
    defined = [b for b in range(256) if _decodes(bytes([b]), encoding)]
    assert len(defined) >= 251  # cp1252 leaves five undefined
    fields = [bytes([b]) for b in defined] + random_fields(rng, defined, 3_000)
    column = pa.array(fields, pa.binary())
    assert parsing._text_column(column, encoding).to_pylist() == decoded_one_by_one(fields, encoding)
    for start, stop in [(0, 1), (7, 300), (len(fields) - 50, len(fields)), (100, 100)]:  # slices keep their offset
        part = column.slice(start, stop - start)
        assert parsing._text_column(part, encoding).to_pylist() == decoded_one_by_one(fields[start:stop], encoding)


def _decodes(value: bytes, encoding: str) -> bool:
    try:
        value.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def test_text_column_fails_where_bytes_decode_fails():
    for byte in (0x81, 0x8D, 0x8F, 0x90, 0x9D):  # undefined in cp1252
        with pytest.raises(parsing._NotPlain, match="not valid cp1252"):
            parsing._text_column(pa.array([b"ok", b"\xe5" + bytes([byte])], pa.binary()), "cp1252")
    with pytest.raises(parsing._NotPlain, match="not valid UTF-8"):
        parsing._text_column(pa.array([b"\xe5"], pa.binary()), "utf-8")
    assert parsing._text_column(pa.array(["Åsa", "", "€"], pa.string()).cast(pa.binary()), "utf-8").to_pylist() == [
        "Åsa", None, "€"]


def test_text_column_refuses_a_field_beyond_the_limit(monkeypatch):
    monkeypatch.setattr(parsing, "MAX_FIELD_BYTES", 4)
    assert parsing._text_column(pa.array([b"abcd"], pa.binary()), "cp1252").to_pylist() == ["abcd"]
    with pytest.raises(parsing._NotPlain, match="size limit"):
        parsing._text_column(pa.array([b"ab", b"abcde"], pa.binary()), "cp1252")
