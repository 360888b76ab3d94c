"""Turns a verified webhook envelope into canonical events: every entry, every item, none dropped.

An item that cannot be understood becomes an `unknown` event carrying the raw item and the reason,
so a new Meta type never crashes the pipeline or vanishes.
"""

import hashlib
import json
import re
from datetime import datetime
from typing import Any, Literal, Protocol

from pydantic import ValidationError

from igdm.contracts.events import (
    Attachment,
    Comment,
    EventKind,
    Handover,
    InboundEvent,
    Mention,
    Postback,
    Reaction,
    Referral,
    ReplyTo,
    StoryRef,
    conversation_id,
)
from igdm.inbound.meta_payload import (
    HANDOVER_KEYS,
    ID_PATTERN,
    AttachmentPart,
    Change,
    CommentValue,
    Entry,
    MentionValue,
    MessagePart,
    MessagingItem,
)
from igdm.inbound.text_messages import Entries, deletion_key, message_key, utc
from igdm.inbound.text_messages import deletion_event_id as deletion_event_id
from igdm.inbound.text_messages import event_id as event_id
from igdm.inbound.text_messages import message_event_id as message_event_id
from igdm.runtime.observability import logger

Source = Literal["messaging", "standby", "changes"]
_VALID_ID = re.compile(ID_PATTERN)


class _Builder(Protocol):
    def __call__(self, kind: EventKind, key: str, *, user_initiated: bool = False, **content: Any) -> InboundEvent: ...


# Webhook fields whose `changes[].value` is a messaging item (the App Dashboard's test payloads).
MESSAGING_FIELDS = frozenset(
    {
        "messages",
        "message_echoes",
        "message_edit",
        "message_reactions",
        "messaging_reactions",
        "messaging_postbacks",
        "messaging_seen",
        "messaging_referral",
        "messaging_referrals",
        "messaging_optins",
        "messaging_handover",
        "standby",
    }
)
COMMENT_FIELDS = frozenset({"comments", "live_comments"})
UNKNOWN_ACCOUNT = "unknown"  # the account_id of an entry that names no usable account


def normalize(envelope: Entries, received_at_ms: int) -> list[InboundEvent]:
    received_at = utc(received_at_ms)
    events: list[InboundEvent] = []
    for raw_entry in envelope.entry:
        events.extend(normalize_entry(raw_entry, received_at))
    return events


def normalize_entry(raw_entry: Any, received_at: datetime) -> list[InboundEvent]:
    """One entry's events: every item's, or one unknown event when the entry names no usable account."""
    try:
        entry = Entry.model_validate(raw_entry)
    except ValidationError as exc:
        return [_unusable_entry(raw_entry, received_at, _reason(exc))]
    events = [normalize_item(entry, item, "messaging", received_at) for item in entry.messaging]
    events += [normalize_item(entry, item, "standby", received_at) for item in entry.standby]
    events += [normalize_item(entry, change, "changes", received_at) for change in entry.changes]
    if entry.field is not None:  # Instagram Login's unwrapped form: field/value on the entry
        events.append(normalize_item(entry, {"field": entry.field, "value": entry.value}, "changes", received_at))
    return events


def normalize_item(entry: Entry, item: Any, source: Source, received_at: datetime) -> InboundEvent:
    """One item's event; an item not understood (or a bug here) gives an unknown event, never an error."""
    raw = item if isinstance(item, dict) else {"item": item}
    try:
        if source == "changes":
            return _from_change(entry, raw, received_at)
        return _from_messaging(entry, raw, source, received_at)
    except ValidationError as exc:
        return _unknown(entry, raw, source, received_at, f"not understood: {_reason(exc)}")
    except Exception as exc:  # a bug here must not lose the event: keep it raw, log it loudly
        logger.exception("normaliser failed on an item; kept as unknown")
        return _unknown(entry, raw, source, received_at, f"normaliser error: {type(exc).__name__}")


def _reason(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'item'}: {err['msg']}"
        for err in exc.errors(include_url=False, include_input=False)
    )


def _unusable_entry(raw_entry: Any, received_at: datetime, reason: str) -> InboundEvent:
    """An entry without a usable id (all else in an entry is coerced): kept whole as one unknown event."""
    raw = raw_entry if isinstance(raw_entry, dict) else {"entry": raw_entry}
    return _event(
        UNKNOWN_ACCOUNT,
        raw,
        "messaging",
        EventKind.UNKNOWN,
        _content_key("entry", raw),
        None,
        "inbound",
        False,
        received_at,
        received_at,
        error=f"entry not understood: {reason}",
    )


def _from_messaging(entry: Entry, raw: dict[str, Any], source: Source, received_at: datetime) -> InboundEvent:
    item = MessagingItem.model_validate(raw)
    sender = item.sender.id if item.sender else None
    recipient = item.recipient.id if item.recipient else None
    ours = item.message is not None and (item.message.is_echo or item.message.is_self)
    outbound = _is_outbound(entry.id, sender, recipient, ours)
    customer = recipient if outbound else sender
    occurred = utc(item.timestamp) if item.timestamp is not None else _entry_time(entry, received_at)
    ts = item.timestamp if item.timestamp is not None else ""

    def build(kind: EventKind, key: str, *, user_initiated: bool = False, **content: Any) -> InboundEvent:
        return _event(
            entry.id,
            raw,
            source,
            kind,
            key,
            customer,
            "outbound" if outbound else "inbound",
            user_initiated and not outbound,
            occurred,
            received_at,
            **content,
        )

    if item.message is not None:
        return _from_message(item.message, build)
    return _from_other(item, raw, sender, ts, build)


def _from_other(
    item: MessagingItem, raw: dict[str, Any], sender: str | None, ts: Any, build: "_Builder"
) -> InboundEvent:
    """A messaging item that is not a message: an edit, a reaction, a postback, a read, a referral, an optin,
    a handover, or something Meta added since."""
    if item.message_edit is not None:
        edit = item.message_edit
        return build(
            EventKind.MESSAGE_EDITED,
            f"message_edited|{edit.mid}|{edit.num_edit}|{ts}",
            message_id=edit.mid,
            text=edit.text,
            edit_count=edit.num_edit,
        )
    if item.reaction is not None:
        r = item.reaction
        removed = r.action == "unreact"
        return build(
            EventKind.REACTION_REMOVED if removed else EventKind.REACTION,
            f"reaction|{sender}|{r.mid}|{r.action}|{r.reaction or r.emoji}|{ts}",
            message_id=r.mid,
            reaction=Reaction(action="unreact" if removed else "react", reaction=r.reaction, emoji=r.emoji),
        )
    if item.postback is not None:
        p = item.postback
        return build(
            EventKind.POSTBACK,
            f"postback|{p.mid}" if p.mid else _content_key("postback", raw),
            user_initiated=True,
            message_id=p.mid,
            postback=Postback(title=p.title, payload=p.payload),
        )
    if item.read is not None:
        return build(EventKind.READ, f"read|{sender}|{item.read.mid}|{ts}", message_id=item.read.mid)
    if item.referral is not None:
        return build(
            EventKind.REFERRAL,
            _content_key("referral", raw),
            user_initiated=True,
            referral=Referral.model_validate(_ids_as_strings(item.referral)),
        )
    if item.optin is not None:
        return build(EventKind.OPTIN, _content_key("optin", raw), optin=item.optin)
    extra = item.model_extra or {}
    for handover_type in HANDOVER_KEYS:
        if isinstance(extra.get(handover_type), dict):
            return build(
                EventKind.HANDOVER,
                _content_key(handover_type, raw),
                handover=_handover(handover_type, extra[handover_type]),
            )
    return build(EventKind.UNKNOWN, _content_key("unknown", raw), error="no known event key in the item")


def _from_message(message: MessagePart, build: "_Builder") -> InboundEvent:
    key = message_key(message.mid)
    if message.is_deleted:
        return build(EventKind.MESSAGE_DELETED, deletion_key(message.mid), message_id=message.mid)
    content: dict[str, Any] = {
        "message_id": message.mid,
        "text": message.text,
        "attachments": [_attachment(part) for part in message.attachments],
        "is_self": message.is_self,
    }
    if message.reply_to is not None:
        story = message.reply_to.story
        content["reply_to"] = ReplyTo(
            message_id=message.reply_to.mid,
            story=StoryRef(id=story.id, url=story.url) if story else None,
        )
    if message.referral is not None:
        content["referral"] = Referral.model_validate(_ids_as_strings(message.referral))
    if message.is_echo:
        return build(EventKind.ECHO, key, app_id=message.app_id, metadata=message.metadata, **content)
    if message.quick_reply is not None:
        content["quick_reply_payload"] = message.quick_reply.payload
    kind = _message_kind(message)
    if kind is None:
        return build(EventKind.UNKNOWN, key, error="message has no text, attachments or known content", **content)
    return build(kind, key, user_initiated=not message.is_self, **content)


def _message_kind(message: MessagePart) -> EventKind | None:
    """A customer's message by what it carries, the most specific first; None when it carries nothing known."""
    reply_to = message.reply_to
    for kind, matches in (
        (EventKind.UNSUPPORTED, message.is_unsupported),
        (EventKind.QUICK_REPLY, message.quick_reply is not None),
        (EventKind.STORY_REPLY, reply_to is not None and reply_to.story is not None),
        (EventKind.REPLY, reply_to is not None and bool(reply_to.mid)),
        (EventKind.ATTACHMENTS, bool(message.attachments)),
        (EventKind.TEXT, message.text is not None),
        (EventKind.REFERRAL, message.referral is not None),
    ):
        if matches:
            return kind
    return None


def _from_change(entry: Entry, raw: dict[str, Any], received_at: datetime) -> InboundEvent:
    change = Change.model_validate(raw)
    value = change.value
    if change.field in MESSAGING_FIELDS and isinstance(value, dict) and ("sender" in value or "recipient" in value):
        return _from_messaging(entry, value, "changes", received_at).model_copy(update={"raw": raw})
    occurred = _entry_time(entry, received_at)
    if change.field in COMMENT_FIELDS and isinstance(value, dict):
        comment = CommentValue.model_validate(value)
        author = comment.from_.id if comment.from_ else None
        by_the_account = author is not None and author == entry.id
        comment_id = comment.comment_id or comment.id
        return _event(
            entry.id,
            raw,
            "changes",
            EventKind.COMMENT,
            f"comment|{change.field}|{comment_id}" if comment_id else _content_key("comment", raw),
            None if by_the_account else author,
            "outbound" if by_the_account else "inbound",
            False,
            occurred,
            received_at,
            text=comment.text,
            comment=Comment(
                field=change.field,
                comment_id=comment_id,
                parent_id=comment.parent_id,
                text=comment.text,
                username=comment.from_.username if comment.from_ else None,
                media_id=comment.media.id if comment.media else None,
                media_product_type=comment.media.media_product_type if comment.media else None,
            ),
        )
    if change.field == "mentions" and isinstance(value, dict):
        mention = MentionValue.model_validate(value)
        return _event(
            entry.id,
            raw,
            "changes",
            EventKind.MENTION,
            f"mention|{mention.media_id}|{mention.comment_id}"
            if mention.media_id or mention.comment_id
            else _content_key("mention", raw),
            None,
            "inbound",
            False,
            occurred,
            received_at,
            mention=Mention(media_id=mention.media_id, comment_id=mention.comment_id),
        )
    return _unknown(entry, raw, "changes", received_at, f"unrecognised field {change.field!r}")


def _event(
    account_id: str,
    raw: dict[str, Any],
    source: Source,
    kind: EventKind,
    natural_key: str,
    customer_id: str | None,
    direction: Literal["inbound", "outbound"],
    user_initiated: bool,
    occurred_at: datetime,
    received_at: datetime,
    **content: Any,
) -> InboundEvent:
    return InboundEvent(
        event_id=event_id(account_id, natural_key),
        kind=kind,
        account_id=account_id,
        customer_id=customer_id,
        conversation_id=conversation_id(account_id, customer_id),
        direction=direction,
        source=source,
        user_initiated=user_initiated,
        occurred_at=occurred_at,
        received_at=received_at,
        raw=raw,
        **content,
    )


def _is_outbound(account_id: str, sender: str | None, recipient: str | None, ours: bool) -> bool:
    """An echo (or a self-message) is ours whatever the ids say; otherwise the side that is the account
    tells. With Facebook Login entry.id may be the Page id and match neither side: then it is inbound."""
    if ours:
        return True
    if recipient is not None and recipient == account_id:
        return False
    return sender is not None and sender == account_id


def _unknown(entry: Entry, raw: dict[str, Any], source: Source, received_at: datetime, error: str) -> InboundEvent:
    sender = _raw_id(raw.get("sender"))
    recipient = _raw_id(raw.get("recipient"))
    message = raw.get("message")
    ours = isinstance(message, dict) and (message.get("is_echo") is True or message.get("is_self") is True)
    outbound = _is_outbound(entry.id, sender, recipient, ours)
    customer = recipient if outbound else sender
    return _event(
        entry.id,
        raw,
        source,
        EventKind.UNKNOWN,
        _content_key(f"unknown|{source}", raw),
        customer,
        "outbound" if outbound else "inbound",
        False,
        _entry_time(entry, received_at),
        received_at,
        error=error,
        # The mid, when there is one, lets a later deletion find and remove the content raw holds.
        message_id=_raw_id(raw.get("message"), "mid") or _raw_id(raw.get("message_edit"), "mid"),
    )


def _attachment(part: AttachmentPart) -> Attachment:
    payload = part.payload or {}
    url = payload.get("url")
    title = payload.get("title")
    media_id = next(
        (payload[k] for k in ("ig_post_media_id", "reel_video_id", "media_id", "id") if payload.get(k) is not None),
        None,
    )
    return Attachment(
        type=part.type,
        url=url if isinstance(url, str) else None,
        title=title if isinstance(title, str) else None,
        media_id=str(media_id) if isinstance(media_id, (str, int)) else None,
        payload=payload,
    )


def _handover(handover_type: str, data: dict[str, Any]) -> Handover:
    def text(name: str) -> str | None:
        value = data.get(name)
        return None if value is None else str(value)

    roles = data if handover_type == "app_roles" else None
    return Handover(
        type=handover_type,
        previous_owner_app_id=text("previous_owner_app_id"),
        new_owner_app_id=text("new_owner_app_id"),
        requested_owner_app_id=text("requested_owner_app_id"),
        metadata=text("metadata"),
        app_roles=roles,
    )


def _content_key(prefix: str, raw: dict[str, Any]) -> str:
    """For events with no natural id: the item's canonical JSON (identical on redelivery)."""
    canonical = json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)
    return f"{prefix}|{hashlib.sha256(canonical.encode()).hexdigest()}"


def _ids_as_strings(data: dict[str, Any]) -> dict[str, Any]:
    return {
        k: str(v) if k.endswith("_id") and isinstance(v, int) and not isinstance(v, bool) else v
        for k, v in data.items()
    }


def _raw_id(party: Any, key: str = "id") -> str | None:
    value = party.get(key) if isinstance(party, dict) else None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return value if isinstance(value, str) and _VALID_ID.fullmatch(value) else None


def _entry_time(entry: Entry, received_at: datetime) -> datetime:
    return utc(entry.time) if entry.time is not None else received_at
