"""The local console in a real browser (headless Chromium, as the onboarding test drives it): `make run`'s stack,
`make say` and `make send` from a second terminal, then a reply from the console's own reply box; the console
shows the customer's text, each message with every status through DELIVERED, and the callbacks the inbox got.

It saves two screenshots into SCREENSHOT_DIR (pytest's tmp_path by default); docs/images/console.png and
docs/images/console-conversation.png are made with SCREENSHOT_DIR=docs/images."""

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_local_stack import RunningStack, run_module, second_terminal, stack  # noqa: F401 - the fixture
from tests.e2e.test_onboarding_browser import browser  # noqa: F401 - the fixture

pytestmark = pytest.mark.e2e

ACCOUNT = "17841400000000001"  # local.stack's DEFAULT_ACCOUNT_ID and DEFAULT_CUSTOMER_ID: make say's conversation
CUSTOMER = "6543210987654321"
CONVERSATION = f"{ACCOUNT}:{CUSTOMER}"
CUSTOMER_TEXT = "Hi! Is the <b>blue</b> hoodie in stock in M & L?"  # markup in it must show as typed
REPLY_TEXT = "Yes: M and L ship today."
WAIT_SECONDS = 30  # a loaded machine; every wait ends as soon as the page shows what it waits for
EVERY_STATUS = ["QUEUED", "PENDING", "SENT", "DELIVERED"]


def unstale[T](read: Callable[[], T]) -> T:
    """``read()`` again when the console re-rendered a part of the page (console.js replaces a part's elements
    when its data changes: a status, a callback) between finding an element and reading it."""
    from selenium.common.exceptions import StaleElementReferenceException

    for _ in range(50):
        try:
            return read()
        except StaleElementReferenceException:
            time.sleep(0.1)
    return read()


def screenshot_dir(tmp_path: Path) -> Path:
    directory = Path(os.environ.get("SCREENSHOT_DIR") or tmp_path)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def test_the_console_follows_a_say_and_send_exchange_and_replies_from_its_box(
    stack: RunningStack,  # noqa: F811
    browser: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = browser
    # An element re-rendered while a wait reads it is read again at the wait's next try.
    wait = WebDriverWait(driver, WAIT_SECONDS, ignored_exceptions=[StaleElementReferenceException])
    shots = screenshot_dir(tmp_path)
    # The screenshots' size: a laptop's viewport, whatever window headless Chromium opens.
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride", {"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": False}
    )

    def statuses(message_css: str) -> list[str]:
        return [
            step.get_attribute("data-status") for step in driver.find_elements(By.CSS_SELECTOR, f"{message_css} .step")
        ]

    driver.get(f"{stack.api}/console")
    wait.until(
        lambda d: d.find_elements(By.CSS_SELECTOR, f"#accounts [data-account='{ACCOUNT}'][data-status='active']")
    )
    assert driver.title == "Local console · Instagram DM gateway"
    assert "subscribed" in unstale(lambda: driver.find_element(By.ID, "accounts").text)

    # make say, then make send, from a second terminal, as a person would try the loop.
    said = run_module(["local.try_it", "say"], {**second_terminal(stack), "TEXT": CUSTOMER_TEXT})
    assert said.returncode == 0, said.stdout + said.stderr
    sent = run_module(["local.try_it", "send"], second_terminal(stack))
    assert sent.returncode == 0 and "DELIVERED" in sent.stdout, sent.stdout + sent.stderr
    sent_key = sent.stdout.split("queued text message ", 1)[1].split(";", 1)[0]

    conversation_link = f"a.conversation[data-conversation='{CONVERSATION}']"
    unstale(lambda: wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, conversation_link))[0].click())
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#timeline .entry.in .text"))
    customer_texts = unstale(
        lambda: [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#timeline .entry.in[data-kind='text'] .text")]
    )
    assert customer_texts == [CUSTOMER_TEXT]  # as typed: the customer's markup was never parsed
    assert driver.find_elements(By.CSS_SELECTOR, "#timeline b") == []
    sent_card = f"#timeline [data-key='{sent_key}']"
    wait.until(lambda d: statuses(sent_card) == EVERY_STATUS)
    assert "Thanks! Your order ships tomorrow" in unstale(lambda: driver.find_element(By.CSS_SELECTOR, sent_card).text)

    # An empty reply is refused, and the page says why.
    driver.find_element(By.ID, "reply-send").click()
    wait.until(lambda d: "the reply is empty" in d.find_element(By.ID, "reply-notice").text)
    assert "error" in driver.find_element(By.ID, "reply-notice").get_attribute("class")

    # A reply from the box: queued, then every status as the sender, the sandbox and its echo move it on.
    driver.find_element(By.ID, "reply-text").send_keys(REPLY_TEXT)
    driver.find_element(By.ID, "reply-send").click()
    wait.until(lambda d: d.find_element(By.ID, "reply-notice").text.startswith("Queued as console-"))
    reply_key = driver.find_element(By.ID, "reply-notice").text.split("Queued as ", 1)[1].split(":", 1)[0]
    reply_card = f"#timeline [data-key='{reply_key}']"
    wait.until(lambda d: statuses(reply_card) == EVERY_STATUS)
    card = unstale(lambda: driver.find_element(By.CSS_SELECTOR, reply_card).text)
    assert REPLY_TEXT in card and "from this console" in card
    assert driver.find_element(By.ID, "reply-text").get_attribute("value") == ""

    # Both messages asked for callbacks to the local inbox: each status, signed and checked.
    def callbacks_of(key: str) -> list[str]:
        rows = driver.find_elements(By.CSS_SELECTOR, f"#callbacks tbody tr[data-key='{key}']")
        return sorted(row.get_attribute("data-status") for row in rows)

    wait.until(lambda _: [callbacks_of(sent_key), callbacks_of(reply_key)] == [["DELIVERED", "SENT"]] * 2)
    rows = unstale(
        lambda: [
            row.text for row in driver.find_elements(By.CSS_SELECTOR, f"#callbacks tbody tr[data-key='{reply_key}']")
        ]
    )
    assert all(row.endswith("ok") for row in rows)
    driver.save_screenshot(str(shots / "console-conversation.png"))

    # The overview: no conversation chosen, the conversation listed with what it holds.
    driver.get(f"{stack.api}/console")
    listed = wait.until(lambda d: [e.text for e in d.find_elements(By.CSS_SELECTOR, conversation_link)])
    assert "2 outbound" in listed[0]
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#callbacks tbody tr")) >= 4)
    assert driver.find_element(By.ID, "conversation-empty").is_displayed()
    driver.save_screenshot(str(shots / "console.png"))
