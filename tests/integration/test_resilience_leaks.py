"""Resilience, leaks: the whole hub output of a night with faults holds no raw personal value
from the inputs, and the checker that says so demonstrably fails when one is there.

The checker (devkit.leakscan) gets the generator's truth of every input file and scans
everything the hub wrote outside its private zone (published Parquet, manifests, reports,
receipts, Data Docs) and the run's log, including Parquet string columns and compressed files.
"""

from __future__ import annotations

import gzip
import json
import logging
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from samverkan.core.contracts import load_contracts
from devkit.leakscan import scan
from samverkan.ingest.pipeline import result_dict, summarise
from devkit.synthetic import Faults, Population, write_night
from samverkan.quality.validation import Validator
from tests.integration.resilience_support import NIGHT, Hub

pytestmark = pytest.mark.integration

FAULTS = {
    "police": Faults(bad_checksum_pnr=3, impossible_date=2, unknown_category=2),
    "guards": Faults(bad_checksum_pnr=2, impossible_date=2, unknown_category=1),
    "transit": Faults(impossible_date=2, unknown_category=2, bad_json_lines=3),
}


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    """Three partner files with faults, run through the hub; the run's log captured to a file."""
    root = tmp_path_factory.mktemp("leaks")
    population = Population(seed=21, size=600)
    truths = {feed: write_night(feed, NIGHT, root / "partners", rows=rows, population=population, seed=21,
                                faults=FAULTS[feed])
              for feed, rows in (("police", 1500), ("transit", 400), ("guards", 400))}
    hub = Hub.create(root / "hub", Validator())
    log_path = root / "hub" / "logs" / "run.log"
    log_path.parent.mkdir(parents=True)
    handler = logging.FileHandler(log_path, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logger = logging.getLogger()
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        results = {}
        for feed, truth in truths.items():
            result = hub.process(feed, truth.path)
            results[feed] = result
            summarise(load_contracts()[feed], hub.paths, [result_dict(result)], [], f"leaks-{feed}", NIGHT.isoformat())
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
        handler.close()
    values = truths["police"].personal_values.merge(truths["transit"].personal_values, truths["guards"].personal_values)
    return {"root": root, "hub": hub, "truths": truths, "results": results, "values": values, "log": log_path}


def hub_output(night) -> list:
    """Everything the hub wrote outside its private zone, and the log."""
    hub = night["hub"]
    outputs = [p for p in hub.paths.root.iterdir() if p != hub.paths.private]
    return outputs


def test_the_night_really_ran_with_faults(night):
    for feed, result in night["results"].items():
        assert result.status == "published", (feed, result.reason)
        assert result.rows_quarantined > 0 and result.rows_published > 0
    assert not night["values"].is_empty()
    assert night["log"].stat().st_size > 0


def test_whole_hub_output_and_log_hold_no_raw_personal_value(night):
    outputs = hub_output(night)
    assert {p.name for p in outputs} >= {"published", "logs"}
    scanned = [f for root in outputs for f in root.rglob("*") if f.is_file()]
    assert any(f.suffix == ".parquet" for f in scanned) and any(f.suffix == ".json" for f in scanned)
    findings = scan(outputs, night["values"])
    assert findings == [], "\n".join(map(str, findings[:20]))


def test_the_checker_finds_the_inputs_personal_values(night):
    """Run on the raw inputs and on the private quarantine it must find plenty: it can fail."""
    partners = night["root"] / "partners"
    kinds = {f.kind for f in scan([partners], night["values"])}
    assert {"personnummer", "name", "phone", "employee_number", "guard_id"} <= kinds
    quarantine = night["hub"].paths.private / "quarantine"
    assert {f.kind for f in scan([quarantine], night["values"])} & {"personnummer", "name"}


def _planted_copy(night, tmp_path):
    copy = tmp_path / "hub-copy"
    shutil.copytree(night["hub"].paths.root, copy, ignore=shutil.ignore_patterns("private"))
    return copy


def _one_raw(values, kind):
    return sorted(getattr(values, kind))[0]


@pytest.mark.parametrize("where", ["parquet string column", "gzip log", "manifest", "nested parquet", "file name"])
def test_a_planted_leak_is_found(night, tmp_path, where):
    values = night["values"]
    copy = _planted_copy(night, tmp_path)
    assert scan([copy], values) == []  # the untouched copy is clean
    pnr = _one_raw(values, "personnummer_as_written")
    phone = _one_raw(values, "phones")
    name = _one_raw(values, "names")
    published = sorted((copy / "published" / "involvements").rglob("*.parquet"))[0]
    if where == "parquet string column":
        table = pq.read_table(published)
        notes = pa.array([None] * (table.num_rows - 1) + [f"kontakt {pnr}"], pa.string())
        pq.write_table(table.append_column("note", notes), published, compression="zstd")
        expected = "personnummer"
    elif where == "gzip log":
        with gzip.open(copy / "logs" / "run.log.1.gz", "wt", encoding="utf-8") as f:
            f.write(f"DEBUG samverkan.ingest.pipeline row 12: ringde {phone}\n")
        expected = "phone"
    elif where == "manifest":
        manifest = sorted((copy / "published" / "_manifests").rglob("*.json"))[0]
        data = json.loads(manifest.read_text(encoding="utf-8"))
        data["note"] = f"checked by hand: {name}"
        manifest.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        expected = "name"
    elif where == "nested parquet":
        nested = pa.table({"x": pa.array([[{"who": name}]], pa.list_(pa.struct([("who", pa.string())])))})
        pq.write_table(nested, copy / "published" / "extra.parquet")
        expected = "name"
    else:
        (copy / "published" / f"export-{pnr.replace('+', '-')}.csv").write_text("x")
        expected = "personnummer"
    findings = scan([copy], values)
    assert findings, f"planted {expected} in {where} was not found"
    assert expected in {f.kind for f in findings}
    if where != "file name":  # (a finding names its file, so a leaking file name shows in the report)
        assert all(pnr not in f.detail and phone not in f.detail for f in findings)  # the detail masks values
