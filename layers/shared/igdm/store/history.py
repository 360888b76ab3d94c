"""What the gateway stored of its conversations, for the HTTP API's readers (docs/http-api.md), newest first and
paged by an opaque cursor:

- an account's conversations: its customers' conversation state items (CONV#<account>#<customer> / STATE, one
  per customer who wrote), found through the AccountCustomer index (keys only) and read in batches of 100;
- a conversation's events: its event items (CONV#<account>#<customer> / EVT#<id>), each the event as it was
  published, with what the customer deleted already scrubbed (igdm.inbound.ingest); never a tombstone, which is no
  event (igdm.store.event_items).

Neither order is a key's order (event ids are digests, not times), so each page reads the whole set and sorts it:
reads grow with a conversation's stored events and an account's conversations, both bounded by the retention
period. Fine for a reader paging through a conversation; a consumer of every event reads the events queue.
"""

import base64
import json
from collections.abc import Iterator
from typing import Any

from igdm.contracts.stored_events import expanded
from igdm.store.attributes import from_attributes, to_attributes
from igdm.store.event_items import NOT_A_TOMBSTONE
from igdm.store.keys import (
    ACCOUNT_CUSTOMER_INDEX,
    CONVERSATION_STATE_SK,
    EVENT_SK_PREFIX,
    INDEX_ACCOUNT,
    SORT_KEY,
    conversation_pk,
    key,
)

BATCH_GET_ITEMS = 100  # BatchGetItem's limit
MAX_BATCH_ATTEMPTS = 5
DEFAULT_PAGE = 25
MAX_PAGE = 100


class BadCursor(ValueError):
    """A cursor this store did not hand out."""


def encode_cursor(position: tuple[int, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(position)).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        at, last = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError) as exc:
        raise BadCursor("cursor: not one this API handed out") from exc
    if not isinstance(at, int) or not isinstance(last, str):
        raise BadCursor("cursor: not one this API handed out")
    return at, last


def page(
    rows: list[tuple[tuple[int, str], dict[str, Any]]], limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """Rows (position, document), newest first, after the cursor's position; and the next page's cursor."""
    ordered = sorted(rows, key=lambda row: row[0], reverse=True)
    if cursor is not None:
        after = decode_cursor(cursor)
        ordered = [row for row in ordered if row[0] < after]
    shown = ordered[:limit]
    more = len(ordered) > limit
    return [document for _, document in shown], encode_cursor(shown[-1][0]) if more else None


class ConversationHistory:
    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def conversations(self, account_id: str, limit: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        customers = sorted(
            {
                from_attributes(item)["customer_id"]
                for item in self._query(
                    IndexName=ACCOUNT_CUSTOMER_INDEX,
                    KeyConditionExpression="#a = :a",
                    FilterExpression="#sk = :state",
                    ExpressionAttributeNames={"#a": INDEX_ACCOUNT, "#sk": SORT_KEY},
                    ExpressionAttributeValues=to_attributes({":a": account_id, ":state": CONVERSATION_STATE_SK}),
                )
            }
        )
        rows = []
        for state in self._states(account_id, customers):
            at = int(state.get("last_user_message_at") or 0)
            rows.append(
                (
                    (at, state["customer_id"]),
                    {
                        "conversation_id": f"{account_id}:{state['customer_id']}",
                        "account_id": account_id,
                        "customer_id": state["customer_id"],
                        "last_customer_message_at": state.get("last_user_message_time"),
                        "last_customer_message_kind": state.get("last_user_message_kind"),
                        "answered_by": state.get("thread_owner") or "gateway",
                    },
                )
            )
        return page(rows, limit, cursor)

    def events(
        self, account_id: str, customer_id: str, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        rows = []
        for item in self._query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            FilterExpression=NOT_A_TOMBSTONE,
            ExpressionAttributeNames={"#event": "event"},
            ExpressionAttributeValues=to_attributes(
                {":pk": conversation_pk(account_id, customer_id), ":prefix": EVENT_SK_PREFIX}
            ),
            ProjectionExpression="#event, occurred_at, event_id",
        ):
            stored = from_attributes(item)
            event = json.loads(expanded(stored["event"]))  # the item keeps it without its default fields
            rows.append(((int(stored["occurred_at"]), stored["event_id"]), event))
        return page(rows, limit, cursor)

    def _states(self, account_id: str, customers: list[str]) -> Iterator[dict[str, Any]]:
        for start in range(0, len(customers), BATCH_GET_ITEMS):
            keys = [
                key(conversation_pk(account_id, c), CONVERSATION_STATE_SK)
                for c in customers[start : start + BATCH_GET_ITEMS]
            ]
            request: dict[str, Any] = {
                self._table: {
                    "Keys": keys,
                    "ProjectionExpression": "customer_id, last_user_message_at, last_user_message_time, "
                    "last_user_message_kind, thread_owner",
                }
            }
            for _ in range(MAX_BATCH_ATTEMPTS):
                answer = self._client.batch_get_item(RequestItems=request)
                yield from (from_attributes(i) for i in answer.get("Responses", {}).get(self._table, []))
                request = answer.get("UnprocessedKeys") or {}
                if not request:
                    break
            else:
                raise RuntimeError("DynamoDB left some conversation states unread: try again")

    def _query(self, **request: Any) -> Iterator[dict[str, Any]]:
        request["TableName"] = self._table
        while True:
            answer = self._client.query(**request)
            yield from answer.get("Items", [])
            if "LastEvaluatedKey" not in answer:
                return
            request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
