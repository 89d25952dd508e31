"""The lägesbild from end to end on the real pipeline's output: synthetic partner nights (people
with names, personnummer, phone numbers), processed and pseudonymised by the pipeline, then the
report built from the published Parquet.

Checked: no personal value of the inputs in the HTML, the figures or the released numbers (leak
scan, shown to find one that is put there); the page makes no network request in Chromium and is
saved as a screenshot (tests/artifacts/lagesbild/); the UI route serves it; a delivery to an
agreement that grants it carries it and the disclosure register lists it.
"""

from __future__ import annotations

import hashlib
import os
from datetime import date, timedelta
from pathlib import Path

import pytest

from devkit.leakscan import scan
from devkit.synthetic import Population, write_nights
from samverkan.analysis.lagesbild import DATASET, build_report, report_dir
from samverkan.core.settings import DATA_ROOT_ENV
from samverkan.sharing import delivery
from samverkan.sharing.agreements import load_agreements
from samverkan.sharing.recipient_pseudonyms import RecipientPseudonyms
from tests.integration.offline import assert_offline, chromium
from tests.integration.resilience_support import Hub

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("SAMVERKAN_TEST_ARTIFACTS") or REPO / "tests" / "artifacts") / "lagesbild"
FIRST = date(2026, 11, 9)  # a Monday: two whole weeks
NIGHTS = [FIRST + timedelta(days=d) for d in range(14)]
SIZES = {"police": 40, "transit": 20, "guards": 15}


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    from samverkan.quality.validation import Validator

    root = tmp_path_factory.mktemp("lagesbild-e2e")
    local = Hub.create(root / "data", Validator(), os.urandom(32))
    truths = write_nights(root / "partners", NIGHTS, SIZES, 12, population=Population(12, 600))
    local.publish(truths)
    paths = local.paths
    values = truths[0].personal_values.merge(*(t.personal_values for t in truths[1:]))
    report = build_report(paths.published, report_dir(paths), as_of=NIGHTS[-1], weeks=1)
    return paths, values, report


def png_texts(figures: list[Path], into: Path) -> Path:
    """What a PNG says in words: its text chunks (the pixels are drawn labels and counts; the
    compressed pixel bytes would match three-letter names by chance, so they are not scanned)."""
    from PIL import Image

    lines = []
    for figure in figures:
        with Image.open(figure) as image:
            lines += [f"{figure.name}: {k}: {v}" for k, v in image.text.items()]
    into.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return into


def test_the_report_holds_no_personal_value(hub, tmp_path):
    paths, values, report = hub
    assert not values.is_empty() and report.figures
    assert scan([report.html, report.data, png_texts(report.figures, tmp_path / "png.txt")], values) == []
    # The scan is not blind: a name of the inputs put into a copy of the page is found.
    planted = tmp_path / "planted.html"
    name = sorted(values.names)[0]
    planted.write_text(report.html.read_text(encoding="utf-8").replace("</body>", f"<p>{name}</p></body>"))
    assert scan([planted], values)


def test_the_page_makes_no_network_request_and_is_looked_at(hub):
    _, _, report = hub
    driver = chromium("1400,3000")
    try:
        traffic = assert_offline(report.html, driver)
        assert all(u.startswith(("file:", "data:")) for u in traffic.requests)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        assert driver.save_screenshot(str(ARTIFACTS / "lagesbild.png"))
        assert "Lägesbild" in driver.title
    finally:
        driver.quit()


def test_the_ui_route_serves_the_newest_release(hub, monkeypatch):
    from fastapi.testclient import TestClient

    from samverkan.orchestration.webreports import create_app

    paths, _, report = hub
    monkeypatch.setenv(DATA_ROOT_ENV, str(paths.root))
    client = TestClient(create_app(auth=False))
    page = client.get("/lagesbild/")
    assert page.status_code == 200 and page.text == report.html.read_text(encoding="utf-8")
    assert "default-src" in page.headers["content-security-policy"]
    assert client.get(f"/lagesbild/{report.release}/").status_code == 200
    assert client.get("/lagesbild/..%2F..%2Fetc/").status_code == 404


def test_a_delivery_carries_the_report_and_the_register_lists_it(hub):
    paths, _, report = hub
    agreement = load_agreements()["guards"]
    assert agreement.grant(DATASET) is not None
    pseudonyms = RecipientPseudonyms(os.urandom(32), agreement.id, agreement.pseudonym_epoch)
    done = delivery.deliver(agreement, paths, NIGHTS[-1], pseudonyms, "t")
    event = delivery.register_for(paths).events()[-1]
    assert event["manifest_sha256"] == done["manifest_sha256"] and DATASET in event["datasets"]
    shipped = {f["name"]: f for f in event["files"] if f["dataset"] == DATASET}
    assert "lagesbild.html" in shipped and any(n.endswith(".png") for n in shipped)
    sha = hashlib.sha256(report.html.read_bytes()).hexdigest()
    assert shipped["lagesbild.html"]["sha256"] == sha
