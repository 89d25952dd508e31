"""Resilience, bad input: every malformed file yields a clear error or quarantine entries, the
other feeds still publish, and published + quarantined = received.

The corpus is generated here, from good files by the project's generator and hand-written
breakage, and each file goes through the real pipeline (parsing, GE, pseudonymisation, Parquet).
"""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from samverkan.ingest.pipeline import _safe_name
from samverkan.core.publishing import partition_file
from samverkan.quality.validation import Validator
from tests.integration.resilience_support import (
    POLICE_HEADER,
    Hub,
    assert_balanced,
    generated,
    police_row,
    quarantined,
)

pytestmark = pytest.mark.integration

POLICE_NAME = "polisen_handelser_20261120.csv"
TRANSIT_NAME = "incidents-2026-11-20.jsonl.gz"
GUARDS_NAME = "vaktrapport_2026-11-20.csv"
GOOD_ROWS = 300


@pytest.fixture(scope="module")
def validator():
    return Validator()


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    root = tmp_path_factory.mktemp("good")
    return {feed: generated(root, feed, GOOD_ROWS) for feed in ("police", "transit", "guards")}


@pytest.fixture
def hub(tmp_path, validator):
    return Hub.create(tmp_path / "hub", validator)


def police_csv(rows: list[str]) -> bytes:
    return ("\r\n".join([POLICE_HEADER, *rows]) + "\r\n").encode("cp1252")


def transit_lines(good_path, extra: list[str]) -> bytes:
    lines = gzip.decompress(good_path.read_bytes()).decode("utf-8").splitlines()
    return gzip.compress(("\n".join(lines + extra) + "\n").encode("utf-8"))


def write(tmp_path, name, data: bytes):
    path = tmp_path / "in" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def others_still_publish(hub: Hub, good, broken_feed: str) -> None:
    for feed, path in good.items():
        if feed == broken_feed:
            continue
        result = hub.process(feed, path)
        assert result.status == "published" and result.rows_published > 0, result.balance_line()
        assert_balanced(result, hub)
        written = {"incidents": 0, "involvements": 0}
        for output in result.outputs:
            written[Path(output).relative_to(hub.paths.published).parts[0]] += pq.ParquetFile(output).metadata.num_rows
        assert written == {"incidents": result.incidents, "involvements": result.involvements} and result.incidents > 0


# --- whole files that cannot be used: rejected with a reason a partner can act on -----------

def _utf16_police(good):
    return good["police"].read_bytes().decode("cp1252").encode("utf-16")


def _cp1252_guards(good):
    return good["guards"].read_bytes().decode("utf-8-sig").encode("cp1252")


def _comma_police(good):
    return police_csv([police_row(i) for i in range(5)]).replace(b";", b",")


def _truncated_transit(good):
    data = good["transit"].read_bytes()
    return data[: len(data) // 2]


def _huge_line_police(good):
    return police_csv([police_row(1), police_row(2, fritext="x" * (10 << 20)), police_row(3)])


def _unterminated_quote_police(good):
    return police_csv([police_row(1), police_row(2)]) + police_row(3, fritext='"aldrig stängd').encode("cp1252")


def _garbage(seed):
    return lambda good: random.Random(seed).randbytes(64 << 10)


REJECTED = [
    ("police", POLICE_NAME, _utf16_police, "missing required column"),
    ("guards", GUARDS_NAME, _cp1252_guards, "not valid utf-8-sig text"),
    ("police", POLICE_NAME, _comma_police, "missing required column"),
    ("transit", TRANSIT_NAME, _truncated_transit, "not a complete gzip stream"),
    ("police", POLICE_NAME, _huge_line_police, "limits.max_line_bytes"),
    ("police", POLICE_NAME, lambda good: b"", "file is empty (no header row)"),
    ("transit", TRANSIT_NAME, lambda good: b"", "file holds no records"),
    ("transit", TRANSIT_NAME, lambda good: gzip.compress(b""), "file holds no records"),
    ("guards", GUARDS_NAME, lambda good: b"", "file is empty (no header row)"),
    ("police", POLICE_NAME, _unterminated_quote_police, "unexpected end of data"),
    ("police", POLICE_NAME, _garbage(1), "not valid cp1252 text"),
    ("transit", TRANSIT_NAME, _garbage(2), "gzip"),
    ("guards", GUARDS_NAME, _garbage(3), "not valid utf-8-sig text"),
]


@pytest.mark.parametrize("feed, name, make, reason", REJECTED,
                         ids=[f"{f}-{m.__name__ if m.__name__ != '<lambda>' else i}" for i, (f, _, m, _) in enumerate(REJECTED)])
def test_unusable_file_is_rejected_whole_with_a_reason(hub, good, tmp_path, feed, name, make, reason):
    result = hub.process(feed, write(tmp_path, name, make(good)))
    assert result.status == "rejected"
    assert result.reason and reason in result.reason
    assert_balanced(result, hub)
    assert not (hub.paths.landing(feed, result.night) / name).exists()  # moved to the file quarantine
    assert result.outputs == []
    published = list(hub.paths.published.rglob("*.parquet"))
    assert not [p for p in published if f"source={feed}" in str(p)]
    others_still_publish(hub, good, feed)


def test_garbage_rejections_do_not_quote_the_bytes(hub, good, tmp_path):
    data = _garbage(4)(good)
    result = hub.process("police", write(tmp_path, POLICE_NAME, data))
    assert result.status == "rejected"
    assert len(result.reason) < 400


# --- files that are usable in part: bad records quarantined, the rest published --------------

def test_header_only_is_an_empty_night_not_an_error(hub, good, tmp_path):
    result = hub.process("police", write(tmp_path, POLICE_NAME, police_csv([])))
    assert (result.status, result.rows_received, result.rows_published, result.rows_quarantined) == ("published", 0, 0, 0)
    assert_balanced(result, hub)
    others_still_publish(hub, good, "police")


def test_json_lines_that_are_not_objects_are_quarantined(hub, good, tmp_path):
    extra = ["[1, 2]", '"a string"', "42", "null", "{not json", "\u00e5\u00e4\u00f6"]
    result = hub.process("transit", write(tmp_path, TRANSIT_NAME, transit_lines(good["transit"], extra)))
    assert result.status == "published"
    assert result.rows_quarantined == len(extra)
    assert result.quarantine_reasons == {"unreadable record": len(extra)}
    assert result.rows_published == GOOD_ROWS
    assert_balanced(result, hub)
    reasons = {r["reasons"] for r in quarantined(hub, result)}
    assert "line is JSON but not an object (list)" in reasons
    assert "line is JSON but not an object (str)" in reasons
    assert any(r.startswith("line is not valid JSON") for r in reasons)
    others_still_publish(hub, good, "transit")


def test_a_10_mb_json_line_is_quarantined_and_the_rest_published(hub, good, tmp_path):
    big = json.dumps({"incident_id": "x", "description": "y" * (10 << 20)})
    result = hub.process("transit", write(tmp_path, TRANSIT_NAME, transit_lines(good["transit"], [big])))
    assert result.status == "published"
    assert result.rows_quarantined == 1 and result.rows_published == GOOD_ROWS
    assert_balanced(result, hub)
    (record,) = quarantined(hub, result)
    assert record["reasons"].startswith("line longer than") and record["raw_record"] == "(too long to keep)"


WRONG_NUMBERS = ["6 997 480", "6997480.0", "6,997,480", "1e6", "0x6A", "NaN", "Infinity", "+6997480", "6997480-",
                 "99999999999999999999999", "0" * 400 + "1", "6997480²", "½", "-0", " 6997480 ",
                 "6997480\n", "6.99748e6"]
WRONG_AGES = ["17.5", "-1", "131", "abc", "99999999999999999999", " 17", "1e1", "seventeen", "0017x", "¹7"]
# Other scripts' digits (cp1252 cannot carry them) come through the UTF-8 JSON feed below.


def test_numbers_in_every_wrong_shape_are_quarantined_with_the_column_named(hub, good, tmp_path):
    bad = [police_row(1000 + i, koord_n=v if "\n" not in v else f'"{v}"') for i, v in enumerate(WRONG_NUMBERS)]
    bad += [police_row(2000 + i, alder=v) for i, v in enumerate(WRONG_AGES)]
    ok = [police_row(i) for i in range(10 * len(bad))]
    result = hub.process("police", write(tmp_path, POLICE_NAME, police_csv(ok + bad)))
    assert result.status == "published", result.reason
    # a wrong age is a person field's fault only: published without it, held for correction (issue 14, item 10)
    assert result.rows_quarantined == len(WRONG_NUMBERS) and result.rows_held_for_correction == len(WRONG_AGES)
    assert result.rows_published == len(ok) + len(WRONG_AGES)
    assert_balanced(result, hub)
    rows = quarantined(hub, result)
    by_record = {r["record"]: r for r in rows}
    for i in range(len(WRONG_NUMBERS)):
        assert "Koord_N" in by_record[len(ok) + 1 + i]["reasons"]
    for i in range(len(WRONG_AGES)):
        assert "Ålder" in by_record[len(ok) + len(WRONG_NUMBERS) + 1 + i]["reasons"]
    others_still_publish(hub, good, "police")


def test_json_numbers_in_every_wrong_shape_are_quarantined(hub, good, tmp_path):
    base = json.loads(gzip.decompress(good["transit"].read_bytes()).decode().splitlines()[0])
    shapes = [2.0, True, "2.0", "２", "٢", "२", 10 ** 30, -1, 4, [2], {"n": 2}, "2 2", "0x2", 1e308, " "]  # "" is absent, not wrong
    extra = []
    for i, shape in enumerate(shapes):
        obj = dict(base, incident_id=f"0f8fad5b-d9cb-469f-a165-{i:012d}", severity=shape)
        extra.append(json.dumps(obj))
    extra.append(json.dumps(dict(base, incident_id="0f8fad5b-d9cb-469f-a165-999999999999",
                                 persons=[{"role": "VICTIM", "approx_age": "３０"}, {"role": "WITNESS", "approx_age": 30.5}])))
    lines = gzip.decompress(good["transit"].read_bytes()).decode().splitlines()
    path = write(tmp_path, TRANSIT_NAME, gzip.compress(("\n".join(lines + extra) + "\n").encode()))
    result = hub.process("transit", path)
    assert result.status == "published", result.reason
    # the persons' ages are person fields only: that record is published and held for correction (issue 14, item 10)
    assert (result.rows_quarantined, result.rows_held_for_correction) == (len(extra) - 1, 1)
    assert_balanced(result, hub)
    reasons = {r["record"]: r["reasons"] for r in quarantined(hub, result)}
    assert all("severity" in reasons[GOOD_ROWS + 1 + i] for i in range(len(shapes)))
    assert "persons.approx_age" in reasons[GOOD_ROWS + len(shapes) + 1]


# --- names: nothing outside the hub's own directories ----------------------------------------

@pytest.mark.parametrize("name", ["../polisen_handelser_20261120.csv", "..", ".polisen_handelser_20261120.csv",
                                  "a/b.csv", "a\\b.csv", "x\x00.csv", "/etc/passwd"])
def test_unsafe_names_are_not_taken(name):
    assert not _safe_name(name)


@pytest.mark.parametrize("name", ["../../../etc/passwd", "..\\..\\x.csv", "a/../../b.csv", "x\x00y", "~root/.ssh/x"])
def test_partition_file_stays_inside_its_dataset(tmp_path, name):
    root = tmp_path / "published" / "incidents"
    path = partition_file(root, "2026-11-20", "police", name)
    assert path.resolve().is_relative_to(root.resolve())
    assert path.parent == root / "night=2026-11-20" / "source=police"
