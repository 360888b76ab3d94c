"""Connecting an Instagram account to the stack: what the onboarding callback and the register command
both do once they hold a working long-lived token.

Nothing is stored until /me has named the account; then the token secret, then the account item (the
item is what makes the account usable), then the webhook subscription and an account_status event. A
subscription Meta refuses does not undo the connection: the refresher retries it every run, and the
caller shows the reason.
"""

import time
from dataclasses import dataclass
from typing import Protocol

from igdm.contracts.account_status import AccountChange
from igdm.meta.instagram_login import LONG_LIVED_SECONDS, IssuedToken, LoginError, Profile
from igdm.store.accounts import ACTIVE, Account
from igdm.store.tokens import TokenDocument

DAY = 86_400


@dataclass(frozen=True)
class Connected:
    account: Account
    subscribed_fields: list[str]
    unsupported_fields: list[str]
    subscription_error: str | None
    event_published: bool


class Login(Protocol):
    """Instagram's /me, refresh and subscribed_apps (igdm.meta.instagram_login.InstagramLogin)."""

    def me(self, token: str) -> Profile: ...

    def refresh(self, token: str) -> IssuedToken: ...

    def subscribe(self, token: str, wanted: list[str]) -> tuple[list[str], list[str]]: ...


class Vault(Protocol):
    """Where tokens are kept (igdm.store.tokens.TokenVault): returns the secret's id."""

    def store(self, document: TokenDocument) -> str: ...


class Accounts(Protocol):
    """The account items (igdm.store.accounts.AccountTable)."""

    def save(self, document: TokenDocument, token_secret_id: str, *, now: float) -> Account: ...

    def record_check(
        self, account_id: str, *, now: float, subscribed_fields: list[str] | None = None, error: str | None = None
    ) -> None: ...


class AccountEvents(Protocol):
    """account_status events (igdm.queues.account_publisher.AccountEventPublisher): returns the unpublished."""

    def publish(self, changes: list[AccountChange], *, now: float) -> list[AccountChange]: ...


class AccountConnector:
    def __init__(
        self,
        *,
        login: Login,
        vault: Vault,
        accounts: Accounts,
        events: AccountEvents,
        webhook_fields: list[str],
    ) -> None:
        self.login = login
        self.vault = vault
        self.accounts = accounts
        self.events = events
        self.webhook_fields = webhook_fields

    def connect(
        self,
        token: str,
        *,
        expires_at: int | None,
        refreshed_at: int | None,
        scopes: tuple[str, ...],
        now: float | None = None,
    ) -> Connected:
        """Raises LoginError when /me refuses the token (nothing is stored then)."""
        now = time.time() if now is None else now
        profile = self.login.me(token)
        document = TokenDocument(token, profile.user_id, profile.username, scopes, expires_at, refreshed_at)
        name = self.vault.store(document)
        account = self.accounts.save(document, name, now=now)
        subscribed: list[str] = []
        unsupported: list[str] = []
        error: str | None = None
        try:
            subscribed, unsupported = self.login.subscribe(token, self.webhook_fields)
        except LoginError as exc:
            error = exc.detail
        self.accounts.record_check(
            account.account_id,
            now=now,
            subscribed_fields=subscribed,
            error=f"subscribing failed: {error}" if error else None,
        )
        change = AccountChange(
            account.account_id,
            ACTIVE,
            "connected",
            reason="login",
            username=profile.username,
            token_expires_at=expires_at,
            subscribed_fields=subscribed,
            detail=f"subscribing failed: {error}" if error else None,
        )
        unpublished = self.events.publish([change], now=now)
        return Connected(account, subscribed, unsupported, error, not unpublished)

    def connect_pasted_token(self, token: str, *, now: float | None = None) -> Connected:
        """A long-lived token generated in the App Dashboard: its age is unknown, so refresh it at once
        to learn its expiry. Meta refuses to refresh a token younger than a day; such a token then has at
        least 59 days left, and the refresher renews it once it is a day old."""
        now = time.time() if now is None else now
        self.login.me(token)  # a dead token is refused before anything is stored
        try:
            issued = self.login.refresh(token)
        except LoginError as error:
            if error.token_dead or error.code != 100:
                raise
            return self.connect(
                token, expires_at=int(now + LONG_LIVED_SECONDS - DAY), refreshed_at=int(now), scopes=(), now=now
            )
        return self.connect(
            issued.access_token,
            expires_at=int(now + (issued.expires_in or LONG_LIVED_SECONDS)),
            refreshed_at=int(now),
            scopes=(),
            now=now,
        )
