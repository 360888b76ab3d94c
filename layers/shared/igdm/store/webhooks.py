"""Event webhooks (docs/http-api.md, "Event webhooks"): who wants which events, and what became of each delivery.

- A registration: WEBHOOKS / HOOK#<id>, the target URL, the event kinds it wants ("*" for all), an optional
  dialect (sinch: Sinch's MESSAGE_INBOUND, EVENT_INBOUND, UNSUPPORTED and MESSAGE_DELIVERY shapes; cm: CM.com's
  status reports) and, for a key restricted to one account, that account.
- A delivery: HOOK#<id> / DLV#<delivery id>, one per event and registration, kept 30 days (TTL): the exact body
  POSTed, its state (pending, delivered, failed), how many attempts and the last answer. The delivery id begins
  with the stream record's time in milliseconds (DynamoDB gives it to the second; within one second the log orders
by event id), so the log reads newest first with one Query.

The fan-out (functions/fanout) records a delivery before it queues it; the callback function records each attempt;
the API lists the log and redelivers from it.
"""

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from igdm.runtime.aws import error_code
from igdm.store.attributes import from_attributes, to_attributes
from igdm.store.keys import (
    ACCOUNT_CUSTOMER_INDEX,
    DELIVERIES_PK_PREFIX,
    DELIVERY_SK_PREFIX,
    INDEX_ACCOUNT,
    INDEX_CUSTOMER,
    NO_PARTY,
    TTL_ATTRIBUTE,
    WEBHOOKS_PK,
    deliveries_pk,
    delivery_sk,
    key,
    webhook_sk,
)

DELIVERY_LOG_DAYS = 30
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
ALL_KINDS = "*"


@dataclass(frozen=True)
class Webhook:
    webhook_id: str
    url: str
    kinds: tuple[str, ...]
    dialect: str | None
    account_id: str | None  # only this account's events; None: every account's
    created_at: str
    created_by: str  # the API key's id

    @classmethod
    def new(
        cls, url: str, kinds: tuple[str, ...], dialect: str | None, account_id: str | None, key_id: str
    ) -> "Webhook":
        return cls(secrets.token_hex(6), url, kinds, dialect, account_id, _now(), key_id)

    def wants(self, event: dict[str, Any]) -> bool:
        if self.account_id is not None and event.get("account_id") != self.account_id:
            return False
        return ALL_KINDS in self.kinds or event.get("kind") in self.kinds

    def view(self) -> dict[str, Any]:
        return {
            "webhook_id": self.webhook_id,
            "url": self.url,
            "kinds": list(self.kinds),
            "dialect": self.dialect,
            "account_id": self.account_id,
            "created_at": self.created_at,
        }

    def to_item(self) -> dict[str, Any]:
        return {
            **key(WEBHOOKS_PK, webhook_sk(self.webhook_id)),
            **to_attributes({**self.view(), "created_by": self.created_by}),
        }

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> "Webhook":
        a = from_attributes(item)
        return cls(
            a["webhook_id"],
            a["url"],
            tuple(a["kinds"]),
            a.get("dialect"),
            a.get("account_id"),
            a["created_at"],
            a.get("created_by", ""),
        )


@dataclass(frozen=True)
class Delivery:
    webhook_id: str
    delivery_id: str
    event_id: str
    kind: str
    conversation_id: str
    body: str
    account_id: str | None = None  # with the customer, what puts the delivery in the AccountCustomer index:
    customer_id: str | None = None  # an erasure finds and deletes the bodies that name the customer
    message_id: str | None = None  # the message it is or is about: scrubbed when the customer deletes it

    @staticmethod
    def id_of(at_ms: int, event_id: str, part: int | None = None) -> str:
        """Sorts by time; the same event (and part) at the same moment is the same delivery however often the
        fan-out sees it again."""
        return f"{at_ms:013d}-{event_id}" + (f".{part}" if part is not None else "")

    def to_item(self, now: datetime) -> dict[str, Any]:
        return {
            **key(deliveries_pk(self.webhook_id), delivery_sk(self.delivery_id)),
            **to_attributes(
                {
                    "webhook_id": self.webhook_id,
                    "delivery_id": self.delivery_id,
                    "event_id": self.event_id,
                    "kind": self.kind,
                    "conversation_id": self.conversation_id,
                    "body": self.body,
                    "state": PENDING,
                    "attempts": 0,
                    "account_id": self.account_id or NO_PARTY,
                    "customer_id": self.customer_id or NO_PARTY,
                    "message_id": self.message_id,
                    "created_at": now.isoformat(),
                    TTL_ATTRIBUTE: int(now.timestamp()) + DELIVERY_LOG_DAYS * 86_400,
                }
            ),
        }


class Webhooks:
    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    # ------------------------------------------------------------------ registrations

    def add(self, hook: Webhook) -> None:
        self._client.put_item(
            TableName=self._table, Item=hook.to_item(), ConditionExpression="attribute_not_exists(pk)"
        )

    def get(self, webhook_id: str) -> Webhook | None:
        item = self._client.get_item(TableName=self._table, Key=key(WEBHOOKS_PK, webhook_sk(webhook_id))).get("Item")
        return Webhook.from_item(item) if item else None

    def all(self) -> list[Webhook]:
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": to_attributes({":pk": WEBHOOKS_PK}),
        }
        found: list[Webhook] = []
        while True:
            answer = self._client.query(**request)
            found.extend(Webhook.from_item(item) for item in answer.get("Items", []))
            if "LastEvaluatedKey" not in answer:
                return found
            request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]

    def delete(self, webhook_id: str) -> bool:
        """Deletes the registration (its delivery log expires with its TTL); False when there was none."""
        answer = self._client.delete_item(
            TableName=self._table, Key=key(WEBHOOKS_PK, webhook_sk(webhook_id)), ReturnValues="ALL_OLD"
        )
        return bool(answer.get("Attributes"))

    # ------------------------------------------------------------------ the delivery log

    def record(self, delivery: Delivery, now: datetime) -> bool:
        """The delivery, pending; False when it is recorded already (the fan-out saw its event again)."""
        try:
            self._client.put_item(
                TableName=self._table, Item=delivery.to_item(now), ConditionExpression="attribute_not_exists(pk)"
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def attempted(self, webhook_id: str, delivery_id: str, state: str, *, http_status: int | None, detail: str) -> None:
        """One attempt's outcome: delivered, failed for good, or still pending (to be retried)."""
        now = _now()
        values: dict[str, Any] = {
            ":state": state,
            ":one": 1,
            ":now": now,
            ":detail": detail[:500],
            ":status": http_status,
        }
        expression = "SET #state = :state, last_attempt_at = :now, last_detail = :detail ADD attempts :one"
        if http_status is not None:
            expression = expression.replace(" ADD", ", last_http_status = :status ADD")
        else:
            values.pop(":status")
        if state == DELIVERED:
            expression = expression.replace(" ADD", ", delivered_at = :now ADD")
        self._client.update_item(
            TableName=self._table,
            Key=key(deliveries_pk(webhook_id), delivery_sk(delivery_id)),
            UpdateExpression=expression,
            ConditionExpression="attribute_exists(pk)",  # a log expired or deleted is not made again
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues=to_attributes(values),
        )

    def redelivering(self, webhook_id: str, delivery_id: str) -> int:
        """Marks the delivery pending again for a redelivery; which redelivery this is (1, 2, ...)."""
        answer = self._client.update_item(
            TableName=self._table,
            Key=key(deliveries_pk(webhook_id), delivery_sk(delivery_id)),
            UpdateExpression="SET #state = :pending ADD redeliveries :one",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues=to_attributes({":pending": PENDING, ":one": 1}),
            ReturnValues="UPDATED_NEW",
        )
        return int(from_attributes(answer["Attributes"])["redeliveries"])

    def scrub_message(self, account_id: str, customer_id: str, message_id: str) -> int:
        """The customer deleted a message: every logged delivery of it keeps its ids and times, not its content
        (a canonical event as the stored one is scrubbed, any other body a stub). Found through the index (the
        deliveries of this conversation), read in batches; how many were scrubbed."""
        keys: list[dict[str, Any]] = []
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": ACCOUNT_CUSTOMER_INDEX,
            "KeyConditionExpression": "#a = :a AND #c = :c",
            "FilterExpression": "begins_with(pk, :hook)",
            "ExpressionAttributeNames": {"#a": INDEX_ACCOUNT, "#c": INDEX_CUSTOMER},
            "ExpressionAttributeValues": to_attributes(
                {":a": account_id, ":c": customer_id, ":hook": DELIVERIES_PK_PREFIX}
            ),
        }
        while True:
            answer = self._client.query(**request)
            keys.extend({"pk": i["pk"], "sk": i["sk"]} for i in answer.get("Items", []))
            if "LastEvaluatedKey" not in answer:
                break
            request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
        scrubbed = 0
        for start in range(0, len(keys), 100):
            wanted: dict[str, Any] = {
                self._table: {"Keys": keys[start : start + 100], "ProjectionExpression": "pk, sk, message_id, body"}
            }
            while wanted:
                answer = self._client.batch_get_item(RequestItems=wanted)
                for item in answer.get("Responses", {}).get(self._table, []):
                    found = from_attributes(item)
                    if found.get("message_id") == message_id:
                        self._scrub(found["pk"], found["sk"], without_content_body(found["body"], message_id))
                        scrubbed += 1
                wanted = answer.get("UnprocessedKeys") or {}
        return scrubbed

    def _scrub(self, pk: str, sk: str, body: str) -> None:
        try:
            self._client.update_item(
                TableName=self._table,
                Key=key(pk, sk),
                UpdateExpression="SET body = :body, content_deleted = :yes",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues=to_attributes({":body": body, ":yes": True}),
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":  # expired meanwhile: nothing to scrub
                raise

    def delivery(self, webhook_id: str, delivery_id: str) -> dict[str, Any] | None:
        item = self._client.get_item(
            TableName=self._table, Key=key(deliveries_pk(webhook_id), delivery_sk(delivery_id)), ConsistentRead=True
        ).get("Item")
        return _delivery_view(from_attributes(item)) if item else None

    def deliveries(self, webhook_id: str, limit: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """The log, newest first; and the next page's cursor (None on the last)."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": to_attributes(
                {":pk": deliveries_pk(webhook_id), ":prefix": DELIVERY_SK_PREFIX}
            ),
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if cursor is not None:
            request["ExclusiveStartKey"] = key(deliveries_pk(webhook_id), delivery_sk(_decode(cursor)))
        answer = self._client.query(**request)
        found = [_delivery_view(from_attributes(item)) for item in answer.get("Items", [])]
        last = answer.get("LastEvaluatedKey")
        following = _encode(from_attributes(last)["sk"].removeprefix(DELIVERY_SK_PREFIX)) if last else None
        return found, following


def _delivery_view(a: dict[str, Any]) -> dict[str, Any]:
    return {
        "delivery_id": a["delivery_id"],
        "event_id": a["event_id"],
        "kind": a["kind"],
        "conversation_id": a["conversation_id"],
        "state": a["state"],
        "attempts": a.get("attempts", 0),
        "redeliveries": a.get("redeliveries", 0),
        "last_http_status": a.get("last_http_status"),
        "last_detail": a.get("last_detail"),
        "created_at": a["created_at"],
        "last_attempt_at": a.get("last_attempt_at"),
        "delivered_at": a.get("delivered_at"),
        "content_deleted": bool(a.get("content_deleted")),
        "body": a["body"],
    }


def without_content_body(body: str, message_id: str) -> str:
    """A logged body without what the customer deleted: the gateway's event as the stored one is scrubbed
    (igdm.inbound.ingest.without_content), a vendor's shape replaced by a stub naming the message."""
    from igdm.contracts.events import InboundEvent
    from igdm.contracts.serialized import SerializedEvent
    from igdm.inbound.ingest import without_content

    try:
        return SerializedEvent.of(without_content(InboundEvent.model_validate_json(body))).body
    except ValueError:
        return as_json({"message_id": message_id, "content_deleted": True})


def _encode(delivery_id: str) -> str:
    return base64.urlsafe_b64encode(delivery_id.encode()).decode().rstrip("=")


def _decode(cursor: str) -> str:
    try:
        decoded = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError("cursor: not one this API handed out") from exc
    if not decoded or len(decoded) > 200 or not decoded[:13].isdigit():
        raise ValueError("cursor: not one this API handed out")
    return decoded


def _now() -> str:
    return datetime.now(UTC).isoformat()


def job(hook: Webhook, delivery: Delivery, *, redelivery: str = "") -> tuple[dict[str, Any], str, str]:
    """The callback queue's job for a delivery, its message group (the registration and the conversation: in
    order per conversation, one slow conversation holding up no other) and its deduplication id."""

    # A delivery in parts (Sinch's one message per attachment) gives each part its own id on the wire
    # (X-Gateway-Event-Id, webhook-id): a receiver deduplicating on it must not drop the second part.
    part = delivery.delivery_id.partition("-")[2].removeprefix(delivery.event_id)
    body = {
        "url": hook.url,
        "event_id": delivery.event_id + part,
        "body": delivery.body,
        "hook": {"webhook_id": hook.webhook_id, "delivery_id": delivery.delivery_id},
    }
    conversation = hashlib.sha256(delivery.conversation_id.encode()).hexdigest()[:32]
    dedup = delivery.delivery_id + (f".r{redelivery}" if redelivery else "")  # a redelivery is a new message
    return body, f"hook:{hook.webhook_id}:{conversation}", hashlib.sha256(dedup.encode()).hexdigest()


def as_json(document: Any) -> str:
    return json.dumps(document, ensure_ascii=True, separators=(",", ":"))
