"""Onboarding in a real browser: headless Chromium (Debian's chromium and chromium-driver packages, which
.ci/run installs) driven by Selenium through `make run`'s pages at a phone's width: the invite link from
`python -m tools.accounts invite --local`, the page that explains who asks for what, the sandbox's stand-in for
Instagram's consent page, the gateway's callback. Each page is saved as a screenshot into SCREENSHOT_DIR (the
test's own tmp_path by default; `SCREENSHOT_DIR=docs/images` makes the ones docs/accounts.md shows)."""

import base64
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.aws.template import ROOT
from local.stack import LocalConfig
from tests.e2e.test_local_stack import RunningStack, stack  # noqa: F401 - the fixture

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ONBOARDING_ACCOUNT = "17841400000000002"  # local.stack.ONBOARDING_ACCOUNT_ID, shown as local_shop
PHONE = (390, 844)  # CSS pixels of a current iPhone's screen


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


def _screenshot(driver: Any, directory: Path, name: str) -> None:
    """The whole page, however long, at the window's width: what a person scrolls through on a phone, which has
    nothing to scroll sideways."""
    assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth"), name
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_bytes(base64.b64decode(shot["data"]))


def _open_the_invite_and_continue(driver: Any, invite: str, business: str, shots: Path | None) -> None:
    """The invite link's page, which names the business, then its button to the sandbox's consent page."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(invite)
    try:
        WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.ID, "continue"))
    except Exception:
        raise AssertionError(f"no explainer at {driver.current_url}: {driver.page_source[:500]}") from None
    assert driver.title == f"Connect your Instagram account to {business}"
    assert driver.find_element(By.ID, "business").text == business
    details = driver.find_element(By.ID, "details").text
    assert f"{business} asks to connect your Instagram professional account" in details
    if shots:
        _screenshot(driver, shots, "onboarding-1-explainer.png")
    driver.find_element(By.ID, "continue").click()
    WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.ID, "allow"))
    assert driver.title == "Log in to Instagram"
    assert driver.find_element(By.ID, "sandbox-notice").text.startswith("Local sandbox: this is not Instagram.")


def test_a_person_onboards_an_account_through_the_pages(stack: RunningStack, browser: object, tmp_path: Path) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    driver: Any = browser
    driver.set_window_size(*PHONE)
    # As a phone shows a page: its viewport meta tag honoured, scrollbars overlaid, two device pixels a CSS pixel.
    width, height = PHONE
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 2, "mobile": True}
    )
    shots = Path(os.environ.get("SCREENSHOT_DIR") or tmp_path)
    business = LocalConfig.from_environment().function_environment("")["BUSINESS_NAME"]
    invite = _tool(stack, "invite")
    assert invite.startswith(f"{stack.api}/oauth/start?invite=")
    _open_the_invite_and_continue(driver, invite, business, shots)
    Select(driver.find_element(By.ID, "account")).select_by_value(ONBOARDING_ACCOUNT)
    _screenshot(driver, shots, "onboarding-2-sandbox-login.png")
    driver.find_element(By.ID, "allow").click()
    WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.ID, "title"))
    assert driver.current_url.startswith(f"{stack.api}/oauth/callback?code=")
    assert driver.find_element(By.ID, "title").text == "Your Instagram account is connected"
    details = driver.find_element(By.ID, "details").text
    assert f"@local_shop is now connected to {business}" in details and "you can close this tab" in details
    assert driver.find_element(By.ID, "business").text == business
    _screenshot(driver, shots, "onboarding-3-connected.png")
    listing = _tool(stack, "list")
    [line] = [row for row in listing.splitlines() if row.startswith(ONBOARDING_ACCOUNT)]
    assert "@local_shop  active" in line and "messages" in line

    # The same browser, a new invite, and "Cancel": nothing changes, and the page says so and what to do next.
    _open_the_invite_and_continue(driver, _tool(stack, "invite"), business, None)
    driver.find_element(By.ID, "cancel").click()
    WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.ID, "title"))
    assert driver.find_element(By.ID, "title").text == "Your account was not connected"
    details = driver.find_element(By.ID, "details").text
    assert f"You chose Cancel on Instagram's page, so nothing was shared with {business}." in details
    assert "Open your invite link again and choose Allow" in details
    _screenshot(driver, shots, "onboarding-4-not-connected.png")
    assert _tool(stack, "list") == listing
