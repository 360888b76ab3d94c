"""Onboarding through Instagram Business Login: the real onboarding handler behind the local API server,
the Graph sandbox as Instagram's login pages and token endpoints, moto as AWS. The invite link opens the
explainer page; its "Continue to Instagram" button is the authorise URL, with the login's state."""

from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from igdm.store.accounts import ACTIVE
from local.aws.apigw import LambdaContext, http_api_event
from local.harnesses.accounts import APP_ID, AccountsHarness, follow_login
from onboarding.explainer import continue_url
from onboarding.handler import lambda_handler

NEW = "17841400000000077"


@pytest.fixture(autouse=True)
def _new_shop_can_log_in(accounts: AccountsHarness) -> None:
    accounts.sandbox.add_login(NEW, "new_shop")


def _continue(accounts: AccountsHarness, session: requests.Session) -> dict[str, str]:
    """Open the invite link in `session`: the authorise request behind the explainer's button, as parameters."""
    start = session.get(accounts.invite(), allow_redirects=False, timeout=10)
    assert start.status_code == 200 and 'data-outcome="explainer"' in start.text, start.text
    return dict(parse_qsl(urlsplit(continue_url(start.text)).query))


def _allowed(accounts: AccountsHarness, session: requests.Session, params: dict[str, str]) -> dict[str, str]:
    """Choose Allow on the sandbox's page, as the new shop: what Instagram sends back to the callback."""
    answer = session.post(
        f"{accounts.sandbox.base_url}/oauth/authorize",
        allow_redirects=False,
        timeout=10,
        data={**params, "account_id": NEW, "decision": "allow"},
    )
    return dict(parse_qsl(urlsplit(answer.headers["Location"]).query))


def _stored_nothing(accounts: AccountsHarness) -> None:
    assert accounts.table.all() == []
    assert accounts.token(NEW) is None
    assert accounts.account_events() == []


def test_start_explains_then_leads_to_instagram_with_the_scopes_a_signed_state_and_a_cookie(
    accounts: AccountsHarness,
) -> None:
    start = requests.get(accounts.invite(), allow_redirects=False, timeout=10)
    assert start.status_code == 200 and "Location" not in start.headers
    assert "asks to connect your Instagram professional account" in start.text
    location = urlsplit(continue_url(start.text))
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{accounts.sandbox.base_url}/oauth/authorize"
    query = dict(parse_qsl(location.query))
    assert query["client_id"] == APP_ID and query["response_type"] == "code"
    assert (
        query["scope"]
        == "instagram_business_basic,instagram_business_manage_messages,instagram_business_manage_comments"
    )
    assert query["redirect_uri"] == f"{accounts.api_url}/oauth/callback"
    nonce = query["state"].split(".")[0]
    assert start.cookies.get("igdm_oauth") == nonce
    assert "HttpOnly" in start.headers["Set-Cookie"] and "SameSite=Lax" in start.headers["Set-Cookie"]


@pytest.mark.parametrize(
    "accounts", [{}, {"token_response_shape": "flat"}], indirect=True, ids=["data-shape", "flat-shape"]
)
def test_a_login_connects_the_account_stores_its_long_lived_token_and_subscribes_it(accounts: AccountsHarness) -> None:
    page = follow_login(accounts, requests.Session(), account_id=NEW)
    assert page.status_code == 200, page.text
    assert 'data-outcome="connected"' in page.text and "@new_shop is now connected" in page.text
    account = accounts.account(NEW)
    assert account.status == ACTIVE and account.username == "new_shop"
    document = accounts.token(NEW)
    assert document is not None and document.user_id == NEW
    [long_lived] = [t for t in accounts.sandbox.tokens_of(NEW) if t.kind == "long"]
    assert document.access_token == long_lived.token  # the long-lived one, never the 1-hour token
    assert "instagram_business_manage_messages" in document.scopes
    assert sorted(accounts.sandbox.subscribed_fields(NEW)) == sorted(accounts.fields)
    [event] = accounts.account_events()
    assert event["account_id"] == NEW and event["account"]["change"] == "connected"
    assert long_lived.token not in page.text


def test_a_denied_login_stores_nothing_and_says_why(accounts: AccountsHarness) -> None:
    page = follow_login(accounts, requests.Session(), decision="cancel")
    assert page.status_code == 400 and 'data-outcome="denied"' in page.text
    assert "You chose Cancel on Instagram&#x27;s page" in page.text
    _stored_nothing(accounts)


def test_a_replayed_state_is_refused(accounts: AccountsHarness) -> None:
    session = requests.Session()
    first = follow_login(accounts, session, account_id=NEW)
    assert first.status_code == 200
    again = session.get(first.url, allow_redirects=False, timeout=10)
    assert again.status_code == 400 and 'data-outcome="state_refused"' in again.text
    assert "This page was already used" in again.text


def test_a_reused_code_is_refused_and_stores_nothing(accounts: AccountsHarness) -> None:
    session = requests.Session()
    first = follow_login(accounts, session, account_id=NEW)
    code = dict(parse_qsl(urlsplit(first.url).query))["code"]
    # A second login flow (a fresh state and cookie) presenting the first flow's code.
    state = _continue(accounts, session)["state"]
    page = session.get(f"{accounts.api_url}/oauth/callback", params={"code": code, "state": state}, timeout=10)
    assert page.status_code == 400 and 'data-outcome="code_refused"' in page.text
    assert "Matching code was not found or was already used" in page.text


def test_an_expired_code_is_refused_and_stores_nothing(accounts: AccountsHarness) -> None:
    session = requests.Session()
    back = _allowed(accounts, session, _continue(accounts, session))
    accounts.sandbox.advance(3601)  # codes live one hour
    page = session.get(f"{accounts.api_url}/oauth/callback", params=back, allow_redirects=False, timeout=10)
    assert page.status_code == 400 and 'data-outcome="code_refused"' in page.text
    _stored_nothing(accounts)


def test_the_trailing_hash_underscore_is_stripped_from_the_code(accounts: AccountsHarness) -> None:
    session = requests.Session()
    back = _allowed(accounts, session, _continue(accounts, session))
    # Pasted from a browser's address bar, the code can arrive with Meta's "#_" still on it.
    page = session.get(
        f"{accounts.api_url}/oauth/callback", params={"code": back["code"] + "#_", "state": back["state"]}, timeout=10
    )
    assert page.status_code == 200, page.text
    assert accounts.account(NEW).status == ACTIVE


@pytest.mark.parametrize(
    "tamper", ["forged", "no_cookie", "missing", "non_ascii_signature", "non_ascii_nonce", "non_ascii_cookie"]
)
def test_a_bad_state_is_refused_and_stores_nothing(accounts: AccountsHarness, tamper: str) -> None:
    session = requests.Session()
    query = _allowed(accounts, session, _continue(accounts, session))
    if tamper == "forged":
        nonce, expires, _ = query["state"].split(".")
        query["state"] = f"{nonce}.{int(expires) + 3600}.{'A' * 43}"
    elif tamper == "missing":
        del query["state"]
    elif tamper == "non_ascii_signature":  # compare_digest raises TypeError on a non-ASCII str: was a 503
        nonce, expires, signature = query["state"].split(".")
        query["state"] = f"{nonce}.{expires}.{signature[:-1]}\u00e9"
    elif tamper == "non_ascii_nonce":
        nonce, expires, signature = query["state"].split(".")
        query["state"] = f"\u00e9{nonce}.{expires}.{signature}"
    elif tamper == "non_ascii_cookie":  # the state is valid; the cookie it is checked against is not ASCII
        session.cookies.clear()
        session.cookies.set("igdm_oauth", "\u00e9" * 32)
    else:
        session.cookies.clear()
    page = session.get(f"{accounts.api_url}/oauth/callback", params=query, timeout=10)
    assert page.status_code == 400 and 'data-outcome="state_refused"' in page.text
    _stored_nothing(accounts)


@pytest.mark.parametrize(
    "invite",
    [
        "",
        "?invite=1.abc",
        "?invite=1000.x",
        "?invite=1.%C3%A9",
        "?invite=1790003600.%E2%80%94" + "A" * 42,
        "?invite=%C2%B2.abc",
    ],
    ids=["none", "short", "forged", "non-ascii", "non-ascii-long", "superscript-digit"],
)
def test_start_without_a_valid_invite_is_refused(accounts: AccountsHarness, invite: str) -> None:
    page = requests.get(f"{accounts.api_url}/oauth/start{invite}", allow_redirects=False, timeout=10)
    assert page.status_code == 403 and 'data-outcome="invite_refused"' in page.text
    assert "Set-Cookie" not in page.headers and 'id="continue"' not in page.text  # no state was issued


def _invoke(path: str, query: dict[str, str], cookies: list[str] | None = None) -> dict[str, Any]:
    """The onboarding handler invoked as Lambda invokes it, with values no HTTP request can carry."""
    event = {**http_api_event("GET", path), "queryStringParameters": query, "cookies": cookies or []}
    context: Any = LambdaContext("OnboardingFunction")  # the attributes Powertools reads, as local.stack passes
    reply: dict[str, Any] = lambda_handler(event, context)
    return reply


@pytest.mark.parametrize("where", ["invite", "invite_expiry", "state_signature", "state_nonce", "cookie"])
def test_half_a_surrogate_pair_is_refused_with_the_usual_page(accounts: AccountsHarness, where: str) -> None:
    # Lambda decodes the event's JSON, so a "\\ud800" escape arrives as half a surrogate pair: a str that
    # cannot even be encoded. It is refused like any invalid value, not answered with a 503.
    if where.startswith("invite"):
        forged = _invoke("/oauth/start", {"invite": "1.abc"})
        invite = "1790003600.\ud800" if where == "invite" else "\ud800.abc"
        reply = _invoke("/oauth/start", {"invite": invite})
    else:
        state = _continue(accounts, requests.Session())["state"]
        nonce, expires, signature = state.split(".")
        forged = _invoke(
            "/oauth/callback", {"state": f"{nonce}.{expires}.{'A' * 43}", "code": "c"}, [f"igdm_oauth={nonce}"]
        )
        query, cookie = {"state": state, "code": "c"}, nonce
        if where == "state_signature":
            query["state"] = f"{nonce}.{expires}.{signature[:-1]}\ud800"
        elif where == "state_nonce":
            query["state"] = f"\ud800{nonce}.{expires}.{signature}"
        else:
            cookie = "\ud800"
        reply = _invoke("/oauth/callback", query, [f"igdm_oauth={cookie}"])
    assert reply["statusCode"] == forged["statusCode"] == (403 if where.startswith("invite") else 400), reply
    outcome = 'data-outcome="invite_refused"' if where.startswith("invite") else 'data-outcome="state_refused"'
    assert outcome in reply["body"] and outcome in forged["body"]
    assert reply["headers"] == forged["headers"]  # the usual page: no-store, CSP, and no cookie but a cleared one
    assert "Max-Age=900" not in reply["headers"].get("Set-Cookie", "")  # no state was issued
    _stored_nothing(accounts)
