"""In-memory stand-ins for the onboarding's ports (onboarding.service): the OAuth states, and the connector
that stores and subscribes an account (igdm.meta.connect.AccountConnector) over the account fakes."""

import hashlib
import hmac
import time

from igdm.contracts.account_status import AccountChange
from igdm.meta.connect import Connected
from igdm.meta.instagram_login import LoginError
from igdm.store.accounts import ACTIVE
from igdm.store.tokens import TokenDocument
from onboarding.state import STATE_SECONDS, State, StateRefused
from tests.fakes.accounts import MemoryAccountEvents, MemoryAccountTable, MemoryVault
from tests.fakes.instagram import FakeInstagram


class StateTable:
    """The OAuth-state items: a nonce is live from its issue until it is consumed."""

    def __init__(self) -> None:
        self.live: set[str] = set()
        self.issued = 0

    def store(self, state_key: str) -> "MemoryStates":
        """The service's `states` factory: the states of one state key."""
        return MemoryStates(self, state_key)


class MemoryStates:
    """onboarding.state.StateStore's rules, in its order: issued under this key, unexpired, from the browser
    holding the cookie, once. (The signature is a short HMAC; the real one is tested in test_onboarding_state.)"""

    def __init__(self, table: StateTable, state_key: str) -> None:
        self._table = table
        self._key = state_key.encode()

    def issue(self, *, now: float) -> State:
        self._table.issued += 1
        nonce = f"nonce{self._table.issued}"
        expires = str(int(now + STATE_SECONDS))
        self._table.live.add(nonce)
        return State(nonce, f"{nonce}.{expires}.{self._sign(nonce, expires)}")

    def consume(self, value: str | None, *, cookie_nonce: str | None, now: float) -> str:
        if not value:
            raise StateRefused("the answer from Instagram carries no state")
        nonce, expires, signature = [*value.split("."), "", ""][:3]
        if not expires.isdigit() or not hmac.compare_digest(
            signature.encode("utf-8", "surrogatepass"), self._sign(nonce, expires).encode()
        ):
            raise StateRefused("the state in the answer from Instagram is not one this gateway issued")
        if int(expires) < now:
            raise StateRefused("this login took too long and its state expired")
        if cookie_nonce != nonce:
            raise StateRefused("this login was started in another browser (or its cookie was blocked)")
        if nonce not in self._table.live:
            raise StateRefused("this login was already completed (its state was used)")
        self._table.live.remove(nonce)
        return nonce

    def _sign(self, nonce: str, expires: str) -> str:
        message = f"{nonce}|{expires}".encode("utf-8", "surrogatepass")
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()[:22]


class MemoryConnector:
    """AccountConnector.connect over the fakes: nothing is stored until /me names the account; then the
    token secret, the account item, the subscription (whose refusal does not undo the connection) and the
    account_status event."""

    def __init__(
        self,
        *,
        login: FakeInstagram,
        vault: MemoryVault,
        accounts: MemoryAccountTable,
        events: MemoryAccountEvents,
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
        now = time.time() if now is None else now
        profile = self.login.me(token)
        document = TokenDocument(token, profile.user_id, profile.username, scopes, expires_at, refreshed_at)
        account = self.accounts.save(document, self.vault.store(document), now=now)
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
