"""A conversation's state item (CONV#<account>#<customer> / STATE): the customer's last user-initiated
message, which opens Meta's 24-hour and 7-day windows. The webhook moves it forward as messages arrive
(ConversationStateItem.advance, an action of the transaction that stores the events, in
igdm.inbound.event_store); the sender reads it before each send (ConversationState)."""

from dataclasses import dataclass
from typing import Any

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


@dataclass(frozen=True)
class ConversationStateItem:
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
        """The TransactWriteItems action that moves the stored state to this one, unless it is already at
        this message or a later one (an update, not a put: it only ever moves forward)."""
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


class ConversationState:
    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def last_user_message_at(self, account_id: str, customer_id: str) -> int | None:
        """Epoch milliseconds of the customer's last user-initiated message; None if they never wrote."""
        item = self._client.get_item(
            TableName=self._table,
            ConsistentRead=True,
            ProjectionExpression="last_user_message_at",
            Key=key(conversation_pk(account_id, customer_id), CONVERSATION_STATE_SK),
        ).get("Item")
        value = from_attributes(item or {}).get("last_user_message_at")
        return int(value) if value is not None else None
