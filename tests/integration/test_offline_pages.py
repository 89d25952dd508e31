"""The Data Docs pages load nothing from outside the hub, in the Airflow UI and from disk (issue 18).

One real run of the police feed in ``airflow standalone`` (the embedded hub, as ``scripts/demo
--ui``) writes a Data Docs page. Headless Chromium, contained to this machine (see
``tests/integration/offline.py``), then opens it as an engineer does, in the run's "Data Docs" tab,
and as a file; every request it made must have gone to 127.0.0.1 or the file system, every load
must have succeeded, no policy violation may be reported, the plugin must send the policy as a
header, and the page must be styled with its filters working. Screenshots go to
tests/artifacts/offline/ (or $SAMVERKAN_TEST_ARTIFACTS/offline/).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from devkit.embedded import EmbeddedHub
from samverkan.connectors.sshd import sshd_available
from samverkan.quality import assets
from samverkan.quality.reports import data_docs_page, reports_root
from devkit.stack import free_port, logical_date_for
from tests.integration.offline import CHROMEDRIVER, CHROMIUM, Traffic, assert_offline, chromium, settle
from tests.integration.test_ui_browser import NIGHT, SIZES, Standalone

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("SAMVERKAN_TEST_ARTIFACTS") or REPO / "tests" / "artifacts") / "offline"
FEED = "police"
DAG_ID = f"samverkan_{FEED}"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> tuple[Standalone, str]:
    """``airflow standalone`` after one successful run of the police feed for NIGHT."""
    missing = [n for n, ok in (("chromium", CHROMIUM), ("chromium-driver", CHROMEDRIVER),
                               ("openssh-server", sshd_available())) if not ok]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (scripts/setup installs them)")
    from devkit.synthetic import write_nights

    hub = EmbeddedHub(tmp_path_factory.mktemp("offline-hub"))
    request.addfinalizer(hub.stop)
    write_nights(hub.partners_root, [NIGHT], SIZES, 2026)
    hub.start_servers()
    hub.migrate()
    server = Standalone(hub, free_port())
    request.addfinalizer(server.stop)
    server.wait_ready()
    api = server.api()
    api.unpause(DAG_ID)
    run_id = api.trigger(DAG_ID, logical_date_for(NIGHT, FEED))
    state = api.wait_for_runs([(DAG_ID, run_id)], timeout=300, poll=2)[(DAG_ID, run_id)]
    assert state == "success", server.log.read_text()[-3000:]
    return server, run_id


@pytest.fixture(scope="module")
def browser():
    driver = chromium()
    yield driver
    driver.quit()


def _screenshot(driver, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    assert driver.save_screenshot(str(path)), path
    print(f"screenshot: {path}")
    return path


def _wait(driver, condition, timeout: float = 60):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition)


def _log_in(driver, server: Standalone) -> None:
    from selenium.webdriver.common.by import By

    driver.get(server.url + "/")
    _wait(driver, lambda d: d.find_elements(By.NAME, "username"))[0].send_keys("admin")
    driver.find_element(By.NAME, "password").send_keys(server.password())
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    _wait(driver, lambda d: "/auth/login" not in d.current_url)


def _styled_with_working_filters(driver) -> None:
    """Bootstrap styled it, bootstrap-table built its search boxes, Font Awesome drew its icons, and
    "Failed only" (the hub's datadocs.js, no inline script) hides the expectations that passed."""
    from selenium.webdriver.common.by import By

    _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".bootstrap-table .search input"))
    assert driver.execute_script("return getComputedStyle(document.querySelector('.navbar')).display") == "flex"
    icons = driver.execute_async_script(  # the solid icons (status ticks and crosses), from the hub's webfonts
        "const done = arguments[arguments.length - 1];"
        "document.fonts.ready.then(() => done([...document.fonts].filter("
        "f => f.family.includes('Font Awesome') && f.status === 'loaded').length));")
    assert icons >= 1
    visible = "return [...document.querySelectorAll('tr')].filter(r => r.offsetParent !== null).length"
    shown = driver.execute_script(visible)
    driver.find_element(By.XPATH, "//label[contains(., 'Failed Only')]").click()
    _wait(driver, lambda d: d.execute_script(visible) < shown, timeout=10)
    driver.find_element(By.XPATH, "//label[contains(., 'Show All')]").click()
    _wait(driver, lambda d: d.execute_script(visible) == shown, timeout=10)


def test_the_run_tab_shows_the_page_from_the_hub_only(run, browser):
    from selenium.webdriver.common.by import By

    server, run_id = run
    _log_in(browser, server)
    Traffic().read(browser)  # from here on: the tab and the page in it
    browser.get(f"{server.url}/dags/{DAG_ID}/runs/{run_id}/plugin/samverkan-data-docs")
    frame = _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "iframe[src*='samverkan-reports']"))[0]
    browser.switch_to.frame(frame)
    try:
        settle(browser)
        traffic = Traffic().read(browser)
        assert not traffic.outside, traffic.outside
        _styled_with_working_filters(browser)
    finally:
        browser.switch_to.default_content()
    time.sleep(1)
    _screenshot(browser, "01-data-docs-tab")
    traffic.read(browser)
    page = [u for u in traffic.requests if f"/samverkan-reports/{DAG_ID}/runs/" in u]
    assert page, traffic.requests
    served_assets = [u for u in traffic.requests if "/samverkan-reports/_assets/" in u]
    assert len(served_assets) >= len(assets.REMOTE) - 1, served_assets  # the page's 15 + datadocs.js + fonts
    assert not traffic.outside, traffic.outside
    assert not traffic.failed, traffic.failed
    assert not traffic.blocked, traffic.blocked


def test_the_plugin_sends_the_policy_as_a_header(run):
    import urllib.request

    server, run_id = run
    token = server.api().token()
    request = urllib.request.Request(f"{server.url}/samverkan-reports/{DAG_ID}/runs/{run_id}",
                                     headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        html = response.read().decode()
        header = response.headers["Content-Security-Policy"]
    assert header == assets.policy(html, header=True)
    assert "frame-ancestors 'self'" in header and "script-src 'self';" in header
    assert assets.problems(html) == []


def test_the_written_page_and_every_html_file_beside_it_load_from_disk_only(run, browser):
    server, _ = run
    page = data_docs_page(server.hub.data.root, FEED, NIGHT.isoformat())
    traffic = assert_offline(page, browser)
    assert any(u.startswith("file://") and "/_assets/" in u for u in traffic.requests), traffic.requests
    _styled_with_working_filters(browser)
    browser.execute_script("window.scrollTo(0, 0)")
    _screenshot(browser, "02-data-docs-file")
    written = sorted(reports_root(server.hub.data.root).rglob("*.html"))
    assert len(written) >= 2, written  # the night's page and the feed's list of nights
    for html in written:
        assert_offline(html, browser)
