"""Pydantic models of what Meta really sends on the Instagram webhook, tolerant by design.

Unknown fields are kept, ids arrive as strings or JSON numbers (some exceed 2^53), and `time` /
`timestamp` come in milliseconds, seconds, or as numeric strings (the App Dashboard's test payload).
Items are validated one at a time by the normaliser, so one odd item never rejects its batch.
"""

import math
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator


def _as_id(value: Any) -> Any:
    # bool is an int subclass; an id of `true` is not an id.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


# Meta's ids are digits, and mids base64-like text: printable ASCII. Anything else in an id field is
# not an id, and must not reach a table key or a queue's message group id.
ID_PATTERN = r"^[!-~]{1,256}$"


_SECONDS_CEILING = 100_000_000_000  # below this an epoch value is seconds (year 5138 in seconds)
_MILLIS_CEILING = 100_000_000_000_000  # above this it is microseconds
MAX_EPOCH_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the last instant a datetime can hold


def _as_epoch_ms(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("a boolean is not a timestamp")  # pydantic would take true as 1
    if isinstance(value, str):
        text = value.strip()
        try:
            value = float(text) if "." in text or "e" in text.lower() else int(text)
        except ValueError:
            return value
    if isinstance(value, float) and not math.isfinite(value):
        return None if value != value else -1  # NaN / infinities: let the range check reject them
    if isinstance(value, (int, float)):
        try:
            if value < _SECONDS_CEILING:
                value = value * 1000
            elif value >= _MILLIS_CEILING:
                value = value / 1000
            return int(value)
        except OverflowError:  # -1e306 * 1000 is -inf, 10**400 / 1000 no float: far out of range either way
            return -1
    return value


def _as_epoch_ms_or_none(value: Any) -> int | None:
    """entry.time is only a fallback: an unusable one is dropped, never a reason to refuse the batch."""
    try:
        converted = _as_epoch_ms(value)
    except (ValueError, OverflowError):
        return None
    if isinstance(converted, int) and not isinstance(converted, bool) and 0 <= converted <= MAX_EPOCH_MS:
        return converted
    return None


MetaId = Annotated[str, BeforeValidator(_as_id), Field(pattern=ID_PATTERN)]
EpochMillis = Annotated[int, BeforeValidator(_as_epoch_ms), Field(ge=0, le=MAX_EPOCH_MS)]
LenientEpochMillis = Annotated[int | None, BeforeValidator(_as_epoch_ms_or_none)]


class _Tolerant(BaseModel):
    model_config = ConfigDict(extra="allow")


def _as_list(value: Any) -> list[Any]:
    """null is no items, and a lone object one item: neither is a reason to refuse a signed batch."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


class Entry(_Tolerant):
    id: MetaId
    time: LenientEpochMillis = None
    messaging: list[Any] = Field(default_factory=list)
    standby: list[Any] = Field(default_factory=list)
    changes: list[Any] = Field(default_factory=list)
    # Instagram Login's docs print comment notifications with field/value straight on the entry.
    field: Any = None
    value: Any = None

    _lists = field_validator("messaging", "standby", "changes", mode="before")(_as_list)


class Envelope(_Tolerant):
    object: str
    # Each entry is validated on its own by the normaliser, so one odd entry never rejects the others.
    entry: list[Any]

    _entries = field_validator("entry", mode="before")(_as_list)


class Party(_Tolerant):
    id: MetaId


class AttachmentPart(_Tolerant):
    type: str = "unknown"
    payload: dict[str, Any] | None = None


class StoryPart(_Tolerant):
    id: MetaId | None = None
    url: str | None = None


class ReplyToPart(_Tolerant):
    mid: MetaId | None = None
    story: StoryPart | None = None


class QuickReplyPart(_Tolerant):
    payload: str | None = None


class MessagePart(_Tolerant):
    mid: MetaId
    text: str | None = None
    attachments: list[AttachmentPart] = Field(default_factory=list)
    quick_reply: QuickReplyPart | None = None
    reply_to: ReplyToPart | None = None
    referral: dict[str, Any] | None = None
    is_echo: bool = False
    is_deleted: bool = False
    is_unsupported: bool = False
    is_self: bool = False
    app_id: MetaId | None = None
    metadata: str | None = None


class EditPart(_Tolerant):
    mid: MetaId
    text: str | None = None
    num_edit: int | None = None


class ReactionPart(_Tolerant):
    mid: MetaId
    action: str
    reaction: str | None = None
    emoji: str | None = None


class PostbackPart(_Tolerant):
    mid: MetaId | None = None
    title: str | None = None
    payload: str | None = None


class ReadPart(_Tolerant):
    mid: MetaId | None = None


class MessagingItem(_Tolerant):
    sender: Party | None = None
    recipient: Party | None = None
    timestamp: EpochMillis | None = None
    message: MessagePart | None = None
    message_edit: EditPart | None = None
    reaction: ReactionPart | None = None
    postback: PostbackPart | None = None
    read: ReadPart | None = None
    referral: dict[str, Any] | None = None
    optin: dict[str, Any] | None = None


HANDOVER_KEYS = ("pass_thread_control", "take_thread_control", "request_thread_control", "app_roles")


class CommentFrom(_Tolerant):
    id: MetaId | None = None
    username: str | None = None


class CommentMedia(_Tolerant):
    id: MetaId | None = None
    media_product_type: str | None = None


class CommentValue(_Tolerant):
    id: MetaId | None = None
    comment_id: MetaId | None = None
    parent_id: MetaId | None = None
    text: str | None = None
    from_: CommentFrom | None = Field(None, alias="from")
    media: CommentMedia | None = None


class MentionValue(_Tolerant):
    media_id: MetaId | None = None
    comment_id: MetaId | None = None


class Change(_Tolerant):
    field: str
    value: Any = None
