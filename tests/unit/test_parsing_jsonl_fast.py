"""Arrow's JSON reader is used only where it gives exactly what the per-line path gives (issue 13).

Every case is read twice: by ``read_batches`` (blocks of lines read columnar where they can be,
the others line by line) and by the per-line path alone (Python's json module on every line).
Records, record numbers, batches, bad records with their reasons and the file's record count
must be identical; at the end, the pipeline publishes the same bytes and the same quarantine.
"""

import dataclasses
import gzip
import hashlib
import json
import shutil
from datetime import date

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from devkit.synthetic import Faults, Population, write_night
from samverkan.core.contracts import load_contracts
from samverkan.ingest import parsing
from samverkan.ingest.parsing import FileInfo, FileRejected, LimitExceeded, read_batches
from samverkan.ingest.pipeline import array_check_frame

pytestmark = pytest.mark.unit

NIGHT = date(2026, 11, 20)
RECORD = {
    "incident_id": "6f1c2a9e-3b7d-4e21-9a55-0c8f1d2e3a4b", "occurred_at": "2026-11-20T22:41:00+01:00",
    "reported_at": "2026-11-20T23:02:00+01:00", "line": "3", "stop_id": "SE:030:Quay:1", "stop_name": "Resecentrum",
    "vehicle_id": "6201", "category": "THREAT", "severity": 2, "police_called": True,
    "reported_by": {"employee_no": "48213", "role": "DRIVER"},
    "persons": [{"role": "OFFENDER", "approx_age": 19, "gender": "M"}, {"role": "WITNESS"}],
    "description": "Hotade föraren vid Resecentrum",
}


def line(**changes) -> bytes:
    return json.dumps({**RECORD, **changes}, ensure_ascii=False).encode()


GOOD = line()
# Each case: lines (without line breaks) placed among good lines. Where Arrow and Python's json
# module could disagree, the columnar path must hand the lines to the per-line path.
CASES = {
    "clean": [GOOD],
    "ascii escapes": [json.dumps(RECORD).encode()],
    "escaped key": [GOOD.replace(b'"line"', b'"\\u006cine"')],
    "empty strings": [line(line="", stop_id="", reported_by={"employee_no": "", "role": None})],
    "nulls and missing fields": [line(persons=None, reported_by=None, severity=None), b'{"incident_id": "x"}', b"{}"],
    "empty and short persons": [line(persons=[]), line(persons=[{}]), line(persons=[{"gender": "F", "approx_age": None}])],
    "unknown fields anywhere": [line(app={"v": [1, 2.5, None]}, reported_by={"employee_no": "1", "shift": "K1"},
                                     persons=[{"role": "VICTIM", "clothing": "jacka"}])],
    "NaN and a repeated key in unknown fields": [GOOD[:-1] + b', "x": NaN, "y": 1, "y": -Infinity}'],
    "integer as text and text as integer": [line(severity="2"), line(line=3), line(persons=[{"approx_age": "19"}])],
    "float, exponent, -0, big integer": [line(severity=2.0), line(severity=-0), b'{"severity": 1e2}',
                                        b'{"severity": 123456789012345678901234567890}', b'{"severity": -0}'],
    "boolean where text and text where boolean": [line(line=True), line(police_called="true"), line(police_called=None)],
    "object or array where text": [line(line={"b": 1, "a": "å"}), line(stop_id=["x"]),
                                   line(persons=[{"gender": {"x": 1}}])],
    "NaN in a contract field": [GOOD.replace(b'"severity": 2', b'"severity": NaN')],
    "repeated contract field": [GOOD[:-1] + b', "line": "4"}', GOOD[:-1] + b', "reported_by": {"role": "OTHER"}}'],
    "persons not a list, item not an object": [line(persons={"role": "X"}), line(persons=[None]),
                                               line(persons=[1, {"role": "VICTIM"}]), line(persons="x")],
    "reported_by not an object": [line(reported_by="48213"), line(reported_by=[1])],
    "not JSON, not an object": [b'{"incident_id": "a", "occurred_at": ', b"[1, 2]", b'"text"', b"{not json", b"{}}"],
    "two objects on a line": [GOOD + b" " + GOOD, GOOD + b"\r" + GOOD],
    "object over two lines": [GOOD[:40], GOOD[40:], b'{"a":', b'{"line": "x"}}'],
    "two lines as one object, one line as two": [b'{"a":', b'{"line": "x"}}', GOOD + GOOD],
    "blank and whitespace lines": [b"", b"   ", b"\t", b"\r"],
    "whitespace around": [b"  " + GOOD, GOOD + b"  ", GOOD + b"\r", GOOD + b"\x0c", GOOD + b"\t"],
    "surrogate escapes": [line(description="😀 ok"), GOOD.replace(b"Hotade", b"\\ud83d\\ude00Hotade"),
                          GOOD.replace(b"Hotade", b"\\ud800Hotade")],
    "control character in a string": [GOOD.replace(b"Hotade", b"Ho\ttade"), GOOD.replace(b"Hotade", b"Ho\x01tade")],
    "invalid UTF-8": [GOOD.replace("föraren".encode(), b"f\xf6raren"), GOOD[:-1] + b', "x": "\xff"}',
                      GOOD[:-1] + b', "x": "\xed\xa0\x80"}'],
    "byte order mark": [b"\xef\xbb\xbf" + GOOD],
    "NUL after the object": [GOOD + b"\x00"],
    # Python's json module gives up near 1,000 levels and beyond 4,300 digits (a ValueError):
    # those lines get Arrow's reading in both paths (an unknown field is ignored; a contract field
    # that Arrow refuses too makes a bad record); shallower lines and digits in text read as usual
    "deep nesting": [GOOD[:-1] + b', "x": ' + b"[" * 900 + b"]" * 900 + b"}",
                     GOOD[:-1] + b', "x": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5000 + b"}",
                     GOOD[:-1] + b', "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
                     line(persons=[[[[{"role": "VICTIM"}]]]] * 20), line(description="[{" * 200),
                     GOOD.replace(b'"persons": [', b'"persons": [' + b"[" * 5000 + b"]" * 5000 + b", "),
                     b" " + GOOD[:-1] + b', "x": ' + b"[" * 5000 + b"]" * 5000 + b"}"],
    "long numbers": [GOOD[:-1] + b', "x": ' + b"7" * 4300 + b"}", GOOD[:-1] + b', "x": ' + b"7" * 4301 + b"}",
                     GOOD.replace(b'"severity": 2', b'"severity": ' + b"9" * 5000), line(description="1" * 5000),
                     GOOD[:-1] + b', "x": -' + b"7" * 5000 + b".5}"],
}


@pytest.fixture(autouse=True)
def short_runs_columnar(monkeypatch):
    """Runs of a few lines read columnar too, so that short test files exercise the columnar path."""
    monkeypatch.setattr(parsing, "_JSON_MIN_LINES", 4)


@pytest.fixture(scope="module")
def transit():
    return load_contracts()["transit"]


def outcome(reader, contract, path, batch_rows):
    info = FileInfo()
    try:
        batches = list(reader(contract, path, batch_rows=batch_rows, info=info))
    except FileRejected as exc:
        return ("rejected", type(exc).__name__, str(exc), info.records)
    for b in batches:
        assert b.table.schema == parsing.raw_schema(contract)
        # laid out as the per-line path lays it out: one chunk per column, from offset 0
        assert {(c.num_chunks, c.chunk(0).offset) for c in b.table.columns} == {(1, 0)}
    # what the pipeline derives from a batch, offsets and all: each array item's place in its record
    items = [array_check_frame(contract, b.table, "persons", arrow=True).to_pylist() for b in batches]
    return ("read", [b.table.to_pylist() for b in batches], [b.bad_records for b in batches], info.records, items)


def per_line(contract, path, batch_rows, info):
    return parsing._python_jsonl_batches(contract, path, batch_rows, info)


def same_as_per_line(contract, path, batch_rows=4):
    fast = outcome(read_batches, contract, path, batch_rows)
    slow = outcome(per_line, contract, path, batch_rows)
    assert fast == slow
    return fast


def write(tmp_path, lines: list[bytes], *, end=b"\n", name="incidents-2026-11-20.jsonl.gz"):
    path = tmp_path / name
    path.write_bytes(gzip.compress(b"\n".join(lines) + end))
    return path


def columnar_lines(monkeypatch):
    """Counts the records the columnar path gives, to show it was (or was not) taken."""
    taken = []
    table = parsing._JsonBatches.table
    monkeypatch.setattr(parsing._JsonBatches, "table", lambda self, t, sizes: taken.append(t.num_rows) or table(self, t, sizes))
    return taken


@pytest.mark.parametrize("min_lines", [1, 16])
@pytest.mark.parametrize("case", sorted(CASES))
def test_corpus_same_as_the_per_line_path(transit, tmp_path, monkeypatch, case, min_lines):
    monkeypatch.setattr(parsing, "_JSON_MIN_LINES", min_lines)
    lines = [GOOD] * 3 + CASES[case] + [GOOD] * 40 + CASES[case] + [GOOD]
    same_as_per_line(transit, write(tmp_path, lines))


def test_clean_lines_are_read_columnar_and_bad_ones_alone(transit, tmp_path, monkeypatch):
    monkeypatch.setattr(parsing, "_JSON_MIN_LINES", 1)
    taken = columnar_lines(monkeypatch)
    lines = [GOOD] * 100 + [b"{not json", b"[1]", line(persons=[None])] + [GOOD] * 100
    result = same_as_per_line(transit, write(tmp_path, lines), batch_rows=1000)
    assert sum(taken) == 200  # all but the two lines that are not objects and the null item
    assert [(b.row, b.reason.split(" (")[0]) for b in result[2][0]] == [
        (101, "line is not valid JSON"), (102, "line is JSON but not an object"), (103, "persons[0] is not an object")]


@pytest.mark.parametrize("min_lines", [1, 256])
def test_lines_python_cannot_read_are_read_by_arrow_not_a_failed_file(transit, tmp_path, monkeypatch, min_lines):
    """Python's json module raised RecursionError (deep nesting) or ValueError (an integer of more
    than 4,300 digits, a 4 KB line) and failed the whole file, while the columnar path published
    the same lines: now both paths give them Arrow's reading, and a line Arrow refuses too is a
    bad record with its reason."""
    monkeypatch.setattr(parsing, "_JSON_MIN_LINES", min_lines)
    deep = GOOD[:-1] + b', "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    long = GOOD[:-1] + b', "x": ' + b"7" * 5000 + b"}"
    long_in_contract = GOOD.replace(b'"severity": 2', b'"severity": ' + b"9" * 5000)
    deep_in_contract = GOOD.replace(b'"persons": [', b'"persons": [' + b"[" * 5000 + b"]" * 5000 + b", ")
    lines = [GOOD] * 300 + [deep, long, long_in_contract, deep_in_contract] + [GOOD] * 300
    result = same_as_per_line(transit, write(tmp_path, lines), batch_rows=1000)
    assert [(b.row, b.reason) for b in result[2][0]] == [
        (303, "line holds a number too long for Python's json module, and Arrow's reader refuses it"),
        (304, "line nests JSON too deep for Python's json module, and Arrow's reader refuses it"),
    ]
    records = result[1][0]
    assert len(records) == 602
    assert [r["_row"] for r in records[299:302]] == [300, 301, 302]
    values = [{k: v for k, v in r.items() if k != "_row"} for r in (records[0], records[300], records[301])]
    assert values[1] == values[2] == values[0]  # the good record's values: the unknown field is ignored


def test_a_short_file_goes_line_by_line(transit, tmp_path, monkeypatch):
    monkeypatch.setattr(parsing, "_JSON_MIN_LINES", 256)
    taken = columnar_lines(monkeypatch)
    same_as_per_line(transit, write(tmp_path, [GOOD] * 255))
    assert taken == []
    same_as_per_line(transit, write(tmp_path, [GOOD] * 256 + [b"{bad"] + [GOOD] * 255))
    assert taken == [256]


def test_a_contract_field_as_another_type_goes_line_by_line(transit, tmp_path, monkeypatch):
    taken = columnar_lines(monkeypatch)
    result = same_as_per_line(transit, write(tmp_path, [line(severity="2")] * 50))
    assert taken == [] and result[1][0][0]["severity"] == "2"


@pytest.mark.parametrize("batch_rows", [1, 7, 50, 1000])
def test_batches_and_numbers_across_blocks(transit, tmp_path, monkeypatch, batch_rows):
    """Blocks of a few lines each; blank lines, a bad line and a line without a final break."""
    monkeypatch.setattr(parsing, "JSON_BLOCK_BYTES", 3 * len(GOOD) + 10)
    monkeypatch.setattr(parsing, "_JSON_MIN_LINES", 2)
    lines = [line(incident_id=str(i)) for i in range(60)]
    lines[10:10] = [b"", b"{bad"]
    lines[30:30] = [b"  "]
    same_as_per_line(transit, write(tmp_path, lines, end=b""), batch_rows=batch_rows)


def test_batch_bytes_boundary(transit, tmp_path, monkeypatch):
    monkeypatch.setattr(parsing, "BATCH_BYTES", 5 * (len(GOOD) + 1))  # reached exactly
    taken = columnar_lines(monkeypatch)
    result = same_as_per_line(transit, write(tmp_path, [GOOD] * 23 + [b""] * 3 + [GOOD] * 9), batch_rows=1000)
    assert [len(rows) for rows in result[1]] == [5, 5, 5, 5, 5, 5, 2] and sum(taken) == 32


@pytest.mark.parametrize("block", [700, 1 << 20])  # a long line over several reads, or within one
def test_long_lines_are_bad_records_and_never_held_whole(transit, tmp_path, monkeypatch, block):
    contract = dataclasses.replace(transit, raw={**transit.raw, "limits": {"max_line_bytes": 1024}})
    monkeypatch.setattr(parsing, "JSON_BLOCK_BYTES", block)
    long_ = line(description="x" * 3000)
    edge = line(description="y" * (1024 - len(line(description=""))))
    assert len(edge) == 1024
    # after record 6 the batch is full but not handed on (a long line never hands it on); the
    # columnar run after record 7 then starts by closing it
    lines = [GOOD, long_, GOOD, edge, edge + b" ", long_, long_] + [GOOD] * 6
    result = same_as_per_line(contract, write(tmp_path, lines + [long_], end=b""), batch_rows=3)
    bad = [(b.row, b.raw) for bs in result[2] for b in bs]
    assert bad == [(2, "(too long to keep)"), (5, "(too long to keep)"), (6, "(too long to keep)"),
                   (7, "(too long to keep)"), (14, "(too long to keep)")]
    assert [len(rows) for rows in result[1]] == [2, 2, 3, 2]
    held = []
    blocks = parsing._line_blocks
    monkeypatch.setattr(parsing, "_line_blocks", lambda raw, limit: (held.append(b) or b for b in blocks(raw, limit)))
    list(read_batches(contract, write(tmp_path, lines)))
    assert max(len(b) for b in held if isinstance(b, bytes)) <= block + 1024


def test_decompression_limit_still_refuses_the_file(transit, tmp_path):
    contract = dataclasses.replace(transit, raw={**transit.raw, "limits": {"max_decompressed_bytes": 64 << 10}})
    result = same_as_per_line(contract, write(tmp_path, [GOOD] * 1000))
    assert result[:2] == ("rejected", "LimitExceeded")
    with pytest.raises(LimitExceeded):
        list(read_batches(contract, write(tmp_path, [GOOD] * 1000)))


@pytest.mark.parametrize("lines", [[], [b""], [b"", b"  "]])
def test_a_file_without_records_is_refused_by_both(transit, tmp_path, lines):
    assert same_as_per_line(transit, write(tmp_path, lines))[:3] == ("rejected", "FileRejected", "file holds no records")


def test_truncated_gzip_is_refused_by_both(transit, tmp_path):
    path = write(tmp_path, [line(incident_id=str(i)) for i in range(2000)])
    path.write_bytes(path.read_bytes()[:-40])
    assert same_as_per_line(transit, path)[0] == "rejected"


def test_other_encodings_and_clashing_sources_are_not_read_columnar(transit):
    latin = dataclasses.replace(transit, raw={**transit.raw, "format": {**transit.format, "encoding": "latin-1"}})
    assert parsing._JsonColumnar.for_contract(latin) is None
    reporter = dataclasses.replace(transit.column("line"), name="reporter", source="reported_by")
    clash = dataclasses.replace(transit, columns=(*transit.columns, reporter))
    assert parsing._JsonColumnar.for_contract(clash) is None
    assert parsing._JsonColumnar.for_contract(transit) is not None


@pytest.mark.parametrize("min_lines", [4, 256])
@pytest.mark.parametrize("batch_rows", [97, 100_000])
def test_generated_night_with_bad_lines_same_as_per_line(transit, tmp_path, monkeypatch, batch_rows, min_lines):
    monkeypatch.setattr(parsing, "_JSON_MIN_LINES", min_lines)
    taken = columnar_lines(monkeypatch)
    faults = Faults(bad_json_lines=6, impossible_date=2, unknown_category=2)
    truth = write_night("transit", NIGHT, tmp_path, rows=3000, population=Population(seed=2, size=300), seed=9,
                        faults=faults)
    result = same_as_per_line(transit, truth.path, batch_rows=batch_rows)
    assert result[3] == 3000 and sum(len(bs) for bs in result[2]) == 6
    assert sum(taken) > 3000 - 6 * 2 * min_lines  # a bad line costs at most a run of neighbours


# --- the pipeline: same published bytes, same quarantine ---------------------------------


def _process(root, source, validator, workers=1):
    from samverkan.core.ledger import Ledger
    from samverkan.core.settings import Paths
    from samverkan.ingest.pipeline import process
    from samverkan.privacy.pseudonymise import Pseudonymiser
    from samverkan.quality.validation import EXPECTATIONS_DIR

    paths = Paths(root).ensure()
    ledger = Ledger(paths.ledger)
    target = paths.landing("transit", NIGHT.isoformat()) / source.name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    sha = hashlib.sha256(target.read_bytes()).hexdigest()
    landed = {"entry_id": ledger.record_landed("transit", source.name, NIGHT.isoformat(), 1, 0, sha, "t"),
              "name": source.name, "night": NIGHT.isoformat(), "path": str(target), "sha256": sha, "action": "process"}
    result = process(load_contracts()["transit"], landed, paths, ledger, Pseudonymiser(bytes(range(32))), validator,
                     run_id="t", expectations_dir=EXPECTATIONS_DIR, batch_rows=400, workers=workers)
    written = {}
    for p in sorted(root.rglob("*.parquet")):
        if "expectation_outcomes" not in p.parts:
            written[str(p.relative_to(root))] = (p.read_bytes(), pq.read_table(p).to_pylist())
    return result, written


@pytest.mark.parametrize(("missing", "workers"), [(None, 1), (None, 2), ("occurred_at", 1)])
def test_pipeline_publishes_the_same_bytes_and_quarantine(tmp_path, monkeypatch, missing, workers):
    """Bad lines and bad values quarantined alike; a file without a field the contract needs
    (every record then fails its not-null check) is treated alike too. With two workers, the
    batches are mapped in processes forked after Arrow's reader ran, against the serial
    per-line path."""
    from samverkan.quality.validation import Validator

    faults = Faults(bad_json_lines=5, missing_column=missing) if missing else \
        Faults(bad_json_lines=5, impossible_date=3, unknown_category=2)
    source = write_night("transit", NIGHT, tmp_path / "in", rows=1500, population=Population(seed=3, size=200), seed=5,
                         faults=faults).path
    taken = columnar_lines(monkeypatch)
    fast, fast_written = _process(tmp_path / "fast", source, Validator(), workers)
    assert sum(taken) > 1400
    monkeypatch.setattr(parsing, "_jsonl_batches", parsing._python_jsonl_batches)
    slow, slow_written = _process(tmp_path / "slow", source, Validator())
    outcome = (fast.status, fast.rows_received, fast.rows_published, fast.rows_quarantined, fast.quarantine_reasons)
    assert outcome == \
        (slow.status, slow.rows_received, slow.rows_published, slow.rows_quarantined, slow.quarantine_reasons)
    if missing:
        assert fast.rows_published == 0 and fast.status != "ok"
    else:
        assert fast.rows_quarantined >= 10 and fast.rows_published > 1400
        assert any("quarantine" in p for p in fast_written)
    assert {p: rows for p, (_, rows) in fast_written.items()} == {p: rows for p, (_, rows) in slow_written.items()}
    assert {p: raw for p, (raw, _) in fast_written.items()} == {p: raw for p, (raw, _) in slow_written.items()}


def test_raw_columns_type_is_the_per_line_paths(transit):
    table = parsing._JsonColumnar.for_contract(transit)._read(memoryview(GOOD + b"\n"), 1, len(GOOD) + 1)
    assert table.schema == pa.schema(list(parsing.raw_schema(transit))[1:])
    assert table.to_pylist()[0]["persons"] == [{"role": "OFFENDER", "approx_age": "19", "gender": "M"},
                                               {"role": "WITNESS", "approx_age": None, "gender": None}]
