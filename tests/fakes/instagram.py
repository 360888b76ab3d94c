"""Instagram's login and token endpoints in memory (igdm.meta.instagram_login.InstagramLogin's calls), on the
test's clock: codes valid one hour and once, short-lived tokens exchanged for 60-day ones, refreshes that
Meta refuses for a token younger than a day, 190 for a revoked or expired token, webhook subscriptions."""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from igdm.meta.instagram_login import (
    LONG_LIVED_SECONDS,
    IssuedToken,
    LoginError,
    Profile,
    ShortLivedToken,
)

DAY = 86_400
CODE_SECONDS = 3600
SHORT_LIVED_SECONDS = 3600
MESSAGING_PERMISSIONS = ("instagram_business_basic", "instagram_business_manage_messages")


@dataclass
class IssuedRecord:
    token: str
    account_id: str
    kind: str  # "short" or "long"
    issued_at: float
    expires_at: float
    revoked: bool = False


@dataclass
class _Code:
    account_id: str
    permissions: tuple[str, ...]
    redirect_uri: str
    issued_at: float
    used: bool = False


@dataclass
class _Fault:
    endpoint: str
    error: LoginError
    account_id: str | None
    times: int


@dataclass(frozen=True)
class LoginRequest:
    """A call Meta received: the endpoint, and the account its token or code belongs to."""

    endpoint: str
    account_id: str | None
    detail: dict[str, str] = field(default_factory=dict)


def token_dead(subcode: int, message: str) -> LoginError:
    return LoginError(message, 400, 190, subcode, "OAuthException", "trace-190")


def unavailable(endpoint: str) -> LoginError:
    return LoginError(f"{endpoint}: An unexpected error has occurred", 500, 2, None, "OAuthException", "trace-2", True)


class FakeInstagram:
    def __init__(self, clock: Callable[[], float], *, refresh_invalidates_old: bool = False) -> None:
        self._clock = clock
        self.refresh_invalidates_old = refresh_invalidates_old  # Meta may kill the old token on refresh
        self.usernames: dict[str, str | None] = {}
        self.tokens: dict[str, IssuedRecord] = {}
        self.subscriptions: dict[str, set[str]] = {}
        self.codes: dict[str, _Code] = {}
        self.faults: list[_Fault] = []
        self.requests: list[LoginRequest] = []
        self.profiles: dict[str, dict[str, Any]] = {}  # what Meta shows of each account's messenger_profile
        self.not_offered: set[str] = set()  # webhook fields Meta accepts under no spelling (reported as unsupported)

    # --- the test's side

    def add_account(
        self, account_id: str, username: str | None, token: str, *, issued_at: float, expires_in: float
    ) -> None:
        self.usernames[account_id] = username
        self.tokens[token] = IssuedRecord(token, account_id, "long", issued_at, issued_at + expires_in)

    def authorise(
        self, account_id: str, username: str, *, redirect_uri: str, permissions: tuple[str, ...] = MESSAGING_PERMISSIONS
    ) -> str:
        """The account's owner logs in and allows: the code Instagram hands the redirect URI."""
        self.usernames[account_id] = username
        code = f"code-{len(self.codes) + 1}"
        self.codes[code] = _Code(account_id, permissions, redirect_uri, self._clock())
        return code

    def revoke(self, account_id: str) -> None:
        """A password reset: every token of the account dies."""
        for record in self.tokens.values():
            if record.account_id == account_id:
                record.revoked = True

    def unsubscribe(self, account_id: str) -> None:
        self.subscriptions.pop(account_id, None)

    def fail(self, endpoint: str, error: LoginError, *, account_id: str | None = None, times: int = 1) -> None:
        """The next ``times`` calls to ``endpoint`` (of ``account_id``'s tokens, or any) answer ``error``."""
        self.faults.append(_Fault(endpoint, error, account_id, times))

    def alive(self, token: str) -> bool:
        try:
            self._holder(token)
        except LoginError:
            return False
        return True

    def long_lived_tokens(self, account_id: str) -> list[str]:
        return [r.token for r in self.tokens.values() if r.account_id == account_id and r.kind == "long"]

    # --- onboarding (onboarding.service.Login)

    def exchange_code(self, *, client_id: str, client_secret: str, redirect_uri: str, code: str) -> ShortLivedToken:
        found = self.codes.get(code)
        self.requests.append(
            LoginRequest("exchange_code", found.account_id if found else None, {"redirect_uri": redirect_uri})
        )
        self._fault("exchange_code", found.account_id if found else None)
        if found is None or found.used or self._clock() - found.issued_at > CODE_SECONDS:
            raise LoginError("Matching code was not found or was already used", 400, 100, None, "OAuthException")
        if redirect_uri != found.redirect_uri:
            raise LoginError("Error validating verification code", 400, 100, None, "OAuthException")
        found.used = True
        short = self._issue(found.account_id, "short", SHORT_LIVED_SECONDS)
        return ShortLivedToken(short, found.account_id, found.permissions)

    def long_lived(self, *, client_secret: str, short_lived_token: str) -> IssuedToken:
        holder = self._holder(short_lived_token)
        self.requests.append(LoginRequest("long_lived", holder.account_id))
        self._fault("long_lived", holder.account_id)
        return IssuedToken(self._issue(holder.account_id, "long", LONG_LIVED_SECONDS), LONG_LIVED_SECONDS)

    # --- the refresher (refresher.service.Login)

    def refresh(self, token: str) -> IssuedToken:
        holder = self._call("refresh", token)
        if self._clock() - holder.issued_at < DAY:
            raise LoginError("(#100) The access token is too new to be refreshed", 400, 100, None, "OAuthException")
        renewed = self._issue(holder.account_id, "long", LONG_LIVED_SECONDS)
        if self.refresh_invalidates_old:
            holder.revoked = True
        return IssuedToken(renewed, LONG_LIVED_SECONDS)

    def me(self, token: str) -> Profile:
        holder = self._call("me", token)
        return Profile(holder.account_id, self.usernames.get(holder.account_id))

    def subscribed_fields(self, token: str) -> set[str]:
        holder = self._call("subscribed_fields", token)
        return set(self.subscriptions.get(holder.account_id, set()))

    def subscribe(self, token: str, wanted: list[str]) -> tuple[list[str], list[str]]:
        holder = self._call("subscribe", token)
        fields = [f for f in dict.fromkeys(wanted) if f not in self.not_offered]
        self.subscriptions[holder.account_id] = set(fields)
        return fields, [f for f in dict.fromkeys(wanted) if f in self.not_offered]

    def messenger_profile(self, token: str, fields: list[str]) -> dict[str, Any]:
        holder = self._call("messenger_profile", token)
        profile = self.profiles.get(holder.account_id, {})
        return {"data": [{name: profile[name] for name in fields if name in profile}] if profile else []}

    def set_messenger_profile(self, token: str, body: dict[str, Any]) -> None:
        holder = self._call("set_messenger_profile", token)
        self.profiles[holder.account_id] = {k: v for k, v in body.items() if k != "platform"}

    # --- plumbing

    def _call(self, endpoint: str, token: str) -> IssuedRecord:
        record = self.tokens.get(token)
        self.requests.append(LoginRequest(endpoint, record.account_id if record else None))
        self._fault(endpoint, record.account_id if record else None)
        return self._holder(token)

    def _holder(self, token: str) -> IssuedRecord:
        record = self.tokens.get(token)
        if record is None:
            raise token_dead(467, "Invalid OAuth access token - Cannot parse access token")
        if record.revoked:
            raise token_dead(460, "Error validating access token: The session has been invalidated")
        if record.expires_at <= self._clock():
            raise token_dead(463, "Error validating access token: Session has expired")
        return record

    def _fault(self, endpoint: str, account_id: str | None) -> None:
        for fault in self.faults:
            if fault.endpoint == endpoint and fault.times > 0 and fault.account_id in (None, account_id):
                fault.times -= 1
                raise fault.error

    def _issue(self, account_id: str, kind: str, lifetime: float) -> str:
        token = f"{kind}-{account_id[-2:]}-{len(self.tokens) + 1}"
        now = self._clock()
        self.tokens[token] = IssuedRecord(token, account_id, kind, now, now + lifetime)
        return token
