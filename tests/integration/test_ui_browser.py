"""The web UI in a real headless Chromium (selenium), against a real ``titus master`` process
with tokens and a sim agent: sign in through the form, every page loads, the job list
updates live when a job is submitted through the REST API, a pending task shows why, a job
named ``<script>alert(1)</script>`` shows as text and no alert fires.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/browser.sh`` installs them) and the
``selenium`` package (the ``test`` extra). Skipped without them, unless
``TITUS_REQUIRE_BROWSER=1`` (CI) makes that a failure. Screenshots of each page go to a
temporary directory, or to ``TITUS_UI_SCREENSHOTS`` (``bench/ui_screenshots.py`` points it at
``docs/images`` to refresh the committed ones).
"""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from tests.integration.conftest import FAST_MASTER_ENV
from titus.cli.local_cluster import LocalCluster

XSS = "<script>alert(1)</script>"
HOWTO = ("the browser test needs chromium, chromedriver and selenium: run `bash .ci/browser.sh` "
         "(apt-get install chromium chromium-driver) and `pip install -e '.[test]'`; "
         "TITUS_REQUIRE_BROWSER=1 makes their absence a failure")
SIZE = (1280, 800)


def _need(condition: bool, why: str) -> None:
    if condition:
        return
    message = f"{why}: {HOWTO}"
    if os.environ.get("TITUS_REQUIRE_BROWSER") == "1":
        pytest.fail(message)
    pytest.skip(message)


def _chromium():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _need(False, "selenium is not installed")
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    _need(bool(binary and driver), "chromium or chromedriver is not on PATH")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={SIZE[0]},{SIZE[1]}", "--hide-scrollbars",
                "--disable-extensions", "--no-first-run", "--proxy-server=direct://"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # CSP reports included
    return webdriver.Chrome(service=Service(driver), options=options)


def job(name: str, cpu: float = 1, size: int = 1, group: str = "") -> dict:
    """A batch job whose sim tasks run for ten minutes (the test ends them)."""
    descriptor = {"applicationName": name, "owner": {"teamEmail": "ops@example.com"},
                  "container": {"image": {"name": "busybox"},
                                "resources": {"cpu": cpu, "memoryMB": 256},
                                "env": {"TITUS_SIM_DURATION_SEC": "600",
                                        "API_TOKEN": "s3cret"}},
                  "batch": {"size": size}}
    if group:
        descriptor["capacityGroup"] = group
    return descriptor


@pytest.fixture
def cluster(tmp_path):
    with LocalCluster(tmp_path, master_env=FAST_MASTER_ENV) as c:
        c.start_master()
        c.start_agent("a1", hosts=3, cpus=8, memory_mb=16384,
                      zones=("us-east-1a", "us-east-1b"), launch_log=False)
        c.start_agent("a2", hosts=2, cpus=8, memory_mb=16384, zones=("us-east-1c",),
                      launch_log=False)
        yield c


@pytest.fixture
def browser():
    driver = _chromium()
    driver.set_page_load_timeout(20)
    yield driver
    driver.quit()


def test_the_web_ui_in_a_browser(cluster, browser, tmp_path):
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    shots = Path(os.environ.get("TITUS_UI_SCREENSHOTS") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    wait = WebDriverWait(browser, 15, poll_frequency=0.05)
    http = cluster.client()
    started = time.monotonic()

    def shot(name: str) -> None:
        time.sleep(0.1)  # let the last paint land
        browser.save_screenshot(str(shots / f"ui-{name}.png"))

    def no_alert() -> None:
        with pytest.raises(NoAlertPresentException):
            browser.switch_to.alert.text

    http.put("/api/v3/capacityGroups/web", json={"name": "web", "tier": "Critical",
                                                 "resources": {"cpu": 8, "memoryMB": 8192}})
    http.post("/api/v3/instanceGroups", json={
        "name": "m5-large", "zones": ["us-east-1a", "us-east-1b"], "max_size": 20,
        "instance_type": {"name": "m5.large", "cpus": 2, "memory_mb": 8192}})
    web = http.post("/api/v3/jobs", json=job("web-frontend", cpu=2, size=4, group="web")).json()
    xss = http.post("/api/v3/jobs", json=job(XSS)).json()
    huge = http.post("/api/v3/jobs", json=job("needs-a-bigger-host", cpu=64)).json()
    cluster_wait = time.monotonic() + 20
    while time.monotonic() < cluster_wait:  # the agents joined and the web tasks run
        tasks = http.get("/api/v3/tasks", params={"jobId": web["id"]}).json()["items"]
        if tasks and all(t["status"]["state"] == "Started" for t in tasks):
            break
        time.sleep(0.1)

    # sign in through the form
    browser.get(cluster.url + "/")
    token_box = wait.until(ready.presence_of_element_located((By.ID, "token")))
    shot("signin")
    token_box.send_keys("wrong-token")
    browser.find_element(By.ID, "signin").click()
    assert "not valid" in wait.until(
        ready.presence_of_element_located((By.ID, "signin-error"))).text
    browser.find_element(By.ID, "token").send_keys(cluster.token)
    browser.find_element(By.ID, "signin").click()
    table = wait.until(ready.presence_of_element_located((By.ID, "jobs")))
    cookie = browser.get_cookie("titus_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert cookie["value"] != cluster.token

    # the XSS job name is text, and nothing ran
    row = table.find_element(By.CSS_SELECTOR, f'tr[data-job-id="{xss["id"]}"] td.name')
    assert row.text == XSS
    no_alert()

    # live: a job submitted through the REST API appears without a reload
    wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-live") == "1")
    fresh = http.post("/api/v3/jobs", json=job("submitted-while-watching")).json()
    row = wait.until(ready.presence_of_element_located(
        (By.CSS_SELECTOR, f'tr[data-job-id="{fresh["id"]}"]')))
    assert "submitted-while-watching" in row.text
    assert table.is_displayed()  # the same document: a reload would have made it stale
    shot("jobs")

    # a job page, its descriptor with the secret redacted
    browser.get(f"{cluster.url}/ui/jobs/{web['id']}")
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "#tasks tbody tr")))
    assert "s3cret" not in browser.page_source
    assert browser.find_element(By.ID, "kill-job").is_displayed()  # an admin's token
    shot("job")

    # a running task's page: its host and the tail of its log, read from its agent
    running = http.get("/api/v3/tasks", params={"jobId": web["id"]}).json()["items"][0]
    browser.get(f"{cluster.url}/ui/tasks/{running['id']}")
    logs = wait.until(ready.presence_of_element_located((By.ID, "logs")))
    wait.until(lambda d: logs.text not in ("", "loading…"))
    assert "could not be read" not in logs.text, logs.text
    assert browser.find_element(By.ID, "task-host").text == running["hostId"]

    # the pending task says why, with the engine's counts per reason
    task_id = http.get("/api/v3/tasks", params={"jobId": huge["id"]}).json()["items"][0]["id"]
    browser.get(f"{cluster.url}/ui/tasks/{task_id}")
    wait.until(lambda d: "hosts:" in d.find_element(By.ID, "pending-message").text)
    reasons = browser.find_element(By.ID, "pending-reasons").text
    assert "cpus" in reasons
    shot("task")

    # hosts, capacity groups, instance groups
    browser.get(f"{cluster.url}/ui/hosts")
    cells = wait.until(ready.presence_of_all_elements_located((By.CSS_SELECTOR, "#heatmap .cell")))
    assert len(cells) == 5
    shot("hosts")
    browser.get(f"{cluster.url}/ui/capacity-groups")
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, 'section[data-group="web"]')))
    shot("capacity-groups")
    browser.get(f"{cluster.url}/ui/instance-groups")
    wait.until(ready.presence_of_element_located(
        (By.CSS_SELECTOR, 'section[data-group="m5-large"]')))
    shot("instance-groups")

    # the API docs load their scripts from the master alone
    browser.get(f"{cluster.url}/docs")
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "#swagger-ui .info")))
    browser.get(f"{cluster.url}/redoc")
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, ".api-content h1")))
    no_alert()
    # every page kept within its CSP; the one thing refused is ReDoc's "powered by" logo,
    # which it links from its vendor's site: the CSP keeps that request from leaving
    blocked = [e["message"] for e in browser.get_log("browser")
               if "Content Security Policy" in e.get("message", "")
               and "Loading the image 'https://cdn.redoc.ly/" not in e["message"]]
    assert blocked == [], blocked
    http.close()
    assert time.monotonic() - started < 40
    for name in ("signin", "jobs", "job", "task", "hosts", "capacity-groups", "instance-groups"):
        assert (shots / f"ui-{name}.png").stat().st_size > 5000
