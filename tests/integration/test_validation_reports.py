"""Validation people can act on, end to end: quarantine, Data Docs, receipts, alerts, re-processing.

One night through the real DAGs (`airflow dags test`), real OpenSSH partner servers and a real
SMTP server (aiosmtpd) on 127.0.0.1: the police file carries a bad check digit, an impossible date
and an unknown category; the guards file lacks a required column; the transit file never comes.
Then the police partner re-sends a corrected file and the night is re-processed with the
quarantine command. The first runs' state is frozen (tests.support.snapshot) for the tests that
check it; the late re-run and the corrected resend are module fixtures of their own, so the tests
pass in any order (`--random-order`).
"""

from __future__ import annotations

import email
import json
import os
import socket
import subprocess
import sys
import threading
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from devkit.embedded import EmbeddedHub
from samverkan.connectors.sshd import sshd_available
from devkit.leakscan import scan
from samverkan.core.ledger import Ledger
from devkit.synthetic import BAD_CHECKSUM_PNR, IMPOSSIBLE_DATE, UNKNOWN_CATEGORY, Faults, Population, write_night
from samverkan.core.settings import Paths
from tests.support.snapshot import freeze, freeze_dir

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NIGHT = date(2026, 11, 20)
SEED = 77
POLICE_FAULTS = Faults(bad_checksum_pnr=2, impossible_date=2, unknown_category=2)
EXPECTED_CHECK = {
    BAD_CHECKSUM_PNR: "expect_column_values_to_be_in_set(personnummer__status)",
    IMPOSSIBLE_DATE: "expect_column_values_to_match_strftime_format(handelsetid)",
    UNKNOWN_CATEGORY: "expect_column_values_to_be_in_set(handelsetyp)",
}


class Mailbox:
    """aiosmtpd handler keeping every message as bytes (what a mail client would receive)."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        with self.lock:
            self.messages.append(envelope.original_content or envelope.content)
        return "250 OK"

    def parsed(self) -> list[email.message.Message]:
        with self.lock:
            return [email.message_from_bytes(m) for m in self.messages]

    def texts(self) -> list[tuple[str, str]]:
        """(subject, decoded body) of every message."""
        found = []
        for msg in self.parsed():
            body = "".join((part.get_payload(decode=True) or b"").decode("utf-8", "replace")
                           for part in msg.walk() if not part.is_multipart())
            found.append((str(email.header.make_header(email.header.decode_header(msg["Subject"]))), body))
        return found


class Story:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.mailbox = Mailbox()
        self.runs: dict[str, list[str]] = {}
        self.truth = {}


@pytest.fixture(scope="module")
def story(tmp_path_factory):
    if not sshd_available():
        pytest.skip("OpenSSH server not installed")
    from aiosmtpd.controller import Controller

    story = Story(tmp_path_factory.mktemp("quality"))
    with socket.socket() as probe:  # aiosmtpd checks readiness by connecting, so it needs a real port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(story.mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    hub = EmbeddedHub(story.root / "hub", quiet_period_seconds=1.0, smtp_port=port)
    story.hub = hub
    population = Population(SEED, 800)
    story.population = population
    story.truth["police"] = write_night("police", NIGHT, hub.partners_root, rows=240, population=population,
                                        seed=SEED, faults=POLICE_FAULTS)
    story.truth["guards"] = write_night("guards", NIGHT, hub.partners_root, rows=60, population=population,
                                        seed=SEED, faults=Faults(missing_column="ingripande"))
    (hub.partner_root("transit") / "export" / "incidents").mkdir(parents=True, exist_ok=True)  # nothing sent
    with hub:
        hub.start_servers()
        hub.migrate()
        for feed in ("police", "guards", "transit"):
            done = hub.run_feed(feed, NIGHT, check=False)
            story.runs.setdefault(feed, []).append(done.stdout)
            assert done.returncode == 0, done.stdout[-3000:]
        story.first = freeze(hub.data, story.root / "first" / "data")
        story.first_receipts = {feed: freeze_dir(hub.partner_root(feed) / "receipts", story.root / "first" / feed)
                                for feed in ("police", "guards")}
        yield story
    controller.stop()


@pytest.fixture(scope="module")
def late_rerun(story):
    """The late transit feed runs again: (mails before, the run's output)."""
    before = len(story.mailbox.messages)
    with story.hub:
        story.hub.start_servers()
        done = story.hub.run_feed("transit", NIGHT, check=False)
    assert done.returncode == 0, done.stdout[-3000:]
    story.runs["transit"].append(done.stdout)
    return before, done


@pytest.fixture(scope="module")
def resent(story):
    """The police partner re-sends a corrected file and the night is re-processed by command."""
    truth = write_night("police", NIGHT, story.hub.partners_root, rows=250, population=story.population,
                        seed=SEED + 1)
    story.truth["police_corrected"] = truth
    with story.hub:
        story.hub.start_servers()
        done = subprocess.run([sys.executable, "-m", "samverkan.quality.quarantine", "reprocess", "--feed", "police",
                               "--night", NIGHT.isoformat()], env={**os.environ, **story.hub.env()},
                              capture_output=True, text=True)
    story.runs["police"].append(done.stdout + done.stderr)
    return truth, done


def manifest(data: Paths, feed):
    paths = sorted(data.manifests(feed).glob("*.json"), key=lambda p: p.stat().st_mtime)
    return json.loads(paths[-1].read_text(encoding="utf-8"))


def police_file(story):
    return [f for f in manifest(story.first, "police")["files"] if f["name"] == story.truth["police"].path.name][0]


def test_bad_rows_are_quarantined_with_the_right_check_and_the_rest_published(story):
    truth = story.truth["police"]
    result = police_file(story)
    assert result["status"] == "published"
    assert result["rows_received"] == truth.records
    # a wrong check digit is a person field's fault only: published and held for correction (issue 14, item 10)
    assert len(truth.quarantined_records) == 6 and len(truth.held_records) == 2
    assert (result["rows_quarantined"], result["rows_held_for_correction"]) == (4, 2)
    assert result["rows_published"] + result["rows_quarantined"] == result["rows_received"]
    rows = pq.read_table(next((story.first.quarantine_rows("police")).rglob("*.parquet"))).to_pylist()
    assert {r["record"]: r["failed_checks"] for r in rows} == {
        record: [EXPECTED_CHECK[kind]] for record, kind in truth.quarantined_records.items()}
    assert all(r["reasons"] and r["raw_record"] for r in rows)
    published = pq.read_table(story.first.dataset("incidents") / f"night={NIGHT}" / "source=police")
    assert published.num_rows == truth.incidents + len(truth.held_records)


def test_a_file_missing_a_required_column_is_rejected_whole(story):
    files = manifest(story.first, "guards")["files"]
    assert [(f["status"], f["reason"]) for f in files] == [("rejected", "missing required column(s) ingripande")]
    truth = story.truth["guards"]
    # Refused before its records were read, the file still says how many went to quarantine with it.
    assert (files[0]["rows_received"], files[0]["rows_published"], files[0]["rows_quarantined"]) == (
        truth.records, 0, truth.records)
    assert (story.first.quarantine_files("guards") / NIGHT.isoformat() / story.truth["guards"].path.name).exists()
    assert not (story.first.dataset("incidents") / f"night={NIGHT}" / "source=guards").exists()
    open_files = Ledger(story.first.ledger).quarantines(feed="guards", status="open")
    assert [(q.kind, q.name) for q in open_files] == [("file", story.truth["guards"].path.name)]


def test_receipts_are_on_the_partners_servers_and_name_records_by_reason(story):
    truth = story.truth["police"]
    [json_path] = story.first_receipts["police"].glob("*.receipt.json")
    receipt = json.loads(json_path.read_text(encoding="utf-8"))
    assert receipt["file"] == truth.path.name and receipt["status"] == "published"
    assert receipt["records"] == {"received": truth.records, "accepted": truth.records - 4, "quarantined": 4,
                                  "held_for_correction": 2}
    by_check = {q["check"]: q["record_numbers"]
                for q in receipt["quarantined_by_reason"] + receipt["held_for_correction_by_reason"]}
    assert by_check == {check: sorted(r for r, k in truth.quarantined_records.items() if k == kind)
                        for kind, check in EXPECTED_CHECK.items()}
    assert [q["check"] for q in receipt["held_for_correction_by_reason"]] == [EXPECTED_CHECK[BAD_CHECKSUM_PNR]]
    text = json_path.with_suffix(".txt").read_text(encoding="utf-8")
    assert truth.path.name in text and receipt["sha256"] in text and "Records quarantined: 4" in text
    assert "held for correction: 2" in text
    [guards] = story.first_receipts["guards"].glob("*.receipt.txt")
    assert "rejected" in guards.read_text(encoding="utf-8") and "ingripande" in guards.read_text(encoding="utf-8")


def test_data_docs_pages_show_the_failures_with_masked_values(story):
    docs = manifest(story.first, "police")["data_docs"]
    assert docs == {NIGHT.isoformat(): f"samverkan-reports/samverkan_police/nights/{NIGHT}/"}
    root = story.first.reports / "data_docs"
    police = (root / "police" / NIGHT.isoformat() / "index.html").read_text(encoding="utf-8")
    for check in EXPECTED_CHECK.values():
        column = check[check.index("(") + 1:-1]
        assert column in police
    assert "9999-99-99 99:99" in police  # the impossible date, by shape only
    guards = (root / "guards" / NIGHT.isoformat() / "index.html").read_text(encoding="utf-8")
    assert "missing: ingripande" in guards


def test_the_airflow_ui_serves_the_run_page_to_logged_in_users_only(story, monkeypatch):
    from fastapi.testclient import TestClient

    from samverkan.orchestration.webreports import create_app

    monkeypatch.setenv("SAMVERKAN_DATA_ROOT", str(story.first.root))
    run_id = manifest(story.first, "police")["run_id"]
    page = TestClient(create_app(auth=False)).get(f"/samverkan_police/runs/{run_id}")
    assert page.status_code == 200 and "handelsetyp" in page.text
    assert TestClient(create_app(auth=False)).get("/samverkan_police/nights/..%2F..%2Fetc/").status_code == 404
    assert TestClient(create_app()).get(f"/samverkan_police/runs/{run_id}").status_code in (401, 403)


def test_expectation_outcomes_are_a_parquet_table(story):
    outcomes = story.first.root / manifest(story.first, "police")["expectation_outcomes"]
    rows = pq.read_table(outcomes).to_pylist()
    by_check = {r["expectation"]: r for r in rows}
    for check in EXPECTED_CHECK.values():
        assert (by_check[check]["success"], by_check[check]["unexpected_count"]) == (False, 2)
    assert {r["feed"] for r in rows} == {"police"} and {r["night"] for r in rows} == {NIGHT.isoformat()}


def test_the_rejected_file_and_the_late_feed_each_sent_one_mail(story):
    subjects = [s for s, _ in story.mailbox.texts()]
    assert sum("guards: file" in s and "rejected" in s for s in subjects) == 1
    assert sum("transit: night 2026-11-20 is late" in s for s in subjects) == 1
    late = [b for s, b in story.mailbox.texts() if "is late" in s][0]
    assert "/dags/samverkan_transit/runs/" in late


def test_a_late_feed_is_alerted_exactly_once_however_often_it_runs(story, late_rerun):
    before, _ = late_rerun
    assert len(story.mailbox.messages) == before
    assert sum("is late" in s for s, _ in story.mailbox.texts()) == 1


def test_a_corrected_resend_replaces_the_partition_and_resolves_the_quarantine(story, resent):
    truth, done = resent
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "resolved" in done.stdout
    ledger = Ledger(story.hub.data.ledger)
    statuses = [q.status for q in ledger.quarantines(feed="police", night=NIGHT.isoformat())]
    assert statuses == ["resolved"]
    published = pq.read_table(story.hub.data.dataset("incidents") / f"night={NIGHT}" / "source=police")
    assert published.num_rows == truth.incidents
    assert pq.read_table(next(story.hub.data.quarantine_rows("police").rglob("*.parquet"))).num_rows == 0
    receipts = sorted((story.hub.partner_root("police") / "receipts").glob("*.receipt.json"))
    assert len(receipts) == 2  # one per content: the partner sees both answers
    listed = subprocess.run([sys.executable, "-m", "samverkan.quality.quarantine", "list", "--feed", "police",
                             "--night", NIGHT.isoformat()], env={**os.environ, **story.hub.env()},
                            capture_output=True, text=True, check=True).stdout
    assert "resolved" in listed and "held-back records" not in listed


def test_no_personal_value_in_reports_receipts_mails_or_logs(story, late_rerun, resent, tmp_path):
    """Scanned after every step of the story (both step fixtures requested), whatever the order."""
    values = story.truth["police"].personal_values.merge(story.truth["guards"].personal_values,
                                                         story.truth["police_corrected"].personal_values)
    mails = tmp_path / "mails"
    mails.mkdir()
    for i, (subject, body) in enumerate(story.mailbox.texts()):
        (mails / f"{i}.txt").write_text(subject + "\n" + body, encoding="utf-8")
    runs = tmp_path / "run_output.txt"
    runs.write_text("\n".join(o for outs in story.runs.values() for o in outs), encoding="utf-8")
    scanned = [story.hub.data.root / "reports", mails, runs, story.hub.airflow_home / "logs",
               story.hub.data.published / "_manifests"]
    scanned += [story.hub.partner_root(f) / "receipts" for f in ("police", "guards")]
    findings = scan(scanned, values)
    assert findings == [], "\n".join(map(str, findings[:20]))
    assert len(story.mailbox.messages) >= 2 and any((story.hub.data.root / "reports").rglob("*.html"))
