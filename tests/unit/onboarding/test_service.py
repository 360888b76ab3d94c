"""The onboarding pages' logic on in-memory ports: the page /oauth/start answers (its button to Instagram), and
what /oauth/callback stores and shows for each way a login can end. The invite's and state's own checks are in
test_onboarding_state.py; the pages' words, escaping and headers in test_pages.py."""

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

import pytest

from igdm.meta.connect import AccountConnector
from igdm.meta.instagram_login import LONG_LIVED_SECONDS, LoginError
from igdm.runtime.http_api import HttpApiRequest, Reply
from igdm.store.accounts import ACTIVE
from onboarding.explainer import continue_url
from onboarding.pages import Business
from onboarding.service import AppCredentials, Onboarding, States
from onboarding.state import Refusal, State, StateRefused, make_invite
from tests.fakes.accounts import MemoryAccountEvents, MemoryAccountTable, MemoryVault
from tests.fakes.clock import ManualClock
from tests.fakes.instagram import MESSAGING_PERMISSIONS, FakeInstagram
from tests.fakes.onboarding import StateTable
from tests.unit.onboarding.reading import jargon

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
        """Open the invite link, and follow the page's button to Instagram."""
        reply = self.onboarding.start(request("/oauth/start", {"invite": invite()}))
        assert (reply.status, outcome(reply)) == (200, "explainer"), reply.body
        state = dict(parse_qsl(urlsplit(continue_url(reply.body)).query))["state"]
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


def world(
    *, configured: bool = True, business: Business | None = None, states: Callable[[str], States] | None = None
) -> World:
    clock = ManualClock(NOW)
    state_table, instagram = StateTable(), FakeInstagram(clock)
    vault, table, events = MemoryVault(), MemoryAccountTable(), MemoryAccountEvents()
    connector = AccountConnector(login=instagram, vault=vault, accounts=table, events=events, webhook_fields=FIELDS)
    onboarding = Onboarding(
        credentials=lambda: CREDENTIALS if configured else None,
        states=states or state_table.store,
        login=instagram,
        connector=connector,
        authorize_url=AUTHORIZE_URL,
        scopes=SCOPES,
        business=business,
        clock=clock,
    )
    return World(clock, state_table, instagram, vault, table, events, onboarding)


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


def test_start_shows_a_page_whose_button_goes_to_instagram_with_the_scopes_a_state_and_a_cookie_bound_to_it() -> None:
    w = world()
    reply = w.onboarding.start(request("/oauth/start", {"invite": invite()}))
    assert (reply.status, outcome(reply)) == (200, "explainer")
    assert "Location" not in dict(reply.headers)  # the person reads first, then chooses to go on
    location = urlsplit(continue_url(reply.body))
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
    assert "This invite link has expired" in reply.body


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
    assert "@new_shop is now connected to the business that invited you" in reply.body
    assert "you can close this tab" in reply.body and NEW not in reply.body
    assert "Set-Cookie" not in dict(reply.headers)  # its state is used up: a reload says "already used"
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
    reply = w.callback(
        browser, error="access_denied", error_reason="user_denied", error_description="The user denied your request."
    )
    assert (reply.status, outcome(reply)) == (400, "denied")
    assert "You chose Cancel on Instagram&#x27;s page" in reply.body and "Open your invite link again" in reply.body
    assert header(reply, "Set-Cookie") == CLEARED_COOKIE
    assert w.stored_nothing()


def test_a_login_instagram_ended_otherwise_quotes_its_words_for_whoever_helps() -> None:
    w = world()
    reply = w.callback(w.start(), error="server_error", error_description="Something went wrong.")
    assert (reply.status, outcome(reply)) == (400, "denied")
    assert "Instagram did not finish the login" in reply.body
    assert "mention Instagram&#x27;s message: “Something went wrong.”" in reply.body
    assert w.stored_nothing()


def test_a_state_used_once_is_refused_the_second_time() -> None:
    w = world()
    browser, code = w.log_in()
    assert w.callback(browser, code=code).status == 200
    again = w.callback(browser, code=code)
    assert (again.status, outcome(again)) == (400, "state_refused")


@pytest.mark.parametrize(
    "tamper",
    [
        lambda b: Browser(b.state, "another-browsers-nonce"),
        lambda b: Browser(b.state.rsplit(".", 1)[0] + ".forged", b.cookie),
        lambda b: Browser("", b.cookie),
    ],
    ids=["other-browser", "forged", "missing"],
)
def test_a_bad_state_stores_nothing_and_leaves_the_login_to_its_own_browser(
    tamper: Callable[[Browser], Browser],
) -> None:
    w = world()
    browser, code = w.log_in()
    reply = w.callback(tamper(browser), code=code)
    assert (reply.status, outcome(reply)) == (400, "state_refused")
    assert w.stored_nothing()
    assert w.callback(browser, code=code).status == 200  # the browser that started it can still finish


def test_a_state_older_than_its_lifetime_is_refused() -> None:
    w = world()
    browser, code = w.log_in()
    w.clock.advance(15 * 60 + 1)
    reply = w.callback(browser, code=code)
    assert (reply.status, outcome(reply)) == (400, "state_refused")
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
    assert "Instagram did not confirm the connection" in reply.body
    assert "Instagram&#x27;s message: “Matching code was not found or was already used”" in reply.body
    assert w.table.all() == [] and w.events.published == []


def test_a_login_without_the_messaging_permission_stores_nothing() -> None:
    w = world()
    browser, code = w.log_in(("instagram_business_basic",))
    reply = w.callback(browser, code=code)
    assert (reply.status, outcome(reply)) == (400, "scope_missing")
    assert "permission to read and answer your Direct messages" in reply.body
    assert w.stored_nothing()


def test_a_refused_long_lived_exchange_stores_nothing() -> None:
    w = world()
    browser, code = w.log_in()
    w.instagram.fail("long_lived", LoginError("Invalid platform app", 400, 100, None, "IGApiException"))
    reply = w.callback(browser, code=code)
    assert (reply.status, outcome(reply)) == (502, "exchange_refused")
    assert "Instagram&#x27;s message: “Invalid platform app”" in reply.body
    assert w.stored_nothing()


def test_a_subscription_meta_refuses_still_connects_the_account_and_says_so() -> None:
    w = world()
    browser, code = w.log_in()
    w.instagram.fail("subscribe", LoginError("(#200) Insufficient permissions", 403, 200, None, "OAuthException"))
    reply = w.callback(browser, code=code)
    assert (reply.status, outcome(reply)) == (200, "connected")
    assert "New messages may take up to a day to start reaching the business that invited you" in reply.body
    assert "Insufficient permissions" not in reply.body  # the log has it, and the account's last_error
    account = w.table.get(NEW)
    assert account is not None and account.status == ACTIVE and account.subscribed_fields == ()
    assert w.table.last_error[NEW] == "subscribing failed: (#200) Insufficient permissions"


class RefusingStates:
    """States whose answer from Instagram is always refused, for the reason given."""

    def __init__(self, reason: Refusal | None) -> None:
        self._reason = reason

    def store(self, state_key: str) -> "RefusingStates":
        """The service's `states` factory: the same refusals whatever the key."""
        return self

    def issue(self, *, now: float) -> State:
        return State("n", "n.1.s")

    def consume(self, value: str | None, *, cookie_nonce: str | None, now: float) -> str:
        raise StateRefused("refused", self._reason)


@pytest.mark.parametrize(
    ("reason", "title", "then"),
    [
        (Refusal.EXPIRED, "This link has timed out", "Open your invite link again to start over."),
        (
            Refusal.USED,
            "This page was already used",
            "If you already saw “Your Instagram account is connected”, you are done: you can close this tab. "
            "If not, open your invite link again.",
        ),
        (
            Refusal.OTHER_BROWSER,
            "Please finish in the browser you started in",
            "Open your invite link again in this browser, and finish here.",
        ),
        (Refusal.NOT_ISSUED_HERE, "This link cannot be used", "Open your invite link again to start over."),
        (None, "This link cannot be used", "Open your invite link again to start over."),
    ],
    ids=["expired", "used", "other-browser", "not-issued-here", "unsaid"],
)
def test_each_reason_a_login_is_refused_has_its_own_words_and_next_step(
    reason: Refusal | None, title: str, then: str
) -> None:
    w = world(states=RefusingStates(reason).store)
    reply = w.onboarding.callback(request("/oauth/callback", {"state": "s", "code": "c"}, cookies=["igdm_oauth=n"]))
    assert (reply.status, outcome(reply)) == (400, "state_refused")
    assert f'<h1 id="title">{title}</h1>' in reply.body and f'<p class="next">{then}</p>' in reply.body
    assert header(reply, "Set-Cookie") == CLEARED_COOKIE
    assert w.stored_nothing()


def every_page_a_login_can_end_on(business: Business) -> dict[str, Reply]:
    """One of each: the first page, the refusals of an invite, and each way the answer from Instagram ends."""
    w = world(business=business)
    pages = {"explainer": w.onboarding.start(request("/oauth/start", {"invite": invite()}))}
    for name, query in (("no-invite", {}), ("bad-invite", {"invite": "1.abc"})):
        pages[name] = w.onboarding.start(request("/oauth/start", query))
    expired = world(business=business)
    link = invite(valid_seconds=60)
    expired.clock.advance(61)
    pages["expired-invite"] = expired.onboarding.start(request("/oauth/start", {"invite": link}))
    pages["not-configured"] = world(configured=False, business=business).onboarding.start(
        request("/oauth/start", {"invite": invite()})
    )
    pages["cancelled"] = w.callback(w.start(), error="access_denied", error_reason="user_denied")
    pages["stopped"] = w.callback(w.start(), error="server_error", error_description="Something went wrong.")
    for reason in (*Refusal, None):
        refused = world(business=business, states=RefusingStates(reason).store)
        pages[f"refused-{reason}"] = refused.onboarding.callback(request("/oauth/callback", {"code": "c"}))
    browser, code = w.log_in(("instagram_business_basic",))
    pages["no-messages"] = w.callback(browser, code=code)
    browser, code = w.log_in()
    pages["connected"] = w.callback(browser, code=code)
    pages["code-reused"] = w.callback(w.start(), code=code)
    browser, code = w.log_in()
    w.instagram.fail("long_lived", LoginError("Invalid platform app", 400, 100, None, "IGApiException"))
    pages["exchange-refused"] = w.callback(browser, code=code)
    unsubscribed = world(business=business)
    browser, code = unsubscribed.log_in()
    unsubscribed.instagram.fail("subscribe", LoginError("(#200) Insufficient", 403, 200, None, "OAuthException"))
    pages["connected-unsubscribed"] = unsubscribed.callback(browser, code=code)
    return pages


@pytest.mark.parametrize("business", [Business(), Business("Local Coffee Shop")], ids=["unnamed", "named"])
def test_every_page_says_what_happened_and_what_next_in_plain_words(business: Business) -> None:
    pages = every_page_a_login_can_end_on(business)
    assert {name: jargon(reply) for name, reply in pages.items() if jargon(reply)} == {}
    for name, reply in pages.items():
        assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in reply.body, name
        if name != "explainer":
            assert '<p class="next">' in reply.body, name  # what to do now, always
        if business.name:
            assert f'<header><span id="business">{business.name}</span></header>' in reply.body, name


def test_the_business_name_and_the_username_are_escaped_on_the_result_page() -> None:
    w = world(business=Business('<b>Bold</b> & "Co"'))
    browser = w.start()
    code = w.instagram.authorise(NEW, "<img src=x>", redirect_uri=CALLBACK_URL, permissions=MESSAGING_PERMISSIONS)
    reply = w.callback(browser, code=code)
    assert (reply.status, outcome(reply)) == (200, "connected")
    assert "<b>" not in reply.body and "<img" not in reply.body
    assert "@&lt;img src=x&gt; is now connected to &lt;b&gt;Bold&lt;/b&gt; &amp; &quot;Co&quot;" in reply.body
