"""The event's kinds and the other parts of the event contract that need no pydantic (igdm.contracts.events
re-exports them): the webhook's path for a text message imports these, never the models."""

from enum import StrEnum
from typing import Literal

SCHEMA_VERSION: Literal["1"] = "1"


class EventKind(StrEnum):
    TEXT = "text"
    ATTACHMENTS = "attachments"
    STORY_REPLY = "story_reply"
    REPLY = "reply"
    QUICK_REPLY = "quick_reply"
    POSTBACK = "postback"
    REACTION = "reaction"
    REACTION_REMOVED = "reaction_removed"
    READ = "read"
    MESSAGE_DELETED = "message_deleted"
    MESSAGE_EDITED = "message_edited"
    ECHO = "echo"
    REFERRAL = "referral"
    OPTIN = "optin"
    HANDOVER = "handover"
    COMMENT = "comment"
    MENTION = "mention"
    UNSUPPORTED = "unsupported"
    UNKNOWN = "unknown"
    GAP = "gap"
    MESSAGE_STATUS = "message_status"
    ACCOUNT_STATUS = "account_status"
    CUSTOMER_FORGOTTEN = "customer_forgotten"


# Kinds that can carry the content of a message that gets deleted (its text and media are removed then).
# Echoes too: a business can unsend; unknown too: a message not understood keeps its content in raw.
CONTENT_KINDS = frozenset(
    {
        EventKind.ECHO,
        EventKind.UNKNOWN,
        EventKind.TEXT,
        EventKind.ATTACHMENTS,
        EventKind.STORY_REPLY,
        EventKind.REPLY,
        EventKind.QUICK_REPLY,
        EventKind.MESSAGE_EDITED,
        EventKind.UNSUPPORTED,
    }
)


def conversation_id(account_id: str, customer_id: str | None) -> str:
    return f"{account_id}:{customer_id}" if customer_id else account_id
