"""An event's item (CONV#<account>#<customer or -> / EVT#<event_id>): one per published event, written once
by the webhook (igdm.inbound.event_store) after the event reached the queue; the sender reads the echoes of
its own app back from them (igdm.store.outbound_records.OutboundRecords.stored_echoes).

The same key may hold a tombstone instead: the customer deleted a message before its event was stored, and the
tombstone at the key the message's event will have says so to the lookup that finds events stored. It holds no
content and is no event: every reader of event items skips it (NOT_A_TOMBSTONE, is_tombstone), and the event,
when it comes, is stored in its place."""

from typing import Any, NamedTuple

from igdm.store.attributes import from_attributes, to_attributes
from igdm.store.keys import TTL_ATTRIBUTE, conversation_pk, event_sk, key

TOMBSTONE = "tombstone"  # the attribute (BOOL, true) only a tombstone has
NOT_A_TOMBSTONE = f"attribute_not_exists({TOMBSTONE})"  # a filter for the readers of event items

# A concurrent delivery that stored the event first wins; never clobber it. A tombstone gives way: the event
# that takes its place is the message's, published without its content.
_NOT_STORED_YET = f"attribute_not_exists(pk) OR attribute_exists({TOMBSTONE})"
_NOTHING_THERE = "attribute_not_exists(pk)"


def is_tombstone(attributes: dict[str, Any]) -> bool:
    """Whether an item under an event key, as read (igdm.store.attributes.from_attributes), is a tombstone."""
    return attributes.get(TOMBSTONE) is True


# A NamedTuple, not a dataclass: its class is built several times faster, on the webhook's cold start.
class EventItem(NamedTuple):
    event_id: str
    kind: str
    account_id: str
    customer_id: str | None  # absent from the item when the event has none
    message_id: str | None  # absent from the item when the event has none
    occurred_at: int  # epoch milliseconds
    received_at: str  # ISO 8601
    event: str  # the event as ASCII-only JSON without its default fields (igdm.contracts.stored_events)
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
        """The TransactWriteItems action (alone, sent as the PutItem it names) that stores the event unless it is
        stored already (a tombstone is not: the event takes its place)."""
        return {"Put": {"TableName": table, "Item": self.to_item(), "ConditionExpression": _NOT_STORED_YET}}


class Tombstone(NamedTuple):
    """At the key a message's event will have: the customer deleted the message before the event was stored."""

    event_id: str  # the message's event's (igdm.inbound.normalize.message_event_id)
    account_id: str
    customer_id: str | None  # absent from the item when the deletion named none
    received_at: str  # when the deletion was received, ISO 8601
    expires_at: int  # TTL, epoch seconds: as an event item's, from received_at

    def key(self) -> dict[str, Any]:
        return key(conversation_pk(self.account_id, self.customer_id), event_sk(self.event_id))

    def to_item(self) -> dict[str, Any]:
        # The account and customer as an event item has them: the AccountCustomer index finds the tombstone
        # for an erasure.
        return {
            **self.key(),
            **to_attributes(
                {
                    "event_id": self.event_id,
                    "account_id": self.account_id,
                    TOMBSTONE: True,
                    "received_at": self.received_at,
                    TTL_ATTRIBUTE: self.expires_at,
                    "customer_id": self.customer_id,
                }
            ),
        }

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> "Tombstone":
        attributes = from_attributes(item)
        return cls(
            event_id=attributes["event_id"],
            account_id=attributes["account_id"],
            customer_id=attributes.get("customer_id"),
            received_at=attributes["received_at"],
            expires_at=attributes[TTL_ATTRIBUTE],
        )

    def put_new(self, table: str) -> dict[str, Any]:
        """The PutItem request that writes the tombstone unless the key holds an item already (the event, or the
        tombstone of an earlier delivery of the deletion)."""
        return {"TableName": table, "Item": self.to_item(), "ConditionExpression": _NOTHING_THERE}
