"""Resilience, issue 14 item 1: a partner file sent without its header row.

Its first line is then a person's record (personnummer, name, free text). The file is rejected,
and nothing read from it may leave the private zone: not in the public reason, the result the
task returns (XCom), the manifest, the receipt, the Data Docs, the alert, the log, nor anywhere
in Airflow's metadata DB. The private ledger keeps the detail for the engineers.

The first half runs the pipeline directly (every output checked in isolation); the second runs
every feed's DAG with ``airflow dags test`` on a night where the CSV feeds come without their
header, and scans the published zone, the task logs and the whole metadata DB (XCom included).
"""

from __future__ import annotations

import json
import logging
import sqlite3

import pytest

from samverkan.core.contracts import load_contracts
from devkit.embedded import EmbeddedHub
from devkit.leakscan import scan, scan_database
from samverkan.ingest.parsing import FileRejected, public_column_names
from samverkan.ingest.pipeline import result_dict, summarise
from devkit.synthetic import Population, write_night, write_nights
from samverkan.quality.validation import Validator
from tests.integration.resilience_support import NIGHT, Hub

pytestmark = pytest.mark.integration

CSV_FEEDS = ("police", "guards")


def drop_header(path) -> str:
    """The partner's export mistake: the same file without its first line. Returns that line."""
    lines = path.read_bytes().split(b"\n", 1)
    path.write_bytes(lines[1])
    return lines[0].decode("utf-8", "replace")


@pytest.fixture(scope="module")
def headerless(tmp_path_factory):
    root = tmp_path_factory.mktemp("headerless")
    population = Population(seed=41, size=300)
    hub = Hub.create(root / "hub", Validator())
    log_path = root / "run.log"
    handler = logging.FileHandler(log_path, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    logger = logging.getLogger()
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    out = {}
    try:
        for feed in CSV_FEEDS:
            truth = write_night(feed, NIGHT, root / "partners", rows=60, population=population, seed=41)
            drop_header(truth.path)
            result = hub.process(feed, truth.path)
            manifest = summarise(load_contracts()[feed], hub.paths, [result_dict(result)], [], f"hl-{feed}",
                                 NIGHT.isoformat())
            out[feed] = {"truth": truth, "result": result, "manifest": manifest}
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
        handler.close()
    values = out["police"]["truth"].personal_values.merge(out["guards"]["truth"].personal_values)
    return {"root": root, "hub": hub, "out": out, "values": values, "log": log_path}


def test_a_headerless_file_is_rejected_with_a_reason_that_quotes_nothing(headerless):
    for feed in CSV_FEEDS:
        result = headerless["out"][feed]["result"]
        assert result.status == "rejected"
        assert result.reason.startswith("missing required column(s) ")
        assert "was the header row left out?" in result.reason
        # the first line's cells are neither shown as columns nor quoted
        assert result.unexpected_columns == [] and result.unexpected_columns_withheld > 0
        assert result.rows_received == result.rows_quarantined > 0


def test_the_detail_stays_in_the_private_ledger(headerless):
    hub = headerless["hub"]
    with sqlite3.connect(hub.paths.ledger) as con:
        reasons = [r for (r,) in con.execute("SELECT reason FROM files WHERE status = 'rejected'")]
    assert len(reasons) == 2 and all("[private detail: header was: " in r for r in reasons)


def test_the_task_result_manifest_receipt_reports_and_log_hold_no_personal_value(headerless, tmp_path):
    xcom = tmp_path / "xcom.json"  # what process_file returns to Airflow, i.e. what XCom stores
    xcom.write_text(json.dumps([result_dict(o["result"]) for o in headerless["out"].values()], ensure_ascii=False))
    hub = headerless["hub"]
    outputs = [xcom, headerless["log"]] + [p for p in hub.paths.root.iterdir() if p != hub.paths.private]
    assert scan(outputs, headerless["values"]) == []


def test_the_scan_would_see_the_record_if_it_leaked(headerless, tmp_path):
    """The check above can fail: the ledger (private) holds the header, and the scan finds it."""
    hub = headerless["hub"]
    found = scan([hub.paths.ledger], headerless["values"])
    assert {f.kind for f in found} & {"personnummer", "name"}


@pytest.mark.parametrize("header, shown, withheld", [
    (["Extra_kolumn", "Anteckning"], ["Extra_kolumn", "Anteckning"], 0),
    (["19850101-1234", "Anna Andersson", "x y"], [], 3),
    (["ok_name", "070-123 45 67"], ["ok_name"], 1),
])
def test_only_plain_identifiers_are_shown_as_column_names(header, shown, withheld):
    assert public_column_names(header) == (shown, withheld)


def test_a_rejection_keeps_what_was_read_apart_from_its_reason():
    exc = FileRejected("missing required column(s) Roll", detail="header was: 191212121212, Anna")
    assert str(exc) == "missing required column(s) Roll"
    assert "Anna" in exc.private_text


# --- the real DAGs: XCom, task logs and the metadata DB ------------------------------------


@pytest.fixture(scope="module")
def dag_night(tmp_path_factory):
    root = tmp_path_factory.mktemp("headerless-dags")
    hub = EmbeddedHub(root / "hub")
    with hub:
        truths = write_nights(hub.partners_root, [NIGHT], {"police": 80, "transit": 40, "guards": 40}, 43, None)
        for truth in truths:
            if truth.feed in CSV_FEEDS:
                drop_header(truth.path)
        hub.start_servers()
        hub.migrate()
        # The feeds that have a file this night; the others' DAGs would only find nothing.
        runs = {truth.feed: hub.run_feed(truth.feed, NIGHT, check=False) for truth in truths}
        values = truths[0].personal_values.merge(*(t.personal_values for t in truths[1:]))
        yield {"hub": hub, "runs": runs, "values": values}


@pytest.mark.slow  # three `airflow dags test` runs in the module fixture
def test_every_feed_ran_and_the_headerless_ones_were_rejected(dag_night):
    hub = dag_night["hub"]
    for feed, done in dag_night["runs"].items():
        assert done.returncode == 0, done.stdout[-3000:]
    manifests = {p.parent.name: json.loads(p.read_text()) for p in hub.data.published.glob("_manifests/*/*.json")}
    statuses = {feed: [f["status"] for f in m["files"]] for feed, m in manifests.items()}
    assert statuses == {"police": ["rejected"], "guards": ["rejected"], "transit": ["published"]}, statuses


@pytest.mark.slow  # three `airflow dags test` runs in the module fixture
def test_xcom_and_the_whole_metadata_db_hold_no_personal_value(dag_night):
    hub = dag_night["hub"]
    db = hub.airflow_home / "airflow.db"
    with sqlite3.connect(db) as con:
        xcoms = con.execute("SELECT count(*) FROM xcom WHERE task_id = 'process_file'").fetchone()[0]
    assert xcoms >= 3  # the scan below really sees the task results
    assert scan_database(f"sqlite:///{db}", dag_night["values"]) == []


@pytest.mark.slow  # three `airflow dags test` runs in the module fixture
def test_published_zone_and_task_logs_hold_no_personal_value(dag_night, tmp_path):
    hub = dag_night["hub"]
    logs = tmp_path / "task-logs"  # `airflow dags test` prints every task's log
    logs.mkdir()
    for feed, done in dag_night["runs"].items():
        (logs / f"{feed}.log").write_text(done.stdout, encoding="utf-8")
    assert "rejected whole" in (logs / "police.log").read_text(encoding="utf-8")
    assert scan([hub.data.published, hub.data.root / "reports", logs], dag_night["values"]) == []
