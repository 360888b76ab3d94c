"""Ingestion, durable and idempotent: Meta's items, normalised, stored once and published once, in order.
The webhook ingests what Meta delivers; the reconciler what Instagram's Conversations API shows Meta never
delivered. Both give a message the same event id, so whichever comes second is a duplicate.

Ingestion order is what makes redelivery safe and loses nothing:
  1. one lookup of the events' keys: which events are already stored (an item exists only once its
     event was published), and which messages here were deleted earlier (a tombstone holds their key:
     their content is removed);
  2. for each chunk of 100 events: publish on the FIFO events queue (deduplication id = event id),
     then store them, so a late failure leaves the earlier chunks recorded;
  3. move each conversation's last user-initiated message time forward; remove deleted messages' content
     (scrub what is stored, a tombstone where the message's event is not stored yet).
Only then is the delivery acknowledged. A crash between publishing and storing a chunk leads Meta to
redeliver; the FIFO queue drops the repeat within its five-minute deduplication window. (Meta's
first retries come at once; were every retry for five minutes to fail too, the repeat would reach
the queue, which is why consumers also deduplicate on event_id.)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from igdm.contracts.event_kinds import CONTENT_KINDS, EventKind
from igdm.contracts.plain_event import PlainEvent, as_model
from igdm.contracts.serialized import SerializedEvent
from igdm.inbound.text_messages import Entries, deletion_event_id, message_event_id, normalize_entries

if TYPE_CHECKING:  # only the rarer events need the pydantic model: a text message's is a PlainEvent
    from igdm.contracts.events import InboundEvent
    from igdm.contracts.plain_event import Event

PUBLISH_CHUNK = 100  # events published, then stored (one transaction), before the next chunk


class StorageUnavailable(Exception):
    """DynamoDB or SQS did not take every event; Meta must retry (the caller answers 5xx)."""


# A NamedTuple, not a dataclass: its class is built several times faster, on the webhook's cold start.
class WindowUpdate(NamedTuple):
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
    def of(cls, event: Event) -> EventKey:
        return cls(event.account_id, event.customer_id, event.event_id)


class Found(NamedTuple):
    """What the store holds at some events' keys."""

    stored: frozenset[str] = frozenset()  # the ids of the events stored
    # The ids of message events not stored, whose message was deleted first: a tombstone holds their key.
    tombstoned: frozenset[str] = frozenset()


class EventStore(Protocol):
    def find(self, keys: Sequence[EventKey]) -> Found:
        """What is at ``keys``: stored events, and tombstones (strongly consistent)."""
        ...

    def save(self, events: Sequence[SerializedEvent]) -> None:
        """Store events not stored yet, in place of a tombstone if one holds the key; one stored by a concurrent
        delivery is left as it is."""
        ...

    def tombstone(self, key: EventKey, received_at: datetime) -> None:
        """Mark the key of a message's event, not stored yet, as its deleted message's: unless an item holds it
        already (the event, stored meanwhile, or the tombstone of an earlier delivery of the deletion)."""
        ...

    def advance_windows(self, windows: Sequence[WindowUpdate]) -> None:
        """Move each conversation's last user-initiated message forward, never back."""
        ...

    def content_events(self, account_id: str, customer_id: str, message_id: str) -> list[InboundEvent]:
        """Stored events that carry content of message ``message_id`` (to remove it)."""
        ...

    def overwrite(self, events: Sequence[SerializedEvent]) -> None: ...


class Receipts(Protocol):
    def apply(self, events: Iterable[Event]) -> int:
        """Echoes and reads of messages the gateway sent: their DELIVERED and READ statuses."""
        ...


class AfterIngest(Protocol):
    def apply(self, events: Iterable[Event], gateway_app_ids: frozenset[str] = frozenset()) -> int:
        """What some events change once durable (igdm.inbound.handovers, igdm.store.comments); each picks its
        own kinds. A failure answers 503, and Meta's retry applies it again: each must be idempotent."""
        ...


class EventPublisher(Protocol):
    def publish(self, events: Sequence[SerializedEvent]) -> list[SerializedEvent]:
        """Publish in order; return the events the queue accepted (the rest failed)."""
        ...


class IngestResult(NamedTuple):
    received: int
    published: int
    duplicates: int
    kinds: dict[str, int]
    stale: int = 0  # ignored: older than the table keeps events, so possibly a replay of a captured body
    secret_index: int | None = None
    accounts: frozenset[str] = frozenset()  # the accounts the events were for
    # How late Meta delivered each event published now: received_at - occurred_at, for the items that carry
    # Meta's own timestamp (messaging and standby; a comment's time is the notification's).
    lags_ms: tuple[int, ...] = ()


def ingest(
    envelope: Entries,
    received_at_ms: int,
    store: EventStore,
    publisher: EventPublisher,
    receipts: Receipts | None = None,
    gateway_app_ids: frozenset[str] = frozenset(),
    max_event_age_ms: int | None = None,
    after: Sequence[AfterIngest] = (),
) -> IngestResult:
    """Meta's webhook payload, normalised, then ingested."""
    return ingest_events(
        normalize_entries(envelope, received_at_ms),
        received_at_ms,
        store,
        publisher,
        receipts,
        gateway_app_ids=gateway_app_ids,
        max_event_age_ms=max_event_age_ms,
        after=after,
    )


def ingest_events(
    events: Sequence[Event],
    received_at_ms: int,
    store: EventStore,
    publisher: EventPublisher,
    receipts: Receipts | None = None,
    gateway_app_ids: frozenset[str] = frozenset(),
    max_event_age_ms: int | None = None,
    after: Sequence[AfterIngest] = (),
) -> IngestResult:
    """Events already normalised (the reconciler's, from the Conversations API): stored and published once."""
    events = _in_occurrence_order(_attributed(events, gateway_app_ids))
    received = len(events)
    stale = 0
    if max_event_age_ms is not None:
        # A signed body captured long ago is still signed: once its events' items have expired, it would pass
        # for new. Meta retries for a day or two, so an event this old can only be such a replay.
        cutoff = received_at_ms - max_event_age_ms
        events = [e for e in events if e.occurred_at.timestamp() * 1000 >= cutoff]
        stale = received - len(events)
    # One lookup answers both questions: which events are stored, and which messages were deleted
    # earlier (a message Meta redelivers after its deletion must not bring its content back). A deletion
    # leaves a tombstone at its message's event key, so the events' own keys tell; the rare event that
    # carries a message's content under another key (an edit) is asked the deletion's key as well.
    deletion_probes = _deletion_probes(events)
    found = store.find([EventKey.of(e) for e in events] + list(deletion_probes))
    deleted = {(k.account_id, mid) for k, mid in deletion_probes.items() if k.event_id in found.stored}
    deleted |= {(e.account_id, e.message_id) for e in events if e.event_id in found.tombstoned and e.message_id}
    events = _without_deleted_content(events, deleted)
    stored = {e.event_id for e in events} & found.stored
    fresh = [e for e in events if e.event_id not in stored]
    published: list[SerializedEvent] = []

    def durable() -> list[Event]:
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
        _remove_content(store, deletion)
    if receipts is not None:
        # Also for redelivered echoes and reads: a failure here answers 503, and Meta's retry finishes it.
        receipts.apply(e for e in durable() if e.kind in (EventKind.ECHO, EventKind.READ))
    for hook in after:
        # Redelivered events too (a tap whose pass was not queued yet): each hook is idempotent.
        hook.apply(durable(), gateway_app_ids)
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
        lags_ms=tuple(
            max(0, received_at_ms - int(s.event.occurred_at.timestamp() * 1000))
            for s in published
            if s.event.source in ("messaging", "standby")
        ),
    )


def _attributed(events: Sequence[Event], gateway_app_ids: frozenset[str]) -> list[Event]:
    """Echoes say whether the gateway sent them (igdm.meta.echoes): only those may settle its messages."""
    if not any(e.kind == EventKind.ECHO for e in events):
        return list(events)
    from igdm.meta.echoes import sent_by_gateway  # imported for echoes only: most requests carry none

    return [
        as_model(e).model_copy(update={"sent_by_gateway": sent_by_gateway(e.app_id, e.metadata, gateway_app_ids)})
        if e.kind == EventKind.ECHO
        else e
        for e in events
    ]


def without_content(event: Event) -> InboundEvent:
    """What remains of a message the customer deleted: ids and times, no text, media or raw content."""
    raw: dict[str, Any] = {k: event.raw[k] for k in ("sender", "recipient", "timestamp") if k in event.raw}
    if event.message_id:
        raw["message"] = {"mid": event.message_id, "is_deleted": True}
    return as_model(event).model_copy(
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


def _in_occurrence_order(events: Iterable[Event]) -> list[Event]:
    """One event per id, sorted by when it happened (stable, so same-time items keep Meta's order)."""
    unique: dict[str, Event] = {}
    for event in events:
        unique.setdefault(event.event_id, event)
    return sorted(unique.values(), key=lambda e: e.occurred_at)


def _deletion_probes(events: Iterable[Event]) -> dict[EventKey, str]:
    """For each event here with a message's content under a key that is not the message's own event's (an
    edit, an item not understood), the key the message's deletion event would have: message id by key. A
    message's own event needs none: a deletion that came first left a tombstone at its key. A PlainEvent is
    always its message's own event (igdm.inbound.text_messages), so its id is not hashed a second time."""
    return {
        EventKey(e.account_id, e.customer_id, deletion_event_id(e.account_id, e.message_id)): e.message_id
        for e in events
        if e.kind in CONTENT_KINDS
        and e.message_id
        and not isinstance(e, PlainEvent)
        and e.event_id != message_event_id(e.account_id, e.message_id)
    }


def _without_deleted_content(events: list[Event], deleted_before: set[tuple[str, str]]) -> list[Event]:
    deleted = deleted_before | {
        (e.account_id, e.message_id) for e in events if e.kind == EventKind.MESSAGE_DELETED and e.message_id
    }
    if not deleted:
        return events
    return [
        without_content(e) if e.kind in CONTENT_KINDS and (e.account_id, e.message_id) in deleted else e for e in events
    ]


def _window_updates(events: Iterable[Event]) -> list[WindowUpdate]:
    latest: dict[tuple[str, str], Event] = {}
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


def _remove_content(store: EventStore, deletion: Event) -> None:
    """The deleted message's stored events, scrubbed; and when its own event is not stored (yet), a tombstone at
    that event's key, so that the lookup of a later delivery of it (Meta's retry of an earlier POST, the
    reconciler) finds it deleted. Again for a redelivered deletion: a failure after it was stored is retried."""
    if not deletion.message_id:
        return
    found = (
        store.content_events(deletion.account_id, deletion.customer_id, deletion.message_id)
        if deletion.customer_id
        else []
    )
    scrubbed = [SerializedEvent.of(without_content(e)) for e in found if not e.content_deleted]
    if scrubbed:
        store.overwrite(scrubbed)
    message = EventKey(
        deletion.account_id, deletion.customer_id, message_event_id(deletion.account_id, deletion.message_id)
    )
    if message.event_id not in {e.event_id for e in found}:
        store.tombstone(message, deletion.received_at)
