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

import time

import pytest

from devkit.stack import logical_date_for
from samverkan.quality import assets
from samverkan.quality.reports import data_docs_page, reports_root
from tests.integration.offline import Traffic, assert_offline, chromium, settle
from tests.support.standalone import NIGHT, Standalone, browser_wait, log_in, screenshot, start_standalone

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ARTIFACTS = "offline"  # tests/artifacts/offline/
FEED = "police"
DAG_ID = f"samverkan_{FEED}"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> tuple[Standalone, str]:
    """``airflow standalone`` after one successful run of the police feed for NIGHT."""
    server = start_standalone(tmp_path_factory, request, "offline-hub")
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


def _styled_with_working_filters(driver) -> None:
    """Bootstrap styled it, bootstrap-table built its search boxes, Font Awesome drew its icons, and
    "Failed only" (the hub's datadocs.js, no inline script) hides the expectations that passed."""
    from selenium.webdriver.common.by import By

    browser_wait(driver, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".bootstrap-table .search input"))
    assert driver.execute_script("return getComputedStyle(document.querySelector('.navbar')).display") == "flex"
    icons = driver.execute_async_script(  # the solid icons (status ticks and crosses), from the hub's webfonts
        "const done = arguments[arguments.length - 1];"
        "document.fonts.ready.then(() => done([...document.fonts].filter("
        "f => f.family.includes('Font Awesome') && f.status === 'loaded').length));")
    assert icons >= 1
    visible = "return [...document.querySelectorAll('tr')].filter(r => r.offsetParent !== null).length"
    shown = driver.execute_script(visible)
    driver.find_element(By.XPATH, "//label[contains(., 'Failed Only')]").click()
    browser_wait(driver, 10).until(lambda d: d.execute_script(visible) < shown)
    driver.find_element(By.XPATH, "//label[contains(., 'Show All')]").click()
    browser_wait(driver, 10).until(lambda d: d.execute_script(visible) == shown)


def test_the_run_tab_shows_the_page_from_the_hub_only(run, browser):
    from selenium.webdriver.common.by import By

    server, run_id = run
    log_in(browser, server)
    Traffic().read(browser)  # from here on: the tab and the page in it
    browser.get(f"{server.url}/dags/{DAG_ID}/runs/{run_id}/plugin/samverkan-data-docs")
    frame = browser_wait(browser, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "iframe[src*='samverkan-reports']"))[0]
    browser.switch_to.frame(frame)
    try:
        settle(browser)
        traffic = Traffic().read(browser)
        assert not traffic.outside, traffic.outside
        _styled_with_working_filters(browser)
    finally:
        browser.switch_to.default_content()
    time.sleep(1)
    screenshot(browser, ARTIFACTS, "01-data-docs-tab")
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
    screenshot(browser, ARTIFACTS, "02-data-docs-file")
    written = sorted(reports_root(server.hub.data.root).rglob("*.html"))
    assert len(written) >= 2, written  # the night's page and the feed's list of nights
    for html in written:
        assert_offline(html, browser)
