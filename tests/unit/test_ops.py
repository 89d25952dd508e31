"""The operational commands that need no running Airflow: rotate-key, add-partner, check-contract,
and how backfill maps nights to runs. (``backfill`` against a running stack is tested in
tests/integration/test_celery_stack.py.)"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import shutil
import stat
from datetime import date
from pathlib import Path

import pytest

from samverkan.core.contracts import SCHEMAS_DIR, load_contracts
from samverkan.ops import commands as ops
from samverkan.privacy.pseudonymise import Pseudonymiser, key_from_secret

pytestmark = pytest.mark.unit



def test_password_from_plain_file_or_the_simple_auth_managers_json(tmp_path):
    import argparse

    plain, generated = tmp_path / "pw", tmp_path / "passwords.json"
    plain.write_text("s3cret-for-test\n")
    generated.write_text('{"admin": "other-for-test"}')
    assert ops._password(argparse.Namespace(password_file=plain, user="admin")) == "s3cret-for-test"
    assert ops._password(argparse.Namespace(password_file=generated, user="admin")) == "other-for-test"


# --- rotate-key ------------------------------------------------------------------------------------


def test_rotate_key_changes_every_pseudonym_and_destroys_the_old_key(tmp_path):
    secret_file = tmp_path / "keys" / "pseudonym_secret"
    ops.rotate_key(secret_file)  # a first key
    old = secret_file.read_text().strip()
    before = Pseudonymiser(key_from_secret(old))

    rotation = ops.rotate_key(secret_file)
    new = secret_file.read_text().strip()
    after = Pseudonymiser(key_from_secret(new))
    assert new != old and len(bytes.fromhex(new)) == 32
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert rotation.old_fingerprint == ops.key_fingerprint(old) != rotation.new_fingerprint
    assert rotation.kept_previous is None
    assert not any(old in p.read_text() for p in secret_file.parent.iterdir() if p.is_file()), "old key left behind"

    # Linkage: a person's pseudonym is the HMAC under the key the file held (computed here by
    # hand, so the hex key really is used as its 32 bytes), and another one under the new key.
    person = "197001011234"
    assert before.pseudonym("person", person) == _hmac_pseudonym(old, "person", person)
    assert after.pseudonym("person", person) == _hmac_pseudonym(new, "person", person)
    assert before.pseudonym("person", person) != after.pseudonym("person", person)

    log = (secret_file.parent / "pseudonym_secret.rotations").read_text().splitlines()
    assert len(log) == 2 and log[-1].endswith(f"{rotation.old_fingerprint} -> {rotation.new_fingerprint}")
    assert old not in "\n".join(log) and new not in "\n".join(log)


def _hmac_pseudonym(hex_key: str, domain: str, value: str) -> str:
    """HMAC-SHA256 over domain, unit separator, value; first 16 bytes in lower-case base32."""
    digest = hmac.new(bytes.fromhex(hex_key), f"{domain}\x1f{value}".encode(), hashlib.sha256).digest()
    return base64.b32encode(digest[:16]).decode().rstrip("=").lower()


def test_rotate_key_can_keep_the_previous_key_for_a_planned_reprocessing(tmp_path):
    secret_file = tmp_path / "pseudonym_secret"
    ops.rotate_key(secret_file)
    old = secret_file.read_text()
    rotation = ops.rotate_key(secret_file, keep_previous=True)
    assert rotation.kept_previous is not None and rotation.kept_previous.read_text() == old
    assert stat.S_IMODE(rotation.kept_previous.stat().st_mode) == 0o600


def test_rotate_key_command_for_compose_replaces_the_key_file_the_tasks_read(tmp_path, capsys):
    from samverkan.ops import secrets as stack
    secrets_dir = tmp_path / "secrets"
    files = stack.write_compose_secrets(secrets_dir)
    old = files.value("pseudonym_secret")
    env_before = files.env_file.read_text()
    assert ops.main(["rotate-key", "--secrets-dir", str(secrets_dir)]) == 0
    # The tasks read keys/pseudonym_secret afresh (the folder is mounted): the env file stays as it was.
    assert files.value("pseudonym_secret") != old and files.env_file.read_text() == env_before
    assert stat.S_IMODE(files.path("pseudonym_secret").stat().st_mode) == 0o600
    out = capsys.readouterr().out
    assert old not in out and files.value("pseudonym_secret") not in out
    # Without a key file and without --init, nothing is created.
    with pytest.raises(SystemExit):
        ops.main(["rotate-key", "--secret-file", str(tmp_path / "missing")])
    with pytest.raises(SystemExit, match="not a secrets directory"):
        ops.main(["rotate-key", "--secrets-dir", str(tmp_path / "mistyped")])
    assert not (tmp_path / "mistyped").exists()
    assert not (tmp_path / "missing").exists()


# --- add-partner -----------------------------------------------------------------------------------


@pytest.fixture
def schemas(tmp_path) -> Path:
    """A copy of the contracts: the test adds a partner there, never in schemas/."""
    target = tmp_path / "schemas"
    shutil.copytree(SCHEMAS_DIR, target)
    return target


def test_add_partner_writes_a_contract_that_loads_builds_a_dag_and_has_its_suite(schemas, tmp_path):
    expectations = tmp_path / "expectations"
    new = ops.add_partner("bibliotek", "Östersunds bibliotek", schemas_dir=schemas, expectations_dir=expectations)
    assert new.contract_path == schemas / "bibliotek.yaml"
    assert new.dag_id == "samverkan_bibliotek" and new.connection_id == "sftp_bibliotek"
    assert [p.name for p in new.suites] == ["bibliotek.json"]
    contracts = load_contracts(schemas)
    assert set(contracts) == set(load_contracts()) | {"bibliotek"}
    contract = contracts["bibliotek"]
    assert contract.night_of("bibliotek_20261120.csv") == date(2026, 11, 20)
    assert {c.name for c in contract.personal_columns()} == {"personnummer", "beskrivning"}
    # check-contract agrees, and fails once the contract no longer matches its suite.
    assert ops.main(["check-contract", str(new.contract_path), "--expectations-dir", str(expectations)]) == 0
    text = new.contract_path.read_text().replace("Skadegörelse, Övrigt]", "Skadegörelse, Stöld, Övrigt]")
    new.contract_path.write_text(text.replace("        Övrigt: other", "        Stöld: theft\n        Övrigt: other"))
    assert ops.main(["check-contract", str(new.contract_path), "--expectations-dir", str(expectations)]) == 2
    assert ops.main(["check-contract", str(new.contract_path), "--expectations-dir", str(expectations),
                     "--write-suites"]) == 0


def test_add_partner_refuses_bad_ids_existing_feeds_and_leaves_nothing_behind(schemas, tmp_path):
    expectations = tmp_path / "expectations"
    before = sorted(p.name for p in schemas.iterdir())
    for bad in ("Bibliotek", "b", "1lib", "lib-rary", "../x"):
        with pytest.raises(ValueError):
            ops.add_partner(bad, "Name", schemas_dir=schemas, expectations_dir=expectations)
    with pytest.raises(FileExistsError):
        ops.add_partner("police", "Polisen", schemas_dir=schemas, expectations_dir=expectations)
    with pytest.raises(ValueError):
        ops.add_partner("bibliotek", "Name: with colon", schemas_dir=schemas, expectations_dir=expectations)
    assert sorted(p.name for p in schemas.iterdir()) == before
    assert not expectations.exists() or not any(expectations.iterdir())


def test_check_contract_names_a_broken_field(schemas, tmp_path):
    new = ops.add_partner("bibliotek", "Östersunds bibliotek", schemas_dir=schemas, expectations_dir=tmp_path / "e")
    new.contract_path.write_text(new.contract_path.read_text().replace("key: handelse_id", "key: no_such_column"))
    with pytest.raises(Exception, match="no_such_column"):
        ops.check_contract(new.contract_path)


def test_a_key_from_the_earlier_layout_is_moved_into_keys_unchanged(tmp_path):
    """Secrets made before keys/ kept the key beside the other values: the same key moves, so
    pseudonyms stay stable; rotate-key finds it there too."""
    from samverkan.ops import secrets as stack

    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir(mode=0o700)
    earlier = secrets.token_hex(32)
    (secrets_dir / "pseudonym_secret").write_text(earlier + "\n")
    files = stack.ensure_secrets(secrets_dir, [])
    assert files.value("pseudonym_secret") == earlier and not (secrets_dir / "pseudonym_secret").exists()
    (secrets_dir / "keys" / "pseudonym_secret").rename(secrets_dir / "pseudonym_secret")
    assert ops.main(["rotate-key", "--secrets-dir", str(secrets_dir)]) == 0
    assert files.value("pseudonym_secret") != earlier and not (secrets_dir / "pseudonym_secret").exists()


def test_the_secrets_command_makes_what_compose_mounts_and_keeps_what_exists(tmp_path, capsys):
    from samverkan.ops import secrets as stack

    where = tmp_path / "secrets"
    assert ops.main(["secrets", "--dir", str(where)]) == 0
    files = stack.SecretFiles(where.resolve())
    key = files.value("pseudonym_secret")
    assert files.signing_key.is_file() and files.allowed_signers.is_file() and files.env_file.is_file()
    out = capsys.readouterr().out
    assert "allowed_signers" in out and "chown -R 50000:0" in out and key not in out
    assert ops.main(["secrets", "--dir", str(where)]) == 0
    assert files.value("pseudonym_secret") == key
