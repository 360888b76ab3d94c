"""A signed webhook's items, normalised without pydantic where they have the shape of a customer's text message
(most of what Meta sends), and by igdm.inbound.normalize, imported then, where they do not.

The shape is exact: an item {"sender": {"id"}, "recipient": {"id"}, "timestamp", "message": {"mid", "text"}}
with ids igdm.inbound.normalize would take, an integer timestamp it would take, and a string text, no key more
or less. Such an item gives the same event igdm.inbound.normalize gives it, as a PlainEvent. Any other item is
handed to igdm.inbound.normalize, and so is an entry without a usable id or with changes (its items all). The
order of the events is normalize's. tests/unit/layer/test_text_messages.py holds the two paths equal.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from igdm.contracts.event_kinds import EventKind
from igdm.contracts.plain_event import PlainEvent
from igdm.inbound.meta_values import ID_PATTERN, MAX_EPOCH_MS, as_epoch_ms, as_list

if TYPE_CHECKING:
    from igdm.contracts.plain_event import Event
    from igdm.inbound.meta_payload import Entry

_VALID_ID = re.compile(ID_PATTERN)
_ITEM_KEYS = frozenset({"sender", "recipient", "timestamp", "message"})
_MESSAGE_KEYS = frozenset({"mid", "text"})
_PARTY_KEYS = frozenset({"id"})
_ITEM_LISTS = ("messaging", "standby")


class Entries(Protocol):
    """A webhook body's entries: igdm.inbound.meta_payload's Envelope, or the webhook's SignedBody."""

    @property
    def entry(self) -> list[Any]: ...


class SignedBody(NamedTuple):
    """A verified webhook body as the webhook reads it without pydantic (Envelope's fields)."""

    object: str
    entry: list[Any]


def event_id(account_id: str, natural_key: str) -> str:
    """Stable across Meta's redeliveries; distinct natural keys give distinct ids."""
    return hashlib.sha256(f"{account_id}|{natural_key}".encode()).hexdigest()[:32]


def message_key(message_id: str) -> str:
    return f"message|{message_id}"


def deletion_key(message_id: str) -> str:
    return f"message_deleted|{message_id}"


def message_event_id(account_id: str, message_id: str) -> str:
    """The id of the event a message is (whatever its kind: text, echo, ...), known before it arrives."""
    return event_id(account_id, message_key(message_id))


def deletion_event_id(account_id: str, message_id: str) -> str:
    """The id the deletion of ``message_id`` has or will have, known before it arrives."""
    return event_id(account_id, deletion_key(message_id))


def normalize_entries(body: Entries, received_at_ms: int) -> list[Event]:
    """Every entry's items as events, in igdm.inbound.normalize.normalize's order: text messages as PlainEvents,
    the rest as that function makes them."""
    received_at = utc(received_at_ms)
    events: list[Event] = []
    for raw_entry in body.entry:
        account_id = _entry_account(raw_entry)
        if account_id is None or _has_more_than_items(raw_entry):
            events.extend(_normalized_elsewhere(raw_entry, received_at))
            continue
        pydantic_entry: Entry | None = None
        for source in _ITEM_LISTS:
            for item in as_list(raw_entry.get(source)):
                text = text_event(account_id, item, source, received_at)
                if text is not None:
                    events.append(text)
                    continue
                if pydantic_entry is None:
                    pydantic_entry = _pydantic_entry(raw_entry)
                events.append(_normalized_item(pydantic_entry, item, source, received_at))
    return events


def text_event(account_id: str, item: Any, source: str, received_at: datetime) -> PlainEvent | None:
    """The event of a customer's (or the account's) text message, or None when ``item`` is anything else."""
    if type(item) is not dict or item.keys() != _ITEM_KEYS:
        return None
    sender, recipient, message = _party(item["sender"]), _party(item["recipient"]), item["message"]
    if sender is None or recipient is None or type(message) is not dict or message.keys() != _MESSAGE_KEYS:
        return None
    mid, text = _id(message["mid"]), message["text"]
    timestamp = _epoch_ms(item["timestamp"])
    if mid is None or type(text) is not str or timestamp is None or source not in _ITEM_LISTS:
        return None
    # As igdm.inbound.normalize tells the direction: the side that is the account (no echo, no self-message).
    outbound = recipient != account_id and sender == account_id
    customer = recipient if outbound else sender
    return PlainEvent(
        event_id=event_id(account_id, message_key(mid)),
        kind=EventKind.TEXT,
        account_id=account_id,
        customer_id=customer,
        conversation_id=f"{account_id}:{customer}",
        direction="outbound" if outbound else "inbound",
        source="messaging" if source == "messaging" else "standby",
        user_initiated=not outbound,
        occurred_at=utc(timestamp),
        received_at=received_at,
        message_id=mid,
        text=text,
        raw=item,
    )


def utc(epoch_ms: int) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)


def _entry_account(raw_entry: Any) -> str | None:
    return _id(raw_entry.get("id")) if type(raw_entry) is dict else None


def _has_more_than_items(raw_entry: dict[str, Any]) -> bool:
    """Changes, and Instagram Login's field/value on the entry: igdm.inbound.normalize reads those."""
    return bool(as_list(raw_entry.get("changes"))) or raw_entry.get("field") is not None


def _party(value: Any) -> str | None:
    return _id(value["id"]) if type(value) is dict and value.keys() == _PARTY_KEYS else None


def _id(value: Any) -> str | None:
    """An id as meta_payload's MetaId takes it: a string of printable ASCII, or an integer (never a bool)."""
    if type(value) is int:
        value = str(value)
    return value if type(value) is str and _VALID_ID.fullmatch(value) else None


def _epoch_ms(value: Any) -> int | None:
    """An integer timestamp as meta_payload's EpochMillis reads it; None for anything else (a string, a float,
    out of range), which igdm.inbound.normalize then reads or refuses."""
    if type(value) is not int:
        return None
    converted = as_epoch_ms(value)
    return converted if type(converted) is int and 0 <= converted <= MAX_EPOCH_MS else None


def _pydantic_entry(raw_entry: dict[str, Any]) -> Entry:
    from igdm.inbound.meta_payload import Entry

    return Entry.model_validate(raw_entry)


def _normalized_item(entry: Entry, item: Any, source: str, received_at: datetime) -> Event:
    from igdm.inbound.normalize import normalize_item

    return normalize_item(entry, item, "messaging" if source == "messaging" else "standby", received_at)


def _normalized_elsewhere(raw_entry: Any, received_at: datetime) -> list[Event]:
    from igdm.inbound.normalize import normalize_entry

    return list(normalize_entry(raw_entry, received_at))
