"""Invite links and the OAuth `state`: signed, expiring, and (for state) single-use.

Both are HMAC-SHA256 over their fields with keys derived from the generated onboarding secret, one key
per purpose, so an invite can never pass as a state or the other way round. The signature is checked
first (no table access for a forged or stale value); a valid state is then consumed with a conditional
delete of its item (igdm.store.oauth_states), so the second use of the same state is refused even within its
lifetime.
"""

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from igdm.store.oauth_states import OAuthStates

STATE_SECONDS = 15 * 60  # a login takes a minute or two; a state older than this is refused


class Refusal(StrEnum):
    """Why a state or an invite was refused: each has a page of its own (onboarding.service), in plain words."""

    MISSING = "missing"
    NOT_ISSUED_HERE = "not_issued_here"
    EXPIRED = "expired"
    OTHER_BROWSER = "other_browser"
    USED = "used"


class StateRefused(Exception):
    """The state (or invite) is missing, forged, expired or already used: the message says which, for the log;
    `reason` says which to the page (None: not said, and the page says what covers them all)."""

    def __init__(self, message: str, reason: Refusal | None = None) -> None:
        super().__init__(message)
        self.reason = reason


def _key(secret: str, purpose: str) -> bytes:
    return hmac.new(secret.encode(), f"igdm-onboarding|{purpose}".encode(), hashlib.sha256).digest()


def _sign(key: bytes, *fields: str) -> str:
    mac = hmac.new(key, "|".join(fields).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def _equal(given: str, expected: str) -> bool:
    """Constant-time equality for any str. compare_digest raises TypeError on a non-ASCII str, and an
    unauthenticated request must not turn that into a 503; as bytes (surrogatepass: even half a surrogate
    pair, which a JSON event can carry, encodes) a non-ASCII value is simply unequal to an ASCII one."""
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))


def make_invite(secret: str, *, valid_seconds: int, now: float | None = None) -> str:
    expires = str(int((time.time() if now is None else now) + valid_seconds))
    return f"{expires}.{_sign(_key(secret, 'invite'), expires)}"


def check_invite(secret: str, invite: str | None, *, now: float | None = None) -> None:
    if not invite:
        raise StateRefused("this page needs an invite link: ask the gateway's operator for one", Refusal.MISSING)
    expires, _, signature = invite.partition(".")
    # Every invite this module makes is ASCII; isdigit() alone would also take "²", which int() refuses.
    if not (invite.isascii() and expires.isdigit()) or not _equal(signature, _sign(_key(secret, "invite"), expires)):
        raise StateRefused(
            "this invite link is not valid: ask the gateway's operator for a new one", Refusal.NOT_ISSUED_HERE
        )
    if int(expires) < (time.time() if now is None else now):
        raise StateRefused("this invite link has expired: ask the gateway's operator for a new one", Refusal.EXPIRED)


@dataclass(frozen=True)
class State:
    nonce: str
    value: str


class StateStore:
    def __init__(self, dynamodb: Any, table: str, secret: str) -> None:
        self._states = OAuthStates(dynamodb, table)
        self._key = _key(secret, "state")

    def issue(self, *, now: float) -> State:
        nonce = secrets.token_urlsafe(24)
        expires = int(now + STATE_SECONDS)
        self._states.add(nonce, state_expires_at=expires)
        return State(nonce, f"{nonce}.{expires}.{_sign(self._key, nonce, str(expires))}")

    def consume(self, value: str | None, *, cookie_nonce: str | None, now: float) -> str:
        """The state's nonce, once: raises StateRefused for anything else."""
        if not value:
            raise StateRefused("the answer from Instagram carries no state", Refusal.MISSING)
        nonce, expires, signature = [*value.split("."), "", ""][:3]
        # Every state this module issues is ASCII; refused before _sign, which cannot encode half a
        # surrogate pair in the nonce.
        if (
            not value.isascii()
            or not nonce
            or not expires.isdigit()
            or not _equal(signature, _sign(self._key, nonce, expires))
        ):
            raise StateRefused(
                "the state in the answer from Instagram is not one this gateway issued", Refusal.NOT_ISSUED_HERE
            )
        if int(expires) < now:
            raise StateRefused("this login took too long and its state expired", Refusal.EXPIRED)
        if cookie_nonce is None or not _equal(cookie_nonce, nonce):
            # Bound to the browser that started it: a link someone else started cannot be completed here.
            raise StateRefused(
                "this login was started in another browser (or its cookie was blocked)", Refusal.OTHER_BROWSER
            )
        if not self._states.take(nonce):
            raise StateRefused("this login was already completed (its state was used)", Refusal.USED)
        return nonce
