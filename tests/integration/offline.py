"""Does a page reach outside the hub? Headless Chromium's own network log says (issue 18).

Any page the hub writes or serves (Data Docs, the lägesbild, later ones) can be checked with
``assert_offline(html_path)``: it opens the file in headless Chromium with the DevTools network
log on and fails on every request that went anywhere but 127.0.0.1 or the file system, on every
load that failed, and on every Content-Security-Policy violation the browser reported.

The browser is started so that nothing can leave the machine even for a page that tries: every
host name resolves to nothing and every non-loopback connection goes to a proxy on 127.0.0.1
where nothing listens. A request to a CDN still shows in the log (that is what is counted), it
just never reaches the CDN.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
LOCAL_HOSTS = {"127.0.0.1"}
IN_PAGE = {"data", "blob", "about"}  # not requests to anyone: the bytes are in the page itself
CONTAINED = ("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
             "--proxy-server=http://127.0.0.1:9",  # Chromium never proxies loopback: 127.0.0.1 still works
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-default-apps", "--disable-domain-reliability", "--no-first-run", "--dns-prefetch-disable",
             "--disable-features=OptimizationHints,MediaRouter,AutofillServerCommunication")


def chromium(window: str = "1600,1000") -> Any:
    """Headless Chromium with its network and console logs kept, contained to this machine."""
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("not installed: chromium, chromium-driver (scripts/setup installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={window}", "--lang=en-GB", *CONTAINED):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    return driver


class Traffic:
    """What the browser asked for and what failed, drained from its logs since the last read."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.failed: list[str] = []
        self.console: list[str] = []
        self.statuses: dict[str, int] = {}  # each URL's last HTTP status

    def read(self, driver: Any) -> Traffic:
        urls: dict[str, str] = {}
        for entry in driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            params = message.get("params", {})
            if message["method"] == "Network.requestWillBeSent":
                urls[params["requestId"]] = params["request"]["url"]
                self.requests.append(params["request"]["url"])
            elif message["method"] == "Network.loadingFailed" and not params.get("canceled"):
                self.failed.append(f"{urls.get(params['requestId'], params['requestId'])}: {params.get('errorText')}")
            elif message["method"] == "Network.responseReceived":
                response = params["response"]
                self.statuses[response["url"]] = response.get("status", 200)
                if response.get("status", 200) >= 400:
                    self.failed.append(f"{response['url']}: HTTP {response['status']}")
        self.console += [e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
        return self

    @property
    def outside(self) -> list[str]:
        """Requests that went to anything but 127.0.0.1 or a file."""
        return [u for u in self.requests if not _local(u)]

    @property
    def blocked(self) -> list[str]:
        return [m for m in self.console if "Content Security Policy" in m or "Refused to" in m]


def _local(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in IN_PAGE or parts.scheme == "file" or (
        parts.scheme in {"http", "https", "ws", "wss"} and parts.hostname in LOCAL_HOSTS)


def settle(driver: Any, timeout: float = 15) -> None:
    """Wait until the document and what it loads are complete, then a moment for late requests."""
    deadline = time.monotonic() + timeout
    while driver.execute_script("return document.readyState") != "complete":
        assert time.monotonic() < deadline, f"{driver.current_url} did not finish loading in {timeout} s"
        time.sleep(0.1)
    time.sleep(1)


def open_and_record(driver: Any, url: str) -> Traffic:
    Traffic().read(driver)  # drop whatever came before
    driver.get(url)
    settle(driver)
    return Traffic().read(driver)


def assert_offline(html_path: Path | str, driver: Any = None) -> Traffic:
    """Open ``html_path`` from the file system; fail unless it loaded only local files, all of them, unblocked."""
    own = driver is None
    driver = driver or chromium()
    try:
        traffic = open_and_record(driver, Path(html_path).resolve().as_uri())
    finally:
        if own:
            driver.quit()
    assert traffic.requests, f"no request recorded for {html_path}: is the network log on?"
    assert not traffic.outside, f"{html_path} reached outside the hub: {traffic.outside}"
    assert not traffic.failed, f"{html_path} failed to load: {traffic.failed}"
    assert not traffic.blocked, f"{html_path} broke its Content-Security-Policy: {traffic.blocked}"
    return traffic
