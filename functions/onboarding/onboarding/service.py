"""Onboarding with Instagram Business Login (fact sheet §9): GET /oauth/start and GET /oauth/callback.

start: an invite link (signed, expiring; `python -m tools.accounts invite` makes one) shows the explainer
(onboarding.explainer): who asks, for what, and a button to Instagram's authorise page with the configured
scopes and a signed, single-use, expiring state, bound to this browser by the cookie the page sets.

callback: checks the state, strips the `#_` Meta appends to the code, exchanges the code for a
short-lived token (both documented answer shapes), that for a long-lived one, reads the account's
user_id and username from /me, then stores and subscribes it (igdm.meta.connect). A denied login, a bad
or reused state, a refused code or a missing permission stores nothing, and the page says why and what to do
next, in the words of someone who has never heard of OAuth: the log has the details.
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
from onboarding.explainer import HOW_TO_DISCONNECT, explainer
from onboarding.pages import Block, Business, Next, Note, page
from onboarding.state import Refusal, State, StateRefused, check_invite

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
        business: Business | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._credentials = credentials
        self._states = states
        self._login = login
        self._connector = connector
        self._authorize_url = authorize_url
        self._scopes = scopes
        self._redirect_uri = redirect_uri
        self._business = business or Business()
        self._clock = clock

    def start(self, request: HttpApiRequest) -> Reply:
        credentials = self._credentials()
        if credentials is None:
            return _not_configured(self._business)
        try:
            check_invite(credentials.state_key, request.query.get("invite"), now=self._clock())
        except StateRefused as refusal:
            logger.info("invite refused", extra={"reason": str(refusal)})
            return _invite_refused(self._business, refusal.reason)
        redirect_uri = self._redirect_for(request)
        # Issued with the page, so its button leads straight to Instagram; the page is never cached, and the
        # state in it goes nowhere but there (no script, no referrer, images from the logo's host only).
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
        return explainer(self._business, self._scopes, f"{self._authorize_url}?{query}", cookie=cookie)

    def callback(self, request: HttpApiRequest) -> Reply:
        """Each step either hands the next one what it needs or ends the login with a page saying why;
        nothing is stored before the last step. Every page that ends a login clears the state cookie but the
        connected one, which leaves it (used up, gone in 15 minutes) so that reloading it says "already used"
        rather than blaming another browser."""
        credentials = self._credentials()
        if credentials is None:
            return _not_configured(self._business)
        now = self._clock()
        refused = self._state_refused(credentials, request, now) or _denied(self._business, request)
        if refused is not None:
            return refused
        short = self._short_lived_token(credentials, request)
        if isinstance(short, Reply):
            return short
        if short.permissions and MESSAGING_SCOPE not in short.permissions:
            logger.warning("login without the messaging permission", extra={"granted": list(short.permissions)})
            return _scope_missing(self._business)
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
            return _instagram_refused(self._business, 502, "exchange_refused", error.detail)
        return _connected(self._business, connected)

    def _state_refused(self, credentials: AppCredentials, request: HttpApiRequest, now: float) -> Reply | None:
        try:
            self._states(credentials.state_key).consume(
                request.query.get("state"), cookie_nonce=request.cookie(COOKIE), now=now
            )
        except StateRefused as refusal:
            logger.info("state refused", extra={"reason": str(refusal)})
            return _login_refused(self._business, refusal.reason)
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
            return _instagram_refused(self._business, 400, "code_refused", error.detail)

    def _redirect_for(self, request: HttpApiRequest) -> str:
        """The configured redirect URI, else this API's own callback: it must be identical in the authorise
        request and the code exchange, and registered in Meta's App Dashboard."""
        if self._redirect_uri:
            return self._redirect_uri
        return f"{request.base_url()}{CALLBACK_PATH}"


# The pages' words. Each says what happened and what to do next; none names a permission, a token or a state.
START_AGAIN = "Open your invite link again to start over."


def _result(
    business: Business, status: int, title: str, blocks: list[Block], outcome: str, *, cookie: str | None = CLEAR_COOKIE
) -> Reply:
    return page(status, title, blocks, outcome=outcome, business=business, cookie=cookie)


def _invite_refused(business: Business, reason: Refusal | None) -> Reply:
    who = business.called()
    if reason == Refusal.EXPIRED:
        title, why = "This invite link has expired", "Invite links work for a limited time, to keep your account safe."
    elif reason == Refusal.MISSING:
        title, why = "This page needs an invite link", f"Open the link {who} sent you, exactly as you received it."
    else:
        title, why = "This invite link does not work", "Part of it may have been lost when it was copied."
    return _result(business, 403, title, [why, Next(f"Ask {who} for a new link.")], "invite_refused", cookie=None)


def _login_refused(business: Business, reason: Refusal | None) -> Reply:
    """The answer from Instagram cannot be trusted to finish this login: which page depends on why."""
    safe = "To keep your account safe, nothing was connected."
    if reason == Refusal.EXPIRED:
        title = "This link has timed out"
        blocks = ["More than 15 minutes passed between the Continue button and your return from Instagram.", safe]
        then = START_AGAIN
    elif reason == Refusal.USED:
        title = "This page was already used"
        blocks = ["The answer Instagram sent back works only once."]
        then = (
            "If you already saw “Your Instagram account is connected”, you are done: you can close this tab. "
            "If not, open your invite link again."
        )
    elif reason == Refusal.OTHER_BROWSER:
        title = "Please finish in the browser you started in"
        blocks = ["This connection was started in another browser or app, or this browser blocked a cookie.", safe]
        then = "Open your invite link again in this browser, and finish here."
    else:
        title = "This link cannot be used"
        blocks = ["The answer Instagram sent back could not be checked.", safe]
        then = START_AGAIN
    return _result(business, 400, title, [*blocks, Next(then)], "state_refused")


def _denied(business: Business, request: HttpApiRequest) -> Reply | None:
    """Instagram's answer when the person chose Cancel, or an answer without a code."""
    if "error" not in request.query and "code" in request.query:
        return None
    who = business.called()
    again = Next("Changed your mind? Open your invite link again and choose Allow. Otherwise, you can close this tab.")
    blocks: list[Block]
    if request.query.get("error_reason") == "user_denied":
        blocks = [f"You chose Cancel on Instagram's page, so nothing was shared with {who}.", again]
    else:
        said = request.query.get("error_description") or request.query.get("error") or "no code was given"
        logger.warning("login not completed", extra={"detail": said[:300]})
        blocks = [
            f"Instagram did not finish the login, so nothing was shared with {who}.",
            again,
            Note(f"If you ask {who} for help, mention Instagram's message: “{said[:300]}”"),
        ]
    return _result(business, 400, "Your account was not connected", blocks, "denied")


def _scope_missing(business: Business) -> Reply:
    blocks: list[Block] = [
        f"{business.called(starting_a_sentence=True)} needs permission to read and answer your Direct messages, "
        "and it was switched off on Instagram's page, so nothing was connected.",
        Next("Open your invite link again, and leave every permission switched on."),
        Note(f"If you would rather not share your messages, you can close this tab: {business.called()} gets nothing."),
    ]
    return _result(business, 400, "Permission for messages was switched off", blocks, "scope_missing")


def _instagram_refused(business: Business, status: int, outcome: str, said: str) -> Reply:
    """Instagram would not finish a login the person allowed: a code too old or used, or an app it refuses."""
    blocks: list[Block] = [
        "You allowed the connection, but Instagram did not confirm it, so nothing was connected.",
        Next(f"{START_AGAIN} If this happens again, let {business.called()} know."),
        Note(f"Instagram's message: “{said[:300]}”"),
    ]
    return _result(business, status, "Instagram did not confirm the connection", blocks, outcome)


def _connected(business: Business, connected: Connected) -> Reply:
    account = connected.account
    who = business.called()
    named = f"@{account.username}" if account.username else "Your Instagram account"
    blocks: list[Block] = [f"{named} is now connected to {who}, which can read and answer its Direct messages."]
    if connected.subscription_error:
        # The refresher subscribes the account again on its next run; until then no message arrives.
        blocks.append(
            f"New messages may take up to a day to start reaching {who}: Instagram has not started sending them "
            "yet, and this is retried automatically. You do not need to do anything."
        )
    blocks += [Next("You are all set: you can close this tab."), f"To disconnect later, {HOW_TO_DISCONNECT}."]
    logger.info(
        "account connected",
        extra={
            "account_id": account.account_id,
            "subscribed": connected.subscribed_fields,
            "subscription_error": connected.subscription_error,
            "unsupported": connected.unsupported_fields,
        },
    )
    return _result(business, 200, "Your Instagram account is connected", blocks, "connected", cookie=None)


def _not_configured(business: Business) -> Reply:
    logger.warning("onboarding not set up: the app secret has no instagram_app_id and instagram_app_secret")
    blocks: list[Block] = [
        f"{business.called(starting_a_sentence=True)} has not finished setting up this page.",
        Next(f"Please try again later, or let {business.called()} know."),
    ]
    return _result(business, 503, "Connecting accounts is not available yet", blocks, "not_configured", cookie=None)
