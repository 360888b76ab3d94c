"""The onboarding pages' logic on in-memory ports: the redirect /oauth/start answers, and what /oauth/callback
stores and shows for each way a login can end. The invite's and state's own checks are in
test_onboarding_state.py."""

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

import pytest

from igdm.meta.connect import AccountConnector
from igdm.meta.instagram_login import LONG_LIVED_SECONDS, LoginError
from igdm.runtime.http_api import HttpApiRequest, Reply
from igdm.store.accounts import ACTIVE
from onboarding.service import AppCredentials, Onboarding
from onboarding.state import make_invite
from tests.fakes.accounts import MemoryAccountEvents, MemoryAccountTable, MemoryVault
from tests.fakes.clock import ManualClock
from tests.fakes.instagram import MESSAGING_PERMISSIONS, FakeInstagram
from tests.fakes.onboarding import StateTable

NEW = "17841400000000077"
NOW = 1_800_000_000.0
APP_ID, APP_SECRET, STATE_KEY = "1234567890", "instagram-app-secret", "an-onboarding-state-key-0123456789"
CREDENTIALS = AppCredentials(APP_ID, APP_SECRET, STATE_KEY)
AUTHORIZE_URL = "https://www.instagram.com/oauth/authorize"
SCOPES = ["instagram_business_basic", "instagram_business_manage_messages"]
FIELDS = ["messages", "messaging_postbacks", "messaging_seen"]
HOST = "abc123.execute-api.eu-west-1.amazonaws.com"
CALLBACK_URL = f"https://{HOST}/oauth/callback"
CLEARED_COOKIE = "igdm_oauth=; Path=/oauth; Max-Age=0; HttpOnly; SameSite=Lax"


@dataclass
class Browser:
    """What the browser holds after /oauth/start: the state Instagram hands back, and the cookie."""

    state: str
    cookie: str


@dataclass
class World:
    clock: ManualClock
    states: StateTable
    instagram: FakeInstagram
    vault: MemoryVault
    table: MemoryAccountTable
    events: MemoryAccountEvents
    onboarding: Onboarding

    def start(self) -> Browser:
        reply = self.onboarding.start(request("/oauth/start", {"invite": invite()}))
        assert reply.status == 302, reply.body
        state = dict(parse_qsl(urlsplit(header(reply, "Location")).query))["state"]
        return Browser(state, header(reply, "Set-Cookie").split(";")[0].removeprefix("igdm_oauth="))

    def callback(self, browser: Browser, **query: str) -> Reply:
        return self.onboarding.callback(
            request("/oauth/callback", {"state": browser.state, **query}, cookies=[f"igdm_oauth={browser.cookie}"])
        )

    def log_in(self, permissions: tuple[str, ...] = MESSAGING_PERMISSIONS) -> tuple[Browser, str]:
        """Start from the invite, and log in as the new shop: the browser, and the code Instagram gives it."""
        browser = self.start()
        return browser, self.instagram.authorise(NEW, "new_shop", redirect_uri=CALLBACK_URL, permissions=permissions)

    def stored_nothing(self) -> bool:
        return self.table.all() == [] and self.vault.token(NEW) is None and self.events.published == []


def world(*, configured: bool = True) -> World:
    clock = ManualClock(NOW)
    states, instagram = StateTable(), FakeInstagram(clock)
    vault, table, events = MemoryVault(), MemoryAccountTable(), MemoryAccountEvents()
    connector = AccountConnector(login=instagram, vault=vault, accounts=table, events=events, webhook_fields=FIELDS)
    onboarding = Onboarding(
        credentials=lambda: CREDENTIALS if configured else None,
        states=states.store,
        login=instagram,
        connector=connector,
        authorize_url=AUTHORIZE_URL,
        scopes=SCOPES,
        clock=clock,
    )
    return World(clock, states, instagram, vault, table, events, onboarding)


def request(path: str, query: dict[str, str], *, cookies: list[str] | None = None) -> HttpApiRequest:
    """The API Gateway request (payload 2.0) a browser's GET becomes."""
    return HttpApiRequest.model_validate(
        {
            "routeKey": f"GET {path}",
            "queryStringParameters": query,
            "headers": {"host": HOST, "x-forwarded-proto": "https"},
            "cookies": cookies or [],
            "requestContext": {"requestId": "r1", "timeEpoch": int(NOW * 1000)},
        }
    )


def invite(*, valid_seconds: int = 3600) -> str:
    return make_invite(STATE_KEY, valid_seconds=valid_seconds, now=NOW)


def header(reply: Reply, name: str) -> str:
    return dict(reply.headers)[name]


def outcome(reply: Reply) -> str:
    return reply.body.split('data-outcome="')[1].split('"')[0]


# ---- /oauth/start


def test_start_redirects_to_instagram_with_the_scopes_a_state_and_a_cookie_bound_to_it() -> None:
    w = world()
    reply = w.onboarding.start(request("/oauth/start", {"invite": invite()}))
    assert reply.status == 302
    location = urlsplit(header(reply, "Location"))
    assert f"{location.scheme}://{location.netloc}{location.path}" == AUTHORIZE_URL
    query = dict(parse_qsl(location.query))
    assert query == {
        "client_id": APP_ID,
        "redirect_uri": CALLBACK_URL,  # this API's own callback: no redirect URI is configured
        "response_type": "code",
        "scope": "instagram_business_basic,instagram_business_manage_messages",
        "state": query["state"],
    }
    nonce = query["state"].split(".")[0]
    assert (
        header(reply, "Set-Cookie") == f"igdm_oauth={nonce}; Path=/oauth; Max-Age=900; HttpOnly; SameSite=Lax; Secure"
    )
    assert w.states.live == {nonce}


@pytest.mark.parametrize(
    "query",
    [{}, {"invite": "1.abc"}, {"invite": make_invite("another-stacks-key-0123456789", valid_seconds=3600, now=NOW)}],
    ids=["none", "forged", "another-key"],
)
def test_start_without_a_valid_invite_is_refused_and_issues_no_state(query: dict[str, str]) -> None:
    w = world()
    reply = w.onboarding.start(request("/oauth/start", query))
    assert (reply.status, outcome(reply)) == (403, "invite_refused")
    assert "Location" not in dict(reply.headers) and w.states.issued == 0


def test_an_expired_invite_is_refused() -> None:
    w = world()
    link = invite(valid_seconds=60)
    w.clock.advance(61)
    reply = w.onboarding.start(request("/oauth/start", {"invite": link}))
    assert (reply.status, outcome(reply)) == (403, "invite_refused")
    assert "has expired" in reply.body


def test_without_the_apps_credentials_both_pages_say_onboarding_is_not_set_up() -> None:
    w = world(configured=False)
    for reply in (
        w.onboarding.start(request("/oauth/start", {"invite": invite()})),
        w.onboarding.callback(request("/oauth/callback", {"code": "c", "state": "s"})),
    ):
        assert (reply.status, outcome(reply)) == (503, "not_configured")


# ---- /oauth/callback


def test_a_login_connects_the_account_with_its_long_lived_token_and_subscribes_it() -> None:
    w = world()
    browser, code = w.log_in()
    reply = w.callback(browser, code=code + "#_")  # pasted from an address bar, with Meta's "#_" still on it
    assert (reply.status, outcome(reply)) == (200, "connected"), reply.body
    assert "@new_shop (id 17841400000000077) is connected" in reply.body
    assert f"Webhook fields: {', '.join(FIELDS)}." in reply.body
    assert header(reply, "Set-Cookie") == CLEARED_COOKIE
    account = w.table.get(NEW)
    assert account is not None and (account.status, account.username) == (ACTIVE, "new_shop")
    assert account.subscribed_fields == tuple(sorted(FIELDS))
    [long_lived] = w.instagram.long_lived_tokens(NEW)
    document = w.vault.token(NEW)
    assert document is not None and document.access_token == long_lived  # never the one-hour token
    assert (document.expires_at, document.refreshed_at) == (int(NOW + LONG_LIVED_SECONDS), int(NOW))
    assert document.scopes == tuple(SCOPES)
    assert long_lived not in reply.body
    assert [(c.account_id, c.change, c.reason) for c in w.events.published] == [(NEW, "connected", "login")]
    # The code was exchanged with the redirect URI the authorise request named, as Meta requires.
    assert [r.detail for r in w.instagram.requests if r.endpoint == "exchange_code"] == [{"redirect_uri": CALLBACK_URL}]


def test_a_denied_login_stores_nothing_and_says_why() -> None:
    w = world()
    browser = w.start()
    reply = w.callback(browser, error="access_denied", error_description="The user denied your request.")
    assert (reply.status, outcome(reply)) == (400, "denied")
    assert "Instagram said: The user denied your request." in reply.body
    assert header(reply, "Set-Cookie") == CLEARED_COOKIE
    assert w.stored_nothing()


def test_a_state_used_once_is_refused_the_second_time() -> None:
    w = world()
    browser, code = w.log_in()
    assert w.callback(browser, code=code).status == 200
    again = w.callback(browser, code=code)
    assert (again.status, outcome(again)) == (400, "state_refused")
    assert "already completed" in again.body


@pytest.mark.parametrize(
    ("tamper", "says"),
    [
        (lambda b: Browser(b.state, "another-browsers-nonce"), "started in another browser"),
        (lambda b: Browser(b.state.rsplit(".", 1)[0] + ".forged", b.cookie), "not one this gateway issued"),
        (lambda b: Browser("", b.cookie), "carries no state"),
    ],
    ids=["other-browser", "forged", "missing"],
)
def test_a_bad_state_stores_nothing_and_leaves_the_login_to_its_own_browser(
    tamper: Callable[[Browser], Browser], says: str
) -> None:
    w = world()
    browser, code = w.log_in()
    reply = w.callback(tamper(browser), code=code)
    assert (reply.status, outcome(reply), says in reply.body) == (400, "state_refused", True)
    assert w.stored_nothing()
    assert w.callback(browser, code=code).status == 200  # the browser that started it can still finish


def test_a_state_older_than_its_lifetime_is_refused() -> None:
    w = world()
    browser, code = w.log_in()
    w.clock.advance(15 * 60 + 1)
    reply = w.callback(browser, code=code)
    assert (reply.status, outcome(reply)) == (400, "state_refused") and "took too long" in reply.body
    assert w.stored_nothing()


def test_a_code_used_before_is_refused_and_stores_nothing() -> None:
    w = world()
    first, code = w.log_in()
    assert w.callback(first, code=code).status == 200
    w.table.accounts.clear()
    w.events.take()
    second = w.start()  # a second login flow, with its own state and cookie, presenting the first one's code
    reply = w.callback(second, code=code)
    assert (reply.status, outcome(reply)) == (400, "code_refused")
    assert "Instagram said: Matching code was not found or was already used" in reply.body
    assert w.table.all() == [] and w.events.published == []


def test_a_login_without_the_messaging_permission_stores_nothing() -> None:
    w = world()
    browser, code = w.log_in(("instagram_business_basic",))
    reply = w.callback(browser, code=code)
    assert (reply.status, outcome(reply)) == (400, "scope_missing")
    assert "instagram_business_manage_messages" in reply.body
    assert w.stored_nothing()


def test_a_refused_long_lived_exchange_stores_nothing() -> None:
    w = world()
    browser, code = w.log_in()
    w.instagram.fail("long_lived", LoginError("Invalid platform app", 400, 100, None, "IGApiException"))
    reply = w.callback(browser, code=code)
    assert (reply.status, outcome(reply)) == (502, "exchange_refused")
    assert "Instagram said: Invalid platform app" in reply.body
    assert w.stored_nothing()


def test_a_subscription_meta_refuses_still_connects_the_account_and_says_so() -> None:
    w = world()
    browser, code = w.log_in()
    w.instagram.fail("subscribe", LoginError("(#200) Insufficient permissions", 403, 200, None, "OAuthException"))
    reply = w.callback(browser, code=code)
    assert (reply.status, outcome(reply)) == (200, "connected")
    assert "Subscribing it to webhooks failed ((#200) Insufficient permissions)" in reply.body
    account = w.table.get(NEW)
    assert account is not None and account.status == ACTIVE and account.subscribed_fields == ()
    assert w.table.last_error[NEW] == "subscribing failed: (#200) Insufficient permissions"
