"""DynamoDB adapter: event items, their tombstones and conversation state in the single table
(docs/data-model.md); the items' shapes are the store's (igdm.store.event_items, igdm.store.conversation_state).

Conditional writes go in TransactWriteItems of up to 100 actions (BatchWriteItem takes no condition); a lone one
is sent as the PutItem or UpdateItem it is, with the same condition: a transaction bills twice the write units.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from igdm.contracts.event_kinds import CONTENT_KINDS
from igdm.contracts.serialized import SerializedEvent
from igdm.inbound.ingest import EventKey, Found, StorageUnavailable, WindowUpdate
from igdm.runtime.aws import backoff, error_code
from igdm.store.attributes import from_attribute, from_attributes, to_attributes
from igdm.store.conversation_state import ConversationStateItem
from igdm.store.event_items import TOMBSTONE, EventItem, Tombstone, is_tombstone
from igdm.store.keys import EVENT_SK_PREFIX, conversation_pk, event_sk, key

if TYPE_CHECKING:  # read back only to remove a deleted message's content
    from igdm.contracts.events import InboundEvent

_GET_BATCH = 100  # BatchGetItem's limit
_TRANSACTION_ACTIONS = 100  # TransactWriteItems' limit
_TRANSACTION_BYTES = 3_500_000  # under the 4 MB transaction limit, with room for attribute names
_ATTEMPTS = 5
_RETRYABLE_CANCELLATIONS = {"None", "TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}
# The same causes, as a lone PutItem or UpdateItem meets them (botocore does not retry a conflict with a
# transaction in progress on the item).
_RETRYABLE_WRITE_ERRORS = {
    "TransactionConflictException",
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
}
_CONDITION_FAILED = "ConditionalCheckFailedException"


class DynamoEventStore:
    def __init__(self, client: Any, table_name: str, retention_days: int) -> None:
        self._client = client
        self._table = table_name
        self._retention_seconds = retention_days * 86_400

    def find(self, keys: Sequence[EventKey]) -> Found:
        stored: set[str] = set()
        tombstoned: set[str] = set()
        unique = list(dict.fromkeys(keys))  # BatchGetItem refuses a key twice in one request
        for start in range(0, len(unique), _GET_BATCH):
            batch = [_item_key(k) for k in unique[start : start + _GET_BATCH]]
            request: dict[str, Any] = {
                self._table: {
                    "Keys": batch,
                    "ConsistentRead": True,
                    "ProjectionExpression": f"event_id, {TOMBSTONE}",
                }
            }
            for attempt in range(_ATTEMPTS):
                response = self._call("batch_get_item", RequestItems=request)
                for item in map(from_attributes, response.get("Responses", {}).get(self._table, [])):
                    (tombstoned if is_tombstone(item) else stored).add(item["event_id"])
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                backoff(attempt)
            else:
                raise StorageUnavailable("DynamoDB left keys unprocessed after retries")
        return Found(frozenset(stored), frozenset(tombstoned))

    def save(self, events: Sequence[SerializedEvent]) -> None:
        self._write([self._event_item(e).put_new(self._table) for e in events])

    def advance_windows(self, windows: Sequence[WindowUpdate]) -> None:
        self._write([self._update_window(w) for w in windows])

    def tombstone(self, key: EventKey, received_at: datetime) -> None:
        tombstone = Tombstone(
            event_id=key.event_id,
            account_id=key.account_id,
            customer_id=key.customer_id or None,
            received_at=received_at.isoformat(),
            expires_at=int(received_at.timestamp()) + self._retention_seconds,
        )
        try:
            self._client.put_item(**tombstone.put_new(self._table))
        except ClientError as exc:
            if error_code(exc) != _CONDITION_FAILED:  # failed: the key holds the event, or this tombstone already
                raise StorageUnavailable(f"DynamoDB put_item failed: {error_code(exc)}") from exc
        except BotoCoreError as exc:
            raise StorageUnavailable(f"DynamoDB put_item failed: {type(exc).__name__}") from exc

    def content_events(self, account_id: str, customer_id: str, message_id: str) -> list[InboundEvent]:
        from igdm.contracts.events import InboundEvent

        kinds = sorted(k.value for k in CONTENT_KINDS)
        values = to_attributes(
            {
                ":pk": conversation_pk(account_id, customer_id),
                ":prefix": EVENT_SK_PREFIX,
                ":mid": message_id,
                **{f":k{i}": k for i, k in enumerate(kinds)},
            }
        )
        query: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "FilterExpression": f"message_id = :mid AND #kind IN ({', '.join(f':k{i}' for i in range(len(kinds)))})",
            "ExpressionAttributeNames": {"#kind": "kind", "#event": "event"},
            "ExpressionAttributeValues": values,
            "ProjectionExpression": "#event",
            "ConsistentRead": True,
        }
        found: list[InboundEvent] = []
        while True:
            response = self._call("query", **query)
            bodies = (from_attributes(item)["event"] for item in response.get("Items", []))
            found.extend(InboundEvent.model_validate_json(body) for body in bodies)
            if "LastEvaluatedKey" not in response:
                return found
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def overwrite(self, events: Sequence[SerializedEvent]) -> None:
        for serialized in events:
            self._call("put_item", TableName=self._table, Item=self._event_item(serialized).to_item())

    def _event_item(self, serialized: SerializedEvent) -> EventItem:
        event = serialized.event
        return EventItem(
            event_id=event.event_id,
            kind=event.kind.value,
            account_id=event.account_id,
            customer_id=event.customer_id or None,
            message_id=event.message_id or None,
            occurred_at=_epoch_ms(event.occurred_at),
            received_at=event.received_at.isoformat(),
            event=serialized.stored(),  # without its default fields: a text message's item in one write unit
            expires_at=int(event.received_at.timestamp()) + self._retention_seconds,
        )

    def _update_window(self, window: WindowUpdate) -> dict[str, Any]:
        at = _epoch_ms(window.occurred_at)
        state = ConversationStateItem(
            account_id=window.account_id,
            customer_id=window.customer_id,
            last_user_message_at=at,
            last_user_message_time=window.occurred_at.isoformat(),
            last_user_message_id=window.message_id or None,
            last_user_message_kind=window.kind,
            updated_at=datetime.now(UTC).isoformat(),
            # A conversation silent for the retention period has long had its windows closed.
            expires_at=at // 1000 + self._retention_seconds,
        )
        return state.advance(self._table)

    def _write(self, actions: list[dict[str, Any]]) -> None:
        for chunk in _chunks(actions):
            self._transact(chunk)

    def _write_one(self, action: dict[str, Any]) -> None:
        """One TransactWriteItems action as the plain request it names, handled as the transaction would handle
        it: a failed condition drops it (stored already, or a newer window), a conflict is tried again."""
        [(kind, request)] = action.items()
        write = {"Put": self._client.put_item, "Update": self._client.update_item}[kind]
        for attempt in range(_ATTEMPTS):
            try:
                write(**request)
                return
            except ClientError as exc:
                if error_code(exc) == _CONDITION_FAILED:
                    return
                if error_code(exc) not in _RETRYABLE_WRITE_ERRORS:
                    raise StorageUnavailable(f"DynamoDB write failed: {error_code(exc)}") from exc
            except BotoCoreError as exc:
                raise StorageUnavailable(f"DynamoDB write failed: {type(exc).__name__}") from exc
            backoff(attempt)
        raise StorageUnavailable("DynamoDB write kept conflicting")

    def _transact(self, actions: list[dict[str, Any]]) -> None:
        pending = actions
        for attempt in range(_ATTEMPTS):
            if len(pending) == 1:  # a chunk of one, or what a cancelled transaction left to try again
                self._write_one(pending[0])
                return
            try:
                self._client.transact_write_items(TransactItems=pending)
                return
            except ClientError as exc:
                if error_code(exc) != "TransactionCanceledException":
                    raise StorageUnavailable(f"DynamoDB write failed: {error_code(exc)}") from exc
                pending = _still_to_write(pending, exc.response.get("CancellationReasons") or [])
                if not pending:
                    return
            except BotoCoreError as exc:
                raise StorageUnavailable(f"DynamoDB write failed: {type(exc).__name__}") from exc
            backoff(attempt)
        raise StorageUnavailable("DynamoDB transaction kept being cancelled")

    def _call(self, operation: str, **kwargs: Any) -> Any:
        try:
            return getattr(self._client, operation)(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise StorageUnavailable(f"DynamoDB {operation} failed: {error_code(exc)}") from exc


def _still_to_write(actions: list[dict[str, Any]], reasons: list[Any]) -> list[dict[str, Any]]:
    """Drop actions whose condition failed (already stored, or a newer window); keep the retryable."""
    if len(reasons) != len(actions):
        raise StorageUnavailable("DynamoDB cancelled the transaction without per-item reasons")
    retry = []
    for action, reason in zip(actions, reasons, strict=True):
        code = reason.get("Code") or "None"
        if code == "ConditionalCheckFailed":
            continue
        if code not in _RETRYABLE_CANCELLATIONS:
            raise StorageUnavailable(f"DynamoDB rejected a write: {code}")
        retry.append(action)
    return retry


def _chunks(actions: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    size = 0
    for action in actions:
        action_size = _approximate_size(action)
        if chunk and (len(chunk) == _TRANSACTION_ACTIONS or size + action_size > _TRANSACTION_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(action)
        size += action_size
    if chunk:
        yield chunk


def _approximate_size(action: dict[str, Any]) -> int:
    put = action.get("Put")
    return 1024 + (len(from_attribute(put["Item"]["event"]).encode()) if put else 0)


def _item_key(event: EventKey) -> dict[str, Any]:
    return key(conversation_pk(event.account_id, event.customer_id), event_sk(event.event_id))


def _epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
