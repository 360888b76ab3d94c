"""A conversation's state item (CONV#<account>#<customer> / STATE): the customer's last user-initiated
message, which opens Meta's 24-hour and 7-day windows, and which app answers the conversation (its thread
owner). The webhook moves the window forward as messages arrive (ConversationStateItem.advance, sent by
igdm.inbound.event_store in a transaction of the POST's conversations, or alone) and records the owner Meta's
handover webhooks name; the sender records its own handovers and reads both before each send
(ConversationState)."""

from datetime import UTC, datetime
from typing import Any, NamedTuple

from botocore.exceptions import ClientError

from igdm.runtime.aws import error_code
from igdm.store.attributes import from_attributes, to_attribute, to_attributes
from igdm.store.keys import CONVERSATION_STATE_SK, TTL_ATTRIBUTE, conversation_pk, key

# Every attribute of the item but its key: the state is whole after any one update.
_ADVANCE = (
    "SET account_id = :account, customer_id = :customer, last_user_message_at = :at, "
    "last_user_message_time = :time, last_user_message_id = :mid, "
    "last_user_message_kind = :kind, updated_at = :now, #ttl = :expires"
)
# Only move forward: an older message arriving late must not shrink the window.
_ONLY_FORWARD = "attribute_not_exists(last_user_message_at) OR last_user_message_at < :at"
# The owner too: a handover Meta redelivers late must not undo a later one.
_OWNER_FORWARD = "attribute_not_exists(thread_owner_at) OR thread_owner_at < :at"
GATEWAY_OWNER = "gateway"  # the gateway's own app answers the conversation (its app id is not always known)


# A NamedTuple, not a dataclass: its class is built several times faster, on the webhook's cold start.
class ConversationStateItem(NamedTuple):
    account_id: str
    customer_id: str
    last_user_message_at: int  # epoch milliseconds
    last_user_message_time: str  # the same moment, ISO 8601
    last_user_message_id: str | None  # stored as NULL when the message had no mid
    last_user_message_kind: str
    updated_at: str  # ISO 8601
    expires_at: int  # TTL, epoch seconds: a conversation silent this long has long had its windows closed

    def key(self) -> dict[str, Any]:
        return key(conversation_pk(self.account_id, self.customer_id), CONVERSATION_STATE_SK)

    def to_item(self) -> dict[str, Any]:
        """The item as the webhook's update leaves it."""
        return {
            **self.key(),
            **to_attributes(
                {
                    "account_id": self.account_id,
                    "customer_id": self.customer_id,
                    "last_user_message_at": self.last_user_message_at,
                    "last_user_message_time": self.last_user_message_time,
                    "last_user_message_kind": self.last_user_message_kind,
                    "updated_at": self.updated_at,
                    TTL_ATTRIBUTE: self.expires_at,
                }
            ),
            "last_user_message_id": to_attribute(self.last_user_message_id),
        }

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> "ConversationStateItem":
        attributes = from_attributes(item)
        return cls(
            account_id=attributes["account_id"],
            customer_id=attributes["customer_id"],
            last_user_message_at=attributes["last_user_message_at"],
            last_user_message_time=attributes["last_user_message_time"],
            last_user_message_id=attributes.get("last_user_message_id"),
            last_user_message_kind=attributes["last_user_message_kind"],
            updated_at=attributes["updated_at"],
            expires_at=attributes[TTL_ATTRIBUTE],
        )

    def advance(self, table: str) -> dict[str, Any]:
        """The TransactWriteItems action (alone, sent as the UpdateItem it names) that moves the stored state to
        this one, unless it is already at this message or a later one (an update, not a put: it only ever moves
        forward)."""
        values = to_attributes(
            {
                ":expires": self.expires_at,
                ":account": self.account_id,
                ":customer": self.customer_id,
                ":at": self.last_user_message_at,
                ":time": self.last_user_message_time,
                ":kind": self.last_user_message_kind,
                ":now": self.updated_at,
            }
        )
        values[":mid"] = to_attribute(self.last_user_message_id)  # NULL, not left out: the update sets it
        return {
            "Update": {
                "TableName": table,
                "Key": self.key(),
                "UpdateExpression": _ADVANCE,
                "ConditionExpression": _ONLY_FORWARD,
                "ExpressionAttributeNames": {"#ttl": TTL_ATTRIBUTE},
                "ExpressionAttributeValues": values,
            }
        }


class ConversationView(NamedTuple):
    """What the sender needs of a conversation before a send, read in one request."""

    last_user_message_at: int | None  # epoch milliseconds; None if the customer never wrote
    thread_owner: str | None  # GATEWAY_OWNER, another app's id, or None: no handover recorded (the gateway's)


class ConversationState:
    def __init__(self, client: Any, table: str, retention_days: int = 90) -> None:
        self._client = client
        self._table = table
        self._retention_seconds = retention_days * 86_400

    def view(self, account_id: str, customer_id: str) -> ConversationView:
        item = self._client.get_item(
            TableName=self._table,
            ConsistentRead=True,
            ProjectionExpression="last_user_message_at, thread_owner",
            Key=key(conversation_pk(account_id, customer_id), CONVERSATION_STATE_SK),
        ).get("Item")
        attributes = from_attributes(item or {})
        last = attributes.get("last_user_message_at")
        return ConversationView(int(last) if last is not None else None, attributes.get("thread_owner"))

    def record_owner(self, account_id: str, customer_id: str, owner: str | None, at_ms: int) -> bool:
        """The app that answers the conversation since ``at_ms`` (None: no app, the thread is idle), unless a
        later handover is recorded already. True when recorded."""
        now = datetime.now(UTC)
        values: dict[str, Any] = {
            ":at": at_ms,
            ":account": account_id,
            ":customer": customer_id,
            ":now": now.isoformat(),
            ":expires": int(now.timestamp()) + self._retention_seconds,
        }
        expression = (
            "SET thread_owner_at = :at, account_id = :account, customer_id = :customer, updated_at = :now, "
            "#ttl = if_not_exists(#ttl, :expires)"
        )
        if owner is None:
            expression += " REMOVE thread_owner"
        else:
            expression = expression.replace("SET ", "SET thread_owner = :owner, ", 1)
            values[":owner"] = owner
        try:
            self._client.update_item(
                TableName=self._table,
                Key=key(conversation_pk(account_id, customer_id), CONVERSATION_STATE_SK),
                UpdateExpression=expression,
                ConditionExpression=_OWNER_FORWARD,
                ExpressionAttributeNames={"#ttl": TTL_ATTRIBUTE},
                ExpressionAttributeValues=to_attributes(values),
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True
