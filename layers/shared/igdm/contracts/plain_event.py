"""The event of a customer's text message, built and serialised without pydantic: what the webhook publishes
most, on the path Meta waits on (a cold start that imports pydantic pays about a third more).

PlainEvent has InboundEvent's fields under the same names; those a text message never carries read as their
defaults. Its JSON is byte for byte InboundEvent.model_dump_json(ensure_ascii=True) of the same event (the
same keys in the same order, no spaces, the same times), which tests/unit/layer/test_plain_events.py holds
against the pydantic model for many payloads. InboundEvent stays the contract's definition (the JSON Schema
is generated from it); as_model() gives it for the rare step that needs it.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from igdm.contracts.event_kinds import SCHEMA_VERSION, EventKind

if TYPE_CHECKING:
    from igdm.contracts.events import (
        AccountStatus,
        Attachment,
        Comment,
        Erasure,
        Handover,
        InboundEvent,
        Mention,
        MessageStatus,
        Postback,
        Reaction,
        Referral,
        ReplyTo,
    )

# json.dumps's own C encoder of a string as ASCII JSON, called directly: json.dumps with options builds an
# encoder object per call.
_ascii_string = json.encoder.encode_basestring_ascii
_ascii_json = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), allow_nan=False).encode
_DELETE = "\x7f"
_ESCAPED_DELETE = "\\u007f"


# A NamedTuple, not a dataclass: its class is built several times faster, on the webhook's cold start.
class PlainEvent(NamedTuple):
    """An InboundEvent whose content is at most a text. ``raw`` holds only strings, integers and objects of
    them: the only values whose JSON the standard library writes exactly as pydantic does (floats differ)."""

    event_id: str
    kind: EventKind
    account_id: str
    customer_id: str | None
    conversation_id: str
    direction: Literal["inbound", "outbound"]
    source: Literal["messaging", "standby", "changes", "gateway", "backfill"]
    user_initiated: bool
    occurred_at: datetime
    received_at: datetime
    message_id: str | None
    text: str | None
    raw: dict[str, Any]

    # InboundEvent's other fields, as a text message has them.
    @property
    def schema_version(self) -> Literal["1"]:
        return SCHEMA_VERSION

    @property
    def attachments(self) -> list[Attachment]:
        return []

    @property
    def reply_to(self) -> ReplyTo | None:
        return None

    @property
    def quick_reply_payload(self) -> str | None:
        return None

    @property
    def postback(self) -> Postback | None:
        return None

    @property
    def reaction(self) -> Reaction | None:
        return None

    @property
    def referral(self) -> Referral | None:
        return None

    @property
    def edit_count(self) -> int | None:
        return None

    @property
    def optin(self) -> dict[str, Any] | None:
        return None

    @property
    def handover(self) -> Handover | None:
        return None

    @property
    def comment(self) -> Comment | None:
        return None

    @property
    def mention(self) -> Mention | None:
        return None

    @property
    def is_self(self) -> bool:
        return False

    @property
    def app_id(self) -> str | None:
        return None

    @property
    def metadata(self) -> str | None:
        return None

    @property
    def sent_by_gateway(self) -> bool | None:
        return None

    @property
    def content_deleted(self) -> bool:
        return False

    @property
    def truncated(self) -> bool:
        return False

    @property
    def error(self) -> str | None:
        return None

    @property
    def status(self) -> MessageStatus | None:
        return None

    @property
    def account(self) -> AccountStatus | None:
        return None

    @property
    def erasure(self) -> Erasure | None:
        return None

    def to_json(self) -> str:
        """The event as InboundEvent.model_dump_json(ensure_ascii=True) writes it."""
        return self._json(_DEFAULT_FIELDS)

    def to_stored_json(self) -> str:
        """The event as its item keeps it (igdm.contracts.stored_events): without the fields a text message never
        carries, all at their defaults; as InboundEvent.model_dump_json(ensure_ascii=True, exclude_defaults=True)
        would give it but for the fields before ``text``, written whatever their value."""
        return self._json(_RAW_FIELD)

    def _json(self, defaults: str) -> str:
        return "".join(
            (
                '{"schema_version":',
                _string(self.schema_version),
                ',"event_id":',
                _string(self.event_id),
                ',"kind":',
                _string(self.kind.value),
                ',"account_id":',
                _string(self.account_id),
                ',"customer_id":',
                _optional(self.customer_id),
                ',"conversation_id":',
                _string(self.conversation_id),
                ',"direction":',
                _string(self.direction),
                ',"source":',
                _string(self.source),
                ',"user_initiated":',
                "true" if self.user_initiated else "false",
                ',"occurred_at":"',
                _utc_time(self.occurred_at),
                '","received_at":"',
                _utc_time(self.received_at),
                '","message_id":',
                _optional(self.message_id),
                ',"text":',
                _optional(self.text),
                defaults,
                _raw_json(self.raw),
                "}",
            )
        )

    def as_model(self) -> InboundEvent:
        from igdm.contracts.events import InboundEvent

        return InboundEvent(
            event_id=self.event_id,
            kind=self.kind,
            account_id=self.account_id,
            customer_id=self.customer_id,
            conversation_id=self.conversation_id,
            direction=self.direction,
            source=self.source,
            user_initiated=self.user_initiated,
            occurred_at=self.occurred_at,
            received_at=self.received_at,
            message_id=self.message_id,
            text=self.text,
            raw=self.raw,
        )


# The JSON of the fields between text and raw, all at their defaults, in InboundEvent's order.
_DEFAULT_FIELDS = (
    ',"attachments":[],"reply_to":null,"quick_reply_payload":null,"postback":null,"reaction":null,'
    '"referral":null,"edit_count":null,"optin":null,"handover":null,"comment":null,"mention":null,'
    '"is_self":false,"app_id":null,"metadata":null,"sent_by_gateway":null,"content_deleted":false,'
    '"truncated":false,"error":null,"status":null,"account":null,"erasure":null,"raw":'
)
_RAW_FIELD = ',"raw":'  # in the stored form, text is followed by raw: the fields between are at their defaults


def _string(text: str) -> str:
    """A string as pydantic writes it with ensure_ascii: as the standard library does, except for DEL, which
    pydantic leaves as it is (it is ASCII) where the standard library escapes it."""
    if _DELETE not in text:
        return _ascii_string(text)
    return '"' + _DELETE.join(_ascii_string(part)[1:-1] for part in text.split(_DELETE)) + '"'


def _raw_json(raw: dict[str, Any]) -> str:
    """``raw`` written by the standard library's C encoder, unless DEL may be in it (the encoder escapes it)."""
    written: str = _ascii_json(raw)
    return written if _ESCAPED_DELETE not in written else _json(raw)


def _json(value: Any) -> str:
    """``raw`` as pydantic writes it: objects, strings, integers, booleans and null; any other value (a float,
    which the two write differently) is refused, and the text path never gives one."""
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(int(value))
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "{" + ",".join(_string(k) + ":" + _json(v) for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_json(v) for v in value) + "]"
    raise TypeError(f"a plain event's raw holds no {type(value).__name__}")


def _optional(value: str | None) -> str:
    return "null" if value is None else _string(value)


def _utc_time(moment: datetime) -> str:
    """A UTC time as pydantic writes it: microseconds only when there are some, and Z for +00:00."""
    return moment.isoformat().removesuffix("+00:00") + "Z"


def as_model(event: Event) -> InboundEvent:
    """The pydantic form of either form of an event (for the rare step that copies or validates one)."""
    return event.as_model() if isinstance(event, PlainEvent) else event


if TYPE_CHECKING:
    # Either form of an event, for the steps of ingestion that take both (a type alias only mypy reads).
    type Event = InboundEvent | PlainEvent
