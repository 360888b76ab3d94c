"""Which outbound message an echo proves delivered, when the Send API's answer never came.

Every message the sender sends carries Meta's `metadata` field with a marker naming the message and the
part (Meta attaches the sending app's metadata to the message's echo). An echo settles a message whose
outcome is UNKNOWN only when it is unambiguous:

- it must come from the gateway's own app: its marker, or Meta's `app_id` being the gateway's app. A
  person replying in the Instagram app, or another tool on the same account, never settles anything;
- with a marker, it settles exactly the message and part the marker names;
- without one (should Meta not return metadata on Instagram), only when a single UNKNOWN message of the
  conversation has the same text or attachment type and was being sent when Meta stamped the echo.

Anything else leaves the message UNKNOWN: a false DELIVERED is worse than an honest UNKNOWN.
"""

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

MARKER_PREFIX = "igdm1:"
# How far Meta's clock may be behind ours: an echo stamped up to this long before its attempt started
# still matches it. The other way round is not allowed: the next message of a conversation leaves just
# after the previous attempt ended, and its echo must not settle the previous one.
CLOCK_SKEW_MS = 2_000


def marker(idempotency_key: str, part: int) -> str:
    """The `metadata` of part ``part`` of a message: a digest, so the producer's key never goes to Meta."""
    digest = hashlib.sha256(idempotency_key.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"{MARKER_PREFIX}{digest}:{part}"


def is_marker(metadata: str | None) -> bool:
    return metadata is not None and metadata.startswith(MARKER_PREFIX)


def fingerprint(text: str | None, attachment_type: str | None) -> str:
    """What an echo and the message it echoes have in common: the text, or the kind of attachment."""
    if text:
        return "text:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"attachment:{(attachment_type or 'unknown').lower()}"


def sent_by_gateway(app_id: str | None, metadata: str | None, gateway_app_ids: frozenset[str]) -> bool | None:
    """Whether an echo is of a message the gateway sent: True, False, or None when Meta's echo does not say
    (no marker, and no app id that can be compared)."""
    if app_id and gateway_app_ids:
        return app_id in gateway_app_ids  # Meta names the app: that decides, whatever the metadata says
    if is_marker(metadata):
        return True
    if metadata:
        return False  # another app's metadata: the gateway's messages carry its marker, or nothing
    return None


@dataclass(frozen=True)
class Echo:
    """An echo of the gateway's own app (sent_by_gateway), as far as settling needs it."""

    message_id: str
    fingerprint: str
    marker: str | None
    occurred_ms: int


@dataclass(frozen=True)
class Unsettled:
    """An UNKNOWN message waiting in its conversation: the uncertain part's fingerprint and marker, and
    when its attempt ran (our clock)."""

    idempotency_key: str
    fingerprint: str
    marker: str | None
    started_ms: int
    ended_ms: int


def settled_by(echo: Echo, waiting: Iterable[Unsettled]) -> str | None:
    """The idempotency key of the one message ``echo`` settles among the conversation's ``waiting``."""
    waiting = list(waiting)
    if is_marker(echo.marker):
        named = [u for u in waiting if u.marker == echo.marker]
        return named[0].idempotency_key if len(named) == 1 else None
    possible = [
        u
        for u in waiting
        if u.fingerprint == echo.fingerprint and u.started_ms - CLOCK_SKEW_MS <= echo.occurred_ms <= u.ended_ms
    ]
    return possible[0].idempotency_key if len(possible) == 1 else None


def settles(candidate: Unsettled, echoes: Iterable[Echo], waiting: Iterable[Unsettled]) -> Echo | None:
    """The echo, already stored, that settles ``candidate`` (one of ``waiting``): exactly one may."""
    waiting = list(waiting)
    found = [e for e in echoes if settled_by(e, waiting) == candidate.idempotency_key]
    return found[0] if len(found) == 1 else None
