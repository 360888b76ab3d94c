"""The comments customers wrote on an account's posts, as far as private replies need them (fact sheet §5.4;
field-2026: story and ad-post comments included): when each came, and which message privately replied to it.

Meta allows a private reply only to a comment, within 7 days of it, and only one per comment. The webhook
records each customer comment it ingests (Comments.apply, after the comment's event is durable); the sender
reads the comment before a private reply (get) and records the reply once Meta took it, or may have
(mark_replied). The item expires 8 days after the comment: a reply is refused by then anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from igdm.contracts.event_kinds import EventKind
from igdm.runtime.aws import error_code
from igdm.store.attributes import from_attributes, to_attributes
from igdm.store.keys import COMMENT_SK, TTL_ATTRIBUTE, comment_pk, key

if TYPE_CHECKING:
    from igdm.contracts.plain_event import Event

PRIVATE_REPLY_DAYS = 7
TRANSACTION_ITEMS = 100  # TransactWriteItems' limit
KEPT_SECONDS = (PRIVATE_REPLY_DAYS + 1) * 86_400


@dataclass(frozen=True)
class CommentItem:
    account_id: str
    comment_id: str
    commenter_id: str | None
    occurred_at_ms: int
    replied_by: str | None = None  # the idempotency key of the private reply sent to it

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> CommentItem:
        attributes = from_attributes(item)
        return cls(
            attributes["account_id"],
            attributes["comment_id"],
            attributes.get("commenter_id"),
            int(attributes["occurred_at"]),
            attributes.get("replied_by"),
        )


class Comments:
    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    # --- the webhook's side

    def apply(self, events: Any, gateway_app_ids: frozenset[str] = frozenset()) -> int:
        """Record the customer comments among ``events`` (durable ones); returns how many. Up to 100 per
        request (TransactWriteItems of updates, no condition): a viral post's 1000 comments in one POST
        are 10 requests, not 1000, inside the webhook's time."""
        updates = {}
        for event in events:
            comment_id = _customer_comment_id(event)
            if comment_id is not None:
                updates[(event.account_id, comment_id)] = self._seen(event, comment_id)  # one per item
        actions = list(updates.values())
        for start in range(0, len(actions), TRANSACTION_ITEMS):
            self._client.transact_write_items(TransactItems=actions[start : start + TRANSACTION_ITEMS])
        return len(actions)

    def _seen(self, event: Event, comment_id: str) -> dict[str, Any]:
        at = int(event.occurred_at.timestamp() * 1000)
        return {
            "Update": {
                "TableName": self._table,
                "Key": key(comment_pk(event.account_id, comment_id), COMMENT_SK),
                # A redelivery keeps the first time and never touches replied_by. A comment Meta sent without its
                # author ("from") is still a comment a private reply may answer: kept without a commenter_id.
                "UpdateExpression": (
                    "SET account_id = :account, comment_id = :comment, "
                    + ("commenter_id = :commenter, " if event.customer_id else "")
                    + "occurred_at = if_not_exists(occurred_at, :at), #ttl = if_not_exists(#ttl, :expires)"
                ),
                "ExpressionAttributeNames": {"#ttl": TTL_ATTRIBUTE},
                "ExpressionAttributeValues": to_attributes(
                    {
                        ":account": event.account_id,
                        ":comment": comment_id,
                        ":commenter": event.customer_id,
                        ":at": at,
                        ":expires": at // 1000 + KEPT_SECONDS,
                    }
                ),
            }
        }

    # --- the sender's side

    def get(self, account_id: str, comment_id: str) -> CommentItem | None:
        item = self._client.get_item(
            TableName=self._table, ConsistentRead=True, Key=key(comment_pk(account_id, comment_id), COMMENT_SK)
        ).get("Item")
        return CommentItem.from_item(item) if item else None

    def mark_replied(self, account_id: str, comment_id: str, idempotency_key: str) -> bool:
        """The private reply ``idempotency_key`` went to the comment (or may have); False when another did."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key=key(comment_pk(account_id, comment_id), COMMENT_SK),
                UpdateExpression="SET replied_by = :key, replied_at = :now",
                ConditionExpression="attribute_exists(pk) AND (attribute_not_exists(replied_by) OR replied_by = :key)",
                ExpressionAttributeValues=to_attributes(
                    {":key": idempotency_key, ":now": datetime.now(UTC).isoformat()}
                ),
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True


def _customer_comment_id(event: Event) -> str | None:
    """The id of a comment a customer wrote (not the account's own); None for any other event."""
    if event.kind != EventKind.COMMENT or event.direction != "inbound" or event.comment is None:
        return None
    return event.comment.comment_id or None
