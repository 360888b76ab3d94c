"""In-memory stand-ins for the onboarding's ports (onboarding.service): the OAuth states. The connector is the real
igdm.meta.connect.AccountConnector over the account and Instagram fakes."""

import hashlib
import hmac

from onboarding.state import STATE_SECONDS, State, StateRefused


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
