"""Each outbound message's record in the table: its status, the never-twice guard, and its parts.

One item per idempotency key. Statuses only move forward:
    PENDING -> SENT -> DELIVERED -> READ      (the echo, then messaging_seen)
    PENDING -> FAILED                          (refused by us or by Meta, with the reason)
    PENDING -> UNKNOWN -> DELIVERED -> READ    (ambiguous outcome, settled by the echo, never resent)
A part is marked in flight before its request goes out. Finding a part still in flight means an
earlier attempt died after sending it, or while: the outcome is unknown, so it is not sent again.
"""

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from igdm.meta.echoes import Echo, Unsettled, fingerprint
from igdm.runtime.aws import error_code
from igdm.store.keys import (
    EVENT_SK_PREFIX,
    MESSAGE_ID_SK,
    OUTBOUND_SK,
    TTL_ATTRIBUTE,
    UNSETTLED_SK_PREFIX,
    conversation_pk,
    message_id_pk,
    outbound_pk,
    unsettled_sk,
)

PENDING = "PENDING"
SENT = "SENT"
DELIVERED = "DELIVERED"
READ = "READ"
FAILED = "FAILED"
UNKNOWN = "UNKNOWN"

# What each status may be reached from.
# Never from PENDING: a receipt for an earlier part of a message still being sent must not settle it
# (its later parts would never go). Receipts that come before SENT wait on the mid's item instead.
PREDECESSORS = {
    SENT: (PENDING,),
    DELIVERED: (SENT, UNKNOWN),
    READ: (SENT, DELIVERED, UNKNOWN),
    FAILED: (PENDING, UNKNOWN),  # from UNKNOWN only by settle_by_echo: an echo proved some parts, not all
    UNKNOWN: (PENDING,),
}


class RecordsUnavailable(Exception):
    """DynamoDB did not answer: the message is retried later."""


@dataclass(frozen=True)
class OutboundRecord:
    idempotency_key: str
    status: str
    account_id: str | None
    customer_id: str | None
    kind: str
    payload_hash: str
    parts_total: int
    parts_sent: int
    inflight_part: int | None
    refusals: int = 0  # error answers from Meta so far
    inflight_at: str | None = None  # when the part in flight went out (ISO 8601)
    message_ids: list[str] = field(default_factory=list)
    correlation_id: str | None = None
    callback_url: str | None = None
    callback_data: str | None = None
    reason: str | None = None
    detail: str | None = None
    error: dict[str, Any] | None = None

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> "OutboundRecord":
        def text(name: str) -> str | None:
            value = item.get(name)
            return value["S"] if value and "S" in value else None

        def number(name: str) -> int | None:
            value = item.get(name)
            return int(value["N"]) if value and "N" in value else None

        error = item.get("error", {}).get("S")
        return cls(
            idempotency_key=item["idempotency_key"]["S"],
            status=item["status"]["S"],
            account_id=text("account_id"),
            customer_id=text("customer_id"),
            kind=text("kind") or "",
            payload_hash=text("payload_hash") or "",
            parts_total=number("parts_total") or 0,
            parts_sent=number("parts_sent") or 0,
            inflight_part=number("inflight_part"),
            inflight_at=text("inflight_at") if "inflight_part" in item else None,
            refusals=number("refusals") or 0,
            message_ids=[v["S"] for v in item.get("message_ids", {}).get("L", [])],
            correlation_id=text("correlation_id"),
            callback_url=text("callback_url"),
            callback_data=text("callback_data"),
            reason=text("reason"),
            detail=text("detail"),
            error=_json_loads(error) if error else None,
        )


def _json_loads(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


class OutboundRecords:
    def __init__(self, client: Any, table: str, retention_days: int) -> None:
        self._client = client
        self._table = table
        self._retention_seconds = retention_days * 86_400

    # ------------------------------------------------------------------ the sender's side

    def claim(
        self,
        *,
        idempotency_key: str,
        payload_hash: str,
        kind: str,
        account_id: str | None,
        customer_id: str | None,
        parts_total: int,
        correlation_id: str | None,
        callback_url: str | None,
        callback_data: str | None,
    ) -> tuple[OutboundRecord, bool]:
        """Create the record (PENDING); or return the one that exists. True when this call created it."""
        now = datetime.now(UTC)
        item: dict[str, Any] = {
            **_key(idempotency_key),
            "idempotency_key": {"S": idempotency_key},
            "status": {"S": PENDING},
            "kind": {"S": kind},
            "payload_hash": {"S": payload_hash},
            "parts_total": {"N": str(parts_total)},
            "parts_sent": {"N": "0"},
            "message_ids": {"L": []},
            "created_at": {"S": now.isoformat()},
            "updated_at": {"S": now.isoformat()},
            TTL_ATTRIBUTE: {"N": str(int(now.timestamp()) + self._retention_seconds)},
        }
        for name, value in (
            ("account_id", account_id),
            ("customer_id", customer_id),
            ("correlation_id", correlation_id),
            ("callback_url", callback_url),
            ("callback_data", callback_data),
        ):
            if value is not None:
                item[name] = {"S": value}
        try:
            self._client.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(pk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            return OutboundRecord.from_item(item), True
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise RecordsUnavailable(f"DynamoDB put_item failed: {error_code(exc)}") from exc
            old: Any = exc.response.get("Item")
            existing = OutboundRecord.from_item(old) if old else self.get(idempotency_key)
            if existing is None:
                raise RecordsUnavailable("record vanished between its write and its read") from None
            return existing, False
        except BotoCoreError as exc:
            raise RecordsUnavailable(f"DynamoDB put_item failed: {type(exc).__name__}") from exc

    def get(self, idempotency_key: str) -> OutboundRecord | None:
        response = self._call("get_item", TableName=self._table, Key=_key(idempotency_key), ConsistentRead=True)
        item = response.get("Item")
        return OutboundRecord.from_item(item) if item else None

    def begin_part(self, idempotency_key: str, part: int) -> bool:
        """Mark part ``part`` in flight; False when the record is not waiting for exactly that part."""
        return (
            self._update(
                idempotency_key,
                "SET inflight_part = :part, inflight_at = :now, updated_at = :now ADD attempts :one",
                "#status = :pending AND parts_sent = :part AND attribute_not_exists(inflight_part)",
                {":part": {"N": str(part)}, ":pending": {"S": PENDING}, ":one": {"N": "1"}},
            )
            is not None
        )

    def part_sent(self, idempotency_key: str, part: int, message_id: str | None, last: bool) -> OutboundRecord | None:
        """Record that Meta accepted part ``part``; SENT when it was the last one."""
        expression = (
            "SET parts_sent = :next, message_ids = list_append(message_ids, :mid), updated_at = :now "
            "REMOVE inflight_part"
        )
        values: dict[str, Any] = {
            ":next": {"N": str(part + 1)},
            ":part": {"N": str(part)},
            ":mid": {"L": [{"S": message_id}] if message_id else []},
        }
        if last:
            expression = expression.replace("updated_at = :now", "updated_at = :now, #status = :sent, sent_at = :now")
            values[":sent"] = {"S": SENT}
        return self._update(idempotency_key, expression, "inflight_part = :part", values)

    def part_not_sent(self, idempotency_key: str, part: int) -> int:
        """Meta definitely did not take the part (an error answer): it may be tried again. Returns how many
        answers Meta has refused this message with so far (its retry limits count requests, not receives)."""
        record = self._update(
            idempotency_key,
            "SET updated_at = :now ADD refusals :one REMOVE inflight_part",
            "inflight_part = :part",
            {":part": {"N": str(part)}, ":one": {"N": "1"}},
        )
        return record.refusals if record is not None else 0

    def settle_by_echo(self, idempotency_key: str) -> OutboundRecord | None:
        """An UNKNOWN message whose uncertain part's echo came: DELIVERED when that part was its last, else
        FAILED partially_sent, since the parts after it were never sent (a resend would repeat the rest)."""
        record = self.get(idempotency_key)
        if record is None or record.status != UNKNOWN or record.parts_sent + 1 >= record.parts_total:
            return self.settle(idempotency_key, DELIVERED)
        return self.settle(
            idempotency_key,
            FAILED,
            reason="partially_sent",
            detail=f"parts 1 to {record.parts_sent + 1} of {record.parts_total} reached Instagram "
            "(the last of them after an uncertain answer); the rest were not sent",
        )

    def settle(
        self,
        idempotency_key: str,
        status: str,
        *,
        reason: str | None = None,
        detail: str | None = None,
        error: dict[str, Any] | None = None,
        conversation: tuple[str, str] | None = None,
    ) -> OutboundRecord | None:
        """Move to ``status`` if allowed from the current one; None when it was not (already there or past,
        or, with ``conversation`` (account, customer), when the message is not of that conversation)."""
        sets = ["#status = :status", "updated_at = :now", f"{status.lower()}_at = :now"]
        values: dict[str, Any] = {":status": {"S": status}}
        for name, value in (("reason", reason), ("detail", detail), ("error", _error_json(error))):
            if value is not None:
                sets.append(f"#{name} = :{name}")  # names, because some (error) are DynamoDB reserved words
                values[f":{name}"] = {"S": value[:MAX_TEXT_ATTRIBUTE]}
        allowed = PREDECESSORS[status]
        values.update({f":from{i}": {"S": s} for i, s in enumerate(allowed)})
        condition = f"#status IN ({', '.join(f':from{i}' for i in range(len(allowed)))})"
        if conversation is not None:
            # A private reply names a comment, so its record has no customer: any of its account's will do.
            condition += " AND account_id = :account AND (customer_id = :customer OR attribute_not_exists(customer_id))"
            values.update({":account": {"S": conversation[0]}, ":customer": {"S": conversation[1]}})
        remove = " REMOVE inflight_part" if status in (FAILED, UNKNOWN) else ""
        return self._update(idempotency_key, "SET " + ", ".join(sets) + remove, condition, values)

    def link_message_id(self, message_id: str, record: OutboundRecord) -> dict[str, Any]:
        """Point Meta's mid at the message; returns any echo or read of it that came first from the message's
        own conversation (one recorded from another conversation is not its receipt)."""
        now = datetime.now(UTC)
        values: dict[str, Any] = {
            ":key": {"S": record.idempotency_key},
            ":now": {"S": now.isoformat()},
            ":expires": {"N": str(int(now.timestamp()) + self._retention_seconds)},
        }
        expression = "SET idempotency_key = :key, updated_at = :now, #ttl = :expires"
        if record.customer_id:  # a private reply's customer is known only from its echo
            expression += ", conversation_id = :conversation"
            values[":conversation"] = {"S": f"{record.account_id}:{record.customer_id}"}
        response = self._call(
            "update_item",
            TableName=self._table,
            Key={"pk": {"S": message_id_pk(message_id)}, "sk": {"S": MESSAGE_ID_SK}},
            UpdateExpression=expression,
            ExpressionAttributeNames={"#ttl": TTL_ATTRIBUTE},
            ExpressionAttributeValues=values,
            ReturnValues="ALL_OLD",
        )
        before: dict[str, Any] = response.get("Attributes", {})
        scope = before.get("conversation_id", {}).get("S")
        account, _, customer = (scope or "").partition(":")
        return before if scope is None or in_conversation(record, account, customer) else {}

    def unsettled(self, account_id: str, customer_id: str) -> list[Unsettled]:
        """The conversation's UNKNOWN messages, each with its uncertain part's fingerprint and attempt."""
        response = self._call(
            "query",
            TableName=self._table,
            ConsistentRead=True,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={
                ":pk": {"S": conversation_pk(account_id, customer_id)},
                ":prefix": {"S": UNSETTLED_SK_PREFIX},
            },
        )
        return [_unsettled(i) for i in response.get("Items", [])]

    def stored_echoes(self, account_id: str, customer_id: str, since_ms: int) -> list[Echo]:
        """The echoes of the gateway's own app stored in a conversation since ``since_ms``: the echo of a
        send whose answer never came usually arrives before the sender gives up waiting."""
        query: dict[str, Any] = {
            "TableName": self._table,
            "ConsistentRead": True,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "FilterExpression": "#kind = :echo AND occurred_at >= :since",
            "ExpressionAttributeNames": {"#kind": "kind", "#event": "event"},
            "ExpressionAttributeValues": {
                ":pk": {"S": conversation_pk(account_id, customer_id)},
                ":prefix": {"S": EVENT_SK_PREFIX},
                ":echo": {"S": "echo"},
                ":since": {"N": str(since_ms)},
            },
            "ProjectionExpression": "#event, occurred_at",
        }
        found: list[Echo] = []
        while True:
            page = self._call("query", **query)
            for item in page.get("Items", []):
                event = _json_loads(item["event"]["S"]) or {}
                attachments = event.get("attachments") or [{}]
                if event.get("message_id") and event.get("sent_by_gateway") is True:
                    found.append(
                        Echo(
                            event["message_id"],
                            fingerprint(event.get("text"), attachments[0].get("type")),
                            event.get("metadata"),
                            int(item["occurred_at"]["N"]),
                        )
                    )
            if "LastEvaluatedKey" not in page:
                return sorted(found, key=lambda e: e.occurred_ms)
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def claim_echo(self, message_id: str, idempotency_key: str) -> bool:
        """Link an echo's mid to a message whose outcome was unknown, unless another message has it."""
        now = datetime.now(UTC)
        return (
            self._conditional_update(
                {
                    "TableName": self._table,
                    "Key": {"pk": {"S": message_id_pk(message_id)}, "sk": {"S": MESSAGE_ID_SK}},
                    "UpdateExpression": (
                        "SET idempotency_key = :key, updated_at = :now, #ttl = if_not_exists(#ttl, :expires)"
                    ),
                    "ConditionExpression": "attribute_not_exists(idempotency_key) OR idempotency_key = :key",
                    "ExpressionAttributeNames": {"#ttl": TTL_ATTRIBUTE},
                    "ExpressionAttributeValues": {
                        ":key": {"S": idempotency_key},
                        ":now": {"S": now.isoformat()},
                        ":expires": {"N": str(int(now.timestamp()) + self._retention_seconds)},
                    },
                }
            )
            is not None
        )

    def remove_unsettled(self, account_id: str, customer_id: str, idempotency_key: str) -> None:
        self._call(
            "delete_item",
            TableName=self._table,
            Key={"pk": {"S": conversation_pk(account_id, customer_id)}, "sk": {"S": unsettled_sk(idempotency_key)}},
        )

    def add_unsettled(self, record: OutboundRecord, waiting: Unsettled) -> None:
        """An UNKNOWN message waits in its conversation for an echo that matches it."""
        if not record.account_id or not record.customer_id:
            return
        now = datetime.now(UTC)
        item: dict[str, Any] = {
            "pk": {"S": conversation_pk(record.account_id, record.customer_id)},
            "sk": {"S": unsettled_sk(record.idempotency_key)},
            "idempotency_key": {"S": record.idempotency_key},
            "fingerprint": {"S": waiting.fingerprint},
            "started_ms": {"N": str(waiting.started_ms)},
            "ended_ms": {"N": str(waiting.ended_ms)},
            "attempted_at": {"S": now.isoformat()},
            TTL_ATTRIBUTE: {"N": str(int(now.timestamp()) + 7 * 86_400)},
        }
        if waiting.marker:
            item["marker"] = {"S": waiting.marker}
        self._call("put_item", TableName=self._table, Item=item)

    # ------------------------------------------------------------------ the webhook's side

    def receipt(self, message_id: str, kind: str, at_ms: int, account_id: str, customer_id: str) -> str | None:
        """An echo (kind delivered) or a read of ``message_id`` in a conversation: the idempotency key of our
        message it is about, if we know it yet. Recorded either way, so a send recorded later still finds it;
        but a receipt from another conversation than the mid's is not recorded, and answers None."""
        attribute = "delivered_at" if kind == DELIVERED else "read_at"
        now = datetime.now(UTC)
        conversation = f"{account_id}:{customer_id}"
        response = self._conditional_update(
            {
                "TableName": self._table,
                "Key": {"pk": {"S": message_id_pk(message_id)}, "sk": {"S": MESSAGE_ID_SK}},
                "UpdateExpression": f"SET {attribute} = if_not_exists({attribute}, :at), "
                "conversation_id = if_not_exists(conversation_id, :conversation), updated_at = :now, "
                "#ttl = :expires",
                "ConditionExpression": "attribute_not_exists(conversation_id) OR conversation_id = :conversation",
                "ExpressionAttributeNames": {"#ttl": TTL_ATTRIBUTE},
                "ExpressionAttributeValues": {
                    ":at": {"N": str(at_ms)},
                    ":conversation": {"S": conversation},
                    ":now": {"S": now.isoformat()},
                    ":expires": {"N": str(int(now.timestamp()) + self._retention_seconds)},
                },
                "ReturnValues": "ALL_NEW",
            }
        )
        key = (response or {}).get("Attributes", {}).get("idempotency_key", {}).get("S")
        return key if isinstance(key, str) else None

    # ------------------------------------------------------------------ plumbing

    def _update(
        self, idempotency_key: str, expression: str, condition: str, values: dict[str, Any]
    ) -> OutboundRecord | None:
        names = {placeholder: placeholder[1:] for placeholder in re.findall(r"#\w+", expression + condition)}
        request: dict[str, Any] = {
            "TableName": self._table,
            "Key": _key(idempotency_key),
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ExpressionAttributeValues": {**values, ":now": {"S": datetime.now(UTC).isoformat()}},
            "ReturnValues": "ALL_NEW",
        }
        if names:
            request["ExpressionAttributeNames"] = names
        response = self._conditional_update(request)
        return OutboundRecord.from_item(response["Attributes"]) if response is not None else None

    def _conditional_update(self, request: dict[str, Any]) -> dict[str, Any] | None:
        """UpdateItem's response; None when its condition did not hold."""
        try:
            response: dict[str, Any] = self._client.update_item(**request)
            return response
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return None
            raise RecordsUnavailable(f"DynamoDB update_item failed: {error_code(exc)}") from exc
        except BotoCoreError as exc:
            raise RecordsUnavailable(f"DynamoDB update_item failed: {type(exc).__name__}") from exc

    def _call(self, operation: str, **kwargs: Any) -> Any:
        try:
            return getattr(self._client, operation)(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise RecordsUnavailable(f"DynamoDB {operation} failed: {error_code(exc)}") from exc


MAX_TEXT_ATTRIBUTE = 2000


def _error_json(error: dict[str, Any] | None) -> str | None:
    """Meta's error as JSON that fits the attribute whole: a long message is shortened, never the JSON."""
    if not error:
        return None
    text = json.dumps(error, ensure_ascii=False)
    if len(text) > MAX_TEXT_ATTRIBUTE and isinstance(error.get("message"), str):
        # Cut by the JSON's excess; what the message's escaping adds is made up by the loop.
        message = error["message"]
        while len(text) > MAX_TEXT_ATTRIBUTE and message:
            message = message[: max(len(message) - (len(text) - MAX_TEXT_ATTRIBUTE) - 1, 0)]
            text = json.dumps({**error, "message": message + "…"}, ensure_ascii=False)
    return (
        text
        if len(text) <= MAX_TEXT_ATTRIBUTE
        else json.dumps({k: error.get(k) for k in ("http_status", "code", "subcode", "type", "fbtrace_id")})
    )


def _key(idempotency_key: str) -> dict[str, Any]:
    return {"pk": {"S": outbound_pk(idempotency_key)}, "sk": {"S": OUTBOUND_SK}}


def in_conversation(record: OutboundRecord, account_id: str, customer_id: str) -> bool:
    """Whether a receipt in this conversation may be about the record's message (a private reply's
    record names no customer: any of its account's)."""
    return record.account_id == account_id and record.customer_id in (None, customer_id)


LEGACY_ATTEMPT_MS = 600_000  # items written before attempts were recorded: the sender's echo lookback


def _unsettled(item: dict[str, Any]) -> Unsettled:
    ended = item.get("ended_ms", {}).get("N")
    if ended is None:
        ended_ms = int(datetime.fromisoformat(item["attempted_at"]["S"]).timestamp() * 1000)
        started_ms = ended_ms - LEGACY_ATTEMPT_MS
    else:
        ended_ms, started_ms = int(ended), int(item["started_ms"]["N"])
    return Unsettled(
        item["idempotency_key"]["S"], item["fingerprint"]["S"], item.get("marker", {}).get("S"), started_ms, ended_ms
    )
