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

When no echo came at all, the reconciler looks the message up in its conversation (look_up): the messages the
account sent then, as Instagram's Conversations API shows them, without metadata and stamped to the second.
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
    """An echo of the gateway's own app (sent_by_gateway), as far as settling needs it; or a message the
    account sent as Instagram's Conversations API shows it, with no marker and its time to the second."""

    message_id: str
    fingerprint: str
    marker: str | None
    occurred_ms: int
    precision_ms: int = 0  # Meta stamped it somewhere in [occurred_ms, occurred_ms + precision_ms]


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
    possible = [u for u in waiting if u.fingerprint == echo.fingerprint and _during(echo, u)]
    return possible[0].idempotency_key if len(possible) == 1 else None


def _during(echo: Echo, attempt: Unsettled) -> bool:
    """Whether Meta may have stamped ``echo`` while ``attempt`` ran (CLOCK_SKEW_MS before it, at the earliest)."""
    return (
        attempt.started_ms - CLOCK_SKEW_MS <= echo.occurred_ms + echo.precision_ms
        and echo.occurred_ms <= attempt.ended_ms
    )


def settles(candidate: Unsettled, echoes: Iterable[Echo], waiting: Iterable[Unsettled]) -> Echo | None:
    """The echo, already stored, that settles ``candidate`` (one of ``waiting``): exactly one may."""
    waiting = list(waiting)
    found = [e for e in echoes if settled_by(e, waiting) == candidate.idempotency_key]
    return found[0] if len(found) == 1 else None


# What the Conversations API shows of a message, and so what a lookup can compare: its text, or a media
# attachment. A template, a sticker or a share may show as something else, or as nothing.
COMPARABLE = ("text:", "attachment:image", "attachment:video", "attachment:audio", "attachment:file")


def comparable(fingerprint_: str) -> bool:
    return fingerprint_.startswith(COMPARABLE[0]) or fingerprint_ in COMPARABLE[1:]


@dataclass(frozen=True)
class Lookup:
    """What a conversation says of an UNKNOWN message: the message that is it (``found``); or why it cannot
    tell (``undecided``); or, both None, that it never reached Instagram."""

    found: Echo | None = None
    undecided: str | None = None


def look_up(candidate: Unsettled, sent: Iterable[Echo], waiting: Iterable[Unsettled]) -> Lookup:
    """``candidate`` among ``sent``: every message the account sent in its conversation around the attempt,
    whose content Meta still gives and that is no other send's. ``waiting``: the conversation's UNKNOWN
    messages (``candidate`` among them). As for echoes, only a match that cannot be another message's
    counts; and absence counts only when every message sent during the attempt could be compared."""
    during = [e for e in sent if _during(e, candidate)]
    same = [e for e in during if e.fingerprint == candidate.fingerprint]
    if len(same) > 1:
        return Lookup(undecided=f"{len(same)} messages sent during its attempt have its content")
    if same:
        others = [
            u
            for u in waiting
            if u.idempotency_key != candidate.idempotency_key
            and u.fingerprint == candidate.fingerprint
            and _during(same[0], u)
        ]
        if others:
            return Lookup(undecided="another UNKNOWN message of the conversation has the same content and time")
        return Lookup(found=same[0])
    if during and not comparable(candidate.fingerprint):
        return Lookup(
            undecided=f"its content is of a kind Instagram's Conversations API may not show, and the account "
            f"sent {len(during)} message(s) during its attempt"
        )
    if any(not comparable(e.fingerprint) for e in during):
        return Lookup(undecided="a message sent during its attempt shows no text or media to compare")
    return Lookup()
