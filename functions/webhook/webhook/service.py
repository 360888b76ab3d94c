"""The webhook's logic: handshake, verification, parsing, and durable idempotent ingestion.

Ingestion order is what makes redelivery safe and loses nothing:
  1. one lookup: which events are already stored (an item exists only once its event was
     published), and which messages here were deleted earlier (their content is removed);
  2. for each chunk of 100 events: publish on the FIFO events queue (deduplication id = event id),
     then store them, so a late failure leaves the earlier chunks recorded;
  3. move each conversation's last user-initiated message time forward; scrub deleted messages.
Only then does Meta get its 200. A crash between publishing and storing a chunk leads Meta to
redeliver; the FIFO queue drops the repeat within its five-minute deduplication window. (Meta's
first retries come at once; were every retry for five minutes to fail too, the repeat would reach
the queue, which is why consumers also deduplicate on event_id.)
"""

import contextlib
import hmac
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from pydantic import ValidationError

from igdm.contracts.events import CONTENT_KINDS, EventKind, InboundEvent
from igdm.contracts.serialized import SerializedEvent
from igdm.meta.echoes import sent_by_gateway
from igdm.runtime.unicode import without_lone_surrogates
from webhook.meta_payload import Envelope
from webhook.normalize import deletion_event_id, normalize
from webhook.signature import matching_secret

INSTAGRAM_OBJECT = "instagram"
PUBLISH_CHUNK = 100  # events published, then stored (one transaction), before the next chunk
_CHALLENGE = re.compile(r"[A-Za-z0-9]{1,64}")


class Rejected(Exception):
    """A request refused at the edge with a 4xx and a reason; nothing was stored."""

    def __init__(self, status: int, reason: str, metric: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.metric = metric


class StorageUnavailable(Exception):
    """DynamoDB or SQS did not take every event; Meta must retry (the caller answers 5xx)."""


MAX_NESTING = 64
_ESCAPED_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")


def _nesting_depth(document: Any) -> int:
    """How deep the parsed body goes, walked with a stack of our own (no recursion to run out of)."""
    deepest, pending = 0, [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict):
            value = value.values()
        elif not isinstance(value, list):
            continue
        deepest = max(deepest, depth)
        pending.extend((child, depth + 1) for child in value if isinstance(child, dict | list))
    return deepest


@dataclass(frozen=True)
class WindowUpdate:
    """The latest user-initiated message of a conversation seen in one request."""

    account_id: str
    customer_id: str
    occurred_at: datetime
    message_id: str | None
    kind: str


class EventKey(NamedTuple):
    """Where an event's item lives: its conversation and its deterministic id."""

    account_id: str
    customer_id: str | None
    event_id: str

    @classmethod
    def of(cls, event: InboundEvent) -> "EventKey":
        return cls(event.account_id, event.customer_id, event.event_id)


class EventStore(Protocol):
    def stored_ids(self, keys: Sequence[EventKey]) -> set[str]:
        """The event ids among ``keys`` that have an item (strongly consistent)."""
        ...

    def save(self, events: Sequence[SerializedEvent]) -> None:
        """Store events not stored yet; one stored by a concurrent delivery is left as it is."""
        ...

    def advance_windows(self, windows: Sequence[WindowUpdate]) -> None:
        """Move each conversation's last user-initiated message forward, never back."""
        ...

    def content_events(self, account_id: str, customer_id: str, message_id: str) -> list[InboundEvent]:
        """Stored events that carry content of message ``message_id`` (to remove it)."""
        ...

    def overwrite(self, events: Sequence[SerializedEvent]) -> None: ...


class AppSecretView(Protocol):
    app_secrets: list[str]
    verify_token: str | None

    @property
    def app_ids(self) -> frozenset[str]:
        """The gateway's app ids, as Meta names the sending app on echoes."""
        ...


class SecretSource(Protocol):
    def current(self) -> AppSecretView: ...

    def refreshed(self) -> AppSecretView | None:
        """A freshly fetched secret (after a rotation), or None when refetching is not allowed yet."""
        ...


class Receipts(Protocol):
    def apply(self, events: Iterable[InboundEvent]) -> int:
        """Echoes and reads of messages the gateway sent: their DELIVERED and READ statuses."""
        ...


class EventPublisher(Protocol):
    def publish(self, events: Sequence[SerializedEvent]) -> list[SerializedEvent]:
        """Publish in order; return the events the queue accepted (the rest failed)."""
        ...


@dataclass(frozen=True)
class IngestResult:
    received: int
    published: int
    duplicates: int
    kinds: dict[str, int]
    stale: int = 0  # ignored: older than the table keeps events, so possibly a replay of a captured body
    secret_index: int | None = None
    accounts: frozenset[str] = frozenset()  # the accounts the events were for


def handshake(params: dict[str, str], verify_token: str | None) -> str:
    """Meta's subscription check: the challenge to echo, or Rejected(403)."""
    mode = params.get("hub.mode")
    token = params.get("hub.verify_token", "")
    challenge = params.get("hub.challenge", "")
    if mode != "subscribe":
        raise Rejected(403, "hub.mode must be subscribe", "HandshakeRejected")
    if not verify_token:
        raise Rejected(403, "no verify token is configured in the app secret", "HandshakeRejected")
    if not hmac.compare_digest(token.encode(), verify_token.encode()):
        raise Rejected(403, "verify token does not match", "HandshakeRejected")
    if not _CHALLENGE.fullmatch(challenge):
        raise Rejected(403, "hub.challenge must be 1-64 letters or digits", "HandshakeRejected")
    return challenge


class Verified(NamedTuple):
    envelope: Envelope
    secret_index: int  # which configured app secret signed it: tells which one Meta uses


def verify_and_parse(body: bytes, signature: str | None, secrets: Sequence[str], max_bytes: int) -> Verified:
    """Size, then signature over the raw bytes, then JSON and the envelope; Rejected on any failure."""
    secret_index = _verified(body, signature, secrets, max_bytes)
    document = _document(body)
    if document.get("object") != INSTAGRAM_OBJECT:
        raise Rejected(400, f"object must be 'instagram', got {document.get('object')!r}", "WrongObject")
    try:
        return Verified(Envelope.model_validate(document), secret_index)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise Rejected(400, f"envelope invalid at {where}: {first['msg']}", "MalformedBody") from None


def _verified(body: bytes, signature: str | None, secrets: Sequence[str], max_bytes: int) -> int:
    """Which app secret signed ``body``: nothing of the body is read before this says it is Meta's."""
    if len(body) > max_bytes:
        raise Rejected(413, f"body is {len(body)} bytes; the limit is {max_bytes}", "BodyTooLarge")
    if not signature:
        raise Rejected(401, "missing X-Hub-Signature-256 header", "SignatureRejected")
    if not secrets:
        raise Rejected(401, "no app secret is configured in the app secret", "AppSecretMissing")
    secret_index = matching_secret(body, signature, secrets)
    if secret_index is None:
        raise Rejected(401, "X-Hub-Signature-256 does not match the body", "SignatureRejected")
    return secret_index


def _document(body: bytes) -> dict[str, Any]:
    """The signed body as a JSON object, no deeper than MAX_NESTING, without lone surrogates."""
    if not body.strip():
        raise Rejected(400, "empty body", "MalformedBody")
    try:
        # Decoded strictly as UTF-8 first: json.loads(bytes) would also take UTF-16 and encoded surrogates.
        document = json.loads(body.decode("utf-8"), parse_constant=_reject_constant, parse_float=_finite_float)
    except ValueError as exc:
        raise Rejected(400, f"body is not valid JSON: {exc}", "MalformedBody") from None
    except RecursionError:
        raise Rejected(400, "body is nested too deeply", "MalformedBody") from None
    if not isinstance(document, dict):
        raise Rejected(400, "body must be a JSON object", "MalformedBody")
    depth = _nesting_depth(document)
    if depth > MAX_NESTING:
        # Meta's bodies are a dozen levels deep. Far deeper, the recursive steps after this one (serialising
        # the raw payload, replacing lone surrogates) would fail with a 500, and Meta would retry it forever.
        raise Rejected(400, f"body is nested {depth} levels deep; the limit is {MAX_NESTING}", "MalformedBody")
    if _ESCAPED_SURROGATE.search(body):  # emoji arrive as escaped surrogate pairs; a cut one leaves half
        cleaned: dict[str, Any] = without_lone_surrogates(document)
        return cleaned
    return document


def receive(
    body: bytes,
    signature: str | None,
    received_at_ms: int,
    secrets: SecretSource,
    max_body_bytes: int,
    store: EventStore,
    publisher: EventPublisher,
    receipts: Receipts | None = None,
    max_event_age_ms: int | None = None,
) -> IngestResult:
    """A webhook POST: verified against the app secrets (refetched once if they may have rotated)."""
    secret = secrets.current()
    try:
        verified = verify_and_parse(body, signature, secret.app_secrets, max_body_bytes)
    except Rejected as rejected:
        may_have_rotated = rejected.metric in ("SignatureRejected", "AppSecretMissing") and signature
        try:
            fresh = secrets.refreshed() if may_have_rotated else None
        except Exception:
            fresh = None  # a failed refetch must not turn a forged request's 401 into a 5xx
        if fresh is None:
            raise rejected from None
        secret = fresh
        verified = verify_and_parse(body, signature, secret.app_secrets, max_body_bytes)
    result = ingest(
        verified.envelope,
        received_at_ms,
        store,
        publisher,
        receipts,
        gateway_app_ids=secret.app_ids,
        max_event_age_ms=max_event_age_ms,
    )
    return replace(result, secret_index=verified.secret_index)


def _reject_constant(name: str) -> None:
    # Python accepts NaN and Infinity; JSON (and Meta) do not.
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is not a finite number")
    return value


def ingest(
    envelope: Envelope,
    received_at_ms: int,
    store: EventStore,
    publisher: EventPublisher,
    receipts: Receipts | None = None,
    gateway_app_ids: frozenset[str] = frozenset(),
    max_event_age_ms: int | None = None,
) -> IngestResult:
    events = _in_occurrence_order(_attributed(normalize(envelope, received_at_ms), gateway_app_ids))
    received = len(events)
    stale = 0
    if max_event_age_ms is not None:
        # A signed body captured long ago is still signed: once its events' items have expired, it would pass
        # for new. Meta retries for a day or two, so an event this old can only be such a replay.
        cutoff = received_at_ms - max_event_age_ms
        events = [e for e in events if e.occurred_at.timestamp() * 1000 >= cutoff]
        stale = received - len(events)
    # One lookup answers both questions: which events are stored, and which messages were deleted
    # earlier (a message Meta redelivers after its deletion must not bring its content back).
    deletion_probes = _deletion_probes(events)
    found = store.stored_ids([EventKey.of(e) for e in events] + list(deletion_probes))
    deleted = {(k.account_id, mid) for k, mid in deletion_probes.items() if k.event_id in found}
    events = _without_deleted_content(events, deleted)
    stored = {e.event_id for e in events} & found
    fresh = [e for e in events if e.event_id not in stored]
    published: list[SerializedEvent] = []

    def durable() -> list[InboundEvent]:
        durable_ids = stored | {s.event.event_id for s in published}
        return [e for e in events if e.event_id in durable_ids]

    try:
        # Publish then store, chunk by chunk: a late failure leaves the earlier chunks recorded, so
        # Meta's retry does not publish them again.
        for start in range(0, len(fresh), PUBLISH_CHUNK):
            chunk = [SerializedEvent.of(e) for e in fresh[start : start + PUBLISH_CHUNK]]
            accepted = publisher.publish(chunk)
            store.save(accepted)
            published.extend(accepted)
            if len(accepted) < len(chunk):
                raise StorageUnavailable(f"{len(fresh) - len(published)} of {len(fresh)} events were not published")
    except BaseException:
        # Conversations whose events did get through still move their window on; the original error
        # is what the caller must see, whatever happens here.
        with contextlib.suppress(Exception):
            store.advance_windows(_window_updates(durable()))
        raise
    store.advance_windows(_window_updates(durable()))
    for deletion in (e for e in durable() if e.kind == EventKind.MESSAGE_DELETED):
        _remove_stored_content(store, deletion)
    if receipts is not None:
        # Also for redelivered echoes and reads: a failure here answers 503, and Meta's retry finishes it.
        receipts.apply(e for e in durable() if e.kind in (EventKind.ECHO, EventKind.READ))
    kinds: dict[str, int] = {}
    for event in events:
        kinds[event.kind.value] = kinds.get(event.kind.value, 0) + 1
    return IngestResult(
        received=received,
        published=len(published),
        duplicates=len(stored),
        kinds=kinds,
        accounts=frozenset(e.account_id for e in events),
        stale=stale,
    )


def _attributed(events: list[InboundEvent], gateway_app_ids: frozenset[str]) -> list[InboundEvent]:
    """Echoes say whether the gateway sent them (igdm.meta.echoes): only those may settle its messages."""
    return [
        e.model_copy(update={"sent_by_gateway": sent_by_gateway(e.app_id, e.metadata, gateway_app_ids)})
        if e.kind == EventKind.ECHO
        else e
        for e in events
    ]


def without_content(event: InboundEvent) -> InboundEvent:
    """What remains of a message the customer deleted: ids and times, no text, media or raw content."""
    raw: dict[str, Any] = {k: event.raw[k] for k in ("sender", "recipient", "timestamp") if k in event.raw}
    if event.message_id:
        raw["message"] = {"mid": event.message_id, "is_deleted": True}
    return event.model_copy(
        update={
            "text": None,
            "attachments": [],
            "reply_to": None,
            "quick_reply_payload": None,
            "referral": None,
            "raw": raw,
            "content_deleted": True,
        }
    )


def _in_occurrence_order(events: Iterable[InboundEvent]) -> list[InboundEvent]:
    """One event per id, sorted by when it happened (stable, so same-time items keep Meta's order)."""
    unique: dict[str, InboundEvent] = {}
    for event in events:
        unique.setdefault(event.event_id, event)
    return sorted(unique.values(), key=lambda e: e.occurred_at)


def _deletion_probes(events: Iterable[InboundEvent]) -> dict[EventKey, str]:
    """For each message with content here, the key its deletion event would have: message id by key."""
    return {
        EventKey(e.account_id, e.customer_id, deletion_event_id(e.account_id, e.message_id)): e.message_id
        for e in events
        if e.kind in CONTENT_KINDS and e.message_id
    }


def _without_deleted_content(events: list[InboundEvent], deleted_before: set[tuple[str, str]]) -> list[InboundEvent]:
    deleted = deleted_before | {
        (e.account_id, e.message_id) for e in events if e.kind == EventKind.MESSAGE_DELETED and e.message_id
    }
    if not deleted:
        return events
    return [
        without_content(e) if e.kind in CONTENT_KINDS and (e.account_id, e.message_id) in deleted else e for e in events
    ]


def _window_updates(events: Iterable[InboundEvent]) -> list[WindowUpdate]:
    latest: dict[tuple[str, str], InboundEvent] = {}
    for event in events:
        if event.user_initiated and event.customer_id:
            key = (event.account_id, event.customer_id)
            if key not in latest or event.occurred_at > latest[key].occurred_at:
                latest[key] = event
    return [
        WindowUpdate(e.account_id, e.customer_id, e.occurred_at, e.message_id, e.kind.value)
        for e in latest.values()
        if e.customer_id
    ]


def _remove_stored_content(store: EventStore, deletion: InboundEvent) -> None:
    if not deletion.customer_id or not deletion.message_id:
        return
    found = store.content_events(deletion.account_id, deletion.customer_id, deletion.message_id)
    scrubbed = [SerializedEvent.of(without_content(e)) for e in found if not e.content_deleted]
    if scrubbed:
        store.overwrite(scrubbed)
