"""The hub's pages load only the hub's own copies of their libraries (issue 18).

What GE's pages load is read from the installed Great Expectations templates, not written down
here, so a GE upgrade that changes a URL or a pinned hash turns these tests red.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

import pytest

from samverkan.quality import assets

pytestmark = pytest.mark.unit

LOCAL = "../../_assets/"  # a page at data_docs/<feed>/<night>/index.html


def _templates() -> Path:
    import great_expectations

    return Path(great_expectations.__file__).parent / "render" / "view" / "templates"


def _template_tags() -> list[str]:
    return [tag for p in sorted(_templates().glob("*.j2"))
            for tag in re.findall(r"<(?:script|link)\b[^>]*>", p.read_text(encoding="utf-8"))]


def _resource(tag: str) -> str | None:
    found = re.search(r"""(?:src|href)=["'](https?://[^"']+)""", tag)
    return found.group(1) if found else None


@pytest.fixture(scope="module")
def raw_page() -> str:
    """A Data Docs page as GE renders it: one failed and one passed expectation, masked values only."""
    from great_expectations.core.expectation_validation_result import (
        ExpectationSuiteValidationResult,
        ExpectationValidationResult,
    )
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration
    from great_expectations.render.renderer.page_renderer import ValidationResultsPageRenderer
    from great_expectations.render.view.view import DefaultJinjaPageView

    def check(kind: str, success: bool, **kwargs) -> ExpectationValidationResult:
        return ExpectationValidationResult(
            success=success, expectation_config=ExpectationConfiguration(type=kind, kwargs=kwargs),
            result={"element_count": 10, "unexpected_count": 0 if success else 2,
                    "unexpected_percent": 0 if success else 20, "missing_count": 0,
                    "partial_unexpected_list": [] if success else ["Aaaaa", "99"]})

    result = ExpectationSuiteValidationResult(
        success=False, suite_name="samverkan.police",
        results=[check("expect_column_values_to_be_in_set", False, column="roll", value_set=["vittne"]),
                 check("expect_column_values_to_not_be_null", True, column="diarienr")],
        statistics={"evaluated_expectations": 2, "successful_expectations": 1, "unsuccessful_expectations": 1,
                    "success_percent": 50.0},
        meta={"run_id": {"run_name": "police night 2026-11-20", "run_time": "2026-11-21T06:30:00Z"}})
    return DefaultJinjaPageView().render(ValidationResultsPageRenderer().render(result))


def _refs(html: str) -> list[str]:
    return re.findall(r"""<(?:script|link)\b[^>]*\s(?:src|href)=["']([^"']+)""", html)


# --- the copies are exactly what GE's pages load ---------------------------------------------


def test_every_resource_in_ge_templates_has_a_copy_and_no_copy_is_unused():
    in_templates = {url for tag in _template_tags() if (url := _resource(tag))}
    assert in_templates == set(assets.REMOTE)


def test_the_installed_versions_are_the_ones_the_urls_name():
    for url, (folder, _) in assets.REMOTE.items():
        installed = json.loads((assets.NODE_MODULES / folder / "package.json").read_text())["version"]
        pinned = re.search(r"[@/-](\d+(?:\.\d+){0,2})(?=/|\.min\.js|$)", url).group(1)  # vega@5 floats on a major
        assert installed == pinned or installed.startswith(pinned + "."), (url, installed)


def test_the_copies_are_byte_for_byte_what_ge_pins_with_integrity_hashes():
    pinned = [(tag, re.search(r'integrity="sha384-([^"]+)"', tag)) for tag in _template_tags()]
    checked = 0
    for tag, sri in pinned:
        if sri:
            folder, name = assets.REMOTE[_resource(tag)]
            digest = base64.b64encode(hashlib.sha384((assets.NODE_MODULES / folder / name).read_bytes()).digest())
            assert digest.decode() == sri.group(1), tag
            checked += 1
    assert checked == 2  # popper and bootstrap's script


def test_a_stylesheet_brings_the_files_it_loads(tmp_path):
    """Font Awesome's CSS loads its webfonts relative to itself: they are copied with it."""
    root = assets.copy_beside(tmp_path)
    stylesheets = list(root.rglob("*.css"))
    fonts = [ref for css in stylesheets for ref in assets._css_references(css)]
    assert any(f.endswith(".woff2") for f in fonts)
    for css in stylesheets:
        for ref in assets._css_references(css):
            assert (css.parent / ref).is_file(), (css, ref)


def test_copies_are_made_once_per_version(tmp_path, monkeypatch):
    root = assets.copy_beside(tmp_path)
    assert {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} == set(assets.asset_files())
    assert {p.stat().st_mode & 0o777 for p in root.iterdir()} == {root.stat().st_mode & 0o777}
    jquery = root / assets.local_path("https://code.jquery.com/jquery-3.7.1.min.js")
    jquery.write_text("changed")  # a package folder already there is left as it is, and nothing is copied
    monkeypatch.setattr(assets.shutil, "copyfile", lambda *a: pytest.fail(f"copied again: {a}"))
    assets.copy_beside(tmp_path)
    assert jquery.read_text() == "changed"
    assert not [p for p in root.iterdir() if p.name.startswith(".")]  # nothing half-built left behind


def test_a_missing_install_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr(assets, "NODE_MODULES", tmp_path)
    assets.asset_files.cache_clear()
    assets._slug.cache_clear()
    try:
        with pytest.raises(assets.AssetsMissing, match="scripts/setup"):
            assets.asset_files()
    finally:
        assets.asset_files.cache_clear()
        assets._slug.cache_clear()


# --- the page ------------------------------------------------------------------------------


def test_the_raw_page_reaches_outside_eighteen_ways(raw_page):
    """15 libraries and the logo (the 16 requests a browser makes), the dark-mode logo, the newsletter."""
    found = assets.problems(raw_page)
    assert len([p for p in found if p.startswith(("<script src=https://", "<link href=https://"))]) == 15
    assert len([p for p in found if "great-expectations-web-assets" in p]) == 2
    assert len([p for p in found if "newsletter" in p]) == 1
    assert len([p for p in found if "https://" in p]) == 18


def test_the_localised_page_loads_only_the_copies(raw_page, tmp_path):
    page = tmp_path / "data_docs" / "police" / "2026-11-20" / "index.html"
    html = assets.localise_beside(raw_page, page, tmp_path / "data_docs")
    assert html == assets.localise(raw_page, LOCAL)
    assert assets.problems(html) == []
    assert "greatexpectations.io" not in html and "amazonaws" not in html and "https://" not in html
    page.parent.mkdir(parents=True)
    page.write_text(html)
    refs = _refs(html)
    assert len(refs) == len(assets.REMOTE) - 1 + 1  # GE's 15 page resources (not index_page's .min.css) + datadocs.js
    for ref in refs:
        assert (page.parent / ref).is_file(), ref
    assert "integrity=" not in html and "crossorigin=" not in html


def test_the_policy_is_the_first_thing_in_head_and_allows_only_the_page_origin(raw_page):
    html = assets.localise(raw_page, LOCAL)
    head = html[html.index("<head>"):]
    first = re.search(r"<(?!head)[a-z]+[^>]*>", head).group(0)
    assert first.startswith('<meta http-equiv="Content-Security-Policy"')
    content = re.search(r'content="([^"]+)"', first).group(1)
    sources = {s for d in content.split(";") for s in d.split()[1:]}
    assert sources <= {"'self'", "'none'", "'unsafe-inline'", "data:"}, sources
    assert "script-src 'self';" in content and "frame-ancestors" not in content
    assert "frame-ancestors 'self'" in assets.policy(html, header=True)


def test_inline_styles_are_allowed_only_where_a_page_has_them():
    assert "'unsafe-inline'" not in assets.policy("<html><head></head><body><p>x</p></body></html>")
    assert "style-src 'self' 'unsafe-inline'" in assets.policy("<p style='color: red'>x</p>")
    assert "style-src 'self' 'unsafe-inline'" in assets.policy("<style>p {}</style>")


def test_ge_inline_code_moves_to_the_hub_script(raw_page):
    html = assets.localise(raw_page, LOCAL)
    assert "<script>" not in html and "onclick" not in html
    script = assets.OWN_SCRIPT.read_text()
    buttons = re.findall(r'data-samverkan-click="(\w+)"', html)
    assert sorted(buttons) == ["hideSucceededValidations", "showAllValidations"]
    for name in buttons:
        assert f"{name}: function" in script
    assert html.count(assets.OWN_SCRIPT.name) == 1


def test_a_page_re_served_under_another_prefix_points_there_and_stays_one_policy(raw_page):
    served = "/samverkan-reports/_assets/"
    assert assets.localise(assets.localise(raw_page, LOCAL), served) == assets.localise(raw_page, served)
    again = assets.localise(assets.localise(raw_page, served), served)
    assert again.count("Content-Security-Policy") == 1
    assert all(r.startswith(served) for r in _refs(again))


def test_the_base_must_be_an_assets_folder(raw_page):
    with pytest.raises(ValueError, match="_assets/"):
        assets.localise(raw_page, "../../static/")


@pytest.mark.parametrize("extra, named", [
    ('<script src="https://cdn.example.org/new.js"></script>', "https://cdn.example.org/new.js"),
    ('<link rel="stylesheet" href="//fonts.example.org/f.css">', "//fonts.example.org/f.css"),
    ("<script>fetch('x')</script>", "inline <script>"),
    ('<img src="https://img.example.org/e.png">', "https://img.example.org/e.png"),
    ('<img srcset="a.png 1x, https://img.example.org/b.png 2x">', "https://img.example.org/b.png"),
    ('<div style="background: url(https://img.example.org/c.png)"></div>', "url(https://img.example.org/c.png)"),
    ("<style>@import 'https://css.example.org/d.css';</style>", "@import https://css.example.org/d.css"),
    ('<button onmouseover="go()">x</button>', "onmouseover"),
    ('<a href="javascript:go()">x</a>', "javascript:go()"),
    ('<a href="https://greatexpectations.io/">GX</a>', "https://greatexpectations.io/"),
    ('<meta http-equiv="refresh" content="0; url=https://example.org/">', "<meta refresh>"),
])
def test_anything_else_reaching_outside_is_refused_by_name(raw_page, extra, named):
    with pytest.raises(assets.NotOffline) as refused:
        assets.localise(raw_page.replace("</body>", extra + "</body>"), LOCAL)
    assert named in str(refused.value)


def test_what_stays_in_the_page_is_not_a_request():
    assert assets.problems('<img src="data:image/png;base64,AAAA"><a href="#s1">x</a><a href="../n/">y</a>'
                           '<style>p { background: url(../x.png) }</style>') == []


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root where the reports wrote one night of the guards feed (a file missing a column)."""
    from samverkan.core.contracts import load_contracts
    from samverkan.ingest.pipeline import load_suites
    from samverkan.quality import reports
    from samverkan.quality.validation import EXPECTATIONS_DIR

    root = tmp_path_factory.mktemp("data")
    contract = load_contracts()["guards"]
    file = {"name": "vaktrapport_2026-11-20.csv", "night": "2026-11-20", "sha256": "cd" * 32, "status": "rejected",
            "reason": "missing required column(s) ingripande", "rows_received": 0}
    record = reports.file_validation(contract, load_suites(contract, EXPECTATIONS_DIR), file, [], {},
                                     missing_columns=["ingripande"])
    reports.store_file_validation(root, record)
    reports.render_night(root, "guards", "2026-11-20", {"run_id": "r"})
    return root


def test_every_page_the_reports_write_loads_only_copies_beside_it(data_root):
    """What render_night writes: the night's page and the feed's list of nights, both with the policy."""
    from samverkan.quality import reports

    night = reports.data_docs_page(data_root, "guards", "2026-11-20")
    written = sorted(reports.reports_root(data_root).rglob("*.html"))
    assert night in written and night.parent.with_name("index.html") in written
    for page in written:
        html = page.read_text(encoding="utf-8")
        assert assets.problems(html) == [] and 'http-equiv="Content-Security-Policy"' in html, page
        for ref in _refs(html):
            assert (page.parent / ref).is_file(), (page, ref)
    assert len(_refs(night.read_text(encoding="utf-8"))) == len(assets.REMOTE)  # GE's 15 + datadocs.js


def test_the_plugin_serves_the_page_and_its_copies_under_its_prefix_with_the_policy(data_root, monkeypatch):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from samverkan.orchestration.webreports import create_app

    monkeypatch.setenv("SAMVERKAN_DATA_ROOT", str(data_root))
    server = FastAPI()
    server.mount("/samverkan-reports", create_app(auth=False))  # as the Airflow API server mounts the plugin
    client = TestClient(server)
    page = client.get("/samverkan-reports/samverkan_guards/nights/2026-11-20/")
    assert page.status_code == 200 and "missing: ingripande" in page.text
    assert page.headers["Content-Security-Policy"] == assets.policy(page.text, header=True)
    assert assets.problems(page.text) == []
    refs = _refs(page.text)
    assert len(refs) == len(assets.REMOTE) and all(r.startswith("/samverkan-reports/_assets/") for r in refs)
    for ref in refs:
        served = client.get(ref)
        assert served.status_code == 200, ref
        assert served.content == assets.asset_files()[ref.split("/_assets/", 1)[1]].read_bytes()
        assert served.headers["content-type"].startswith("text/css" if ref.endswith(".css") else "text/javascript")
    fonts = [rel for rel in assets.asset_files() if rel.endswith(".woff2")]
    assert fonts and client.get(f"/samverkan-reports/_assets/{fonts[0]}").headers["content-type"] == "font/woff2"
    listing = client.get("/samverkan-reports/")
    assert "frame-ancestors 'self'" in listing.headers["Content-Security-Policy"]
    for outside in ("../../../etc/passwd", "..%2F..%2Fpyproject.toml", "jquery@3.7.1/package.json", "nothing.js"):
        assert client.get(f"/samverkan-reports/_assets/{outside}").status_code == 404, outside


def test_a_leak_scan_skips_untouched_copies_only(tmp_path):
    """The copies' authors' names would match synthetic people; a value written into one is still found."""
    from devkit.leakscan import PersonalValues, scan

    root = assets.copy_beside(tmp_path)
    licence = next(p for p in root.glob("bootstrap-dark@*/LICENSE"))
    author = re.search(r"Copyright \(c\) [\d-]+ (.+)", licence.read_text()).group(1).strip()
    values = PersonalValues(names={author}, personnummer_as_written={"19121212-1213"})
    assert assets.is_vendored_copy(licence)
    assert scan([tmp_path], values) == []
    planted = root / "jquery@3.7.1" / "notes.txt"
    planted.write_text("19121212-1213")
    with licence.open("a") as f:
        f.write(f"\n{author}\n")
    assert not assets.is_vendored_copy(licence) and not assets.is_vendored_copy(planted)
    assert {f.path for f in scan([tmp_path], values)} == {licence, planted}
