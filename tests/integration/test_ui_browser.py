"""The Airflow UI of the embedded setup, in Debian's Chromium (headless, driven by Selenium).

Starts what ``scripts/demo --ui`` starts: the embedded hub (local partner sshd, generated
nights, SQLite) and ``airflow standalone`` on a free port on 127.0.0.1. Then, as a data engineer
would: log in with the generated admin password, see every feed DAG with its tags in the DAG
list, open each one's docs, trigger one from its page, wait for the run to succeed, and save
screenshots as test artifacts (tests/artifacts/ui/, or $SAMVERKAN_TEST_ARTIFACTS/ui/).

Airflow runs in multi-team mode here, one team per feed (issue 16): each feed DAG comes from a
DAG bundle of its own owned by the feed's team, and besides the admin there is a viewer in team
"transit". Airflow's SimpleAuthManager lets that viewer read samverkan_transit but not
samverkan_police, so the plugin's pages (guarded by ``requires_access_dag``) must refuse them the
police run's Data Docs tab and show them the transit one. The lägesbild DAG lives in a bundle of
no team (everyone who may log in may read it) and its report opens in the UI's Lägesbild entry
(issue 12), loading nothing from outside 127.0.0.1.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest

from devkit.embedded import EmbeddedHub
from devkit.stack import logical_date_for
from devkit.synthetic import write_nights
from samverkan.analysis.lagesbild import FIGURES, releases, report_dir
from samverkan.core.contracts import load_contracts
from tests.integration.offline import Traffic, chromium, open_and_record, settle
from tests.support.standalone import FEEDS, NIGHT, SIZES, Standalone, browser_wait, log_in, screenshot, start_standalone

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = "ui"  # tests/artifacts/ui/
TRIGGERED = "police"
READER, READER_TEAM = "transit_reader", "transit"  # a viewer who may read the transit feed only
LAGESBILD_DAG = "samverkan_lagesbild"
# The night the operator triggers in the UI: a file of its own, outside the look-back of the runs
# for NIGHT (two nights), so the trigger test processes it whatever ran before it.
TRIGGER_NIGHT = NIGHT - timedelta(days=5)


@pytest.fixture(scope="module")
def standalone(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Standalone:
    return start_standalone(tmp_path_factory, request, "ui-hub", _one_team_per_feed)


def _one_team_per_feed(hub: EmbeddedHub) -> dict[str, str]:
    """Airflow's multi-team mode: a team per feed owning a DAG bundle with that feed's DAG only, the
    lägesbild in a bundle of no team, and a viewer in the transit team (SimpleAuthManager users)."""
    bundles = [_bundle(hub, "hub", "samverkan_lagesbild.py", (REPO / "dags" / "samverkan_lagesbild.py").read_text())]
    for feed in FEEDS:
        hub.airflow("teams", "create", feed, capture=True)
        bundles.append(_bundle(hub, f"feed-{feed}", f"samverkan_{feed}.py", FEED_DAG_FILE.format(feed=feed), team=feed))
    return {"AIRFLOW__CORE__MULTI_TEAM": "True",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"admin:admin,{READER}:viewer:{READER_TEAM}",
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(bundles)}


FEED_DAG_FILE = '''"""The Airflow DAG of the {feed} feed alone, in its team's bundle (tests/integration/test_ui_browser.py)."""

from samverkan.core.contracts import load_contracts
from samverkan.orchestration.feed_dags import build_feed_dag

samverkan_{feed} = build_feed_dag(load_contracts()["{feed}"])
'''


def _bundle(hub: EmbeddedHub, name: str, file: str, text: str, team: str | None = None) -> dict:
    """A local DAG bundle of one file (``team``: the team owning it), as ``dag_bundle_config_list`` lists it."""
    folder = hub.root / "bundles" / name
    folder.mkdir(parents=True)
    (folder / file).write_text(text)
    return {"name": name, "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": str(folder)}, "team_name": team}


@pytest.fixture(scope="module")
def browser(standalone):
    """The admin's browser, logged in: headless Chromium contained to this machine, its network log kept."""
    driver = chromium()
    try:
        log_in(driver, standalone)
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def feed_runs(standalone) -> dict[str, str]:
    """A successful run of the police and of the transit feed for NIGHT, each with its manifest;
    both teams' DAGs really run."""
    api, runs = standalone.api(), {}
    for feed in (TRIGGERED, READER_TEAM):
        dag_id = f"samverkan_{feed}"
        api.unpause(dag_id)
        runs[feed] = api.trigger(dag_id, logical_date_for(NIGHT, feed))
    states = api.wait_for_runs([(f"samverkan_{f}", r) for f, r in runs.items()], timeout=400, poll=2)
    assert set(states.values()) == {"success"}, (states, standalone.log.read_text()[-3000:])
    return runs


@pytest.fixture(scope="module")
def lagesbild(standalone, feed_runs) -> Path:
    """The lägesbild release the lägesbild DAG builds in Airflow over the nights just published."""
    api = standalone.api()
    api.unpause(LAGESBILD_DAG)
    run_id = api.trigger(LAGESBILD_DAG, datetime.now(UTC))
    state = api.wait_for_runs([(LAGESBILD_DAG, run_id)], timeout=400, poll=2)[(LAGESBILD_DAG, run_id)]
    assert state == "success", standalone.log.read_text()[-3000:]
    built = releases(report_dir(standalone.hub.data))
    assert built, report_dir(standalone.hub.data)
    return built[-1]


@pytest.fixture
def fresh_browser():
    """Another person's browser: a session of its own (no cookie, no token)."""
    driver = chromium()
    yield driver
    driver.quit()


def _enter_date(driver, field, night: date) -> None:
    """Type the night into the form's date field as a user would (the field's order follows the
    browser's locale); if the typed order was not the field's, set it the way React listens for."""
    field.click()
    field.send_keys(night.strftime("%d%m%Y"))
    if field.get_attribute("value") != night.isoformat():
        driver.execute_script(
            "const set = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set;"
            "set.call(arguments[0], arguments[1]);"
            "arguments[0].dispatchEvent(new Event('input', {bubbles: true}));"
            "arguments[0].dispatchEvent(new Event('change', {bubbles: true}));", field, night.isoformat())
    assert field.get_attribute("value") == night.isoformat()


def test_ui_login_dags_docs_trigger_and_success(standalone, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as EC

    wait = browser_wait(browser)

    # The DAG list, filtered on the ingest tag: every feed DAG with its tags.
    browser.get(standalone.url + "/dags?tags=ingest")
    for feed in FEEDS:
        wait.until(EC.presence_of_element_located((By.LINK_TEXT, f"samverkan_{feed}")))
    listing = browser.find_element(By.TAG_NAME, "body").text
    for feed, contract in load_contracts().items():
        for tag in ("ingest", f"feed:{feed}", f"partner:{contract.raw['partner']['id']}"):
            assert tag in listing, (feed, tag)
    screenshot(browser, ARTIFACTS, "01-dag-list")

    # Each DAG's docs: what the feed is and how personal columns are handled (from the contract).
    for feed, contract in load_contracts().items():
        browser.get(f"{standalone.url}/dags/samverkan_{feed}")
        wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, "button[aria-label='Dag Docs']"))).click()
        dialog = wait.until(lambda d: next((x for x in d.find_elements(By.CSS_SELECTOR, "[role=dialog]")
                                            if "Dag Documentation" in x.text), None))
        assert contract.title in dialog.text and "Personal data handling" in dialog.text, feed
        if feed == TRIGGERED:
            screenshot(browser, ARTIFACTS, "02-dag-docs")
        browser.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)

    # Trigger the police feed from its page (unpausing it on trigger), as an operator would.
    write_nights(standalone.hub.partners_root, [TRIGGER_NIGHT], {TRIGGERED: SIZES[TRIGGERED]}, 2027)
    api = standalone.api()
    dag_id = f"samverkan_{TRIGGERED}"
    before = {r["dag_run_id"] for r in api.runs(dag_id)}
    browser.get(f"{standalone.url}/dags/{dag_id}")
    wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, "button[aria-label='Trigger Dag']"))).click()
    dialog = wait.until(lambda d: next((x for x in d.find_elements(By.CSS_SELECTOR, "[role=dialog]")
                                        if f"Trigger Dag - {dag_id}" in x.text), None))
    _enter_date(browser, dialog.find_element(By.NAME, "element_night"), TRIGGER_NIGHT)
    # A paused DAG's dialog offers to unpause it on trigger; another test may have unpaused it already.
    paused = api.get(f"/api/v2/dags/{dag_id}")["is_paused"]
    unpause = dialog.find_elements(By.CSS_SELECTOR, "input[type=checkbox]:not([name])")
    assert bool(unpause) == paused, f"is_paused={paused}, unpause box shown: {bool(unpause)}"
    if unpause and not unpause[0].is_selected():
        browser.execute_script("arguments[0].click();", unpause[0])
    screenshot(browser, ARTIFACTS, "03-trigger-dialog")
    next(b for b in dialog.find_elements(By.TAG_NAME, "button") if b.text.strip() == "Trigger").click()

    deadline = time.monotonic() + 300
    while not (new := [r for r in api.runs(dag_id) if r["dag_run_id"] not in before and r["run_type"] == "manual"]):
        assert time.monotonic() < deadline, "the UI trigger created no run"
        time.sleep(1)
    run_id = new[0]["dag_run_id"]
    states = api.wait_for_runs([(dag_id, run_id)], timeout=300, poll=2)
    assert states[(dag_id, run_id)] == "success", standalone.log.read_text()[-3000:]
    tasks = {t["task_id"]: t["state"] for t in api.task_instances(dag_id, run_id) if t.get("map_index", -1) <= 0}
    for task_id in ("discover_files", "fetch_file", "process_file", "write_manifest"):
        assert tasks.get(task_id) == "success", tasks
    assert api.run(dag_id, run_id)["conf"].get("night") == TRIGGER_NIGHT.isoformat()
    manifests = [json.loads(p.read_text()) for p in standalone.hub.data.manifests(TRIGGERED).glob("*.json")]
    assert any(m.get("run_id") == run_id for m in manifests), "no manifest for the triggered run"
    published = standalone.hub.data.published / "incidents" / f"night={TRIGGER_NIGHT}" / f"source={TRIGGERED}"
    assert list(published.glob("*.parquet")), published

    # The UI shows the run as successful.
    browser.get(f"{standalone.url}/dags/{dag_id}/runs/{run_id}")
    wait.until(lambda d: "success" in d.find_element(By.TAG_NAME, "body").text.lower())
    screenshot(browser, ARTIFACTS, "04-run-success")
    browser.get(standalone.url + "/dags?tags=ingest")
    for feed in FEEDS:
        wait.until(EC.presence_of_element_located((By.LINK_TEXT, f"samverkan_{feed}")))
    time.sleep(1)  # let the last-run badges render
    shot = screenshot(browser, ARTIFACTS, "05-dag-list-after-run")
    assert shot.stat().st_size > 10_000


def _tab(server: Standalone, dag_id: str, run_id: str) -> str:
    """What a DAG run's "Data Docs" tab shows: the plugin's page for that run (plugins/samverkan_reports.py)."""
    return f"{server.url}/samverkan-reports/{dag_id}/runs/{quote(run_id, safe='')}"


def test_the_lagesbild_opens_in_its_airflow_ui_entry_from_the_hub_only(standalone, browser, lagesbild):
    """Issue 12: Browse → Lägesbild shows the newest release inside Airflow, figures inline, nothing remote."""
    from selenium.webdriver.common.by import By

    browser.get(standalone.url + "/")
    Traffic().read(browser)  # from here on: the entry and the report in it
    browser_wait(browser).until(lambda d: d.find_elements(By.CSS_SELECTOR, "button[aria-label='Browse']"))[0].click()
    browser_wait(browser).until(lambda d: d.find_elements(By.XPATH, "//a[@role='menuitem'][normalize-space(.)='Lägesbild']"))[0].click()
    browser_wait(browser).until(lambda d: d.current_url.endswith("/plugin/samverkan-lagesbild"))
    frame = browser_wait(browser, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "iframe[src*='samverkan-reports/lagesbild']"))[0]
    browser.switch_to.frame(frame)
    try:
        browser_wait(browser, 60).until(lambda d: d.find_elements(By.TAG_NAME, "h1"))
        settle(browser)
        assert browser.find_element(By.TAG_NAME, "h1").text == "Lägesbild: Gustav III:s torg och centrala Östersund"
        assert browser.execute_script("return document.title") == f"Lägesbild {lagesbild.name}"  # the newest release
        images = browser.execute_script(
            "return [...document.images].map(i => [i.src.slice(0, 22), i.complete ? i.naturalWidth : 0])")
    finally:
        browser.switch_to.default_content()
    figures = sorted((lagesbild / FIGURES).glob("*.png"))
    assert figures and len(images) == len(figures), (images, figures)
    assert all(src == "data:image/png;base64," and width > 0 for src, width in images), images
    time.sleep(1)
    screenshot(browser, ARTIFACTS, "06-lagesbild-tab")
    traffic = Traffic().read(browser)
    assert any("/samverkan-reports/lagesbild/" in u for u in traffic.requests), traffic.requests
    assert not traffic.outside, traffic.outside
    assert not traffic.failed, traffic.failed
    assert not traffic.blocked, traffic.blocked


def test_the_data_docs_tab_is_shown_only_to_who_may_read_the_feed(standalone, browser, feed_runs, fresh_browser):
    """Issue 16: a viewer of team "transit" sees the transit run's Data Docs tab and is refused the police
    run's (403, Airflow's own requires_access_dag deciding); without a login both are refused (401)."""
    from selenium.webdriver.common.by import By

    police, transit = (_tab(standalone, f"samverkan_{f}", feed_runs[f]) for f in (TRIGGERED, READER_TEAM))
    reader = fresh_browser
    for url in (police, transit):  # nobody logged in yet in this browser
        assert open_and_record(reader, url).statuses.get(url) == 401, url

    log_in(reader, standalone, READER)
    reader.get(standalone.url + "/dags")  # Airflow's own list already shows the reader their team's feed only
    listed = browser_wait(reader, 60).until(lambda d: {a.text for a in d.find_elements(By.CSS_SELECTOR, "a[href*='/dags/samverkan_']")})
    assert f"samverkan_{READER_TEAM}" in listed and f"samverkan_{TRIGGERED}" not in listed, listed
    denied = open_and_record(reader, police)
    assert denied.statuses.get(police) == 403, denied.statuses
    assert "Forbidden" in reader.find_element(By.TAG_NAME, "body").text
    screenshot(reader, ARTIFACTS, "07-reader-police-data-docs-denied")

    allowed = open_and_record(reader, transit)
    assert allowed.statuses.get(transit) == 200, allowed.statuses
    assert not allowed.failed and not allowed.outside, (allowed.failed, allowed.outside)
    assert reader.find_elements(By.CSS_SELECTOR, ".bootstrap-table"), reader.page_source[:2000]  # the GX page
    # The same tab as the reader opens it in the Airflow UI.
    reader.get(f"{standalone.url}/dags/samverkan_{READER_TEAM}/runs/{feed_runs[READER_TEAM]}/plugin/samverkan-data-docs")
    browser_wait(reader, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "iframe[src*='samverkan-reports']"))
    settle(reader)
    time.sleep(1)
    screenshot(reader, ARTIFACTS, "08-reader-transit-data-docs-tab")

    # The admin may read both: the police refusal is the team's, not a missing page.
    admin = open_and_record(browser, police)
    assert admin.statuses.get(police) == 200, admin.statuses
