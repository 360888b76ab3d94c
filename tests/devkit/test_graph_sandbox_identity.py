"""The Graph API sandbox answers Business Login for Instagram as Meta does, with tokens that age on its clock."""

import re
import time
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from local.meta.graph_sandbox import GraphSandbox
from local.meta.login import app_scoped_id

T0 = 1_700_000_000.0  # Tuesday, 14-Nov-23 14:13:20 PST
HOUR = 3600
DAY = 86_400
APP_ID = "local-instagram-app-id"
APP_SECRET = "local-instagram-app-secret"
ACCOUNT = "17841400000000001"
TOKEN = "dashboard-token"
SHOP = "17841400000000002"
OTHER_ACCOUNT = "17841400000000003"
OTHER_TOKEN = "other-token"
REDIRECT = "http://127.0.0.1:8765/oauth/callback"
SCOPE = "instagram_business_basic,instagram_business_manage_messages"
IGSID = "6543210987654321"
MESSAGE = {"recipient": {"id": IGSID}, "message": {"text": "Hi"}}


class Form(HTMLParser):
    """What a browser would see on a page: the form's fields, the select's options, the buttons and the title."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.title = ""
        self.form: dict[str, str] = {}
        self.fields: dict[str, str] = {}
        self.options: list[tuple[str, str]] = []
        self.buttons: dict[str, dict[str, str]] = {}
        self.selects: list[dict[str, str]] = []
        self.items: list[str] = []
        self._in: str | None = None
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.form = values
        elif tag == "input" and values.get("type") == "hidden":
            self.fields[values["name"]] = values["value"]
        elif tag == "select":
            self.selects.append(values)
        elif tag == "button":
            self.buttons[values["id"]] = values
        elif tag == "option":
            self.options.append((values["value"], ""))
        self._in = tag

    def handle_data(self, data: str) -> None:
        if self._in == "title":
            self.title += data
        elif self._in == "option":
            self.options[-1] = (self.options[-1][0], self.options[-1][1] + data)
        elif self._in == "li":
            self.items.append(data)

    def handle_endtag(self, tag: str) -> None:
        self._in = None


@pytest.fixture
def make_sandbox() -> Iterator[Callable[..., GraphSandbox]]:
    started: list[GraphSandbox] = []

    def make(**options: Any) -> GraphSandbox:
        sandbox = GraphSandbox(clock=lambda: T0, **options).start()
        sandbox.add_account(ACCOUNT, TOKEN, username="dashboard_account")
        sandbox.add_account(OTHER_ACCOUNT, OTHER_TOKEN)
        sandbox.add_login(SHOP, "corner_shop")
        started.append(sandbox)
        return sandbox

    yield make
    for sandbox in started:
        sandbox.stop()


def authorize_params(**overrides: str | None) -> dict[str, str]:
    params: dict[str, str | None] = {
        "client_id": APP_ID,
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "scope": SCOPE,
        "state": "csrf-123",
        **overrides,
    }
    return {name: value for name, value in params.items() if value is not None}


def consent_page(http: requests.Session, sandbox: GraphSandbox, **overrides: str | None) -> requests.Response:
    return http.get(sandbox.base_url + "/oauth/authorize", params=authorize_params(**overrides), timeout=5)


def submit(
    http: requests.Session,
    sandbox: GraphSandbox,
    decision: str = "allow",
    account_id: str = SHOP,
    **overrides: str | None,
) -> requests.Response:
    """Post the consent form as a browser would: the page's hidden fields, the chosen account, one button."""
    page = consent_page(http, sandbox, **overrides)
    assert page.status_code == 200, page.text
    form = Form(page.text)
    data = {**form.fields, "account_id": account_id, "decision": form.buttons[decision]["value"]}
    return http.post(sandbox.base_url + form.form["action"], data=data, allow_redirects=False, timeout=5)


def redirect_query(response: requests.Response) -> dict[str, list[str]]:
    assert response.status_code == 302, response.text
    return parse_qs(urlsplit(response.headers["Location"]).query)


def authorization_code(http: requests.Session, sandbox: GraphSandbox, account_id: str = SHOP) -> str:
    return redirect_query(submit(http, sandbox, account_id=account_id))["code"][0]


def exchange_code(http: requests.Session, sandbox: GraphSandbox, code: str, **overrides: str) -> requests.Response:
    form = {
        "client_id": APP_ID,
        "client_secret": APP_SECRET,
        "grant_type": "authorization_code",
        "redirect_uri": REDIRECT,
        "code": code,
        **overrides,
    }
    return http.post(sandbox.base_url + "/oauth/access_token", data=form, timeout=5)


def short_token(http: requests.Session, sandbox: GraphSandbox, account_id: str = SHOP) -> str:
    answer = exchange_code(http, sandbox, authorization_code(http, sandbox, account_id)).json()
    return cast(str, answer["data"][0]["access_token"])


def exchange_token(
    http: requests.Session, sandbox: GraphSandbox, token: str, secret: str = APP_SECRET
) -> requests.Response:
    params = {"grant_type": "ig_exchange_token", "client_secret": secret, "access_token": token}
    return http.get(sandbox.base_url + "/access_token", params=params, timeout=5)


def long_token(http: requests.Session, sandbox: GraphSandbox, account_id: str = SHOP) -> str:
    return cast(str, exchange_token(http, sandbox, short_token(http, sandbox, account_id)).json()["access_token"])


def refresh(
    http: requests.Session, sandbox: GraphSandbox, token: str, grant_type: str = "ig_refresh_token"
) -> requests.Response:
    params = {"grant_type": grant_type, "access_token": token}
    return http.get(sandbox.base_url + "/refresh_access_token", params=params, timeout=5)


def me(
    http: requests.Session, sandbox: GraphSandbox, token: str, fields: str | None = "user_id,username", node: str = "me"
) -> requests.Response:
    params = {"fields": fields} if fields is not None else {}
    return http.get(
        f"{sandbox.base_url}/v24.0/{node}", params=params, headers={"Authorization": f"Bearer {token}"}, timeout=5
    )


def send(http: requests.Session, sandbox: GraphSandbox, token: str) -> requests.Response:
    return http.post(
        sandbox.base_url + "/v24.0/me/messages", json=MESSAGE, headers={"Authorization": f"Bearer {token}"}, timeout=5
    )


def subscribed_apps(
    http: requests.Session,
    sandbox: GraphSandbox,
    method: str = "GET",
    token: str = TOKEN,
    node: str = "me",
    **kwargs: Any,
) -> requests.Response:
    return http.request(
        method,
        f"{sandbox.base_url}/v24.0/{node}/subscribed_apps",
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
        **kwargs,
    )


def error_of(response: requests.Response) -> dict[str, Any]:
    return cast(dict[str, Any], response.json()["error"])


def codes(response: requests.Response) -> tuple[int, int, int | None]:
    error = error_of(response)
    return response.status_code, error["code"], error.get("error_subcode")


def control(http: requests.Session, sandbox: GraphSandbox, route: str, body: Any = None) -> requests.Response:
    url = f"{sandbox.base_url}/__sandbox/{route}"
    return http.get(url, timeout=5) if body is None else http.post(url, json=body, timeout=5)


# --- the consent page ---


def test_the_consent_page_lists_the_login_accounts_and_the_requested_scopes(
    sandbox: GraphSandbox, http: requests.Session
) -> None:
    sandbox.add_login("17841400000000009", "second_shop")
    response = consent_page(http, sandbox)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    page = Form(response.text)
    assert page.title == "Log in to Instagram"
    assert page.selects == [{"id": "account", "name": "account_id"}]
    assert page.options == [(SHOP, "corner_shop"), ("17841400000000009", "second_shop")]
    assert page.items == ["instagram_business_basic", "instagram_business_manage_messages"]
    assert page.form == {"method": "post", "action": "/oauth/authorize"}
    assert {name: page.fields[name] for name in ("client_id", "redirect_uri", "scope", "state")} == {
        "client_id": APP_ID,
        "redirect_uri": REDIRECT,
        "scope": SCOPE,
        "state": "csrf-123",
    }
    assert page.buttons["allow"] == {"id": "allow", "type": "submit", "name": "decision", "value": "allow"}
    assert page.buttons["cancel"]["value"] == "cancel"


def test_without_logins_the_page_lists_the_accounts_added_with_tokens(http: requests.Session) -> None:
    sandbox = GraphSandbox(clock=lambda: T0).start()
    try:
        sandbox.add_account(ACCOUNT, TOKEN)
        sandbox.add_account(OTHER_ACCOUNT, OTHER_TOKEN, username="other_shop")
        assert Form(consent_page(http, sandbox).text).options == [(ACCOUNT, "user_0001"), (OTHER_ACCOUNT, "other_shop")]
    finally:
        sandbox.stop()


def test_the_consent_page_escapes_everything_it_echoes(sandbox: GraphSandbox, http: requests.Session) -> None:
    sandbox.add_login("17841400000000010", "<b>bold</b>")
    state = '"><script>alert(1)</script>'
    response = consent_page(http, sandbox, state=state, redirect_uri=REDIRECT + '?next=<x>&a="q"')
    assert "<script>" not in response.text and "<b>" not in response.text and "<x>" not in response.text
    page = Form(response.text)
    assert page.fields["state"] == state  # intact once a browser unescapes it
    assert page.fields["redirect_uri"] == REDIRECT + '?next=<x>&a="q"'
    assert ("17841400000000010", "<b>bold</b>") in page.options


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"client_id": "someone-elses-app"}, "Invalid client_id"),
        ({"client_id": None}, "Invalid client_id"),
        ({"response_type": "token"}, "Invalid response_type"),
        ({"response_type": None}, "Invalid response_type"),
        ({"redirect_uri": "https://example.com/callback"}, "Invalid redirect_uri"),
        ({"redirect_uri": "/oauth/callback"}, "Invalid redirect_uri"),
        ({"redirect_uri": "javascript:alert(1)"}, "Invalid redirect_uri"),
        ({"redirect_uri": "http://user:pw@127.0.0.1:8765/cb"}, "Invalid redirect_uri"),
        ({"redirect_uri": REDIRECT + "#frag"}, "Invalid redirect_uri"),
        ({"redirect_uri": None}, "Invalid redirect_uri"),
        ({"scope": "instagram_business_basic,user_profile,user_media"}, "Invalid Scopes: user_profile, user_media"),
        ({"scope": "instagram_business_manage_messages"}, "Invalid Scopes: instagram_business_basic is required"),
        ({"scope": None}, "Invalid Scopes: instagram_business_basic is required"),
    ],
)
def test_bad_dialog_parameters_answer_a_400_page_naming_the_problem(
    sandbox: GraphSandbox, http: requests.Session, overrides: dict[str, str | None], problem: str
) -> None:
    response = consent_page(http, sandbox, **overrides)
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert problem in response.text
    assert "<form" not in response.text


def test_scopes_may_be_space_separated(sandbox: GraphSandbox, http: requests.Session) -> None:
    page = Form(consent_page(http, sandbox, scope="instagram_business_basic instagram_business_manage_comments").text)
    assert page.items == ["instagram_business_basic", "instagram_business_manage_comments"]


# --- the redirect ---


def test_allow_redirects_with_a_code_the_state_and_meta_s_trailing_fragment(
    sandbox: GraphSandbox, http: requests.Session
) -> None:
    response = submit(http, sandbox)
    location = response.headers["Location"]
    assert location.startswith(REDIRECT + "?code=") and location.endswith("#_")
    query = redirect_query(response)
    assert query["state"] == ["csrf-123"] and len(query["code"][0]) >= 40
    assert urlsplit(location).fragment == "_"


def test_the_redirect_keeps_the_redirect_uri_s_query_and_omits_a_missing_state(
    sandbox: GraphSandbox, http: requests.Session
) -> None:
    response = submit(http, sandbox, redirect_uri=REDIRECT + "?tenant=a%20b", state=None)
    location = response.headers["Location"]
    assert location.startswith(REDIRECT + "?tenant=a%20b&code=")
    assert set(redirect_query(response)) == {"tenant", "code"}


def test_cancel_redirects_with_access_denied(sandbox: GraphSandbox, http: requests.Session) -> None:
    response = submit(http, sandbox, decision="cancel")
    assert response.headers["Location"] == (
        REDIRECT + "?error=access_denied&error_reason=user_denied"
        "&error_description=The+user+denied+your+request&state=csrf-123"
    )


def test_the_posted_form_is_validated_again(sandbox: GraphSandbox, http: requests.Session) -> None:
    url = sandbox.base_url + "/oauth/authorize"
    forged = {**authorize_params(redirect_uri="https://attacker.example/cb"), "decision": "allow", "account_id": SHOP}
    response = http.post(url, data=forged, allow_redirects=False)
    assert response.status_code == 400 and "Invalid redirect_uri" in response.text
    unknown = {**authorize_params(), "decision": "allow", "account_id": "17841499999999999"}
    assert http.post(url, data=unknown, allow_redirects=False).status_code == 400
    assert http.post(url, json={**authorize_params(), "decision": "allow"}, allow_redirects=False).status_code == 400


# --- code → short-lived token ---


def test_the_code_exchange_answers_the_documented_data_shape(sandbox: GraphSandbox, http: requests.Session) -> None:
    response = exchange_code(http, sandbox, authorization_code(http, sandbox))
    assert response.status_code == 200
    [grant] = response.json()["data"]
    assert grant["user_id"] == SHOP  # a string
    assert grant["permissions"] == SCOPE
    [token] = sandbox.tokens_of(SHOP)
    assert (token.token, token.kind, token.issued_at, token.expires_at) == (
        grant["access_token"],
        "short",
        T0,
        T0 + HOUR,
    )


def test_the_flat_shape_has_user_id_as_a_json_number(
    make_sandbox: Callable[..., GraphSandbox], http: requests.Session
) -> None:
    sandbox = make_sandbox(token_response_shape="flat")
    response = exchange_code(http, sandbox, authorization_code(http, sandbox))
    assert f'"user_id":{SHOP},' in response.text
    body = response.json()
    assert body["user_id"] == int(SHOP)
    assert body["permissions"] == ["instagram_business_basic", "instagram_business_manage_messages"]
    assert body["access_token"] == sandbox.tokens_of(SHOP)[0].token


def test_the_code_exchange_takes_multipart_as_in_meta_s_curl_example(
    sandbox: GraphSandbox, http: requests.Session
) -> None:
    form = {
        "client_id": APP_ID,
        "client_secret": APP_SECRET,
        "grant_type": "authorization_code",
        "redirect_uri": REDIRECT,
        "code": authorization_code(http, sandbox),
    }
    response = http.post(
        sandbox.base_url + "/oauth/access_token", files={name: (None, value) for name, value in form.items()}
    )
    assert response.status_code == 200, response.text


def oauth_error(response: requests.Response) -> str:
    assert response.status_code == 400
    body = response.json()
    assert (body["error_type"], body["code"]) == ("OAuthException", 400)
    return cast(str, body["error_message"])


def test_a_code_works_once(sandbox: GraphSandbox, http: requests.Session) -> None:
    code = authorization_code(http, sandbox)
    assert exchange_code(http, sandbox, code).status_code == 200
    assert oauth_error(exchange_code(http, sandbox, code)) == "Matching code was not found or was already used"
    assert oauth_error(exchange_code(http, sandbox, "AQ-made-up")) == "Matching code was not found or was already used"


def test_a_code_expires_after_an_hour(sandbox: GraphSandbox, http: requests.Session) -> None:
    code = authorization_code(http, sandbox)
    sandbox.advance(HOUR + 1)
    assert oauth_error(exchange_code(http, sandbox, code)) == "Matching code was not found or was already used"


def test_a_different_redirect_uri_is_refused_and_spends_the_code(sandbox: GraphSandbox, http: requests.Session) -> None:
    code = authorization_code(http, sandbox)
    message = oauth_error(exchange_code(http, sandbox, code, redirect_uri=REDIRECT + "/"))
    assert message.startswith("Error validating verification code. Please make sure your redirect_uri is identical")
    assert oauth_error(exchange_code(http, sandbox, code)) == "Matching code was not found or was already used"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"client_secret": "wrong"}, "Error validating client secret."),
        ({"client_id": "another-app"}, "Error validating client secret."),
        ({"grant_type": "client_credentials"}, "Invalid grant_type"),
    ],
)
def test_bad_client_credentials_or_grant_type_are_refused_and_keep_the_code(
    sandbox: GraphSandbox, http: requests.Session, overrides: dict[str, str], message: str
) -> None:
    code = authorization_code(http, sandbox)
    assert oauth_error(exchange_code(http, sandbox, code, **overrides)) == message
    assert exchange_code(http, sandbox, code).status_code == 200


# --- short → long-lived ---


def test_a_short_token_becomes_a_long_one_that_works_on_me_and_the_send_api(
    sandbox: GraphSandbox, http: requests.Session
) -> None:
    short = short_token(http, sandbox)
    sandbox.advance(30 * 60)
    response = exchange_token(http, sandbox, short)
    assert response.status_code == 200
    body = response.json()
    assert (body["token_type"], body["expires_in"]) == ("bearer", 5_183_944)
    assert body["access_token"] != short
    assert me(http, sandbox, body["access_token"]).json()["user_id"] == SHOP
    assert send(http, sandbox, body["access_token"]).status_code == 200
    long = [t for t in sandbox.tokens_of(SHOP) if t.kind == "long"]
    assert [(t.issued_at, t.expires_at) for t in long] == [(T0 + 1800, T0 + 1800 + 5_183_944)]


def test_the_exchange_refuses_a_bad_secret_a_long_token_and_an_expired_one(
    sandbox: GraphSandbox, http: requests.Session
) -> None:
    short = short_token(http, sandbox)
    bad_secret = exchange_token(http, sandbox, short, secret="wrong")
    assert codes(bad_secret) == (400, 101, None)
    assert error_of(bad_secret)["message"] == "Error validating client secret."
    assert codes(exchange_token(http, sandbox, TOKEN)) == (400, 100, None)
    assert codes(exchange_token(http, sandbox, "made-up")) == (401, 190, None)
    wrong_grant = http.get(
        sandbox.base_url + "/access_token",
        params={"grant_type": "ig_refresh_token", "client_secret": APP_SECRET, "access_token": short},
    )
    assert codes(wrong_grant) == (400, 100, None)
    sandbox.advance(HOUR)
    assert codes(exchange_token(http, sandbox, short)) == (400, 190, 463)


def test_a_short_token_expires_after_an_hour_on_the_send_api(sandbox: GraphSandbox, http: requests.Session) -> None:
    short = short_token(http, sandbox)
    sandbox.advance(HOUR - 1)
    assert send(http, sandbox, short).status_code == 200
    sandbox.advance(1)
    assert codes(send(http, sandbox, short)) == (400, 190, 463)


# --- refresh ---


def test_refresh_is_refused_at_23_hours_and_allowed_at_24(sandbox: GraphSandbox, http: requests.Session) -> None:
    sandbox.advance(23 * HOUR)
    young = refresh(http, sandbox, TOKEN)
    assert codes(young) == (400, 100, None)
    assert error_of(young)["message"] == "(#100) The access token must be at least 24 hours old to be refreshed"
    sandbox.advance(HOUR)
    response = refresh(http, sandbox, TOKEN)
    assert response.status_code == 200
    body = response.json()
    assert (body["token_type"], body["expires_in"]) == ("bearer", 5_184_000)
    assert body["access_token"] != TOKEN
    assert [(t.kind, t.issued_at, t.expires_at) for t in sandbox.tokens_of(ACCOUNT) if t.token != TOKEN] == [
        ("long", T0 + DAY, T0 + DAY + 5_184_000)
    ]
    assert send(http, sandbox, TOKEN).status_code == 200  # Meta's default here: the old one lives on
    assert send(http, sandbox, body["access_token"]).status_code == 200


def test_a_refreshed_token_can_be_refreshed_again_only_24_hours_later(
    sandbox: GraphSandbox, http: requests.Session
) -> None:
    sandbox.advance(DAY)
    renewed = refresh(http, sandbox, TOKEN).json()["access_token"]
    assert codes(refresh(http, sandbox, renewed)) == (400, 100, None)
    sandbox.advance(DAY)
    assert refresh(http, sandbox, renewed).status_code == 200


def test_refresh_can_be_made_to_kill_the_old_token(
    make_sandbox: Callable[..., GraphSandbox], http: requests.Session
) -> None:
    sandbox = make_sandbox(refresh_invalidates_old=True)
    sandbox.advance(DAY)
    renewed = refresh(http, sandbox, TOKEN).json()["access_token"]
    assert codes(send(http, sandbox, TOKEN)) == (400, 190, 467)
    assert codes(refresh(http, sandbox, TOKEN)) == (400, 190, 467)
    assert send(http, sandbox, renewed).status_code == 200
    assert [t.revoked for t in sandbox.tokens_of(ACCOUNT)] == [True, False]


def test_refresh_refuses_a_short_token_and_a_wrong_grant_type(sandbox: GraphSandbox, http: requests.Session) -> None:
    assert codes(refresh(http, sandbox, short_token(http, sandbox))) == (400, 100, None)
    sandbox.advance(DAY)
    assert codes(refresh(http, sandbox, TOKEN, grant_type="ig_exchange_token")) == (400, 100, None)
    assert codes(refresh(http, sandbox, "made-up")) == (401, 190, None)


def test_versioned_token_paths_are_answered_too(sandbox: GraphSandbox, http: requests.Session) -> None:
    sandbox.advance(DAY)
    params = {"grant_type": "ig_refresh_token", "access_token": TOKEN}
    assert http.get(sandbox.base_url + "/v24.0/refresh_access_token", params=params).status_code == 200


# --- expiry and revocation ---


def test_an_expired_token_is_refused_with_190_463_everywhere(sandbox: GraphSandbox, http: requests.Session) -> None:
    sandbox.advance(60 * DAY + 1)
    for response in (
        send(http, sandbox, TOKEN),
        me(http, sandbox, TOKEN),
        refresh(http, sandbox, TOKEN),
        subscribed_apps(http, sandbox),
    ):
        assert codes(response) == (400, 190, 463)
        error = error_of(response)
        assert error["type"] == "OAuthException"
        assert error["message"] == (
            "Error validating access token: Session has expired on Saturday, 13-Jan-24 "
            "14:13:20 PST. The current time is Saturday, 13-Jan-24 14:13:21 PST."
        )


def test_a_token_added_with_an_age_expires_on_time(sandbox: GraphSandbox, http: requests.Session) -> None:
    sandbox.add_account(ACCOUNT, "old-token", issued_at=T0 - 59 * DAY)
    assert send(http, sandbox, "old-token").status_code == 200
    sandbox.advance(DAY)
    assert codes(send(http, sandbox, "old-token")) == (400, 190, 463)
    assert re.search(
        r"expired on \w+, \d\d-\w{3}-\d\d \d\d:\d\d:\d\d P[SD]T\.",
        error_of(send(http, sandbox, "old-token"))["message"],
    )
    assert send(http, sandbox, TOKEN).status_code == 200  # the account's other token is younger


def test_revoke_refuses_every_token_of_the_account_with_190_460(sandbox: GraphSandbox, http: requests.Session) -> None:
    sandbox.add_account(ACCOUNT, "second-token")
    assert control(http, sandbox, "revoke", {"account_id": ACCOUNT}).json() == {"ok": True}
    sandbox.advance(DAY)
    for response in (
        send(http, sandbox, TOKEN),
        send(http, sandbox, "second-token"),
        me(http, sandbox, TOKEN),
        refresh(http, sandbox, TOKEN),
    ):
        assert codes(response) == (400, 190, 460)
        assert "changed their password" in error_of(response)["message"]
    assert send(http, sandbox, OTHER_TOKEN).status_code == 200
    assert all(t.revoked for t in sandbox.tokens_of(ACCOUNT))
    assert control(http, sandbox, "revoke", {"account_id": "nobody"}).status_code == 400


def test_an_unknown_token_keeps_today_s_401(sandbox: GraphSandbox, http: requests.Session) -> None:
    response = send(http, sandbox, "made-up")
    assert codes(response) == (401, 190, None)
    assert error_of(response)["message"] == "Invalid OAuth access token - Cannot parse access token"


# --- /me ---


def test_me_answers_the_requested_fields_and_an_id_unlike_user_id(
    sandbox: GraphSandbox, http: requests.Session
) -> None:
    body = me(http, sandbox, TOKEN).json()
    assert set(body) == {"id", "user_id", "username"}
    assert (body["user_id"], body["username"]) == (ACCOUNT, "dashboard_account")
    assert body["id"] != body["user_id"] and body["id"] == app_scoped_id(APP_ID, ACCOUNT)
    assert me(http, sandbox, TOKEN, fields=None).json() == {"id": body["id"]}
    by_id = me(http, sandbox, TOKEN, fields="account_type,name", node=ACCOUNT).json()
    assert by_id == {"account_type": "BUSINESS", "name": "dashboard_account", "id": body["id"]}
    assert me(http, sandbox, OTHER_TOKEN).json()["id"] != body["id"]


def test_me_takes_the_token_in_the_url_and_refuses_others_and_unknown_fields(
    sandbox: GraphSandbox, http: requests.Session
) -> None:
    url = sandbox.base_url + "/v24.0/me"
    assert http.get(url, params={"fields": "user_id", "access_token": TOKEN}).json()["user_id"] == ACCOUNT
    assert codes(me(http, sandbox, TOKEN, node=OTHER_ACCOUNT)) == (400, 100, 33)
    unknown = me(http, sandbox, TOKEN, fields="user_id,followers_secret")
    assert codes(unknown) == (400, 100, None)
    assert "nonexisting field (followers_secret)" in error_of(unknown)["message"]
    assert codes(http.get(url)) == (401, 190, None)


# --- subscribed_apps ---


def test_subscribed_apps_post_get_and_delete(sandbox: GraphSandbox, http: requests.Session) -> None:
    assert subscribed_apps(http, sandbox).json() == {"data": []}
    fields = "messages,message_reactions,messaging_postbacks,messaging_seen,messaging_referral"
    posted = subscribed_apps(http, sandbox, "POST", params={"subscribed_fields": fields})
    assert posted.json() == {"success": True}
    assert subscribed_apps(http, sandbox).json() == {
        "data": [{"id": APP_ID, "name": "Local Instagram App", "subscribed_fields": fields.split(",")}]
    }
    assert subscribed_apps(http, sandbox, "POST", node=ACCOUNT, params={"subscribed_fields": "comments"}).ok
    assert sandbox.subscribed_fields(ACCOUNT) == ["comments"]  # exactly the posted set
    assert sandbox.subscribed_fields(OTHER_ACCOUNT) == []
    assert subscribed_apps(http, sandbox, "DELETE").json() == {"success": True}
    assert subscribed_apps(http, sandbox).json() == {"data": []}


def test_subscribed_fields_may_come_as_a_json_or_form_body(sandbox: GraphSandbox, http: requests.Session) -> None:
    assert subscribed_apps(http, sandbox, "POST", json={"subscribed_fields": ["messages", "standby"]}).ok
    assert sandbox.subscribed_fields(ACCOUNT) == ["messages", "standby"]
    assert subscribed_apps(http, sandbox, "POST", data={"subscribed_fields": "message_echoes"}).ok
    assert sandbox.subscribed_fields(ACCOUNT) == ["message_echoes"]
    assert subscribed_apps(http, sandbox, "POST", params={"subscribed_fields": '["live_comments"]'}).ok
    assert sandbox.subscribed_fields(ACCOUNT) == ["live_comments"]
    missing = subscribed_apps(http, sandbox, "POST")
    assert codes(missing) == (400, 100, None) and "subscribed_fields is required" in error_of(missing)["message"]


MATRIX = (
    "messages, message_reactions, messaging_postbacks, messaging_seen, messaging_referral, messaging_optins, "
    "message_echoes, message_edit, messaging_handover, standby, comments, live_comments"
)
SEND_DOC = MATRIX.replace("message_reactions", "messaging_reactions").replace(
    "messaging_referral", "messaging_referrals"
)


@pytest.mark.parametrize(
    ("spelling", "accepted", "wrong", "own"),
    [
        ("matrix", MATRIX, "messaging_reactions", "message_reactions,messaging_referral"),
        ("matrix", MATRIX, "messaging_referrals", "message_reactions,messaging_referral"),
        ("send_doc", SEND_DOC, "message_reactions", "messaging_reactions,messaging_referrals"),
        ("send_doc", SEND_DOC, "messaging_referral", "messaging_reactions,messaging_referrals"),
    ],
)
def test_a_field_in_the_other_spelling_is_refused_with_the_accepted_names(
    make_sandbox: Callable[..., GraphSandbox],
    http: requests.Session,
    spelling: str,
    accepted: str,
    wrong: str,
    own: str,
) -> None:
    sandbox = make_sandbox(subscription_field_spelling=spelling)
    assert subscribed_apps(http, sandbox, "POST", params={"subscribed_fields": "messages"}).ok
    response = subscribed_apps(http, sandbox, "POST", params={"subscribed_fields": f"messages,standby,{wrong}"})
    assert codes(response) == (400, 100, None)
    assert error_of(response)["message"] == (
        f'(#100) Param subscribed_fields[2] must be one of {{{accepted}}} - got "{wrong}"'
    )
    assert sandbox.subscribed_fields(ACCOUNT) == ["messages"]  # unchanged
    assert subscribed_apps(http, sandbox, "POST", params={"subscribed_fields": own}).ok
    assert sandbox.subscribed_fields(ACCOUNT) == own.split(",")


def test_the_unsubscribe_control_drops_every_field(sandbox: GraphSandbox, http: requests.Session) -> None:
    subscribed_apps(http, sandbox, "POST", params={"subscribed_fields": "messages,comments"})
    assert control(http, sandbox, "unsubscribe", {"account_id": ACCOUNT}).json() == {"ok": True}
    assert subscribed_apps(http, sandbox).json() == {"data": []}
    assert sandbox.subscribed_fields(ACCOUNT) == []


# --- control routes ---


def test_the_clock_control_advances_and_reports(sandbox: GraphSandbox, http: requests.Session) -> None:
    assert control(http, sandbox, "clock").json() == {"now": T0}
    assert control(http, sandbox, "clock", {"advance_seconds": DAY}).json() == {"now": T0 + DAY}
    assert sandbox.now() == T0 + DAY
    assert control(http, sandbox, "clock", {"advance_seconds": -1}).status_code == 400
    assert control(http, sandbox, "clock", {"advance_seconds": "soon"}).status_code == 400
    assert control(http, sandbox, "clock", {"seconds": 1}).status_code == 400


def test_the_accounts_control_shows_token_ages_but_no_token(sandbox: GraphSandbox, http: requests.Session) -> None:
    short = short_token(http, sandbox)
    subscribed_apps(http, sandbox, "POST", params={"subscribed_fields": "messages"})
    response = control(http, sandbox, "accounts")
    assert TOKEN not in response.text and short not in response.text and OTHER_TOKEN not in response.text
    accounts = {a["account_id"]: a for a in response.json()["accounts"]}
    assert accounts[ACCOUNT]["username"] == "dashboard_account"
    assert accounts[ACCOUNT]["subscribed_fields"] == ["messages"]
    assert accounts[ACCOUNT]["tokens"] == [
        {"kind": "long", "issued_at": T0, "expires_at": T0 + 5_184_000, "revoked": False}
    ]
    assert accounts[SHOP]["tokens"] == [{"kind": "short", "issued_at": T0, "expires_at": T0 + HOUR, "revoked": False}]
    assert accounts[OTHER_ACCOUNT]["username"] == "user_0003" and accounts[OTHER_ACCOUNT]["subscribed_fields"] == []


def test_control_posts_still_need_json(sandbox: GraphSandbox, http: requests.Session) -> None:
    response = http.post(sandbox.base_url + "/__sandbox/revoke", data={"account_id": ACCOUNT})
    assert response.status_code == 415
    assert send(http, sandbox, TOKEN).status_code == 200


# --- faults and the request log ---


def test_faults_fire_only_on_their_endpoint(sandbox: GraphSandbox, http: requests.Session) -> None:
    sandbox.advance(DAY)
    sandbox.inject("http_5xx", endpoint="refresh")
    assert send(http, sandbox, TOKEN).status_code == 200
    assert me(http, sandbox, TOKEN).status_code == 200
    failed = refresh(http, sandbox, TOKEN)
    assert codes(failed) == (500, 2, None)
    assert [t.token for t in sandbox.tokens_of(ACCOUNT)] == [TOKEN]  # nothing was minted
    assert refresh(http, sandbox, TOKEN).status_code == 200


def test_identity_faults_over_http_per_account_and_kind(sandbox: GraphSandbox, http: requests.Session) -> None:
    assert control(
        http,
        sandbox,
        "faults",
        {
            "kind": "error",
            "endpoint": "me",
            "status": 400,
            "code": 190,
            "subcode": 460,
            "message": "gone",
            "account_id": OTHER_ACCOUNT,
        },
    ).ok
    sandbox.inject("throttle", endpoint="subscribed_apps", code=4)
    sandbox.inject("error", endpoint="exchange", status=400, code=1, message="(#1) unknown")
    assert me(http, sandbox, TOKEN).status_code == 200  # another account's fault
    assert codes(me(http, sandbox, OTHER_TOKEN)) == (400, 190, 460)
    throttled = subscribed_apps(http, sandbox)
    assert codes(throttled) == (400, 4, None) and "X-App-Usage" in throttled.headers
    assert codes(exchange_token(http, sandbox, short_token(http, sandbox))) == (400, 1, None)
    assert me(http, sandbox, OTHER_TOKEN).status_code == 200


def test_a_timeout_fault_waits_then_fails(sandbox: GraphSandbox, http: requests.Session) -> None:
    sandbox.inject("timeout", endpoint="me", delay=0.3)
    started = time.monotonic()
    assert me(http, sandbox, TOKEN).status_code == 500
    assert time.monotonic() - started >= 0.3


def test_a_code_exchange_fault_answers_in_the_flat_oauth_shape(sandbox: GraphSandbox, http: requests.Session) -> None:
    code = authorization_code(http, sandbox)
    sandbox.inject("http_5xx", endpoint="code_exchange", status=503)
    response = exchange_code(http, sandbox, code)
    assert response.status_code == 503
    assert set(response.json()) == {"error_type", "code", "error_message"}
    assert exchange_code(http, sandbox, code).status_code == 200  # the fault did not spend the code


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"kind": "http_5xx", "endpoint": "webhooks"}, "endpoint"),
        ({"kind": "invalid_json_reply", "endpoint": "refresh"}, "kind"),
        ({"kind": "timeout", "endpoint": "me", "deliver": True}, "deliver"),
    ],
)
def test_inject_refuses_faults_an_endpoint_cannot_have(kwargs: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        GraphSandbox().inject(**kwargs)


def test_every_identity_call_is_logged_by_path_without_tokens_codes_or_secrets(
    sandbox: GraphSandbox, http: requests.Session
) -> None:
    code = authorization_code(http, sandbox)
    granted = exchange_code(http, sandbox, code).json()["data"][0]["access_token"]
    long = exchange_token(http, sandbox, granted).json()["access_token"]
    me(http, sandbox, long)
    subscribed_apps(http, sandbox, "POST", token=long, params={"subscribed_fields": "messages"})
    refresh(http, sandbox, long)
    records = sandbox.requests
    assert [(r.method, r.path, r.status, r.account_id) for r in records] == [
        ("GET", "/oauth/authorize", 200, None),
        ("POST", "/oauth/authorize", 302, SHOP),
        ("POST", "/oauth/access_token", 200, SHOP),
        ("GET", "/access_token", 200, SHOP),
        ("GET", "/v24.0/me", 200, SHOP),
        ("POST", "/v24.0/me/subscribed_apps", 200, SHOP),
        ("GET", "/refresh_access_token", 400, SHOP),
    ]
    assert records[-1].error_code == 100 and records[3].via_url_token
    assert records[5].body == {"subscribed_fields": ["messages"]}
    logged = repr(records) + control(http, sandbox, "sent").text
    for secret in (code, granted, long, APP_SECRET):
        assert secret not in logged


def test_a_failed_code_exchange_is_logged_with_its_code(sandbox: GraphSandbox, http: requests.Session) -> None:
    exchange_code(http, sandbox, "AQ-made-up")
    [record] = sandbox.requests
    assert (record.status, record.error_code, record.body) == (400, 400, None)


# --- the Python API ---


def test_add_account_defaults_and_options(sandbox: GraphSandbox) -> None:
    sandbox.add_account("17841400000004321", "fresh-token")
    sandbox.add_account("17841400000004321", "brief-token", issued_at=T0 - 10, expires_in=60)
    [fresh, brief] = sandbox.tokens_of("17841400000004321")
    assert (fresh.kind, fresh.issued_at, fresh.expires_at, fresh.revoked) == ("long", T0, T0 + 5_184_000, False)
    assert (brief.issued_at, brief.expires_at) == (T0 - 10, T0 + 50)
    assert sandbox.subscribed_fields("17841400000004321") == []
    with pytest.raises(ValueError):
        sandbox.add_account("17841400000004321", "")
    with pytest.raises(ValueError):
        sandbox.add_account("17841400000004321", "t", expires_in=0)
    with pytest.raises(ValueError):
        sandbox.subscribed_fields("nobody")


@pytest.mark.parametrize(
    "options",
    [
        {"token_response_shape": "xml"},
        {"subscription_field_spelling": "guess"},
        {"app_id": ""},
        {"instagram_app_secret": ""},
    ],
)
def test_the_constructor_refuses_unknown_options(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        GraphSandbox(**options)


def test_the_default_clock_is_the_wall_clock() -> None:
    sandbox = GraphSandbox()
    assert abs(sandbox.now() - time.time()) < 5
    sandbox.advance(DAY)
    assert abs(sandbox.now() - time.time() - DAY) < 5
