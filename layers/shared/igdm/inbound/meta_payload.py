"""Pydantic models of what Meta really sends on the Instagram webhook, tolerant by design.

Unknown fields are kept, ids arrive as strings or JSON numbers (some exceed 2^53), and `time` /
`timestamp` come in milliseconds, seconds, or as numeric strings (the App Dashboard's test payload).
Items are validated one at a time by the normaliser, so one odd item never rejects its batch.
"""

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from igdm.inbound.meta_values import HANDOVER_KEYS as HANDOVER_KEYS
from igdm.inbound.meta_values import ID_PATTERN as ID_PATTERN
from igdm.inbound.meta_values import MAX_EPOCH_MS as MAX_EPOCH_MS
from igdm.inbound.meta_values import as_epoch_ms, as_epoch_ms_or_none, as_id, as_list

MetaId = Annotated[str, BeforeValidator(as_id), Field(pattern=ID_PATTERN)]
EpochMillis = Annotated[int, BeforeValidator(as_epoch_ms), Field(ge=0, le=MAX_EPOCH_MS)]
LenientEpochMillis = Annotated[int | None, BeforeValidator(as_epoch_ms_or_none)]


class _Tolerant(BaseModel):
    model_config = ConfigDict(extra="allow")


class Entry(_Tolerant):
    id: MetaId
    time: LenientEpochMillis = None
    messaging: list[Any] = Field(default_factory=list)
    standby: list[Any] = Field(default_factory=list)
    changes: list[Any] = Field(default_factory=list)
    # Instagram Login's docs print comment notifications with field/value straight on the entry.
    field: Any = None
    value: Any = None

    _lists = field_validator("messaging", "standby", "changes", mode="before")(as_list)


class Envelope(_Tolerant):
    object: str
    # Each entry is validated on its own by the normaliser, so one odd entry never rejects the others.
    entry: list[Any]

    _entries = field_validator("entry", mode="before")(as_list)


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
