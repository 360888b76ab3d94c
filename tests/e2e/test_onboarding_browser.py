"""Onboarding in a real browser: headless Chromium (Debian's chromium and chromium-driver packages, which
.ci/run installs) driven by Selenium through `make run`'s pages: the invite link from
`python -m tools.accounts invite --local`, the sandbox's Instagram consent page, the gateway's callback."""

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

from local.aws.template import ROOT
from tests.e2e.test_local_stack import RunningStack, stack  # noqa: F401 - the fixture

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ONBOARDING_ACCOUNT = "17841400000000002"  # local.stack.ONBOARDING_ACCOUNT_ID, shown as local_shop


def _tool(running: RunningStack, *args: str) -> str:
    command = [sys.executable, "-m", "tools.accounts", *args, "--local"]  # our own module, fixed arguments
    result = subprocess.run(  # noqa: S603
        command,
        cwd=ROOT,
        env=running.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.strip()


@pytest.fixture
def browser() -> Iterator[object]:
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        if os.environ.get("CI"):
            pytest.fail("CI installs chromium and chromium-driver (.ci/run); they are missing")
        pytest.skip("apt-get install chromium chromium-driver to run the browser test")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="igdm-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # As root, and on a machine with no network but loopback: no sandbox, no background connections.
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(60)  # a loaded machine; a page that never loads still fails
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def test_a_person_onboards_an_account_through_the_pages(stack: RunningStack, browser: object) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    driver: Any = browser
    invite = _tool(stack, "invite")
    assert invite.startswith(f"{stack.api}/oauth/start?invite=")
    driver.get(invite)
    try:
        WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.ID, "allow"))
    except Exception:
        raise AssertionError(f"no consent page at {driver.current_url}: {driver.page_source[:500]}") from None
    assert driver.title == "Log in to Instagram"
    Select(driver.find_element(By.ID, "account")).select_by_value(ONBOARDING_ACCOUNT)
    driver.find_element(By.ID, "allow").click()
    WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.ID, "title"))
    assert driver.current_url.startswith(f"{stack.api}/oauth/callback?code=")
    assert driver.find_element(By.ID, "title").text == "Account connected"
    assert "@local_shop" in driver.find_element(By.ID, "details").text
    listing = _tool(stack, "list")
    [line] = [row for row in listing.splitlines() if row.startswith(ONBOARDING_ACCOUNT)]
    assert "@local_shop  active" in line and "messages" in line

    # The same browser, a new invite, and "Cancel": nothing changes, and the page says why.
    driver.get(_tool(stack, "invite"))
    WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.ID, "cancel"))
    driver.find_element(By.ID, "cancel").click()
    WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.ID, "title"))
    assert driver.find_element(By.ID, "title").text == "Instagram login not completed"
    assert "denied" in driver.find_element(By.ID, "details").text
    assert _tool(stack, "list") == listing
