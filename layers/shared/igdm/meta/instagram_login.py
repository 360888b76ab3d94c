"""Instagram API with Instagram Login: code and token exchanges, refresh, /me and subscribed_apps.

The calls the onboarding pages, the refresher and the register command make (fact sheet §9 and §11).
Tokens travel in the Authorization header where Meta accepts one; the token endpoints take them in the
query string, so no URL and no requests exception text is ever logged or put in an error: errors carry
Meta's answer (code, subcode, message, fbtrace_id) or the exception's type, nothing else.
"""

import re
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import HTTPAdapter

LONG_LIVED_SECONDS = 60 * 24 * 3600
TRANSIENT_CODES = frozenset({1, 2, 4, 17, 32, 341, 613, 80001, 80002, 80006})
TOKEN_DEAD_CODE = 190

# Meta documents two spellings for two fields (fact sheet §11, UNCONFIRMED which the IGL edge takes):
# a field counts as subscribed under either, and a refusal that lists the accepted names picks the other.
FIELD_ALTERNATES = {
    "message_reactions": "messaging_reactions",
    "messaging_reactions": "message_reactions",
    "messaging_referral": "messaging_referrals",
    "messaging_referrals": "messaging_referral",
}
_MUST_BE_ONE_OF = re.compile(r"must be one of \{([^}]*)\}")


@dataclass(eq=False)
class LoginError(Exception):
    """Meta refused a call, or no answer came. Never holds a token or a URL."""

    detail: str
    http_status: int | None = None
    code: int | None = None
    subcode: int | None = None
    type: str | None = None
    fbtrace_id: str | None = None
    transient: bool = False

    def __str__(self) -> str:
        return self.detail

    @property
    def token_dead(self) -> bool:
        """Code 190: the token is expired, revoked or invalid; only a new login brings the account back."""
        return self.code == TOKEN_DEAD_CODE

    def as_graph_error(self) -> dict[str, Any]:
        """The shape of igdm.contracts.events.GraphError."""
        return {
            "http_status": self.http_status,
            "code": self.code,
            "subcode": self.subcode,
            "type": self.type,
            "message": self.detail[:1000],
            "fbtrace_id": self.fbtrace_id,
        }


@dataclass(frozen=True)
class ShortLivedToken:
    access_token: str = field(repr=False)
    user_id: str
    permissions: tuple[str, ...]


@dataclass(frozen=True)
class IssuedToken:
    access_token: str = field(repr=False)
    expires_in: int | None


@dataclass(frozen=True)
class Profile:
    user_id: str
    username: str | None


class InstagramLogin:
    def __init__(
        self, *, graph_base_url: str, api_version: str, oauth_token_url: str, timeout_seconds: float = 10.0
    ) -> None:
        self._graph = graph_base_url.rstrip("/")
        self._version = api_version
        self._oauth_token_url = oauth_token_url
        self._timeout = (min(3.05, timeout_seconds), timeout_seconds)
        self._session = requests.Session()
        self._session.trust_env = False  # no proxy from the environment sees a token in a query string
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=4, max_retries=0)
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)

    # --- onboarding ---

    def exchange_code(self, *, client_id: str, client_secret: str, redirect_uri: str, code: str) -> ShortLivedToken:
        """POST api.instagram.com/oauth/access_token. Meta documents {"data":[{...}]}; integrators have seen a
        flat object with a numeric user_id and a list of permissions. Both are read; ids become strings."""
        document = self._call(
            "POST",
            self._oauth_token_url,
            data={
                "client_id": client_id,
                "client_secret": client_secret,
                "grant_type": "authorization_code",
                "redirect_uri": redirect_uri,
                "code": code,
            },
        )
        entry = document
        if isinstance(document.get("data"), list) and document["data"]:
            entry = document["data"][0] if isinstance(document["data"][0], dict) else {}
        token, user_id = entry.get("access_token"), entry.get("user_id")
        if not isinstance(token, str) or not token or not _is_id(user_id):
            raise LoginError("the code exchange answered without an access_token and user_id")
        return ShortLivedToken(token, str(user_id), _permissions(entry.get("permissions")))

    def long_lived(self, *, client_secret: str, short_lived_token: str) -> IssuedToken:
        """GET graph.instagram.com/access_token?grant_type=ig_exchange_token: about 60 days."""
        return _issued(
            self._call(
                "GET",
                f"{self._graph}/access_token",
                params={
                    "grant_type": "ig_exchange_token",
                    "client_secret": client_secret,
                    "access_token": short_lived_token,
                },
            )
        )

    # --- the refresher ---

    def refresh(self, token: str) -> IssuedToken:
        """GET graph.instagram.com/refresh_access_token: a token at least a day old and unexpired gets a new
        60-day token, which may be a different string (always keep the returned one)."""
        return _issued(
            self._call(
                "GET",
                f"{self._graph}/refresh_access_token",
                params={"grant_type": "ig_refresh_token", "access_token": token},
            )
        )

    def me(self, token: str) -> Profile:
        """The account's user_id (the id Meta puts in webhooks; not `id`) and username; proves the token works."""
        document = self._call(
            "GET", f"{self._graph}/{self._version}/me", token=token, params={"fields": "user_id,username"}
        )
        user_id = document.get("user_id")
        if not _is_id(user_id):
            raise LoginError("/me answered without a user_id")
        username = document.get("username")
        return Profile(str(user_id), username if isinstance(username, str) else None)

    def subscribed_fields(self, token: str) -> set[str]:
        """The webhook fields this app receives for the account (empty when Meta dropped the subscription)."""
        document = self._call("GET", f"{self._graph}/{self._version}/me/subscribed_apps", token=token)
        data = document.get("data")
        if not isinstance(data, list):
            raise LoginError("subscribed_apps answered without data")
        fields: set[str] = set()
        for app in data:
            names = app.get("subscribed_fields") if isinstance(app, dict) else None
            if isinstance(names, list):
                fields.update(n for n in names if isinstance(n, str))
        return fields

    def subscribe(self, token: str, wanted: list[str]) -> tuple[list[str], list[str]]:
        """Subscribe the account to `wanted`; returns (fields as subscribed, fields Meta accepts under no
        spelling). A refusal that lists the accepted names is answered once with the other spellings."""
        fields = list(dict.fromkeys(wanted))
        try:
            self._post_subscription(token, fields)
            return fields, []
        except LoginError as error:
            accepted = _accepted_names(error.detail)
            if error.code != 100 or accepted is None:
                raise
        respelled = [f if f in accepted else FIELD_ALTERNATES.get(f, f) for f in fields]
        usable = [f for f in respelled if f in accepted]
        unsupported = [f for f, r in zip(fields, respelled, strict=True) if r not in accepted]
        if not usable:
            raise LoginError(f"Meta accepts none of the webhook fields {', '.join(fields)}", code=100)
        self._post_subscription(token, usable)
        return usable, unsupported

    def _post_subscription(self, token: str, fields: list[str]) -> None:
        document = self._call(
            "POST",
            f"{self._graph}/{self._version}/me/subscribed_apps",
            token=token,
            params={"subscribed_fields": ",".join(fields)},
        )
        if document.get("success") not in (True, "true"):
            raise LoginError("subscribed_apps did not answer success")

    # --- the account's ice breakers and persistent menu (igdm.contracts.profile) ---

    def messenger_profile(self, token: str, fields: list[str]) -> dict[str, Any]:
        """Meta's answer to `GET /me/messenger_profile?fields=...&platform=instagram`."""
        url = f"{self._graph}/{self._version}/me/messenger_profile"
        return self._call("GET", url, token=token, params={"fields": ",".join(fields), "platform": "instagram"})

    def set_messenger_profile(self, token: str, body: dict[str, Any]) -> None:
        """`POST /me/messenger_profile?platform=instagram` with the profile as JSON; Meta answers success."""
        url = f"{self._graph}/{self._version}/me/messenger_profile"
        document = self._call("POST", url, token=token, params={"platform": "instagram"}, json_body=body)
        if document.get("result") != "success" and document.get("success") not in (True, "true"):
            raise LoginError("messenger_profile did not answer success")

    # --- other Graph reads (the reconciler's Conversations API) ---

    def get(self, path_or_url: str, *, token: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        """GET a Graph path (``/<id>``, with the version added) or an absolute URL Meta handed out
        (``paging.next``), which must be on the same Graph host: the token never goes anywhere else."""
        if path_or_url.startswith("/"):
            url = f"{self._graph}/{self._version}{path_or_url}"
        elif path_or_url.startswith(f"{self._graph}/"):
            url = path_or_url
        else:
            raise LoginError("a paging link pointed away from the Graph API; not followed")
        return self._call("GET", url, token=token, params=params)

    # --- transport ---

    def _call(
        self,
        method: str,
        url: str,
        *,
        token: str | None = None,
        params: dict[str, str] | None = None,
        data: dict[str, str] | None = None,
        json_body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            response = self._session.request(
                method,
                url,
                params=params,
                data=data,
                json=json_body,
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,
            )
        except requests.exceptions.RequestException as exc:
            # The exception's text holds the URL, and with it any token in the query: only its type.
            raise LoginError(f"no answer from Meta: {type(exc).__name__}", transient=True) from None
        try:
            document = response.json()
        except ValueError:
            document = None
        if 200 <= response.status_code < 300 and isinstance(document, dict):
            return document
        raise _error(response.status_code, document)


def _error(status: int, document: Any) -> LoginError:
    error = document.get("error") if isinstance(document, dict) else None
    if isinstance(error, dict):  # the Graph error object
        code, subcode = _int(error.get("code")), _int(error.get("error_subcode"))
        transient = status >= 500 or code in TRANSIENT_CODES or error.get("is_transient") is True
        return LoginError(
            str(error.get("message") or f"HTTP {status}")[:1000],
            status,
            code,
            subcode,
            _str(error.get("type")),
            _str(error.get("fbtrace_id")),
            transient,
        )
    if isinstance(document, dict) and "error_message" in document:  # the OAuth endpoints' flat shape
        return LoginError(
            str(document.get("error_message"))[:1000],
            status,
            _int(document.get("code")),
            None,
            _str(document.get("error_type")),
            None,
            status >= 500,
        )
    return LoginError(f"HTTP {status} without Meta's error object", status, transient=status >= 500 or status == 429)


def _issued(document: dict[str, Any]) -> IssuedToken:
    token = document.get("access_token")
    if not isinstance(token, str) or not token:
        raise LoginError("Meta answered without an access_token")
    expires_in = _int(document.get("expires_in"))
    return IssuedToken(token, expires_in if expires_in and expires_in > 0 else None)


def _permissions(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = re.split(r"[,\s]+", value)
    if not isinstance(value, list):
        return ()
    return tuple(p for p in value if isinstance(p, str) and p)


def _accepted_names(message: str) -> set[str] | None:
    match = _MUST_BE_ONE_OF.search(message)
    if match is None:
        return None
    return {name.strip() for name in match.group(1).split(",") if name.strip()}


def _is_id(value: Any) -> bool:
    # A JSON number is fine (ids are read as strings); a bool, an empty string or a float is not an id.
    return (isinstance(value, int) and not isinstance(value, bool) and value > 0) or (
        isinstance(value, str) and value.isdigit()
    )


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def field_satisfied(field_name: str, subscribed: set[str]) -> bool:
    return field_name in subscribed or FIELD_ALTERNATES.get(field_name) in subscribed


def missing_fields(required: list[str], subscribed: set[str]) -> list[str]:
    return [f for f in required if not field_satisfied(f, subscribed)]
