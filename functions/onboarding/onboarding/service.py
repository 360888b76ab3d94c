"""Onboarding with Instagram Business Login (fact sheet §9): GET /oauth/start and GET /oauth/callback.

start: an invite link (signed, expiring; `python -m tools.accounts invite` makes one) leads to Instagram's
authorise page with the configured scopes and a signed, single-use, expiring state bound to this
browser by a cookie.

callback: checks the state, strips the `#_` Meta appends to the code, exchanges the code for a
short-lived token (both documented answer shapes), that for a long-lived one, reads the account's
user_id and username from /me, then stores and subscribes it (igdm.meta.connect). A denied login, a bad
or reused state, a refused code or a missing permission stores nothing, and the page says why.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlencode

from igdm.meta.connect import Connected
from igdm.meta.instagram_login import LONG_LIVED_SECONDS, IssuedToken, LoginError, ShortLivedToken
from igdm.runtime.http_api import HttpApiRequest, Reply
from igdm.runtime.observability import logger
from onboarding.pages import page, redirect
from onboarding.state import State, StateRefused, check_invite

COOKIE = "igdm_oauth"
CALLBACK_PATH = "/oauth/callback"
MESSAGING_SCOPE = "instagram_business_manage_messages"
CLEAR_COOKIE = f"{COOKIE}=; Path=/oauth; Max-Age=0; HttpOnly; SameSite=Lax"


@dataclass(frozen=True)
class AppCredentials:
    instagram_app_id: str
    instagram_app_secret: str
    state_key: str


class Login(Protocol):
    """Instagram Business Login's token endpoints (igdm.meta.instagram_login.InstagramLogin)."""

    def exchange_code(self, *, client_id: str, client_secret: str, redirect_uri: str, code: str) -> ShortLivedToken: ...

    def long_lived(self, *, client_secret: str, short_lived_token: str) -> IssuedToken: ...


class Connector(Protocol):
    """Stores and subscribes an account once its long-lived token is in hand (igdm.meta.connect)."""

    def connect(
        self,
        token: str,
        *,
        expires_at: int | None,
        refreshed_at: int | None,
        scopes: tuple[str, ...],
        now: float | None = None,
    ) -> Connected: ...


class States(Protocol):
    """The OAuth states of one state key: issued signed, consumed once (onboarding.state.StateStore)."""

    def issue(self, *, now: float) -> State: ...

    def consume(self, value: str | None, *, cookie_nonce: str | None, now: float) -> str: ...


class Onboarding:
    def __init__(
        self,
        *,
        credentials: Callable[[], AppCredentials | None],
        states: Callable[[str], States],
        login: Login,
        connector: Connector,
        authorize_url: str,
        scopes: list[str],
        redirect_uri: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._credentials = credentials
        self._states = states
        self._login = login
        self._connector = connector
        self._authorize_url = authorize_url
        self._scopes = scopes
        self._redirect_uri = redirect_uri
        self._clock = clock

    def start(self, request: HttpApiRequest) -> Reply:
        credentials = self._credentials()
        if credentials is None:
            return _not_configured()
        try:
            check_invite(credentials.state_key, request.query.get("invite"), now=self._clock())
        except StateRefused as refusal:
            return page(403, "This link cannot start a login", [str(refusal)], outcome="invite_refused")
        redirect_uri = self._redirect_for(request)
        state = self._states(credentials.state_key).issue(now=self._clock())
        query = urlencode(
            {
                "client_id": credentials.instagram_app_id,
                "redirect_uri": redirect_uri,
                "response_type": "code",
                "scope": ",".join(self._scopes),
                "state": state.value,
            }
        )
        secure = "; Secure" if redirect_uri.startswith("https://") else ""
        cookie = f"{COOKIE}={state.nonce}; Path=/oauth; Max-Age=900; HttpOnly; SameSite=Lax{secure}"
        return redirect(f"{self._authorize_url}?{query}", cookie=cookie)

    def callback(self, request: HttpApiRequest) -> Reply:
        """Each step either hands the next one what it needs or ends the login with a page saying why;
        every page clears the state cookie, and nothing is stored before the last step."""
        credentials = self._credentials()
        if credentials is None:
            return _not_configured()
        now = self._clock()
        refused = self._state_refused(credentials, request, now) or _denied(request)
        if refused is not None:
            return refused
        short = self._short_lived_token(credentials, request)
        if isinstance(short, Reply):
            return short
        if short.permissions and MESSAGING_SCOPE not in short.permissions:
            return _scope_missing()
        try:
            issued = self._login.long_lived(
                client_secret=credentials.instagram_app_secret, short_lived_token=short.access_token
            )
            connected = self._connector.connect(
                issued.access_token,
                expires_at=int(now + (issued.expires_in or LONG_LIVED_SECONDS)),
                refreshed_at=int(now),
                scopes=short.permissions,
                now=now,
            )
        except LoginError as error:
            logger.warning("token exchange refused", extra={"detail": error.detail[:300], "code": error.code})
            return page(
                502,
                "Instagram refused the token exchange",
                [f"Instagram said: {error.detail[:300]}", "Nothing was stored; start again from your invite link."],
                outcome="exchange_refused",
                cookie=CLEAR_COOKIE,
            )
        return _connected(connected)

    def _state_refused(self, credentials: AppCredentials, request: HttpApiRequest, now: float) -> Reply | None:
        try:
            self._states(credentials.state_key).consume(
                request.query.get("state"), cookie_nonce=request.cookie(COOKIE), now=now
            )
        except StateRefused as refusal:
            return page(
                400,
                "This login cannot be completed",
                [str(refusal), "Nothing was stored. Start again from your invite link."],
                outcome="state_refused",
                cookie=CLEAR_COOKIE,
            )
        return None

    def _short_lived_token(self, credentials: AppCredentials, request: HttpApiRequest) -> ShortLivedToken | Reply:
        code = request.query["code"].removesuffix("#_")
        try:
            return self._login.exchange_code(
                client_id=credentials.instagram_app_id,
                client_secret=credentials.instagram_app_secret,
                redirect_uri=self._redirect_for(request),
                code=code,
            )
        except LoginError as error:
            logger.warning("code exchange refused", extra={"detail": error.detail[:300], "code": error.code})
            return page(
                400,
                "Instagram refused the login",
                [
                    f"Instagram said: {error.detail[:300]}",
                    "A login code is valid for one hour and only once. Nothing was stored; start again from "
                    "your invite link.",
                ],
                outcome="code_refused",
                cookie=CLEAR_COOKIE,
            )

    def _redirect_for(self, request: HttpApiRequest) -> str:
        """The configured redirect URI, else this API's own callback: it must be identical in the authorise
        request and the code exchange, and registered in Meta's App Dashboard."""
        if self._redirect_uri:
            return self._redirect_uri
        return f"{request.base_url()}{CALLBACK_PATH}"


def _denied(request: HttpApiRequest) -> Reply | None:
    """Instagram's answer when the person chose Cancel, or an answer without a code."""
    if "error" not in request.query and "code" in request.query:
        return None
    reason = request.query.get("error_description") or request.query.get("error") or "no code was given"
    return page(
        400,
        "Instagram login not completed",
        [
            f"Instagram said: {reason[:300]}",
            "Nothing was stored. To connect the account, start again from your invite link and choose Allow.",
        ],
        outcome="denied",
        cookie=CLEAR_COOKIE,
    )


def _scope_missing() -> Reply:
    return page(
        400,
        "Messaging permission not granted",
        [
            f"The login did not grant {MESSAGING_SCOPE}, without which the gateway cannot read or send "
            "messages. Nothing was stored; start again and keep every permission ticked."
        ],
        outcome="scope_missing",
        cookie=CLEAR_COOKIE,
    )


def _connected(connected: Connected) -> Reply:
    account = connected.account
    lines = [
        f"Instagram account @{account.username or '?'} (id {account.account_id}) is connected to the "
        "gateway. Its messages now reach your systems, and it can send replies.",
        "The access token is renewed automatically before it expires.",
    ]
    if connected.subscription_error:
        lines.append(
            f"Subscribing it to webhooks failed ({connected.subscription_error[:200]}); the "
            "gateway retries every day. Until then no messages arrive."
        )
    else:
        lines.append(f"Webhook fields: {', '.join(connected.subscribed_fields)}.")
    if connected.unsupported_fields:
        lines.append(f"Meta does not accept these fields: {', '.join(connected.unsupported_fields)}.")
    logger.info(
        "account connected", extra={"account_id": account.account_id, "subscribed": connected.subscribed_fields}
    )
    return page(200, "Account connected", lines, outcome="connected", cookie=CLEAR_COOKIE)


def _not_configured() -> Reply:
    return page(
        503,
        "Onboarding is not set up yet",
        [
            "The gateway's app secret has no instagram_app_id and instagram_app_secret. The operator adds them "
            "as described in docs/accounts.md."
        ],
        outcome="not_configured",
    )
