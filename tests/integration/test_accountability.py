"""Accountability a data-protection officer can verify (issue 15), on one synthetic night of the
police, the bus operator and the guards, published by the real pipeline and delivered to two
row-level recipients: the municipality (pull: its outbox) and the police (push: a real OpenSSH
server standing in for theirs).

Signed manifests a recipient verifies offline (a tampered manifest and a truncated register are
caught), a signed acknowledgement back, erasure of one person that reaches both recipients as
signed tombstones, retention's tombstone, and the DPO self-test passing on the outboxes and
failing when a join or an unsigned delivery is planted."""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from samverkan.connectors.sftp import SFTPConnector, SFTPSettings
from samverkan.connectors.sshd import (
    generate_keypair,
    sshd_available,
    start_sftp_server,
)
from samverkan.sharing import attestation, delivery, erasure, selftest, signing
from samverkan.sharing.agreements import load_agreements
from samverkan.sharing.outbox import MANIFEST, MANIFEST_SIGNATURE, delivery_dir
from samverkan.sharing.recipient_pseudonyms import RecipientPseudonyms
from samverkan.sharing.register import Register

pytestmark = [pytest.mark.integration]

SHARING_KEY = hashlib.sha256(b"accountability sharing key").digest()
RECIPIENTS = ("municipality", "police")


class World:
    """The hub, the hub's signing key, the police's server, and what the recipients received."""

    def __init__(self, root: Path):
        from devkit.synthetic import Population, write_night
        from samverkan.quality.validation import Validator
        from tests.integration.resilience_support import NIGHT, Hub

        self.root, self.night = root, NIGHT
        self.hub = Hub.create(root / "hub", Validator())
        population = Population(seed=11, size=300)
        self.truths = {}
        for i, (feed, rows) in enumerate({"police": 200, "transit": 80, "guards": 60}.items()):
            self.truths[feed] = write_night(feed, NIGHT, root / "partners", rows=rows, population=population, seed=20 + i)
            assert self.hub.process(feed, self.truths[feed].path).status == "published"
        self.key, public = generate_keypair(root / "keys" / "hub_ed25519")
        self.allowed = attestation.write_allowed_signers(root / "keys" / "allowed_signers", public)
        self.client_key, client_public = generate_keypair(root / "keys" / "sftp_ed25519")
        self.server = start_sftp_server(root / "police-server", client_public, root / "sshd")
        self.agreements = load_agreements()

    @property
    def paths(self):
        return self.hub.paths

    def pseudonyms(self, recipient: str) -> RecipientPseudonyms:
        return RecipientPseudonyms(SHARING_KEY, recipient, self.agreements[recipient].pseudonym_epoch)

    def deliver(self, recipient: str) -> dict:
        agreement = self.agreements[recipient]
        if agreement.mode == "pull":
            return delivery.deliver(agreement, self.paths, self.night, self.pseudonyms(recipient), "acc")
        s = self.server
        settings = SFTPSettings(host=s.host, port=s.port, username=s.username, key_file=str(self.client_key),
                                host_key=s.host_key_line, path_prefix=s.path_prefix)
        with SFTPConnector(settings) as connector:
            return delivery.deliver(agreement, self.paths, self.night, self.pseudonyms(recipient), "acc",
                                    connector=connector)

    def received(self, recipient: str) -> Path:
        """The recipient's own copy: what it pulled (its outbox) or its server's inbox."""
        if self.agreements[recipient].mode == "pull":
            return delivery_dir(self.paths, recipient, self.night)
        inbox = self.root / "police-server" / self.agreements[recipient].delivery["directory"].lstrip("/")
        return inbox / self.night.isoformat()

    def tombstones(self, recipient: str) -> list[Path]:
        if self.agreements[recipient].mode == "pull":
            return sorted((self.paths.outbox / recipient / erasure.TOMBSTONES).glob("*.json"))
        inbox = self.root / "police-server" / self.agreements[recipient].delivery["directory"].lstrip("/")
        return sorted((inbox / erasure.TOMBSTONES).glob("*.json"))


@contextlib.contextmanager
def _delivered_world(root: Path):
    """A world whose night is published and delivered to both recipients."""
    if not sshd_available() or shutil.which("ssh-keygen") is None:
        pytest.skip("needs OpenSSH (sshd, ssh-keygen)")
    w = World(root)
    env = pytest.MonkeyPatch()
    env.setenv(signing.REGISTER_KEY_ENV, str(w.key))  # the hub's one key: register events and manifests
    try:
        for recipient in RECIPIENTS:
            w.deliver(recipient)
        yield w
    finally:
        w.server.stop()
        env.undo()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Shared by the tests that only read the delivered world (or change a copy of it)."""
    with _delivered_world(tmp_path_factory.mktemp("accountability")) as w:
        yield w


@pytest.fixture
def own_world(tmp_path):
    """A world of its own for a test that changes it (erasure, withdrawal, a resend, retention), so
    the tests pass in any order (`--random-order`)."""
    with _delivered_world(tmp_path / "world") as w:
        yield w


def _recipient_sign(key: Path, path: Path, namespace: str) -> None:
    subprocess.run(["ssh-keygen", "-q", "-Y", "sign", "-f", str(key), "-n", namespace, str(path)], check=True,
                   capture_output=True)


# --- signed deliveries, verified offline ------------------------------------------------------------


@pytest.mark.parametrize("recipient", RECIPIENTS)
def test_every_delivery_is_signed_and_verifies_at_the_recipient(world, recipient):
    received = world.received(recipient)
    assert (received / MANIFEST_SIGNATURE).is_file()
    assert attestation.verify_delivery(received, world.allowed) == []


def documented_commands() -> list[str]:
    """The three commands of docs/partners.md, "Verifying a delivery", as a recipient copies them."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "partners.md").read_text(encoding="utf-8")
    section = text.split("## Verifying a delivery", 1)[1]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def test_the_three_documented_commands_verify_a_delivery(world, tmp_path):
    """OpenSSH, jq and sha256sum only, in the delivery's folder, as docs/partners.md says; and the
    first two fail on a tampered manifest."""
    if shutil.which("jq") is None:
        pytest.skip("jq is not installed")
    commands = documented_commands()
    assert len(commands) == 3
    folder = shutil.copytree(world.received("police"), tmp_path / "delivery")
    shutil.copy(world.allowed, folder / "allowed_signers")
    for command in commands:
        done = subprocess.run(["bash", "-c", command], cwd=folder, capture_output=True, text=True, check=False)
        assert done.returncode == 0, (command, done.stdout, done.stderr)
    (folder / "incidents.parquet").write_bytes(b"PAR1 not the delivered file")
    assert subprocess.run(["bash", "-c", commands[1]], cwd=folder, capture_output=True, check=False).returncode != 0
    (folder / MANIFEST).write_text((folder / MANIFEST).read_text().replace('"rows": ', '"rows": 1', 1))
    assert subprocess.run(["bash", "-c", commands[0]], cwd=folder, capture_output=True, check=False).returncode != 0


def test_a_tampered_manifest_is_caught(world, tmp_path):
    copy = shutil.copytree(world.received("police"), tmp_path / "delivery")
    manifest = json.loads((copy / MANIFEST).read_text())
    manifest["datasets"]["incidents"]["rows"] += 1
    (copy / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    problems = attestation.verify_delivery(copy, world.allowed)
    assert any("manifest.json is not signed by the hub (or was changed after signing)" in p for p in problems)
    assert any("receipt.json names another manifest" in p for p in problems)


def test_a_changed_data_file_is_caught(world, tmp_path):
    copy = shutil.copytree(world.received("municipality"), tmp_path / "delivery")
    table = pq.read_table(copy / "incidents.parquet")
    pq.write_table(table.slice(1), copy / "incidents.parquet")
    assert attestation.verify_delivery(copy, world.allowed) == [
        f"{copy.name}: incidents.parquet is missing or differs from the manifest"]


def test_a_truncated_register_is_caught(world, tmp_path):
    """The recipient holds its receipt; the hub's register lost its last events."""
    received = world.received("police")
    receipt = json.loads((received / "receipt.json").read_text())
    register_copy = shutil.copytree(world.paths.register, tmp_path / "register")
    assert attestation.verify_delivery(received, world.allowed, [receipt["register_event"]], Register(register_copy)) == []
    seq = receipt["register_event"]["seq"]
    for event in sorted((register_copy / "disclosures").glob("*.parquet"))[seq - 1:]:
        event.chmod(0o644)
        event.unlink()
    problems = attestation.verify_delivery(received, world.allowed, [receipt["register_event"]],
                                           Register(register_copy))
    assert problems == [f"register: event {seq} (anchored by a recipient) is missing"]
    # Without the register at hand: a later delivery whose head is before the held event.
    assert attestation.anchor_problems({"seq": seq - 1, "event_sha256": "0" * 64}, [receipt["register_event"]], None) \
        == [(f"register went back: the hub's head is event {seq - 1}, but event {seq} was already disclosed to "
             "this recipient")]


def test_a_signed_acknowledgement_is_recorded_and_a_forged_one_refused(world, tmp_path):
    key, public = generate_keypair(tmp_path / "municipality_ed25519")
    received = world.received("municipality")
    manifest = json.loads((received / MANIFEST).read_text())
    ack_dir = tmp_path / "ack"
    ack_dir.mkdir()
    ack = ack_dir / attestation.ACK
    ack.write_text(json.dumps(attestation.acknowledgement(manifest, hashlib.sha256((received / MANIFEST)
                                                                                   .read_bytes()).hexdigest())))
    _recipient_sign(key, ack, attestation.ACK_NAMESPACE)
    register = delivery.register_for(world.paths)
    event = attestation.record_acknowledgement(register, ack_dir, public)
    assert event["event"] == attestation.ACKNOWLEDGEMENT and event["recipient"] == "municipality"
    assert register.verify(world.allowed) == event["seq"]
    ack.write_text(ack.read_text().replace("received and verified", "never received"))
    with pytest.raises(attestation.AttestationError, match="not signed by the recipient's key"):
        attestation.record_acknowledgement(register, ack_dir, public)


# --- the DPO self-test -----------------------------------------------------------------------------


def test_the_dpo_self_test_passes_on_the_outboxes(world):
    report = selftest.run(world.paths.outbox, world.paths.register, world.allowed)
    text = "\n".join(report.lines)
    assert report.passed, text
    assert "municipality × police: identifier values in common: incident_id 0, person_pseudonym 0" in text
    assert "register: " in text and "anchors held by recipients verify" in text
    assert "municipality/2026-11-20: k = " in text and "police/2026-11-20: manifest signed, in the register" in text


def test_the_dpo_self_test_fails_on_a_join_and_an_unsigned_delivery(world, tmp_path):
    outbox = shutil.copytree(world.paths.outbox, tmp_path / "outbox", ignore=shutil.ignore_patterns(".staging"))
    night = world.night.isoformat()
    shutil.copy(outbox / "municipality" / night / "involvements.parquet", outbox / "police" / night / "involvements.parquet")
    (outbox / "municipality" / night / MANIFEST_SIGNATURE).unlink()
    counts = outbox / "municipality" / night / "incident_counts.parquet"
    table = pq.read_table(counts)
    planted = pa.array([2] + table.column("incidents").to_pylist()[1:], table.schema.field("incidents").type)
    pq.write_table(table.set_column(table.column_names.index("incidents"), "incidents", planted), counts)
    report = selftest.run(outbox, world.paths.register, world.allowed)
    text = "\n".join(report.lines)
    assert not report.passed
    assert "FAIL municipality × police: identifier values in common: incident_id " in text
    assert f"FAIL municipality/{night}: manifest NOT signed, in the register" in text
    assert f"FAIL municipality/{night}/incident_counts: " in text and " 1 under 5" in text


# --- erasure that reaches the recipients ---------------------------------------------------------------


def _count(root: Path, column: str, value: str) -> int:
    return sum(pq.read_table(f).column(column).to_pylist().count(value)
               for f in root.rglob("*.parquet") if column in pq.read_schema(f).names)


def _one_person_at_both(world) -> tuple[str, str]:
    """A person from the police file that both recipients hold (the police through the guards' or
    the bus operator's rows, the municipality through all three)."""
    police = world.truths["police"].persons
    for canonical in sorted(police & (world.truths["guards"].persons | world.truths["transit"].persons)):
        hub_value = world.hub.pseudonymiser.pseudonym("person", canonical)
        if all(_count(world.received(r), "person_pseudonym", world.pseudonyms(r).one(hub_value)) for r in RECIPIENTS):
            return canonical, hub_value
    pytest.fail("the synthetic night has no person held by both recipients")


def test_erasing_one_person_reaches_both_recipients_and_leaves_nothing_at_the_hub(own_world, capsys):
    from devkit.leakscan import PersonalValues, scan

    canonical, hub_value = _one_person_at_both(own_world)
    theirs = {r: own_world.pseudonyms(r).one(hub_value) for r in RECIPIENTS}
    before = {"hub published": _count(own_world.paths.published, "person_pseudonym", hub_value),
              **{f"{r} outbox": _count(own_world.paths.outbox / r, "person_pseudonym", theirs[r])
                 for r in RECIPIENTS}}
    assert all(before.values()), before
    assert scan([own_world.paths.root], PersonalValues(personnummer_canonical={canonical}))  # the raw landed file

    target = erasure.person_target(canonical[:8] + "-" + canonical[8:], own_world.hub.pseudonymiser,
                                   "erasure request DPO-2026-17", today=own_world.night)
    summary = erasure.erase(own_world.paths, target, own_world.agreements, SHARING_KEY,
                            delivery.register_for(own_world.paths), "t")
    own_world.deliver("police")  # the next delivery run pushes the police's tombstone

    after = {"hub published": _count(own_world.paths.published, "person_pseudonym", hub_value),
             **{f"{r} outbox": _count(own_world.paths.outbox / r, "person_pseudonym", theirs[r])
                for r in RECIPIENTS}}
    with capsys.disabled():
        print("\nerasure of one person, rows before -> after: "
              + ", ".join(f"{k} {before[k]} -> {after[k]}" for k in before))
        print(f"erasure summary: {json.dumps({k: summary[k] for k in ('published', 'private')})}; recipients: "
              + json.dumps({r: v['rows_removed'] for r, v in summary["recipients"].items()}))
    assert set(after.values()) == {0}, after
    assert scan([own_world.paths.root], PersonalValues(personnummer_canonical={canonical})) == []
    assert set(summary["recipients"]) == set(RECIPIENTS)
    for r in RECIPIENTS:
        tombstone = own_world.tombstones(r)[-1]
        assert signing.file_verifies(own_world.allowed, tombstone, Path(f"{tombstone}.sig"),
                                         signing.DELIVERY_NAMESPACE, signing.DELIVERY_NAMESPACE)
        body = json.loads(tombstone.read_text())
        deleted = body["deliveries"][0]["delete"]["involvements"]
        assert deleted and {row["person_pseudonym"] for row in deleted} == {theirs[r]}  # the recipient's own value
        assert hub_value not in tombstone.read_text() and canonical not in tombstone.read_text()
    assert _count(own_world.received("police") / "..", "person_pseudonym", theirs["police"]) == 0  # re-delivered whole
    register = delivery.register_for(own_world.paths)
    assert register.verify(own_world.allowed) > 0
    erased = [e for e in register.events() if e["event"] == erasure.ERASURE]
    assert {e["recipient"] for e in erased} == {erasure.HUB, *RECIPIENTS}
    assert selftest.run(own_world.paths.outbox, own_world.paths.register, own_world.allowed).passed


def test_a_partners_withdrawal_list_reaches_the_municipality(own_world):
    """The police withdraw one diarienummer: the incident and its people leave the hub, and the
    municipality (the recipient of police rows) gets the incident's id in its own domain."""
    mapping = [r for f in sorted(own_world.paths.incident_ids.rglob("source=police/*.parquet"))
               for r in pq.read_table(f).to_pylist()]
    withdrawn = next(r for r in mapping if r["source"] == "police"
                     and _count(own_world.paths.published / "involvements", "incident_id", r["incident_id"]))
    theirs = own_world.pseudonyms("municipality").one(withdrawn["incident_id"])
    before = _count(delivery_dir(own_world.paths, "municipality", own_world.night), "incident_id", theirs)
    target = erasure.withdrawal_target(own_world.paths, "police", [withdrawn["partner_incident_id"]],
                                       "police withdrawal W-1")
    assert target.incidents == {withdrawn["incident_id"]}
    summary = erasure.erase(own_world.paths, target, own_world.agreements, SHARING_KEY,
                            delivery.register_for(own_world.paths), "t")
    assert before > 0 and _count(delivery_dir(own_world.paths, "municipality", own_world.night), "incident_id", theirs) == 0
    assert _count(own_world.paths.published, "incident_id", withdrawn["incident_id"]) == 0
    assert summary["published"]["incidents"] == 1 and summary["published"]["involvements"] >= 1
    assert set(summary["recipients"]) == {"municipality"}  # the police recipient never had police rows
    body = json.loads(own_world.tombstones("municipality")[-1].read_text())
    assert body["deliveries"][0]["delete"]["incidents"] == [{"incident_id": theirs}]
    assert {row["incident_id"] for row in body["deliveries"][0]["delete"]["involvements"]} == {theirs}
    assert withdrawn["partner_incident_id"] not in json.dumps(body)


def test_a_resent_file_without_some_records_tombstones_them_at_the_next_delivery(own_world):
    """The police send the night again without one event: the municipality's next delivery no
    longer has it, and the recipient is told to delete the rows it got before."""
    import csv

    original = own_world.truths["police"].path
    with open(original, encoding="cp1252", newline="") as f:
        rows = list(csv.reader(f, delimiter=";"))
    header, records = rows[0], rows[1:]
    dropped = records[-1][0]  # Diarienr of the last event
    resent = own_world.root / "resent" / original.name
    resent.parent.mkdir()
    with open(resent, "w", encoding="cp1252", newline="") as f:
        csv.writer(f, delimiter=";", lineterminator="\r\n").writerows([header] + [r for r in records if r[0] != dropped])
    mapping = [r for f in sorted(own_world.paths.incident_ids.rglob("source=police/*.parquet"))
               for r in pq.read_table(f).to_pylist() if r["partner_incident_id"] == dropped]
    theirs = own_world.pseudonyms("municipality").one(mapping[0]["incident_id"])
    folder = delivery_dir(own_world.paths, "municipality", own_world.night)
    assert _count(folder, "incident_id", theirs) > 0
    tombstones_before = len(own_world.tombstones("municipality"))
    assert own_world.hub.process("police", resent).status == "published"
    own_world.deliver("municipality")
    assert _count(folder, "incident_id", theirs) == 0
    assert len(own_world.tombstones("municipality")) == tombstones_before + 1
    body = json.loads(own_world.tombstones("municipality")[-1].read_text())
    assert body["deliveries"][0]["delete"]["incidents"] == [{"incident_id": theirs}]
    assert dropped not in json.dumps(body)
    assert attestation.verify_delivery(folder, own_world.allowed) == []


def test_retention_expiry_sends_a_tombstone_too(own_world):
    from datetime import timedelta

    from samverkan.sharing.retention import apply_retention

    agreement = own_world.agreements["municipality"]
    before = len(own_world.tombstones("municipality"))
    removed = apply_retention(agreement, own_world.paths, delivery.register_for(own_world.paths),
                              own_world.night + timedelta(days=agreement.retention_days + 1), "t")
    assert [r["delivery_id"] for r in removed] == [own_world.night.isoformat()]
    tombstones = own_world.tombstones("municipality")
    assert len(tombstones) == before + 1
    body = json.loads(tombstones[-1].read_text())
    assert body["action"] == "delete this whole delivery"
    assert body["deliveries"][0]["delivery_id"] == own_world.night.isoformat()
