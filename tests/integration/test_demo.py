"""The demo (scripts/demo) end to end at its smallest: one week of history, two nights through the
feed DAGs, every recipient's delivery DAG, one pull over SFTP, and where to look printed at the end.

Checked from the recipients' side with independent means (hashlib over the files they hold,
the register read through DuckDB, headless Chromium's network log, the leak scan against every
personal value the demo generated), not with the demo's own verification.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
from dataclasses import fields
from pathlib import Path

import pytest

from devkit import demo
from devkit.embedded import EmbeddedHub
from devkit.leakscan import PersonalValues, scan
from samverkan.connectors.sshd import sshd_available
from samverkan.sharing.delivery import register_for
from samverkan.sharing.outbox import MANIFEST

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class Run:
    def __init__(self, root: Path, code: int, out: str, values: PersonalValues):
        self.root, self.code, self.out, self.values = root, code, out, values
        self.hub = EmbeddedHub(root)

    def held(self, recipient: str) -> Path:
        """Where the recipient holds its deliveries: pulled into recipients/<r>/, or its push inbox."""
        if recipient == "police":
            return self.root / "recipients" / "police" / "inbox" / "samverkan"
        return self.root / "recipients" / recipient

    def registered(self, recipient: str) -> dict[str, str]:
        """delivery_id -> manifest SHA-256 of the recipient's registered deliveries."""
        con = register_for(self.hub.data).connect()
        rows = con.execute(
            "SELECT delivery_id, manifest_sha256 FROM disclosures WHERE event = 'delivery' AND recipient = ?",
            [recipient],
        ).fetchall()
        return dict(rows)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Run:
    if not sshd_available() or os.geteuid() != 0:
        pytest.skip("needs OpenSSH sshd and root (the pull service chroots recipients)")
    root = tmp_path_factory.mktemp("demo") / "hub"
    values, out = PersonalValues(), io.StringIO()
    with contextlib.redirect_stdout(out):
        code = demo.main(["--root", str(root), "--weeks", "1"], collect=values)
    return Run(root, code, out.getvalue(), values)


def test_the_demo_exits_cleanly(run):
    assert run.code == 0, run.out[-4000:]


@pytest.mark.parametrize("recipient, mode", [("municipality", "pull"), ("police", "push")])
def test_the_recipient_holds_every_registered_delivery_as_its_manifest_says(run, recipient, mode):
    registered = run.registered(recipient)
    last_night = json.loads((run.root / "history_truth.json").read_text())["last_night"]
    assert last_night in registered, sorted(registered)
    held = sorted(p.name for p in run.held(recipient).iterdir() if p.is_dir())
    assert held == sorted(registered)
    for night, manifest_sha in registered.items():
        folder = run.held(recipient) / night
        assert hashlib.sha256((folder / MANIFEST).read_bytes()).hexdigest() == manifest_sha
        manifest = json.loads((folder / MANIFEST).read_text())
        assert {"incidents.parquet", "involvements.parquet"} <= {f["name"] for f in manifest["files"]}
        for f in manifest["files"]:
            assert hashlib.sha256((folder / f["name"]).read_bytes()).hexdigest() == f["sha256"], (folder, f)


def test_the_register_records_how_each_was_handed_over(run):
    con = register_for(run.hub.data).connect()
    modes = dict(con.execute("SELECT DISTINCT recipient, mode FROM disclosures WHERE event = 'delivery'").fetchall())
    assert modes == {"municipality": "pull", "guards": "pull", "police": "push", "transit": "push"}
    pushed = con.execute("SELECT destination FROM disclosures WHERE recipient = 'police'").fetchall()
    assert all(d.startswith("sftp://") and "/inbox/samverkan/" in d for (d,) in pushed), pushed


def test_the_ending_names_where_to_look(run):
    night = max(run.registered("municipality"))
    for path in (
        run.held("municipality") / night,
        run.held("police") / night,
        run.held("police"),
        run.root / "data" / "register",
    ):
        assert str(path) in run.out, path
    assert "NOT VERIFIED" not in run.out


def test_every_html_page_the_demo_wrote_stays_offline(run):
    from tests.integration.offline import assert_offline, chromium

    pages = sorted(run.root.rglob("*.html"))
    assert any("/recipients/municipality/" in str(p) for p in pages), pages
    assert any(p.name == "lagesbild.html" and "/reports/" in str(p) for p in pages), pages
    driver = chromium()
    try:
        for page in pages:
            assert_offline(page, driver)
    finally:
        driver.quit()


def test_no_generated_personal_value_reaches_a_recipient(run, tmp_path):
    """Every file the recipients hold; a figure (PNG) by its text chunks, as in the lägesbild's own
    test: its compressed pixels match three-letter names by chance."""
    from tests.integration.test_lagesbild_report import png_texts

    assert sum(len(getattr(run.values, f.name)) for f in fields(PersonalValues)) > 100, "nothing was collected"
    held = [p for p in (run.root / "recipients").rglob("*") if p.is_file()]
    figures = [p for p in held if p.suffix == ".png"]
    assert any(p.suffix == ".parquet" for p in held) and figures, held
    others = [p for p in held if p.suffix != ".png"]
    findings = scan([*others, png_texts(figures, tmp_path / "png.txt")], run.values)
    assert findings == [], findings[:10]
