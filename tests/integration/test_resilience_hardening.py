"""Resilience, issue 14 items 2, 9 and 10: bombs, duplicate records, person-field faults.

Item 2: a decompression or line bomb is refused (or its endless line quarantined) with a clear
reason and a terminal ledger state, and processing it costs no more memory than a good file
(peak RSS measured in a child process, devkit.bombs). Item 9: exact copies of a record inside a
file are quarantined as ``duplicate record``, the first is kept. Item 10: a record whose only
faults are in person fields publishes its incident, and its involvement without the faulty
values and with a ``person_flag``, while the record stays in quarantine for the partner.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import random

import pyarrow.parquet as pq
import pytest

from devkit import bombs
from samverkan.core.contracts import ContractError, load_contract, load_contracts
from samverkan.ingest import parsing, pipeline
from samverkan.quality.validation import EXPECTATIONS_DIR
from tests.integration.resilience_support import Hub, assert_balanced, quarantined

pytestmark = pytest.mark.integration

TRANSIT_NAME = "incidents-2026-11-20.jsonl.gz"
POLICE_NAME = "polisen_handelser_20261120.csv"
MIB = 1 << 20


def with_limits(feed: str, *, gzip_: bool | None = None, **limits) -> object:
    """The feed's contract with other limits (and compression), as a contract file could say."""
    contract = load_contracts()[feed]
    fmt = dict(contract.format)
    if gzip_ is not None:
        fmt["compression"] = "gzip" if gzip_ else "none"
    return dataclasses.replace(contract, raw={**contract.raw, "limits": limits, "format": fmt})


def run(hub: Hub, contract, path):
    landed = hub.land(contract.id, path)
    return pipeline.process(contract, landed, hub.paths, hub.ledger, hub.pseudonymiser, hub.validator,
                            run_id="resilience", expectations_dir=EXPECTATIONS_DIR)


def ledger_status(hub: Hub, result) -> str:
    (entry,) = [e for e in hub.ledger.entries(result.feed) if e.name == result.name]
    return entry.status


# --- item 2: decompression and line bombs ----------------------------------------------------

def test_item2_a_gzip_bomb_is_refused_by_its_ratio_with_a_terminal_state(hub, tmp_path):
    path = bombs.write_bomb("jsonl-zeros", tmp_path / "in", 64 * MIB)
    assert path.stat().st_size < MIB // 4
    result = hub.process("transit", path)
    assert result.status == "rejected"
    assert "decompression bomb" in result.reason and "limits.max_compression_ratio" in result.reason
    assert ledger_status(hub, result) == "rejected"  # settled: a retry does not read it again
    assert (hub.paths.quarantine_files("transit") / result.night / result.name).is_file()
    assert result.outputs == []
    assert_balanced(result, hub)


def test_item2_a_csv_gzip_stream_is_cut_at_the_decompressed_size_limit(hub, tmp_path):
    contract = with_limits("police", gzip_=True, max_decompressed_bytes=8 * MIB, max_compression_ratio=1e9)
    path = bombs.write_bomb("csv-gz-line", tmp_path / "in", 32 * MIB)
    result = run(hub, contract, path)
    assert result.status == "rejected"
    assert f"decompresses to more than {8 * MIB} bytes" in result.reason
    assert "limits.max_decompressed_bytes" in result.reason
    assert ledger_status(hub, result) == "rejected"


def test_item2_an_endless_csv_record_refuses_the_file_naming_the_limit(hub, tmp_path):
    contract = with_limits("police", max_line_bytes=MIB)
    path = bombs.write_bomb("csv-line", tmp_path / "in", 8 * MIB)
    result = run(hub, contract, path)
    assert result.status == "rejected"
    assert result.reason.startswith("record 2 is longer than") and "limits.max_line_bytes" in result.reason
    assert ledger_status(hub, result) == "rejected"
    assert_balanced(result, hub)


def test_item2_a_quoted_value_running_over_many_lines_counts_as_one_record(hub, tmp_path):
    contract = with_limits("police", max_line_bytes=256 << 10)
    lines = "\r\n".join(["y" * 1000] * 500)  # 0.5 MB in one quoted value (under the field limit), short lines
    data = (bombs.POLICE_HEADER + "\r\n" + bombs.GOOD_POLICE % 1 + f';"{lines}"\r\n').encode("cp1252")
    path = tmp_path / "in" / POLICE_NAME
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    result = run(hub, contract, path)
    assert result.status == "rejected" and "limits.max_line_bytes" in result.reason


def test_item2_the_record_limit_is_per_record_when_a_refused_file_is_counted(tmp_path):
    contract = with_limits("police", max_line_bytes=1024)
    path = tmp_path / POLICE_NAME
    path.write_bytes(("\r\n".join(["Diarienr"] + [bombs.GOOD_POLICE % i for i in range(200)]) + "\r\n").encode("cp1252"))
    assert path.stat().st_size > 10 * 1024  # far beyond one record's limit, each record within it
    assert parsing.count_records(contract, path) == 200


def test_item2_bad_json_lines_keep_a_bounded_part_of_themselves(hub, tmp_path):
    good = [bombs.GOOD_TRANSIT % i for i in range(400)]
    bad = ['{"incident_id": "' + random.Random(i).randbytes(MIB // 2).hex() + "\n" for i in range(20)]  # not JSON
    path = tmp_path / "in" / TRANSIT_NAME
    path.parent.mkdir(parents=True)
    path.write_bytes(gzip.compress("".join(good + bad).encode()))
    result = hub.process("transit", path)
    assert result.status == "published" and result.rows_quarantined == len(bad)
    kept = [len(r["raw_record"]) for r in quarantined(hub, result)]
    assert kept and max(kept) < parsing.MAX_RAW_KEPT + 100
    assert_balanced(result, hub)


def test_item2_running_out_of_memory_settles_the_file_as_rejected(hub, tmp_path, monkeypatch):
    def exhausted(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(pipeline, "read_batches", exhausted)
    path = bombs.write_good("transit", tmp_path / "in")
    result = hub.process("transit", path)
    assert result.status == "rejected" and "memory" in result.reason
    assert ledger_status(hub, result) == "rejected"  # not left at "landed" for every retry to repeat


def test_item2_limits_are_checked_when_the_contract_is_loaded(tmp_path):
    source = load_contracts()["transit"].path.read_text(encoding="utf-8")
    path = tmp_path / "transit.yaml"
    path.write_text(source + "\nlimits:\n  max_line_bytes: big\n", encoding="utf-8")
    with pytest.raises(ContractError, match=r"transit.yaml: limits.max_line_bytes"):
        load_contract(path)
    path.write_text(source + "\nlimits:\n  max_line_bytes: 2048\n", encoding="utf-8")
    assert load_contract(path).limits.max_line_bytes == 2048


@pytest.fixture(scope="module")
def peak_rss(tmp_path_factory):
    """Peak RSS (MiB) of a child process handling a good file and each bomb, all read to the end."""
    tmp = tmp_path_factory.mktemp("bombs")
    out = {"good": bombs.measure("jsonl-line", bombs.write_good("transit", tmp / "good"))}
    for kind in ("jsonl-line", "csv-line"):
        path = bombs.write_bomb(kind, tmp / kind, 128 * MIB)
        out[kind] = bombs.measure(kind, path, bombs.LIFTED)
        path.unlink()
    return out


BOUND_MIB = 48  # above the good file's peak; holding the 128 MiB line once would exceed it


def test_item2_an_endless_json_line_is_quarantined_without_being_held(peak_rss):
    r = peak_rss["jsonl-line"]
    assert (r["status"], r["quarantined"], r["quarantine_reasons"]) == ("published", 1, {"unreadable record": 1})
    assert r["peak_rss_mib"] - peak_rss["good"]["peak_rss_mib"] < BOUND_MIB, (r, peak_rss["good"])


def test_item2_an_endless_csv_line_is_refused_without_being_held(peak_rss):
    r = peak_rss["csv-line"]
    assert r["status"] == "rejected" and r["ledger_status"] == "rejected" and "limits.max_line_bytes" in r["reason"]
    assert r["peak_rss_mib"] - peak_rss["good"]["peak_rss_mib"] < BOUND_MIB, (r, peak_rss["good"])


# --- item 9: exact duplicate records inside a file -------------------------------------------

def transit_file(tmp_path, lines: list[str]):
    path = tmp_path / "in" / TRANSIT_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    return path


def published_rows(result, dataset: str) -> list[dict]:
    return [r for out in result.outputs if f"/{dataset}/" in out for r in pq.read_table(out).to_pylist()]


def test_item9_exact_copies_are_quarantined_as_duplicates_and_the_first_kept(hub, tmp_path):
    good = [(bombs.GOOD_TRANSIT % i).strip() for i in range(200)]
    copies = [good[7]] * 15 + [good[150]] * 4  # copies spread over batches (batch_rows below)
    near = json.dumps({**json.loads(good[9]), "severity": 2})  # differs in one field: not a copy
    lines = good[:100] + copies[:10] + good[100:] + copies[10:] + [near]
    landed = hub.land("transit", transit_file(tmp_path, lines))
    result = pipeline.process(load_contracts()["transit"], landed, hub.paths, hub.ledger, hub.pseudonymiser,
                              hub.validator, run_id="resilience", expectations_dir=EXPECTATIONS_DIR, batch_rows=64)
    assert result.status == "published", result.reason
    assert result.quarantine_reasons == {"duplicate record": len(copies)}
    assert result.rows_published == len(good) + 1 and result.incidents == len(good)  # near: same incident
    assert result.involvements == len(good) + 1  # one person per record kept: none per copy
    assert_balanced(result, hub)
    rows = quarantined(hub, result)
    assert sorted({r["reasons"] for r in rows}) == ["exact copy of record 161, which was kept",
                                                   "exact copy of record 8, which was kept"]
    assert all(r["raw_record"] is None for r in rows)  # a copy is not stored again
    receipt = json.loads(open(result.receipt, encoding="utf-8").read())
    (entry,) = receipt["quarantined_by_reason"]
    assert entry["check"] == "duplicate record" and entry["records"] == len(copies)
    assert receipt["records"]["quarantined"] == len(copies)
    manifest = pipeline.summarise(load_contracts()["transit"], hub.paths, [pipeline.result_dict(result)], [],
                                  "dup-run", result.night)
    assert manifest["files"][0]["quarantine_reasons"] == {"duplicate record": len(copies)}


def test_item9_a_csv_row_repeated_is_a_duplicate_and_a_changed_one_is_not(hub, tmp_path):
    rows = [bombs.GOOD_POLICE % i for i in range(60)]
    changed = rows[3].replace(";31;", ";32;")
    path = tmp_path / "in" / POLICE_NAME
    path.parent.mkdir(parents=True)
    path.write_bytes(("\r\n".join([bombs.POLICE_HEADER, *rows, rows[3], changed, rows[3]]) + "\r\n").encode("cp1252"))
    result = hub.process("police", path)
    assert result.quarantine_reasons == {"duplicate record": 2}
    assert [r["record"] for r in quarantined(hub, result)] == [61, 63]
    assert result.rows_published == 61 and result.involvements == 61
    assert_balanced(result, hub)


# --- item 10: a record whose only faults are in person fields --------------------------------

def police_person(i: int, diarienr: str, *, pnr: str = "", alder: str = "31", koord_n: str = "6997480",
                  roll: str = "Målsägande") -> str:
    return (f"{diarienr};2026-11-20 23:14;2026-11-21 00:02;Stortorget 3, Östersund;{koord_n};497120;Rån;{roll};"
            f"{pnr};Testsson, Person{i};{alder};Bråk vid busskuren.")


def synthetic_pnr(i: int) -> str:
    from datetime import date

    from devkit.synthetic import canonical_pnr

    return canonical_pnr(date(1990, 1, 1 + i % 28), f"{100 + i:03d}")


def police_file(tmp_path, rows: list[str], name: str = POLICE_NAME):
    path = tmp_path / "in" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("\r\n".join([bombs.POLICE_HEADER, *rows]) + "\r\n").encode("cp1252"))
    return path


@pytest.fixture
def held_night(hub, tmp_path):
    """40 good incidents; one whose only person has a mistyped personnummer; one with an impossible
    age; one with a mistyped personnummer and a broken coordinate (not only a person fault)."""
    from devkit.synthetic import with_wrong_check_digit

    good = [police_person(i, f"5000-K{i}-26", pnr=synthetic_pnr(i)) for i in range(40)]
    wrong = with_wrong_check_digit(synthetic_pnr(90), random.Random(1))
    rows = good + [police_person(90, "5000-K90-26", pnr=wrong),
                   police_person(91, "5000-K91-26", pnr=synthetic_pnr(91), alder="31.5"),
                   police_person(92, "5000-K92-26", pnr=wrong, koord_n="6 997 480")]
    result = hub.process("police", police_file(tmp_path, rows))
    return {"result": result, "rows": rows, "good": good, "wrong": wrong}


def test_item10_the_incident_is_published_and_the_person_flagged(held_night, hub):
    result = held_night["result"]
    assert result.status == "published", result.reason
    assert result.incidents == 42  # 40 good + the two with person faults only
    assert (result.rows_received, result.rows_published, result.rows_quarantined) == (43, 42, 1)
    assert result.rows_held_for_correction == 2
    involvements = published_rows(result, "involvements")
    flagged = sorted((r["person_flag"], r["person_pseudonym"] is None, r["age_band"]) for r in involvements
                     if r["person_flag"])
    assert flagged == [("invalid_age", False, "35-44"), ("invalid_identifier", True, "25-34")]  # the valid value stays
    assert sum(1 for r in involvements if r["person_flag"] is None and r["person_pseudonym"]) == 40
    assert_balanced(result, hub)


def test_item10_the_record_stays_in_quarantine_for_the_partner(held_night, hub):
    result = held_night["result"]
    rows = {r["record"]: r for r in quarantined(hub, result)}
    assert sorted(rows) == [41, 42, 43]
    assert [rows[n]["held_for_correction"] for n in (41, 42, 43)] == [True, True, False]
    assert held_night["wrong"] in rows[41]["raw_record"]  # what the partner sent, to correct it (private zone)
    receipt = json.loads(open(result.receipt, encoding="utf-8").read())
    assert receipt["records"] == {"received": 43, "accepted": 42, "quarantined": 1, "held_for_correction": 2}
    held = {e["check"]: e["record_numbers"] for e in receipt["held_for_correction_by_reason"]}
    assert sorted(n for numbers in held.values() for n in numbers) == [41, 42]
    assert [e["record_numbers"] for e in receipt["quarantined_by_reason"]] and all(
        e["record_numbers"] == [43] for e in receipt["quarantined_by_reason"])
    assert result.held_for_correction_reasons and sum(result.quarantine_reasons.values()) >= 1
    assert held_night["wrong"] not in json.dumps(receipt) and held_night["wrong"] not in json.dumps(
        pipeline.result_dict(result))


def test_item10_a_correction_replaces_the_flagged_person(held_night, hub, tmp_path):
    corrected = held_night["good"] + [police_person(90, "5000-K90-26", pnr=synthetic_pnr(90)),
                                      police_person(91, "5000-K91-26", pnr=synthetic_pnr(91)),
                                      police_person(92, "5000-K92-26", pnr=synthetic_pnr(92))]
    result = hub.process("police", police_file(tmp_path / "again", corrected))
    assert (result.rows_published, result.rows_quarantined, result.rows_held_for_correction) == (43, 0, 0)
    involvements = published_rows(result, "involvements")
    assert len(involvements) == 43 and not any(r["person_flag"] for r in involvements)
    assert all(r["person_pseudonym"] for r in involvements)
    first = [e for e in hub.ledger.entries("police") if e.sha256 == held_night["result"].sha256]
    assert first and first[-1].status == "superseded"


def test_item10_an_array_person_fault_keeps_the_incident(hub, tmp_path):
    good = [(bombs.GOOD_TRANSIT % i).strip() for i in range(40)]
    odd = json.dumps({**json.loads(good[0]), "incident_id": "0f8fad5b-d9cb-469f-a165-999999999999",
                      "persons": [{"role": "VICTIM", "approx_age": "３０", "gender": "F"}, {"role": "WITNESS"}]})
    result = hub.process("transit", transit_file(tmp_path, good + [odd]))
    assert (result.rows_published, result.rows_quarantined, result.rows_held_for_correction) == (41, 0, 1)
    assert result.incidents == 41
    flagged = [r for r in published_rows(result, "involvements") if r["person_flag"]]
    # validation names the record, not the item: each of its persons loses the age, and keeps the rest
    assert [(r["person_flag"], r["age_band"], r["role"], r["gender"]) for r in flagged] == [
        ("invalid_age", None, "victim", "F"), ("invalid_age", None, "witness", None)]
    assert_balanced(result, hub)
