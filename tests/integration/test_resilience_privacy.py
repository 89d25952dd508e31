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
        # The old key is gone from everything the hub keeps, env.sh included.
        for path in hub.root.rglob("*"):
            if path.is_file() and path.stat().st_size < 10_000_000:
                assert old_key.hex() not in path.read_bytes().decode("latin-1"), path
