"""Instagram Business Login for the Graph API sandbox: consent page, codes, tokens that age, `/me`, subscriptions.

It models the fact sheet's §9 (authorize → code → short-lived token → long-lived token → refresh) and §11
(`subscribed_apps`), with Meta's error shapes from §8, on a clock the caller controls, so a test can age a
token by 60 days in a millisecond. `local.meta.graph_sandbox` serves it over HTTP and shares its lock with it;
this module holds the state and the rules and never touches the network.

Where Meta's exact wording is not documented, the message is constructed and marked so next to it.
"""

import contextlib
import hashlib
import hmac
import html
import json
import math
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from email import policy
from email.parser import BytesParser
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

APP_NAME = "Local Instagram App"
DEFAULT_APP_ID = "local-instagram-app-id"
DEFAULT_INSTAGRAM_APP_SECRET = "local-instagram-app-secret"  # noqa: S105 - a fixed, public test-double value
SCOPES = (
    "instagram_business_basic",
    "instagram_business_manage_messages",
    "instagram_business_manage_comments",
    "instagram_business_content_publish",
    "instagram_business_manage_insights",
)
REQUIRED_SCOPE = "instagram_business_basic"
DEFAULT_SCOPES = ("instagram_business_basic", "instagram_business_manage_messages")
TOKEN_RESPONSE_SHAPES = ("data", "flat")
# IG-WH's field matrix, and the spellings IG-SEND lists instead (fact sheet §11; which one the IGL edge takes
# is unconfirmed, so the sandbox can be told either).
SUBSCRIPTION_FIELDS: dict[str, tuple[str, ...]] = {
    "matrix": (
        "messages",
        "message_reactions",
        "messaging_postbacks",
        "messaging_seen",
        "messaging_referral",
        "messaging_optins",
        "message_echoes",
        "message_edit",
        "messaging_handover",
        "standby",
        "comments",
        "live_comments",
    ),
    "send_doc": (
        "messages",
        "messaging_reactions",
        "messaging_postbacks",
        "messaging_seen",
        "messaging_referrals",
        "messaging_optins",
        "message_echoes",
        "message_edit",
        "messaging_handover",
        "standby",
        "comments",
        "live_comments",
    ),
}
PROFILE_FIELDS = ("id", "user_id", "username", "name", "account_type")
CODE_LIFETIME_SECONDS = 3600
SHORT_LIVED_SECONDS = 3600
LONG_LIVED_SECONDS = 5_184_000  # 60 days
EXCHANGED_EXPIRES_IN = 5_183_944  # what IG-EXCH's sample answers for a fresh long-lived token
REFRESH_MIN_AGE_SECONDS = 86_400
LOOPBACK_REDIRECT_HOSTS = frozenset({"127.0.0.1", "localhost"})

# Error messages, not secrets (hence the noqa: S105).
UNKNOWN_TOKEN_MESSAGE = "Invalid OAuth access token - Cannot parse access token"  # noqa: S105
SESSION_INVALIDATED_MESSAGE = (
    "Error validating access token: The session has been invalidated because the user changed their password "
    "or Facebook has changed the session for security reasons."
)
# Constructed: Meta's text for a token replaced by a refresh (if it ever kills the old one) is unknown.
SESSION_REPLACED_MESSAGE = "Error validating access token: The session is invalid because the token was refreshed."
BAD_CLIENT_SECRET_MESSAGE = "Error validating client secret."  # noqa: S105
CODE_NOT_FOUND_MESSAGE = "Matching code was not found or was already used"
REDIRECT_MISMATCH_MESSAGE = (
    "Error validating verification code. Please make sure your redirect_uri is identical to the one you used in "
    "the OAuth dialog request"
)
# Constructed: the 24-hour rule is documented (IG-REFRESH), its error text is not.
TOO_YOUNG_TO_REFRESH_MESSAGE = "(#100) The access token must be at least 24 hours old to be refreshed"

HTML_CONTENT_TYPE = "text/html; charset=utf-8"
JSON_CONTENT_TYPE = "application/json; charset=UTF-8"
_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}
_NO_STORE = {"Cache-Control": "no-store"}

try:
    # Meta words expiry in Menlo Park time, as PST or PDT depending on the date.
    _PACIFIC: tzinfo = ZoneInfo("America/Los_Angeles")
except ZoneInfoNotFoundError:  # no tz database on this machine: PST all year is close enough
    _PACIFIC = timezone(timedelta(hours=-8), "PST")

_VERSION = r"v\d+\.\d+"
_EXCHANGE_PATH = re.compile(rf"(?:/{_VERSION})?/access_token")
_REFRESH_PATH = re.compile(rf"(?:/{_VERSION})?/refresh_access_token")
_NODE_PATH = re.compile(rf"/{_VERSION}/([^/]+)")
_SUBSCRIBED_APPS_PATH = re.compile(rf"/{_VERSION}/([^/]+)/subscribed_apps")


class IdentityError(Exception):
    """A refusal in the Graph error-object shape (fact sheet §8); the sandbox answers it as a GraphError."""

    def __init__(
        self, status: int, code: int, message: str, *, subcode: int | None = None, error_type: str = "OAuthException"
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.subcode = subcode
        self.error_type = error_type


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: a JSON object or raw bytes, and what the request log may keep (never a token)."""

    status: int
    body: dict[str, Any] | bytes
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = JSON_CONTENT_TYPE
    account_id: str | None = None
    record: Any = None


@dataclass(frozen=True)
class Route:
    """Which identity endpoint a request is for; `node` is the `<ig_id|me>` path segment where there is one."""

    endpoint: str  # authorize | code_exchange | exchange | refresh | me | subscribed_apps
    method: str
    node: str | None = None


@dataclass(frozen=True)
class TokenInfo:
    """A token as tests see it. `revoked` is true after a password reset or, if configured, a refresh."""

    token: str
    kind: str  # "short" | "long"
    issued_at: float
    expires_at: float
    revoked: bool


@dataclass
class _Token:
    account_id: str
    kind: str
    issued_at: float
    expires_at: float
    scopes: tuple[str, ...]
    revoked: bool = False
    replaced: bool = False  # killed by a refresh (refresh_invalidates_old)


@dataclass
class _Profile:
    username: str
    login: bool = False
    fields: list[str] = field(default_factory=list)


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    account_id: str
    scopes: tuple[str, ...]
    expires_at: float
    used: bool = False


@dataclass(frozen=True)
class _AuthRequest:
    client_id: str
    redirect_uri: str
    scope: str
    scopes: tuple[str, ...]
    state: str | None


class _PageError(Exception):
    """A problem with the OAuth dialog's parameters, shown as a 400 page (never redirected to a bad URI)."""


def route(method: str, path: str) -> Route | None:
    """The identity endpoint for this request, or None (the Send API, or an unknown path)."""
    if path == "/oauth/authorize" and method in ("GET", "POST"):
        return Route("authorize", method)
    if path == "/oauth/access_token" and method == "POST":
        return Route("code_exchange", method)
    if method == "GET" and _EXCHANGE_PATH.fullmatch(path):
        return Route("exchange", method)
    if method == "GET" and _REFRESH_PATH.fullmatch(path):
        return Route("refresh", method)
    if method == "GET" and (match := _NODE_PATH.fullmatch(path)):
        return Route("me", method, match.group(1))
    if method in ("GET", "POST", "DELETE") and (match := _SUBSCRIBED_APPS_PATH.fullmatch(path)):
        return Route("subscribed_apps", method, match.group(1))
    return None


def app_scoped_id(app_id: str, user_id: str) -> str:
    """The `id` /me reports: app-scoped and unlike `user_id`, so code that confuses the two fails in tests."""
    digest = int.from_bytes(hashlib.sha256(f"{app_id}:{user_id}".encode()).digest()[:8], "big")
    scoped = f"2{digest % 10**15:015d}"
    return scoped if scoped != user_id else f"3{digest % 10**15:015d}"


def meta_time(at: float) -> str:
    """A moment as Meta's token errors word it: 'Tuesday, 14-Nov-23 14:13:20 PST'."""
    return datetime.fromtimestamp(at, _PACIFIC).strftime("%A, %d-%b-%y %H:%M:%S %Z")


def parse_form(content_type: str, raw: bytes) -> dict[str, str]:
    """The first value of each field of a urlencoded or multipart/form-data body (IG-LOGIN's curl uses -F)."""
    media_type = content_type.split(";")[0].strip().lower()
    if media_type == "application/x-www-form-urlencoded":
        try:
            pairs = parse_qs(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError:
            raise ValueError("the form body must be UTF-8") from None
        return {name: values[0] for name, values in pairs.items()}
    if media_type == "multipart/form-data":
        head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1", "replace")
        message = BytesParser(policy=policy.HTTP).parsebytes(head + raw)
        if not message.is_multipart():
            raise ValueError("the multipart body could not be parsed")
        form: dict[str, str] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if isinstance(name, str) and name not in form:
                payload = part.get_payload(decode=True)
                form[name] = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
        return form
    raise ValueError("Content-Type must be application/x-www-form-urlencoded or multipart/form-data")


def _first(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def _secret_matches(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def _graph_invalid(message: str) -> IdentityError:
    return IdentityError(400, 100, f"(#100) {message}")


def _oauth_error(message: str) -> Answer:
    # api.instagram.com's flat error shape (IG-LOGIN), unlike graph.instagram.com's {"error": {...}}.
    return Answer(400, {"error_type": "OAuthException", "code": 400, "error_message": message}, dict(_NO_STORE))


def _split_names(value: str) -> list[str]:
    return [name for name in re.split(r"[,\s]+", value.strip()) if name]


def _unique(names: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(names))


def _check_time(name: str, value: Any, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number of seconds")
    if value < 0 or (positive and value == 0):
        raise ValueError(f"{name} must be {'positive' if positive else 'non-negative'}")
    return float(value)


# --- pages -----------------------------------------------------------------------------------------------


# Every sandbox page says what it is, first and plainly: a person trying `make run` must never take it for
# Instagram's (or type a real password into it: it asks for none).
SANDBOX_NOTICE = (
    '<p id="sandbox-notice"><strong>Local sandbox: this is not Instagram.</strong> This page stands in for '
    "Instagram's login page while you try the gateway on your own computer. It asks for no password, and "
    "nothing you choose here leaves this computer.</p>"
)
_STYLE = (
    "*{box-sizing:border-box}"
    "body{margin:0;background:#fafafa;color:#262626;font:1rem/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}"
    "#sandbox-notice{margin:0;padding:.75rem 1.25rem;background:#fff3cd;border-bottom:2px solid #e0a800;"
    "color:#4d3800;font-size:.92rem}"
    "main{width:calc(100% - 1.5rem);max-width:26rem;margin:1.5rem auto;padding:1.5rem 1.25rem;background:#fff;"
    "border:1px solid #dbdbdb;border-radius:12px}"
    "h1{font-size:1.35rem;margin:0 0 1rem}"
    "#scopes{margin:.5rem 0 1.25rem;padding-left:1.2rem;font:.85rem/1.6 ui-monospace,Menlo,Consolas,monospace;"
    "overflow-wrap:anywhere}"
    "label{display:block;font-weight:600;margin:0 0 .35rem}"
    "select{width:100%;padding:.6rem;font-size:1rem;border:1px solid #dbdbdb;border-radius:8px;background:#fff}"
    ".buttons{display:flex;gap:.75rem;margin-top:1.25rem}"
    "button{flex:1;padding:.75rem;font-size:1rem;font-weight:600;border-radius:8px;border:1px solid #dbdbdb;"
    "background:#efefef;color:#262626}"
    "#allow{background:#0095f6;border-color:#0095f6;color:#fff}"
)


def _page(title: str, body: str) -> bytes:
    return (
        '<!doctype html>\n<html lang="en">\n<head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>\n<body>\n{SANDBOX_NOTICE}\n"
        f"<main>\n{body}\n</main>\n</body>\n</html>\n"
    ).encode()


def _error_page(message: str) -> Answer:
    body = f'<h1>Sorry, this page isn\'t available</h1>\n<p id="error">{html.escape(message)}</p>'
    return Answer(400, _page("Error", body), dict(_PAGE_HEADERS), HTML_CONTENT_TYPE)


def _consent_page(request: _AuthRequest, accounts: list[tuple[str, str]]) -> Answer:
    def hidden(name: str, value: str) -> str:
        return f'<input type="hidden" name="{name}" value="{html.escape(value)}">'

    options = "\n".join(
        f'<option value="{html.escape(account_id)}">{html.escape(username)}</option>'
        for account_id, username in accounts
    )
    scopes = "\n".join(f"<li>{html.escape(scope)}</li>" for scope in request.scopes)
    fields = [
        hidden("client_id", request.client_id),
        hidden("redirect_uri", request.redirect_uri),
        hidden("response_type", "code"),
        hidden("scope", request.scope),
    ]
    if request.state is not None:
        fields.append(hidden("state", request.state))
    body = "\n".join(
        [
            "<h1>Log in to Instagram</h1>",
            f"<p><strong>{html.escape(APP_NAME)}</strong> would like to access your professional account:</p>",
            f'<ul id="scopes">\n{scopes}\n</ul>',
            '<form method="post" action="/oauth/authorize">',
            *fields,
            '<label for="account">Log in as</label>',
            f'<select id="account" name="account_id">\n{options}\n</select>',
            '<div class="buttons">',
            '<button id="allow" type="submit" name="decision" value="allow">Allow</button>',
            '<button id="cancel" type="submit" name="decision" value="cancel">Cancel</button>',
            "</div>",
            "</form>",
        ]
    )
    return Answer(200, _page("Log in to Instagram", body), dict(_PAGE_HEADERS), HTML_CONTENT_TYPE)


def _redirect(redirect_uri: str, params: list[tuple[str, str]], fragment: str = "") -> Answer:
    parts = urlsplit(redirect_uri)
    added = urlencode(params)  # quote_plus: "The user denied" becomes "The+user+denied", as Meta writes it
    query = f"{parts.query}&{added}" if parts.query else added
    location = urlunsplit((parts.scheme, parts.netloc, parts.path, query, fragment))
    headers = {"Location": location, **_PAGE_HEADERS}
    return Answer(302, b"", headers, HTML_CONTENT_TYPE)


# --- the state -------------------------------------------------------------------------------------------


class InstagramIdentity:
    """Accounts, tokens, codes and subscriptions; every method takes the lock it was given."""

    def __init__(
        self,
        lock: threading.Lock,
        *,
        clock: Callable[[], float] = time.time,
        app_id: str = DEFAULT_APP_ID,
        instagram_app_secret: str = DEFAULT_INSTAGRAM_APP_SECRET,
        token_response_shape: str = "data",  # noqa: S107 - a response shape, not a secret
        subscription_field_spelling: str = "matrix",
        refresh_invalidates_old: bool = False,
    ) -> None:
        if not callable(clock):
            raise ValueError("clock must be a callable returning seconds since the epoch")
        for name, value in (("app_id", app_id), ("instagram_app_secret", instagram_app_secret)):
            if not isinstance(value, str) or not value:
                raise ValueError(f"{name} must be a non-empty string")
        if token_response_shape not in TOKEN_RESPONSE_SHAPES:
            raise ValueError(f"token_response_shape must be one of {', '.join(TOKEN_RESPONSE_SHAPES)}")
        if subscription_field_spelling not in SUBSCRIPTION_FIELDS:
            raise ValueError(f"subscription_field_spelling must be one of {', '.join(SUBSCRIPTION_FIELDS)}")
        self._lock = lock
        self._clock = clock
        self._offset = 0.0
        self.app_id = app_id
        self._app_secret = instagram_app_secret
        self.token_response_shape = token_response_shape
        self.accepted_fields = SUBSCRIPTION_FIELDS[subscription_field_spelling]
        self.refresh_invalidates_old = refresh_invalidates_old
        self._tokens: dict[str, _Token] = {}
        self._profiles: dict[str, _Profile] = {}
        self._codes: dict[str, _Code] = {}

    # --- clock ---

    def now(self) -> float:
        with self._lock:
            return self._now()

    def now_holding_lock(self) -> float:
        """now() for a caller that already holds the lock (the conversations share it)."""
        return self._now()

    def _now(self) -> float:
        return float(self._clock()) + self._offset

    def advance(self, seconds: float) -> float:
        """Move the sandbox clock forward; returns the new now()."""
        seconds = _check_time("seconds", seconds)
        with self._lock:
            self._offset += seconds
            return self._now()

    # --- accounts ---

    def add_account(
        self,
        account_id: str,
        access_token: str,
        *,
        username: str | None = None,
        issued_at: float | None = None,
        expires_in: float = LONG_LIVED_SECONDS,
    ) -> None:
        if not isinstance(account_id, str) or not account_id or not isinstance(access_token, str) or not access_token:
            raise ValueError("account_id and access_token must be non-empty strings")
        if username is not None and (not isinstance(username, str) or not username):
            raise ValueError("username must be a non-empty string")
        expires_in = _check_time("expires_in", expires_in, positive=True)
        with self._lock:
            issued = self._now() if issued_at is None else _check_time("issued_at", issued_at)
            profile = self._profile(account_id)
            if username is not None:
                profile.username = username
            self._tokens[access_token] = _Token(account_id, "long", issued, issued + expires_in, DEFAULT_SCOPES)

    def add_login(self, account_id: str, username: str) -> None:
        if not isinstance(account_id, str) or not account_id or not isinstance(username, str) or not username:
            raise ValueError("account_id and username must be non-empty strings")
        with self._lock:
            profile = self._profile(account_id)
            profile.username = username
            profile.login = True

    def _profile(self, account_id: str) -> _Profile:
        profile = self._profiles.get(account_id)
        if profile is None:
            profile = self._profiles[account_id] = _Profile(f"user_{account_id[-4:]}")
        return profile

    def _known(self, account_id: str) -> _Profile:
        profile = self._profiles.get(account_id)
        if profile is None:
            raise ValueError(f"unknown account {account_id!r}")
        return profile

    def revoke(self, account_id: str) -> None:
        with self._lock:
            self._known(account_id)
            for token in self._tokens.values():
                if token.account_id == account_id:
                    token.revoked = True

    def unsubscribe(self, account_id: str) -> None:
        with self._lock:
            self._known(account_id).fields.clear()

    def username_of(self, account_id: str) -> str:
        """The account's username; ValueError for an account the sandbox does not know."""
        with self._lock:
            return self._known(account_id).username

    def subscribed_fields(self, account_id: str) -> list[str]:
        with self._lock:
            return list(self._known(account_id).fields)

    def tokens_of(self, account_id: str) -> list[TokenInfo]:
        with self._lock:
            self._known(account_id)
            return [
                TokenInfo(value, token.kind, token.issued_at, token.expires_at, token.revoked or token.replaced)
                for value, token in self._tokens.items()
                if token.account_id == account_id
            ]

    def accounts(self) -> list[dict[str, Any]]:
        """Every account for the control endpoint, without a single token string."""
        with self._lock:
            return [
                {
                    "account_id": account_id,
                    "id": app_scoped_id(self.app_id, account_id),
                    "username": profile.username,
                    "login": profile.login,
                    "subscribed_fields": list(profile.fields),
                    "tokens": [
                        {
                            "kind": token.kind,
                            "issued_at": token.issued_at,
                            "expires_at": token.expires_at,
                            "revoked": token.revoked or token.replaced,
                        }
                        for token in self._tokens.values()
                        if token.account_id == account_id
                    ],
                }
                for account_id, profile in self._profiles.items()
            ]

    # --- tokens ---

    def account_for(self, token: str | None) -> str:
        """The account a usable token belongs to; IdentityError (code 190) otherwise."""
        with self._lock:
            return self._usable(token).account_id

    def owner_of(self, token: str | None) -> str | None:
        """The account a token was issued to, usable or not (for per-account faults)."""
        with self._lock:
            record = self._tokens.get(token) if token else None
            return record.account_id if record else None

    def _usable(self, token: str | None) -> _Token:
        record = self._tokens.get(token) if token else None
        if record is None:
            raise IdentityError(401, 190, UNKNOWN_TOKEN_MESSAGE)
        if record.revoked:
            raise IdentityError(400, 190, SESSION_INVALIDATED_MESSAGE, subcode=460)
        if record.replaced:
            raise IdentityError(400, 190, SESSION_REPLACED_MESSAGE, subcode=467)
        now = self._now()
        if now >= record.expires_at:
            raise IdentityError(
                400,
                190,
                f"Error validating access token: Session has expired on {meta_time(record.expires_at)}. "
                f"The current time is {meta_time(now)}.",
                subcode=463,
            )
        return record

    def _mint(self, account_id: str, kind: str, lifetime: float, scopes: tuple[str, ...]) -> str:
        # Unguessable, and shaped like Meta's Instagram User tokens ("IGAA...").
        token = "IGAA" + secrets.token_urlsafe(48)
        now = self._now()
        self._tokens[token] = _Token(account_id, kind, now, now + lifetime, scopes)
        return token

    # --- HTTP ---

    def check_node(self, node: str | None, account_id: str, method: str) -> None:
        """The `<ig_id|me>` segment must name the token's own account, by its user_id."""
        if node not in ("me", account_id):
            raise IdentityError(
                400,
                100,
                f"Unsupported {method.lower()} request. Object with ID '{node}' does not exist, cannot be "
                "loaded due to missing permissions, or does not support this operation",
                subcode=33,
                error_type="GraphMethodException",
            )

    def answer(
        self, route: Route, *, query: dict[str, list[str]], content_type: str, raw: bytes, account_id: str | None
    ) -> Answer:
        """Answer a routed request. `account_id` is the authenticated account for `me` and `subscribed_apps`."""
        if route.endpoint == "authorize":
            return self._authorize_page(query) if route.method == "GET" else self._authorize(content_type, raw)
        if route.endpoint == "code_exchange":
            return self._exchange_code(query, content_type, raw)
        if route.endpoint == "exchange":
            return self._exchange_token(query)
        if route.endpoint == "refresh":
            return self._refresh(query)
        if account_id is None:
            raise ValueError("me and subscribed_apps answer an authenticated account only")
        if route.endpoint == "me":
            return self._profile_answer(account_id, query)
        return self._subscribed_apps(route.method, account_id, query, content_type, raw)

    # /oauth/authorize

    def _auth_request(self, params: dict[str, str], *, dialog: bool) -> _AuthRequest:
        """The dialog's parameters, checked; `dialog` is the GET, whose response_type is required."""
        if params.get("client_id") != self.app_id:
            raise _PageError("Invalid client_id: no Instagram app has this ID")  # constructed
        if params.get("response_type", None if dialog else "code") != "code":
            raise _PageError("Invalid response_type: only code is supported")  # constructed
        redirect_uri = params.get("redirect_uri", "")
        parts = urlsplit(redirect_uri)
        try:
            _ = parts.port
            port_ok = True
        except ValueError:
            port_ok = False
        if (
            parts.scheme not in ("http", "https")
            or parts.hostname not in LOOPBACK_REDIRECT_HOSTS
            or not port_ok
            or parts.username is not None
            or parts.password is not None
            or parts.fragment
            or "#" in redirect_uri
        ):
            raise _PageError(
                "Invalid redirect_uri: it must be an absolute http(s) URL on 127.0.0.1 or localhost, without a fragment"
            )
        scope = params.get("scope", "")
        scopes = tuple(_unique(_split_names(scope)))
        unknown = [name for name in scopes if name not in SCOPES]
        if unknown:
            raise _PageError(f"Invalid Scopes: {', '.join(unknown)}")
        if REQUIRED_SCOPE not in scopes:
            raise _PageError(f"Invalid Scopes: {REQUIRED_SCOPE} is required")  # constructed
        state = params.get("state")
        return _AuthRequest(self.app_id, redirect_uri, scope, scopes, state if state else None)

    def _login_choices(self) -> list[tuple[str, str]]:
        logins = [(account_id, p.username) for account_id, p in self._profiles.items() if p.login]
        return logins or [(account_id, p.username) for account_id, p in self._profiles.items()]

    def _authorize_page(self, query: dict[str, list[str]]) -> Answer:
        try:
            request = self._auth_request({name: values[0] for name, values in query.items()}, dialog=True)
        except _PageError as error:
            return _error_page(str(error))
        with self._lock:
            choices = self._login_choices()
        return _consent_page(request, choices)

    def _authorize(self, content_type: str, raw: bytes) -> Answer:
        try:
            form = parse_form(content_type, raw)
            request = self._auth_request(form, dialog=False)
        except (ValueError, _PageError) as error:
            return _error_page(str(error))
        decision = form.get("decision")
        state = [("state", request.state)] if request.state is not None else []
        if decision == "cancel":
            return _redirect(
                request.redirect_uri,
                [
                    ("error", "access_denied"),
                    ("error_reason", "user_denied"),
                    ("error_description", "The user denied your request"),
                    *state,
                ],
            )
        if decision != "allow":
            return _error_page("Invalid decision: choose Allow or Cancel")
        with self._lock:
            choices = dict(self._login_choices())
            account_id = form.get("account_id") or (next(iter(choices)) if len(choices) == 1 else "")
            if account_id not in choices:
                return _error_page("Choose one of the listed accounts to log in as")
            code = "AQ" + secrets.token_urlsafe(48)
            self._codes[code] = _Code(
                request.client_id, request.redirect_uri, account_id, request.scopes, self._now() + CODE_LIFETIME_SECONDS
            )
        # Meta appends "#_" after the query (IG-LOGIN); it is not part of the code.
        answer = _redirect(request.redirect_uri, [("code", code), *state], fragment="_")
        return Answer(answer.status, answer.body, answer.headers, answer.content_type, account_id=account_id)

    # POST /oauth/access_token

    def _exchange_code(self, query: dict[str, list[str]], content_type: str, raw: bytes) -> Answer:
        form = {name: values[0] for name, values in query.items()}
        if raw:
            with contextlib.suppress(ValueError):  # an unreadable body leaves fields missing, named below
                form.update(parse_form(content_type, raw))
        for name in ("client_id", "client_secret", "grant_type", "redirect_uri", "code"):
            if not form.get(name):
                return _oauth_error(f"Missing required field {name}")  # constructed
        if form["grant_type"] != "authorization_code":
            return _oauth_error("Invalid grant_type")
        if form["client_id"] != self.app_id or not _secret_matches(form["client_secret"], self._app_secret):
            return _oauth_error(BAD_CLIENT_SECRET_MESSAGE)
        with self._lock:
            code = self._codes.get(form["code"])
            if code is None or code.used or self._now() >= code.expires_at or code.client_id != form["client_id"]:
                if code is not None:
                    code.used = True
                return _oauth_error(CODE_NOT_FOUND_MESSAGE)
            code.used = True  # spent, whatever happens next
            if code.redirect_uri != form["redirect_uri"]:
                return _oauth_error(REDIRECT_MISMATCH_MESSAGE)
            token = self._mint(code.account_id, "short", SHORT_LIVED_SECONDS, code.scopes)
        if self.token_response_shape == "data":  # noqa: S105 - a response shape
            body: dict[str, Any] = {
                "data": [{"access_token": token, "user_id": code.account_id, "permissions": ",".join(code.scopes)}]
            }
        else:
            # Seen by integrators (fact sheet §9): user_id as a JSON number, which is why IDs must become strings.
            user_id: int | str = int(code.account_id) if code.account_id.isdigit() else code.account_id
            body = {"access_token": token, "user_id": user_id, "permissions": list(code.scopes)}
        return Answer(200, body, dict(_NO_STORE), account_id=code.account_id)

    # GET /access_token?grant_type=ig_exchange_token

    def _exchange_token(self, query: dict[str, list[str]]) -> Answer:
        if _first(query, "grant_type") != "ig_exchange_token":
            raise _graph_invalid("grant_type must be ig_exchange_token")  # constructed
        if not _secret_matches(_first(query, "client_secret"), self._app_secret):
            raise IdentityError(400, 101, BAD_CLIENT_SECRET_MESSAGE)
        with self._lock:
            record = self._usable(_first(query, "access_token"))
            if record.kind != "short":
                # Constructed message.
                raise _graph_invalid("Only a short-lived access token can be exchanged for a long-lived one")
            token = self._mint(record.account_id, "long", EXCHANGED_EXPIRES_IN, record.scopes)
        body = {"access_token": token, "token_type": "bearer", "expires_in": EXCHANGED_EXPIRES_IN}
        return Answer(200, body, dict(_NO_STORE), account_id=record.account_id)

    # GET /refresh_access_token?grant_type=ig_refresh_token

    def _refresh(self, query: dict[str, list[str]]) -> Answer:
        if _first(query, "grant_type") != "ig_refresh_token":
            raise _graph_invalid("grant_type must be ig_refresh_token")  # constructed
        with self._lock:
            old = self._usable(_first(query, "access_token"))
            if old.kind != "long":
                raise _graph_invalid("Only a long-lived access token can be refreshed")  # constructed
            if self._now() - old.issued_at < REFRESH_MIN_AGE_SECONDS:
                raise IdentityError(400, 100, TOO_YOUNG_TO_REFRESH_MESSAGE)
            token = self._mint(old.account_id, "long", LONG_LIVED_SECONDS, old.scopes)
            if self.refresh_invalidates_old:
                old.replaced = True
        body = {"access_token": token, "token_type": "bearer", "expires_in": LONG_LIVED_SECONDS}
        return Answer(200, body, dict(_NO_STORE), account_id=old.account_id)

    # GET /<version>/<me|ig_id>

    def _profile_answer(self, account_id: str, query: dict[str, list[str]]) -> Answer:
        requested = _unique(_split_names(_first(query, "fields") or ""))
        for name in requested:
            if name not in PROFILE_FIELDS:
                # Graph's wording for an unknown field; the node type name on graph.instagram.com is approximate.
                raise _graph_invalid(f"Tried accessing nonexisting field ({name}) on node type (User)")
        with self._lock:
            username = self._known(account_id).username
        values = {"user_id": account_id, "username": username, "name": username, "account_type": "BUSINESS"}
        body: dict[str, Any] = {name: values[name] for name in requested if name != "id"}
        body["id"] = app_scoped_id(self.app_id, account_id)  # Graph always answers the node's id
        return Answer(200, body, account_id=account_id)

    # /<version>/<me|ig_id>/subscribed_apps

    def _subscribed_apps(
        self, method: str, account_id: str, query: dict[str, list[str]], content_type: str, raw: bytes
    ) -> Answer:
        if method == "GET":
            with self._lock:
                fields = list(self._known(account_id).fields)
            data = [{"id": self.app_id, "name": APP_NAME, "subscribed_fields": fields}] if fields else []
            return Answer(200, {"data": data}, account_id=account_id)
        if method == "DELETE":
            with self._lock:
                self._known(account_id).fields.clear()
            return Answer(200, {"success": True}, account_id=account_id)
        requested = self._requested_fields(query, content_type, raw)
        for index, name in enumerate(requested):
            if name not in self.accepted_fields:
                raise _graph_invalid(
                    f"Param subscribed_fields[{index}] must be one of "
                    f'{{{", ".join(self.accepted_fields)}}} - got "{name}"'
                )
        with self._lock:
            self._known(account_id).fields[:] = _unique(requested)
        return Answer(200, {"success": True}, account_id=account_id, record={"subscribed_fields": requested})

    @staticmethod
    def _requested_fields(query: dict[str, list[str]], content_type: str, raw: bytes) -> list[str]:
        value: Any = _first(query, "subscribed_fields")
        if value is None and raw:
            if content_type.split(";")[0].strip().lower() == "application/json":
                try:
                    body = json.loads(raw)
                except (ValueError, RecursionError):
                    raise _graph_invalid("The request body must be a JSON object") from None  # constructed
                value = body.get("subscribed_fields") if isinstance(body, dict) else None
            else:
                try:
                    value = parse_form(content_type, raw).get("subscribed_fields")
                except ValueError:
                    value = None
        if isinstance(value, str) and value.strip().startswith("["):
            # Graph takes array parameters as JSON too: subscribed_fields=["messages","comments"].
            with contextlib.suppress(ValueError, RecursionError):
                value = json.loads(value)
        if isinstance(value, list):
            names = [item if isinstance(item, str) else json.dumps(item) for item in value]
            names = [name.strip() for name in names if name.strip()]
        elif isinstance(value, str):
            names = _split_names(value)
        else:
            names = []
        if not names:
            raise _graph_invalid("The parameter subscribed_fields is required")
        return names
