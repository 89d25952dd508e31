"""``airflow standalone`` on the embedded hub, for the tests that drive its UI in Chromium.

What ``scripts/demo --ui`` starts: the embedded hub (local partner sshd, a generated night,
SQLite) and ``airflow standalone`` on a free port on 127.0.0.1, stopped when the test module
ends; and what a data engineer does first in it: log in. Used by
tests/integration/test_ui_browser.py and test_offline_pages.py. Screenshots go to
tests/artifacts/<folder>/ (or $SAMVERKAN_TEST_ARTIFACTS/<folder>/).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from devkit.embedded import EmbeddedHub
from devkit.stack import AirflowAPI, free_port
from samverkan.connectors.sshd import sshd_available
from samverkan.core.contracts import load_contracts
from tests.integration.offline import CHROMEDRIVER, CHROMIUM

REPO = Path(__file__).resolve().parents[2]
FEEDS = sorted(load_contracts())
SIZES = {"police": 60, "transit": 30, "guards": 20}

# The night the operator enters in the trigger form. Well before last night: unpausing the DAG
# makes Airflow schedule a run for last night too, and that run must not take this night's file.
NIGHT = datetime.now(ZoneInfo("Europe/Stockholm")).date() - timedelta(days=20)


class Standalone:
    def __init__(self, hub: EmbeddedHub, port: int, extra_env: dict[str, str] | None = None):
        self.hub, self.port = hub, port
        self.url = f"http://127.0.0.1:{port}"
        self.log = hub.root / "standalone.log"
        env = {**os.environ, **hub.env(),
               "AIRFLOW__API__HOST": "127.0.0.1", "AIRFLOW__API__PORT": str(port), "AIRFLOW__API__BASE_URL": self.url,
               "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
               "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()), **(extra_env or {})}
        with self.log.open("ab") as out:
            self.process = subprocess.Popen([str(Path(sys.executable).parent / "airflow"), "standalone"], env=env,
                                            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True)

    @property
    def password_file(self) -> Path:
        return self.hub.airflow_home / "simple_auth_manager_passwords.json.generated"

    def password(self, user: str = "admin") -> str:
        return json.loads(self.password_file.read_text())[user]

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


def start_standalone(
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
    name: str,
    extra_env: Callable[[EmbeddedHub], dict[str, str]] | None = None,
) -> Standalone:
    """The embedded hub with NIGHT generated, its partner servers up and Airflow migrated, then
    ``airflow standalone`` on it, ready; both stop when the module ends. ``extra_env(hub)`` is
    called after the migration, so it may use the Airflow CLI. Skips, naming what is missing,
    when a package scripts/setup installs is not there."""
    missing = [n for n, ok in (("chromium", CHROMIUM), ("chromium-driver", CHROMEDRIVER),
                               ("openssh-server", sshd_available())) if not ok]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (scripts/setup installs them)")
    from devkit.synthetic import write_nights

    hub = EmbeddedHub(tmp_path_factory.mktemp(name))
    request.addfinalizer(hub.stop)
    write_nights(hub.partners_root, [NIGHT], SIZES, 2026)
    hub.start_servers()
    hub.migrate()
    server = Standalone(hub, free_port(), extra_env(hub) if extra_env else None)
    request.addfinalizer(server.stop)
    server.wait_ready()
    return server


def browser_wait(driver: Any, timeout: float = 30) -> Any:
    """Selenium's WebDriverWait, imported only when a browser test runs."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout)


def log_in(driver: Any, server: Standalone, user: str = "admin") -> None:
    """Log in on Airflow's login page with the password ``airflow standalone`` generated for ``user``."""
    from selenium.webdriver.common.by import By

    wait = browser_wait(driver)
    driver.get(server.url + "/")
    wait.until(lambda d: d.find_elements(By.NAME, "username"))[0].send_keys(user)
    driver.find_element(By.NAME, "password").send_keys(server.password(user))
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(lambda d: "/auth/login" not in d.current_url)


def screenshot(driver: Any, folder: str, name: str) -> Path:
    """Save what the browser shows as a test artifact, and say where."""
    artifacts = Path(os.environ.get("SAMVERKAN_TEST_ARTIFACTS") or REPO / "tests" / "artifacts") / folder
    artifacts.mkdir(parents=True, exist_ok=True)
    path = artifacts / f"{name}.png"
    assert driver.save_screenshot(str(path)), path
    print(f"screenshot: {path}")
    return path
