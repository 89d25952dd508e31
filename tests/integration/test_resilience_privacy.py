"""Resilience, issue 14 privacy-side items (3 to 7): each case an adversarial review found.

Item 3  re-identification in published rows: keyed incident ids, granularity per agreement,
        k-anonymity measured, registered and enforced on every row-level delivery.
Item 4  files any local user can read: umask, Airflow's file modes, the UI on 127.0.0.1.
Item 5  key rotation on the embedded default takes effect on the next run.
Item 6  the disclosure register's end is tamper-evident (signatures, the recipients' anchors).
Item 7  weak keys are refused, with how to make a good one.
"""

from __future__ import annotations

import pytest

from samverkan.privacy.pseudonymise import key_from_secret

pytestmark = pytest.mark.integration


# --- item 7: weak keys ----------------------------------------------------------------------------

WEAK = {
    "one letter": "a" * 32,
    "a word repeated": "Password" * 4,
    "all zeros (hex)": "00" * 32,
    "all zeros (text)": "0" * 40,
    "a byte sequence (hex)": bytes(range(32)).hex(),
    "the alphabet": "abcdefghijklmnopqrstuvwxyzABCDEF",
    "two letters alternating": "ab" * 20,
    "raw 0xff bytes": b"\xff" * 32,
}


@pytest.mark.parametrize("secret", list(WEAK.values()), ids=list(WEAK))
def test_item7_weak_keys_are_refused_with_how_to_make_one(secret):
    with pytest.raises(ValueError) as error:
        key_from_secret(secret)
    message = str(error.value)
    assert "samverkan ops new-key" in message and "secrets.token_urlsafe(32)" in message
    text = secret if isinstance(secret, str) else secret.hex()
    assert text not in message


def test_item7_generated_keys_pass():
    import secrets

    for _ in range(200):
        assert len(key_from_secret(secrets.token_hex(32))) == 32
        assert key_from_secret(secrets.token_urlsafe(32))


def test_item7_the_new_key_command_prints_a_key_that_loads(capsys):
    from samverkan.ops import commands

    assert commands.main(["new-key"]) == 0
    printed = capsys.readouterr().out.strip()
    assert len(key_from_secret(printed)) == 32
    assert commands.main(["new-key"]) == 0
    assert capsys.readouterr().out.strip() != printed


# --- item 5: key rotation on the embedded default ----------------------------------------------------

def _run_through_env_file(hub, feed: str, night) -> None:
    """What an engineer does after the demo: `source env.sh && airflow ...` (nothing of the test's
    own environment leaks in, so the run sees only what env.sh gives it)."""
    import os
    import subprocess
    from datetime import timedelta

    logical = f"{(night + timedelta(days=1)).isoformat()}T06:30:00+01:00"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "SAMVERKAN"))}
    done = subprocess.run(["bash", "-c", f'source "{hub.root / "env.sh"}" && exec airflow dags test samverkan_{feed} '
                                         f"{logical}"], env=env, text=True, capture_output=True)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]


def _published_pseudonyms(hub, feed: str, night) -> set[str]:
    import pyarrow.parquet as pq

    directory = hub.data.dataset("involvements") / f"night={night.isoformat()}" / f"source={feed}"
    return {p for f in directory.glob("*.parquet") for p in pq.read_table(f).column("person_pseudonym").to_pylist()
            if p is not None}


@pytest.mark.slow
def test_item5_rotate_key_takes_effect_on_the_next_run_of_the_embedded_hub(tmp_path):
    from datetime import date

    from devkit.embedded import EmbeddedHub
    from devkit.synthetic import Population, write_night
    from samverkan.ops import commands
    from samverkan.privacy.pseudonymise import Pseudonymiser

    n1, n2 = date(2026, 11, 20), date(2026, 11, 21)
    population = Population(seed=5, size=200)
    with EmbeddedHub(tmp_path / "hub") as hub:
        truths = {n: write_night("police", n, hub.partners_root, rows=40, population=population, seed=i)
                  for i, n in enumerate((n1, n2), 1)}
        hub.start_servers()
        hub.write_env_file()
        hub.migrate()
        old_key = key_from_secret(hub.secret())
        _run_through_env_file(hub, "police", n1)
        assert commands.main(["rotate-key", "--secret-file", str(hub.keys / "pseudonym_secret")]) == 0
        new_key = key_from_secret(hub.secret())
        assert new_key != old_key
        _run_through_env_file(hub, "police", n2)

        def expected(key: bytes, night) -> set[str]:
            return {Pseudonymiser(key).pseudonym("person", p) for p in truths[night].persons}

        assert truths[n2].persons and _published_pseudonyms(hub, "police", n1) == expected(old_key, n1)
        assert _published_pseudonyms(hub, "police", n2) == expected(new_key, n2)
        assert not _published_pseudonyms(hub, "police", n2) & expected(old_key, n2)
        # Item 4 on a real run: what the tasks wrote is for the hub and its group only.
        written = [*hub.data.published.rglob("*"), *(hub.airflow_home / "logs").rglob("*")]
        assert written and not [p for p in written if _others_can_read(p)]
        # The old key is gone from everything the hub keeps, env.sh included.
        for path in hub.root.rglob("*"):
            if path.is_file() and path.stat().st_size < 10_000_000:
                assert old_key.hex() not in path.read_bytes().decode("latin-1"), path


# --- item 3: re-identification in published rows ----------------------------------------------------

def _published(hub, dataset: str, feed: str):
    import pyarrow.parquet as pq

    from tests.integration.resilience_support import NIGHT

    directory = hub.paths.dataset(dataset) / f"night={NIGHT.isoformat()}" / f"source={feed}"
    return pq.read_table(sorted(directory.glob("*.parquet"))[0])


@pytest.mark.parametrize("feed", ["police", "transit", "guards"])
def test_item3_published_incident_ids_are_keyed_and_mapped_back_only_in_the_private_zone(tmp_path, feed):
    """A diarienummer is printed on a complainant's receipt: whoever holds one must not find the
    incident (and through it the person's pseudonym) in the published rows."""
    import pyarrow.parquet as pq

    from devkit.synthetic import Population, write_night
    from samverkan.ingest.model import INCIDENT_ID_DOMAIN
    from samverkan.privacy.pseudonymise import Pseudonymiser
    from samverkan.quality.validation import Validator
    from tests.integration.resilience_support import KEY, NIGHT, Hub

    truth = write_night(feed, NIGHT, tmp_path / "partners", rows=60, population=Population(seed=3, size=200), seed=3)
    hub = Hub.create(tmp_path / "hub", Validator())
    assert hub.process(feed, truth.path).status == "published"
    incidents, involvements = _published(hub, "incidents", feed), _published(hub, "involvements", feed)
    published_ids = set(incidents.column("incident_id").to_pylist())
    assert set(involvements.column("incident_id").to_pylist()) <= published_ids
    # The mapping, private: partner id -> published id, the published id recomputable with the key.
    mapping_files = list((hub.paths.private / "incident_ids").rglob("*.parquet"))
    assert mapping_files and all(hub.paths.private in f.parents for f in mapping_files)
    mapping = pq.read_table(mapping_files[0]).to_pylist()
    assert {m["incident_id"] for m in mapping} == published_ids and len(mapping) == len(published_ids)
    keyed = Pseudonymiser(KEY)
    for m in mapping:
        assert m["incident_id"] == keyed.pseudonym(INCIDENT_ID_DOMAIN, f"{feed}:{m['partner_incident_id']}")
        assert m["partner_incident_id"] not in m["incident_id"]
    # No partner id anywhere in the published zone (Parquet bytes are compressed: read the values).
    partner_ids = {m["partner_incident_id"] for m in mapping}
    for path in hub.paths.published.rglob("*.parquet"):
        for column in pq.read_table(path).columns:
            values = {str(v) for v in column.to_pylist() if v is not None}
            assert not values & partner_ids, path
            assert not any(p in v for v in values for p in partner_ids), path


def _agreement(tmp_path, name: str, change):
    """A default agreement with ``change`` applied, loaded (and checked) from its own file."""
    import yaml

    from samverkan.sharing.agreements import AGREEMENTS_DIR, load_agreement

    data = yaml.safe_load((AGREEMENTS_DIR / f"{name}.yaml").read_text(encoding="utf-8"))
    change(data)
    path = tmp_path / "agreements" / f"{name}.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return load_agreement(path)


@pytest.mark.parametrize(("change", "words"), [
    (lambda d: d.pop("detail"), "detail: a row_level agreement must state detail.time"),
    (lambda d: d["detail"].update(place="area"), "datasets.incidents.columns: 'coord_n' is finer than detail.place area"),
    (lambda d: d["detail"].update(place="1km"), "datasets.incidents.columns: 'place' is finer than detail.place 1km"),
    (lambda d: d["detail"].update(time="minute"), "detail.time: 'minute' is not one of"),
    (lambda d: d["detail"]["k_anonymity"].update(exception="because"), "detail.k_anonymity.exception"),
])
def test_item3_an_agreement_states_its_row_detail_and_grants_nothing_finer(tmp_path, change, words):
    from samverkan.sharing.agreements import AgreementError

    with pytest.raises(AgreementError) as error:
        _agreement(tmp_path, "municipality", change)
    assert "municipality.yaml: " + words in str(error.value)


@pytest.fixture(scope="module")
def two_feeds_published(tmp_path_factory):
    """One night of the three partners, published by the real pipeline."""
    from devkit.synthetic import Population, write_night
    from samverkan.quality.validation import Validator
    from tests.integration.resilience_support import NIGHT, Hub

    root = tmp_path_factory.mktemp("k-anonymity")
    hub = Hub.create(root / "hub", Validator())
    population = Population(seed=11, size=300)
    for i, (feed, rows) in enumerate({"police": 200, "transit": 80, "guards": 60}.items()):
        truth = write_night(feed, NIGHT, root / "partners", rows=rows, population=population, seed=20 + i)
        assert hub.process(feed, truth.path).status == "published"
    return hub


def _build(hub, agreement):
    import hashlib

    from samverkan.sharing.outbox import build_delivery
    from samverkan.sharing.recipient_pseudonyms import RecipientPseudonyms
    from tests.integration.resilience_support import NIGHT

    pseudonyms = RecipientPseudonyms(hashlib.sha256(b"k test sharing").digest(), agreement.id, agreement.pseudonym_epoch)
    return build_delivery(agreement, hub.paths, NIGHT, pseudonyms, "k-test")


def _without_exception(d):
    d["detail"]["k_anonymity"].pop("exception")


def test_item3_a_row_level_delivery_below_k_is_refused_without_an_exception(two_feeds_published, tmp_path):
    from samverkan.sharing.disclosure_control import KAnonymityError
    from samverkan.sharing.outbox import delivery_dir
    from tests.integration.resilience_support import NIGHT

    agreement = _agreement(tmp_path, "municipality", _without_exception)
    outbox = two_feeds_published.paths.outbox
    before = _listing(outbox)  # other tests of this module may have built deliveries already
    with pytest.raises(KAnonymityError) as error:
        _build(two_feeds_published, agreement)
    message = str(error.value)
    assert "k = 1 on age_band, gender, occurred_at_local, area, place, stop_id, coord_n, coord_e" in message
    assert "refused" in message and "detail.k_anonymity.exception" in message
    assert _listing(outbox) == before, "the refused delivery wrote into the outbox"
    assert delivery_dir(two_feeds_published.paths, "municipality", NIGHT).is_relative_to(outbox)


def _listing(folder) -> list[tuple[str, int, int]]:
    """Every file and folder below `folder` with its size and modification time."""
    if not folder.exists():
        return []
    return sorted((str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*"))


def test_item3_the_agreements_detail_is_applied_and_k_recorded(two_feeds_published, tmp_path):
    """Under its exception the delivery goes out, cut to the hour and the 100 m cell, with the
    figures in the manifest; the register records them with the disclosure."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from samverkan.sharing import delivery
    from samverkan.sharing.disclosure_control import measure, quasi_identified_rows

    agreement = _agreement(tmp_path, "municipality", lambda d: None)
    built = _build(two_feeds_published, agreement)
    incidents = pq.read_table(built.directory / "incidents.parquet")
    people = pq.read_table(built.directory / "involvements.parquet")
    for column in ("occurred_at_local", "reported_at_utc"):
        values = [v for v in incidents.column(column).to_pylist() if v is not None]
        assert values and all(v.minute == v.second == v.microsecond == 0 for v in values), column
    coords = [v for v in incidents.column("coord_n").to_pylist() if v is not None]
    assert coords and all(v % 100 == 0 for v in coords)
    figures = built.manifest["k_anonymity"]
    again = measure({"incidents": incidents, "involvements": people}, 5)  # what the recipient holds
    assert figures["k"] == again["k"] and figures["rows_below_k"] == again["rows_below_k"]
    assert figures["rows"] == people.num_rows and figures["exception"] == agreement.detail.exception
    # Before (exact minute, as published): more groups, so no fewer rows below k.
    from samverkan.sharing.outbox import select_datasets
    from tests.integration.resilience_support import NIGHT

    before = measure(select_datasets(agreement, two_feeds_published.paths, NIGHT), 5)
    assert before["groups"] > figures["groups"] and before["rows_below_k"] >= figures["rows_below_k"]
    event = delivery.record_delivery(delivery.register_for(two_feeds_published.paths), agreement, built,
                                     "outbox:test", "k-test")
    recorded = delivery.register_for(two_feeds_published.paths).events()[-1]["k_anonymity"]
    assert event["seq"] >= 1 and recorded["k"] == figures["k"] and recorded["required"] == 5
    assert recorded["rows_below_k"] == figures["rows_below_k"] and recorded["time"] == "hour"
    assert len(rows := quasi_identified_rows({"incidents": incidents, "involvements": people})[0]) == people.num_rows
    assert pc.all(pc.is_valid(people.column("incident_id"))).as_py() and rows.num_rows


def test_item3_coarse_enough_detail_with_suppression_reaches_k_and_is_delivered(two_feeds_published, tmp_path):
    """The day, the area, and age band, sex and at last the row withheld where they would single a
    person out: k >= 5 without any exception; rows that needed no suppression keep their values."""
    import pyarrow.parquet as pq

    def coarse(d):
        _without_exception(d)
        d["detail"].update(time="day", place="area")
        d["detail"]["k_anonymity"]["suppress"] = ["gender", "age_band", "rows"]
        d["datasets"]["incidents"]["columns"] = [c for c in d["datasets"]["incidents"]["columns"]
                                                 if c not in ("place", "stop_id", "coord_n", "coord_e")]
        d["datasets"].pop("observation_counts", None)

    agreement = _agreement(tmp_path, "municipality", coarse)
    built = _build(two_feeds_published, agreement)
    figures = built.manifest["k_anonymity"]
    assert figures["k"] >= 5 and figures["rows_below_k"] == 0 and figures["rows_suppressed"] > 0
    people = pq.read_table(built.directory / "involvements.parquet")
    assert people.column("age_band").null_count < people.num_rows  # not everything withheld
    published = two_feeds_published.paths.dataset("involvements")
    assert figures["rows"] + figures["rows_suppressed"] >= people.num_rows
    assert sum(pq.read_table(f).num_rows for f in published.rglob("*.parquet")) >= figures["rows"]


# --- item 6: the register's end is tamper-evident -------------------------------------------------------

def _register_event(kind="delivery", recipient="transit"):
    from datetime import date

    from samverkan.sharing.register import Event

    files = [{"name": "incidents.parquet", "dataset": "incidents", "rows": 3, "bytes": 100, "sha256": "b" * 64}]
    return Event(event=kind, recipient=recipient, agreement_id=recipient, agreement_version=1,
                 delivery_id="2026-11-20", period_start=date(2026, 11, 20), period_end=date(2026, 11, 20),
                 mode="pull", destination="outbox:x", files=files, manifest_sha256="c" * 64, run_id="r")


@pytest.fixture
def signed_register(tmp_path):
    """A register of three events, each signed with a key its writer never needs to write."""
    from samverkan.connectors.sshd import generate_keypair
    from samverkan.sharing.register import Register, write_allowed_signers

    key, public = generate_keypair(tmp_path / "signer" / "register_ed25519")
    allowed = write_allowed_signers(tmp_path / "allowed_signers", public)
    register = Register(tmp_path / "register", signing_key=key)
    anchors = [register.append(_register_event(recipient=r)) for r in ("transit", "police", "municipality")]
    assert register.verify(allowed) == 3
    return register, allowed, anchors


def _rewrite(path, change):
    import os

    import pyarrow as pa
    import pyarrow.parquet as pq

    from samverkan.sharing.register import EVENT_SCHEMA

    record = pq.read_table(path).to_pylist()[0]
    change(record)
    os.chmod(path, 0o644)
    pq.write_table(pa.Table.from_pylist([record], schema=EVENT_SCHEMA), path)


def test_item6_an_event_rewritten_with_its_chain_recomputed_fails_its_signature(signed_register):
    from samverkan.sharing.register import RegisterError, _event_hash

    register, allowed, _ = signed_register
    files = register.event_files()
    hashes = {}

    def forge(record, seq):
        if seq == 2:
            record["rows_total"] = 0  # "we never disclosed those rows"
        if seq > 1:
            record["prev_event_sha256"] = hashes[seq - 1]
        record["event_sha256"] = _event_hash(record)
        hashes[seq] = record["event_sha256"]

    import pyarrow.parquet as pq

    hashes[1] = pq.read_table(files[0]).to_pylist()[0]["event_sha256"]
    for seq, path in enumerate(files[1:], 2):
        _rewrite(path, lambda r, s=seq: forge(r, s))
    assert register.verify_chain() == 3  # the unkeyed chain alone is fooled ...
    with pytest.raises(RegisterError, match="event 2: signature does not verify"):
        register.verify(allowed)  # ... the signatures are not


def test_item6_deleting_the_last_event_is_caught_against_the_recipients_anchor(signed_register):
    import os

    from samverkan.sharing.register import RegisterError

    register, allowed, anchors = signed_register
    last = register.event_files()[-1]
    os.unlink(last)
    os.unlink(register.signature_file(3))
    assert register.verify(allowed) == 2  # what is left is consistent on its own ...
    with pytest.raises(RegisterError, match="event 3 .* is missing"):
        register.verify_anchor({"seq": anchors[-1]["seq"], "event_sha256": anchors[-1]["event_sha256"]})


def test_item6_an_unsigned_or_foreign_signed_event_fails(signed_register, tmp_path):
    from samverkan.connectors.sshd import generate_keypair
    from samverkan.sharing.register import Register, RegisterError

    register, allowed, _ = signed_register
    Register(register.root).append(_register_event())  # a writer without the key
    with pytest.raises(RegisterError, match="event 4: no signature"):
        register.verify(allowed)
    other, _ = generate_keypair(tmp_path / "other" / "key")
    Register(register.root, signing_key=other).sign_pending()
    with pytest.raises(RegisterError, match="event 4: signature does not verify"):
        register.verify(allowed)


def test_item6_a_delivery_anchors_the_register_in_its_manifest_and_its_receipt(two_feeds_published, tmp_path,
                                                                               monkeypatch):
    """The manifest names the head before the delivery; the receipt the delivery's own event,
    signed: the recipient verifies it with ssh-keygen alone and the allowed-signers line."""
    import json
    import shutil
    import subprocess

    from samverkan.connectors.sshd import generate_keypair
    from samverkan.sharing import delivery, outbox, signing
    from samverkan.sharing.outbox import delivery_dir
    from samverkan.sharing.recipient_pseudonyms import RecipientPseudonyms
    from samverkan.sharing.register import write_allowed_signers
    from samverkan.sharing.signing import REGISTER_NAMESPACE
    from tests.integration.resilience_support import NIGHT

    key, public = generate_keypair(tmp_path / "signer" / "register_ed25519")
    monkeypatch.setenv(signing.REGISTER_KEY_ENV, str(key))
    paths = two_feeds_published.paths
    register = delivery.register_for(paths)
    before = register.head()
    agreement = _agreement(tmp_path, "municipality", lambda d: None)
    pseudonyms = RecipientPseudonyms(b"\x8f" + bytes(range(7, 100, 3)), agreement.id, agreement.pseudonym_epoch)
    shutil.rmtree(delivery_dir(paths, agreement.id, NIGHT), ignore_errors=True)  # built by earlier tests
    done = delivery.deliver(agreement, paths, NIGHT, pseudonyms, "anchor-test")
    directory = delivery_dir(paths, agreement.id, NIGHT)
    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["register_head"] == before
    receipt = json.loads((directory / outbox.RECEIPT).read_text())
    assert receipt["register_event"]["seq"] == done["register_seq"] == before["seq"] + 1
    assert receipt["manifest_sha256"] == done["manifest_sha256"]
    register.verify_anchor(receipt["register_event"])
    # The recipient runs the receipt's own instructions, with jq and OpenSSH only.
    inbox = tmp_path / "recipient"
    write_allowed_signers(inbox / "allowed_signers", public)
    (inbox / "receipt.json").write_text(json.dumps(receipt))
    verified = subprocess.run(["bash", "-c", receipt["verify"]], cwd=inbox, capture_output=True, text=True)
    assert verified.returncode == 0, verified.stderr
    forged = dict(receipt, signed_message=receipt["signed_message"].replace(receipt["register_event"]["event_sha256"],
                                                                            "0" * 64))
    (inbox / "receipt.json").write_text(json.dumps(forged))
    assert subprocess.run(["bash", "-c", receipt["verify"]], cwd=inbox, capture_output=True).returncode != 0
    assert REGISTER_NAMESPACE in receipt["signed_message"]


# --- item 4: files any local user can read --------------------------------------------------------------

def _others_can_read(path) -> bool:
    return bool(path.stat().st_mode & 0o007)


def test_item4_published_and_outbox_files_are_for_the_hub_and_its_analysts_group(two_feeds_published, tmp_path):
    """Modes are set, not left to the umask of whoever ran the pipeline (this test runs with 022).
    A recipient's tree is read inside its chroot by its own account (an "other" there): outbox/
    above it is closed to every other local user."""
    import os
    import stat

    paths = two_feeds_published.paths
    old = os.umask(0o022)
    try:
        built = _build(two_feeds_published, _agreement(tmp_path, "municipality", lambda d: None))
    finally:
        os.umask(old)
    from samverkan.sharing.outbox import outbox_root, outbox_staging

    for closed in (outbox_root(paths), outbox_staging(paths)):
        assert stat.S_IMODE(closed.stat().st_mode) == 0o750, closed
    for root, file_mode, dir_mode in ((paths.published, 0o640, 0o750), (built.directory, 0o644, 0o755)):
        entries = [root, *root.rglob("*")]
        assert len(entries) > 3
        for entry in entries:
            expected = dir_mode if entry.is_dir() else file_mode
            assert stat.S_IMODE(entry.stat().st_mode) & 0o777 == expected, (entry, oct(entry.stat().st_mode))
    assert stat.S_IMODE(paths.private.stat().st_mode) == 0o700


def test_item4_the_hubs_processes_run_with_a_restrictive_umask():
    import os
    import subprocess
    import sys

    from samverkan.core.fsutil import HUB_UMASK

    assert HUB_UMASK == 0o027
    code = ("import os; import samverkan.orchestration.feed_runtime, samverkan.orchestration.delivery_runtime; "
            "print(oct(os.umask(0)))")
    for module_code in (code, code.replace("feed_runtime, samverkan.orchestration.delivery_runtime", "delivery_runtime")):
        done = subprocess.run([sys.executable, "-c", module_code], capture_output=True, text=True,
                              env={**os.environ, "GX_ANALYTICS_ENABLED": "False"}, check=True)
        assert done.stdout.strip() == "0o27", done.stderr[-2000:]


def test_item4_airflows_files_and_ui_are_private_on_the_embedded_hub(tmp_path):
    """airflow.db and the admin password file 0600, task logs 0640 in 0750 folders, the UI on
    127.0.0.1 (also in the shared deploy settings: task-log modes)."""
    import stat

    from devkit.embedded import EmbeddedHub
    from samverkan.ops.secrets import shared_settings

    hub = EmbeddedHub(tmp_path / "hub")
    hub.migrate()
    home = hub.airflow_home
    for name in ("airflow.db", "simple_auth_manager_passwords.json.generated"):
        assert stat.S_IMODE((home / name).stat().st_mode) == 0o600, name
    env = hub.env()
    assert env["AIRFLOW__API__HOST"] == "127.0.0.1"
    shown = hub.airflow("config", "get-value", "api", "host", capture=True).stdout.strip().splitlines()[-1]
    assert shown == "127.0.0.1"
    for settings in (env, shared_settings()):
        assert settings["AIRFLOW__LOGGING__FILE_TASK_HANDLER_NEW_FILE_PERMISSIONS"] == "0o640"
        assert settings["AIRFLOW__LOGGING__FILE_TASK_HANDLER_NEW_FOLDER_PERMISSIONS"] == "0o750"
    for path in [hub.root, *hub.root.rglob("*")]:
        assert path.name.endswith((".pub", "allowed_signers")) or not _others_can_read(path), path  # public keys
