"""An event serialised once, as ASCII JSON under the queue's and the table's size limits."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from igdm.contracts.plain_event import PlainEvent

if TYPE_CHECKING:  # a text message's event is a PlainEvent: the webhook's path for it does without pydantic
    from igdm.contracts.events import InboundEvent
    from igdm.contracts.plain_event import Event

# Under SQS's 256 KiB message limit with room for attributes, and under DynamoDB's 400 KB item limit.
MAX_EVENT_BYTES = 200_000


class SerializedEvent(NamedTuple):
    """An event and its JSON, serialised once for both the queue and the table."""

    event: Event
    body: str

    @classmethod
    def of(cls, event: Event) -> SerializedEvent:
        body = event.to_json() if isinstance(event, PlainEvent) else _portable_json(event)
        if len(body) > MAX_EVENT_BYTES:
            shrunk = _shrunk(event.as_model() if isinstance(event, PlainEvent) else event)
            return cls(shrunk, _portable_json(shrunk))
        return cls(event, body)

    def stored(self) -> str:
        """The event as its item keeps it: without its fields at their defaults (igdm.contracts.stored_events)."""
        if isinstance(self.event, PlainEvent):
            return self.event.to_stored_json()
        return self.event.model_dump_json(ensure_ascii=True, exclude_defaults=True)


def _portable_json(event: InboundEvent) -> str:
    """ASCII JSON: SQS refuses some characters customers can type (U+FFFF), and every parser accepts escapes."""
    return event.model_dump_json(ensure_ascii=True)


def _shrunk(event: InboundEvent) -> InboundEvent:
    """Too big for the queue: drop raw first, then cut long text and attachment payloads, and if some
    other field is still huge, keep only the skeleton, whose size the id patterns bound."""
    smaller = event.model_copy(update={"raw": {}, "truncated": True})
    if len(_portable_json(smaller)) <= MAX_EVENT_BYTES:
        return smaller
    attachments = [
        a.model_copy(update={"payload": {}, "url": (a.url or "")[:2048] or None, "title": None})
        for a in event.attachments[:10]
    ]
    cut = smaller.model_copy(
        update={
            "text": (event.text or "")[:10_000] or None,
            "attachments": attachments,
            "optin": None,
            "referral": None,
            "error": (event.error or "")[:1000] or None,
        }
    )
    if len(_portable_json(cut)) <= MAX_EVENT_BYTES:
        return cut
    from igdm.contracts.events import InboundEvent

    skeleton = {name: getattr(event, name) for name in _SKELETON_FIELDS}
    return InboundEvent(**skeleton, raw={}, truncated=True, error="content too large for the queue")


# Ids, kind and times only: each id is at most 256 printable characters (meta_payload.ID_PATTERN).
_SKELETON_FIELDS = (
    "event_id",
    "kind",
    "account_id",
    "customer_id",
    "conversation_id",
    "direction",
    "source",
    "user_initiated",
    "occurred_at",
    "received_at",
    "message_id",
    "is_self",
    "content_deleted",
)
