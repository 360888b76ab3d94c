"""An event's item (CONV#<account>#<customer or -> / EVT#<event_id>): one per published event, written once
by the webhook (igdm.inbound.event_store) after the event reached the queue; the sender reads the echoes of
its own app back from them (igdm.store.outbound_records.OutboundRecords.stored_echoes)."""

from dataclasses import dataclass
from typing import Any

from igdm.store.attributes import from_attributes, to_attributes
from igdm.store.keys import TTL_ATTRIBUTE, conversation_pk, event_sk, key

# A concurrent delivery that stored the event first wins; never clobber it.
_NOT_STORED_YET = "attribute_not_exists(pk)"


@dataclass(frozen=True)
class EventItem:
    event_id: str
    kind: str
    account_id: str
    customer_id: str | None  # absent from the item when the event has none
    message_id: str | None  # absent from the item when the event has none
    occurred_at: int  # epoch milliseconds
    received_at: str  # ISO 8601
    event: str  # the whole event as ASCII-only JSON, the body published on the queue
    expires_at: int  # TTL, epoch seconds

    def key(self) -> dict[str, Any]:
        return key(conversation_pk(self.account_id, self.customer_id), event_sk(self.event_id))

    def to_item(self) -> dict[str, Any]:
        return {
            **self.key(),
            **to_attributes(
                {
                    "event_id": self.event_id,
                    "kind": self.kind,
                    "account_id": self.account_id,
                    "occurred_at": self.occurred_at,
                    "received_at": self.received_at,
                    "event": self.event,
                    TTL_ATTRIBUTE: self.expires_at,
                    "customer_id": self.customer_id,
                    "message_id": self.message_id,
                }
            ),
        }

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> "EventItem":
        attributes = from_attributes(item)
        return cls(
            event_id=attributes["event_id"],
            kind=attributes["kind"],
            account_id=attributes["account_id"],
            customer_id=attributes.get("customer_id"),
            message_id=attributes.get("message_id"),
            occurred_at=attributes["occurred_at"],
            received_at=attributes["received_at"],
            event=attributes["event"],
            expires_at=attributes[TTL_ATTRIBUTE],
        )

    def put_new(self, table: str) -> dict[str, Any]:
        """The TransactWriteItems action that stores the event unless it is stored already."""
        return {"Put": {"TableName": table, "Item": self.to_item(), "ConditionExpression": _NOT_STORED_YET}}
