"""What an erasure needs from the table (docs/data-model.md, "Erasure"): its audit item, and every item that
holds an account's or a customer's id, found without a Scan.

- ErasureRequests: one ERASURE#<code> item per request (Meta's data-deletion callback, tools.accounts forget):
  the confirmation code, a hash of the id (never the id), what was deleted and when. No TTL: it is the record
  that the request was honoured.
- StoredData: the reads and deletes the eraser makes. Items naming both an account and a customer are found
  through the AccountCustomer index (keys only); the partitions they point at are read whole (a conversation's
  markers have no index attributes); an item that may hold an id elsewhere (a mention's raw payload) is read
  and judged by what it holds (names).
"""

import hashlib
import json
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from botocore.exceptions import ClientError

from igdm.runtime.aws import error_code
from igdm.store.attributes import from_attributes, to_attributes
from igdm.store.keys import (
    ACCOUNT_CUSTOMER_INDEX,
    ACCOUNTS_PK,
    CONVERSATION_PK_PREFIX,
    CONVERSATION_STATE_SK,
    ERASURE_SK,
    EVENT_SK_PREFIX,
    INDEX_ACCOUNT,
    INDEX_CUSTOMER,
    MESSAGE_ID_PK_PREFIX,
    PARTITION_KEY,
    SORT_KEY,
    TOKEN_RESCUE_PK_PREFIX,
    UNSETTLED_PK_PREFIX,
    UNSETTLED_SK_PREFIX,
    erasure_pk,
    key,
)

PENDING = "pending"
COMPLETED = "completed"
BATCH_WRITE_ITEMS = 25  # BatchWriteItem's limit
BATCH_GET_ITEMS = 100  # BatchGetItem's limit
MAX_BATCH_ATTEMPTS = 8

# What the status page and the summary call each kind of item, by the key that names it.
FAMILIES = (
    "events",
    "conversation_states",
    "unsettled_markers",
    "outbound_messages",
    "message_ids",
    "comments",
    "rate_states",
    "rescued_tokens",
    "webhook_deliveries",
    "accounts",
    "token_secrets",
)

Key = tuple[str, str]  # (pk, sk)
Requester = Literal["meta", "operator"]  # the data-deletion callback, or tools.accounts forget


def subject_hash(user_id: str) -> str:
    """What the audit keeps instead of the id: enough to answer "was this id's request honoured?" for someone
    who has the id, nothing that gives the id back to someone who does not."""
    return hashlib.sha256(f"igdm-erasure|{user_id}".encode()).hexdigest()


def family(pk: str, sk: str) -> str:
    if pk.startswith(CONVERSATION_PK_PREFIX):
        if sk.startswith(EVENT_SK_PREFIX):
            return "events"  # a tombstone too (igdm.store.event_items): a deleted message's, at its event's key
        if sk == CONVERSATION_STATE_SK:
            return "conversation_states"
        if sk.startswith(UNSETTLED_SK_PREFIX):
            return "unsettled_markers"
    for prefix, name in (
        (UNSETTLED_PK_PREFIX, "unsettled_markers"),
        ("OUT#", "outbound_messages"),
        (MESSAGE_ID_PK_PREFIX, "message_ids"),
        ("COMMENT#", "comments"),
        ("RATE#", "rate_states"),
        ("HOOK#", "webhook_deliveries"),
        (TOKEN_RESCUE_PK_PREFIX, "rescued_tokens"),
        (ACCOUNTS_PK, "accounts"),
    ):
        if pk.startswith(prefix):
            return name
    return "other"


def names(value: Any, user_id: str) -> bool:
    """Whether a stored value holds the id as a value of its own (an attribute, or anywhere in the JSON of an
    event): equality, never a substring, so an id that happens to be part of a longer one is not matched."""
    if isinstance(value, str):
        if value == user_id:
            return True
        if value[:1] in "{[":
            try:
                return names(json.loads(value), user_id)
            except ValueError:
                return False
        return False
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return str(value) == user_id
    if isinstance(value, dict):
        return any(names(k, user_id) or names(v, user_id) for k, v in value.items())
    if isinstance(value, list | tuple | set):
        return any(names(v, user_id) for v in value)
    return False


@dataclass(frozen=True)
class ErasureRequest:
    """The audit item. ``deleted`` counts items by family (FAMILIES), added to as the eraser goes."""

    code: str
    subject_hash: str
    requested_by: Requester
    requested_at: str  # ISO 8601
    status: str = PENDING
    deleted: dict[str, int] = field(default_factory=dict)
    completed_at: str | None = None
    attempts: int = 0

    @classmethod
    def new(cls, user_id: str, requested_by: Requester, *, now: float) -> "ErasureRequest":
        """A request with a fresh confirmation code: one no one can guess, as it is the only key to the status
        page."""
        return cls(
            code=secrets.token_urlsafe(18),
            subject_hash=subject_hash(user_id),
            requested_by=requested_by,
            requested_at=datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds"),
        )

    def to_item(self) -> dict[str, Any]:
        return {
            **key(erasure_pk(self.code), ERASURE_SK),
            **to_attributes(
                {
                    "confirmation_code": self.code,
                    "subject_hash": self.subject_hash,
                    "requested_by": self.requested_by,
                    "requested_at": self.requested_at,
                    "status": self.status,
                    "deleted": {name: self.deleted.get(name, 0) for name in FAMILIES},
                    "completed_at": self.completed_at,
                    "attempts": self.attempts,
                }
            ),
        }

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> "ErasureRequest":
        a = from_attributes(item)
        return cls(
            code=a["confirmation_code"],
            subject_hash=a["subject_hash"],
            requested_by="operator" if a["requested_by"] == "operator" else "meta",
            requested_at=a["requested_at"],
            status=a.get("status", PENDING),
            deleted={k: int(v) for k, v in (a.get("deleted") or {}).items() if int(v)},  # what was deleted
            completed_at=a.get("completed_at"),
            attempts=int(a.get("attempts") or 0),
        )


class ErasureRequests:
    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def add(self, request: ErasureRequest) -> None:
        self._client.put_item(
            TableName=self._table, Item=request.to_item(), ConditionExpression="attribute_not_exists(pk)"
        )

    def get(self, code: str) -> ErasureRequest | None:
        item = self._client.get_item(
            TableName=self._table, Key=key(erasure_pk(code), ERASURE_SK), ConsistentRead=True
        ).get("Item")
        return ErasureRequest.from_item(item) if item else None

    def started(self, code: str) -> None:
        self._update(code, "SET attempts = attempts + :one", {":one": 1})

    def deleted(self, code: str, counts: dict[str, int]) -> None:
        """Add to the counts (each family's attribute exists from add: a nested SET needs its map)."""
        counts = {name: int(n) for name, n in counts.items() if n and name in FAMILIES}  # a bool counts as 1
        if counts:
            # Every name through a placeholder: some families' names may be DynamoDB reserved words.
            names = {"#deleted": "deleted", **{f"#f{i}": name for i, name in enumerate(counts)}}
            sets = ", ".join(f"#deleted.#f{i} = #deleted.#f{i} + :f{i}" for i in range(len(counts)))
            self._update(code, f"SET {sets}", {f":f{i}": n for i, n in enumerate(counts.values())}, names)

    def complete(self, code: str, at: str) -> None:
        self._update(
            code, "SET #status = :done, completed_at = :at", {":done": COMPLETED, ":at": at}, {"#status": "status"}
        )

    def _update(self, code: str, expression: str, values: dict[str, Any], names: dict[str, str] | None = None) -> None:
        self._client.update_item(
            TableName=self._table,
            Key=key(erasure_pk(code), ERASURE_SK),
            UpdateExpression=expression,
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues=to_attributes(values),
            **({"ExpressionAttributeNames": names} if names else {}),
        )


class StoredData:
    """The eraser's reads and deletes. Every read of the table proper is strongly consistent; the index is
    not (an item written a moment ago may be missing from it: a request covers what was stored before it)."""

    def __init__(self, client: Any, table: str, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self._client = client
        self._table = table
        self._sleep = sleep

    def accounts(self) -> list[str]:
        return [
            from_attributes(item)["account_id"]
            for item in self._query(
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues=to_attributes({":pk": ACCOUNTS_PK}),
                ProjectionExpression="account_id",
                ConsistentRead=True,
            )
        ]

    def indexed(self, account_id: str, customer_id: str | None = None) -> list[tuple[Key, str]]:
        """The keys of the items naming ``account_id`` (and ``customer_id``), each with its customer."""
        condition, values = "#a = :a", {":a": account_id}
        names_ = {"#a": INDEX_ACCOUNT}
        if customer_id is not None:
            condition += " AND #c = :c"
            values[":c"] = customer_id
            names_["#c"] = INDEX_CUSTOMER
        found = []
        for item in self._query(
            IndexName=ACCOUNT_CUSTOMER_INDEX,
            KeyConditionExpression=condition,
            ExpressionAttributeNames=names_,
            ExpressionAttributeValues=to_attributes(values),
        ):
            a = from_attributes(item)
            found.append(((a[PARTITION_KEY], a[SORT_KEY]), a[INDEX_CUSTOMER]))
        return found

    def partition(self, pk: str, **filters: str) -> list[dict[str, Any]]:
        """Every item of one partition, whole (``filters``: attribute = value, applied after the read)."""
        request: dict[str, Any] = {"KeyConditionExpression": "pk = :pk", "ConsistentRead": True}
        values: dict[str, Any] = {":pk": pk}
        if filters:
            request["FilterExpression"] = " AND ".join(f"#f{i} = :f{i}" for i in range(len(filters)))
            request["ExpressionAttributeNames"] = {f"#f{i}": name for i, name in enumerate(filters)}
            values.update({f":f{i}": value for i, value in enumerate(filters.values())})
        request["ExpressionAttributeValues"] = to_attributes(values)
        return [from_attributes(item) for item in self._query(**request)]

    def existing(self, keys: Iterable[Key], projection: str = "pk, sk") -> list[dict[str, Any]]:
        """The items among ``keys`` that exist, with the attributes ``projection`` names."""
        wanted = sorted(set(keys))
        found: list[dict[str, Any]] = []
        for start in range(0, len(wanted), BATCH_GET_ITEMS):
            request: dict[str, Any] = {
                self._table: {
                    "Keys": [key(pk, sk) for pk, sk in wanted[start : start + BATCH_GET_ITEMS]],
                    "ConsistentRead": True,
                    "ProjectionExpression": projection,
                }
            }
            for answer in self._batches(self._client.batch_get_item, request, "UnprocessedKeys"):
                found.extend(from_attributes(i) for i in answer.get("Responses", {}).get(self._table, []))
        return found

    def delete(self, keys: Iterable[Key]) -> None:
        """Delete ``keys`` (25 per request, each at most once in it; an absent item is no error)."""
        wanted = sorted(set(keys))
        for start in range(0, len(wanted), BATCH_WRITE_ITEMS):
            request: dict[str, Any] = {
                self._table: [
                    {"DeleteRequest": {"Key": key(pk, sk)}} for pk, sk in wanted[start : start + BATCH_WRITE_ITEMS]
                ]
            }
            for _ in self._batches(self._client.batch_write_item, request, "UnprocessedItems"):
                pass

    def delete_if_present(self, pk: str, sk: str) -> bool:
        """One item that may not exist (a rate state, a rescued token, the account): whether it did. Never read:
        a rescued token is not the eraser's to see."""
        try:
            self._client.delete_item(TableName=self._table, Key=key(pk, sk), ConditionExpression="attribute_exists(pk)")
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def _query(self, **request: Any) -> Iterator[dict[str, Any]]:
        while True:
            answer = self._client.query(TableName=self._table, **request)
            yield from answer.get("Items", [])
            if "LastEvaluatedKey" not in answer:
                return
            request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]

    def _batches(self, call: Callable[..., dict[str, Any]], request: dict[str, Any], left: str) -> Iterator[Any]:
        """A batch request's answers, sending again what DynamoDB left unprocessed (throttling), with backoff."""
        for attempt in range(MAX_BATCH_ATTEMPTS):
            if attempt:
                self._sleep(min(0.05 * 2**attempt, 2.0))
            answer = call(RequestItems=request)
            yield answer
            request = answer.get(left) or {}
            if not request:
                return
        raise RuntimeError(f"DynamoDB left {left} after {MAX_BATCH_ATTEMPTS} attempts")
