"""The Airflow UI of the embedded setup, in Debian's Chromium (headless, driven by Selenium).

Starts what ``scripts/demo --ui`` starts: the embedded hub (local partner sshd, generated
nights, SQLite) and ``airflow standalone`` on a free port on 127.0.0.1. Then, as a data engineer
would: log in with the generated admin password, see every feed DAG with its tags in the DAG
list, open each one's docs, trigger one from its page, wait for the run to succeed, and save
screenshots as test artifacts (tests/artifacts/ui/, or $SAMVERKAN_TEST_ARTIFACTS/ui/).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from samverkan.core.contracts import load_contracts
from devkit.embedded import EmbeddedHub
from samverkan.connectors.sshd import sshd_available
from devkit.stack import AirflowAPI, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
ARTIFACTS = Path(os.environ.get("SAMVERKAN_TEST_ARTIFACTS") or REPO / "tests" / "artifacts") / "ui"
FEEDS = sorted(load_contracts())
TRIGGERED = "police"
SIZES = {"police": 60, "transit": 30, "guards": 20}


# The night the operator enters in the trigger form. Well before last night: unpausing the DAG
# makes Airflow schedule a run for last night too, and that run must not take this night's file.
NIGHT = datetime.now(ZoneInfo("Europe/Stockholm")).date() - timedelta(days=20)


class Standalone:
    def __init__(self, hub: EmbeddedHub, port: int):
        self.hub, self.port = hub, port
        self.url = f"http://127.0.0.1:{port}"
        self.log = hub.root / "standalone.log"
        env = {**os.environ, **hub.env(),
               "AIRFLOW__API__HOST": "127.0.0.1", "AIRFLOW__API__PORT": str(port), "AIRFLOW__API__BASE_URL": self.url,
               "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
               "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port())}
        with self.log.open("ab") as out:
            self.process = subprocess.Popen([str(Path(sys.executable).parent / "airflow"), "standalone"], env=env,
                                            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True)

    @property
    def password_file(self) -> Path:
        return self.hub.airflow_home / "simple_auth_manager_passwords.json.generated"

    def password(self) -> str:
        return json.loads(self.password_file.read_text())["admin"]

    def api(self) -> AirflowAPI:
        # SQLite serialises writers: under load a read can wait on the scheduler for a while.
        return AirflowAPI(self.url, "admin", self.password(), timeout=120)

    def wait_ready(self, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        wanted = {f"samverkan_{feed}" for feed in FEEDS}
        last = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"airflow standalone exited ({self.process.returncode}):\n{self.log.read_text()[-3000:]}")
            try:
                health = AirflowAPI(self.url, "", "").health()
                if all(health.get(c, {}).get("status") == "healthy" for c in ("scheduler", "dag_processor")) \
                        and self.password_file.exists() and wanted <= set(self.api().dag_ids()):
                    return
            except Exception as e:  # noqa: BLE001 - not up yet
                last = e
            time.sleep(2)
        raise TimeoutError(f"airflow standalone not ready after {timeout} s ({last}):\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # anything left in the group
        except ProcessLookupError:
            pass


@pytest.fixture(scope="module")
def standalone(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Standalone:
    missing = [n for n, ok in (("chromium", CHROMIUM), ("chromium-driver", CHROMEDRIVER),
                               ("openssh-server", sshd_available())) if not ok]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (scripts/setup installs them)")
    from devkit.synthetic import write_nights

    hub = EmbeddedHub(tmp_path_factory.mktemp("ui-hub"))
    request.addfinalizer(hub.stop)
    write_nights(hub.partners_root, [NIGHT], SIZES, 2026)
    hub.start_servers()
    hub.migrate()
    server = Standalone(hub, free_port())
    request.addfinalizer(server.stop)
    server.wait_ready()
    return server


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1600,1000", "--lang=en-GB"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


def _screenshot(driver, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    assert driver.save_screenshot(str(path)), path
    print(f"screenshot: {path}")
    return path


def _wait(driver, timeout: float = 30):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout)


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

    wait = _wait(browser)
    # Log in as the admin user with the password airflow standalone generated.
    browser.get(standalone.url + "/")
    wait.until(EC.presence_of_element_located((By.NAME, "username"))).send_keys("admin")
    browser.find_element(By.NAME, "password").send_keys(standalone.password())
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(lambda d: "/auth/login" not in d.current_url)

    # The DAG list, filtered on the ingest tag: every feed DAG with its tags.
    browser.get(standalone.url + "/dags?tags=ingest")
    for feed in FEEDS:
        wait.until(EC.presence_of_element_located((By.LINK_TEXT, f"samverkan_{feed}")))
    listing = browser.find_element(By.TAG_NAME, "body").text
    for feed, contract in load_contracts().items():
        for tag in ("ingest", f"feed:{feed}", f"partner:{contract.raw['partner']['id']}"):
            assert tag in listing, (feed, tag)
    _screenshot(browser, "01-dag-list")

    # Each DAG's docs: what the feed is and how personal columns are handled (from the contract).
    for feed, contract in load_contracts().items():
        browser.get(f"{standalone.url}/dags/samverkan_{feed}")
        wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, "button[aria-label='Dag Docs']"))).click()
        dialog = wait.until(lambda d: next((x for x in d.find_elements(By.CSS_SELECTOR, "[role=dialog]")
                                            if "Dag Documentation" in x.text), None))
        assert contract.title in dialog.text and "Personal data handling" in dialog.text, feed
        if feed == TRIGGERED:
            _screenshot(browser, "02-dag-docs")
        browser.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)

    # Trigger the police feed from its page (unpausing it on trigger), as an operator would.
    api = standalone.api()
    dag_id = f"samverkan_{TRIGGERED}"
    before = {r["dag_run_id"] for r in api.runs(dag_id)}
    browser.get(f"{standalone.url}/dags/{dag_id}")
    wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, "button[aria-label='Trigger Dag']"))).click()
    dialog = wait.until(lambda d: next((x for x in d.find_elements(By.CSS_SELECTOR, "[role=dialog]")
                                        if f"Trigger Dag - {dag_id}" in x.text), None))
    _enter_date(browser, dialog.find_element(By.NAME, "element_night"), NIGHT)
    unpause = dialog.find_element(By.CSS_SELECTOR, "input[type=checkbox]:not([name])")
    if not unpause.is_selected():
        browser.execute_script("arguments[0].click();", unpause)
    _screenshot(browser, "03-trigger-dialog")
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
    assert api.run(dag_id, run_id)["conf"].get("night") == NIGHT.isoformat()
    manifests = [json.loads(p.read_text()) for p in standalone.hub.data.manifests(TRIGGERED).glob("*.json")]
    assert any(m.get("run_id") == run_id for m in manifests), "no manifest for the triggered run"
    published = standalone.hub.data.published / "incidents" / f"night={NIGHT.isoformat()}" / f"source={TRIGGERED}"
    assert list(published.glob("*.parquet")), published

    # The UI shows the run as successful.
    browser.get(f"{standalone.url}/dags/{dag_id}/runs/{run_id}")
    wait.until(lambda d: "success" in d.find_element(By.TAG_NAME, "body").text.lower())
    _screenshot(browser, "04-run-success")
    browser.get(standalone.url + "/dags?tags=ingest")
    for feed in FEEDS:
        wait.until(EC.presence_of_element_located((By.LINK_TEXT, f"samverkan_{feed}")))
    time.sleep(1)  # let the last-run badges render
    shot = _screenshot(browser, "05-dag-list-after-run")
    assert shot.stat().st_size > 10_000
