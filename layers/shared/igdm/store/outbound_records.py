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
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from igdm.meta.echoes import Echo, Unsettled, fingerprint
from igdm.runtime.aws import backoff, error_code
from igdm.runtime.unavailable import RecordsUnavailable as RecordsUnavailable
from igdm.store.attributes import from_attributes, to_attributes
from igdm.store.keys import (
    EVENT_SK_PREFIX,
    MESSAGE_ID_PK_PREFIX,
    MESSAGE_ID_SK,
    NO_PARTY,
    OUTBOUND_SK,
    TTL_ATTRIBUTE,
    UNSETTLED_PK_PREFIX,
    UNSETTLED_SK_PREFIX,
    conversation_of,
    conversation_pk,
    key,
    message_id_pk,
    outbound_pk,
    unsettled_pk,
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
    refusals: int = 0  # error answers from Meta for the part being sent
    inflight_at: str | None = None  # when the part in flight went out (ISO 8601)
    message_ids: list[str] = field(default_factory=list)
    correlation_id: str | None = None
    callback_url: str | None = None
    callback_data: str | None = None
    reason: str | None = None
    detail: str | None = None
    error: dict[str, Any] | None = None
    dialect: str | None = None  # the vendor format its callbacks take (igdm.contracts.dialects); None: ours
    sent_at: str | None = None  # when it became SENT (ISO 8601); written by part_sent only, never by claim

    def to_item(self, *, created_at: datetime, expires_at: int) -> dict[str, Any]:
        """The record's item; created_at is also its updated_at (as claim writes it). A later update adds
        attributes the record does not carry (attempts, when each status was reached)."""
        return {
            **_key(self.idempotency_key),
            **to_attributes(
                {
                    "idempotency_key": self.idempotency_key,
                    "status": self.status,
                    "kind": self.kind,
                    "payload_hash": self.payload_hash,
                    "parts_total": self.parts_total,
                    "parts_sent": self.parts_sent,
                    "message_ids": self.message_ids,
                    "created_at": created_at.isoformat(),
                    "updated_at": created_at.isoformat(),
                    TTL_ATTRIBUTE: expires_at,
                    # Both always, NO_PARTY for a missing one: the AccountCustomer index then holds every record, so
                    # an erasure finds a private reply (no customer) and a record that named no account.
                    "account_id": self.account_id or NO_PARTY,
                    "customer_id": self.customer_id or NO_PARTY,
                    "correlation_id": self.correlation_id,
                    "callback_url": self.callback_url,
                    "callback_data": self.callback_data,
                    "dialect": self.dialect,
                    "inflight_part": self.inflight_part,
                    "inflight_at": self.inflight_at,
                    "refusals": self.refusals or None,  # ADD creates it at the first refusal; absent is none
                    "reason": self.reason,
                    "detail": self.detail,
                    "error": _error_json(self.error),
                }
            ),
        }

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> "OutboundRecord":
        attributes = from_attributes(item)
        error = attributes.get("error")
        return cls(
            idempotency_key=attributes["idempotency_key"],
            status=attributes["status"],
            account_id=_party(attributes.get("account_id")),
            customer_id=_party(attributes.get("customer_id")),
            kind=attributes.get("kind") or "",
            payload_hash=attributes.get("payload_hash") or "",
            parts_total=attributes.get("parts_total") or 0,
            parts_sent=attributes.get("parts_sent") or 0,
            inflight_part=attributes.get("inflight_part"),
            # Left behind by an attempt that ended (only inflight_part is removed): no longer in flight.
            inflight_at=attributes.get("inflight_at") if "inflight_part" in attributes else None,
            refusals=attributes.get("refusals") or 0,
            message_ids=list(attributes.get("message_ids", [])),
            correlation_id=attributes.get("correlation_id"),
            callback_url=attributes.get("callback_url"),
            callback_data=attributes.get("callback_data"),
            dialect=attributes.get("dialect"),
            reason=attributes.get("reason"),
            detail=attributes.get("detail"),
            error=_json_loads(error) if error else None,
            sent_at=attributes.get("sent_at"),
        )


@dataclass(frozen=True)
class MessageIdItem:
    """Meta's mid of a part we sent (MID#<mid> / MID): which message it belongs to, and the receipts (echo,
    read) recorded for it, from the conversation they came from, also before its send was recorded. Only
    ever written by updates (link_message_id, claim_echo, receipt)."""

    message_id: str
    idempotency_key: str | None = None  # None until the send (or an echo that settled it) is recorded
    conversation_id: str | None = None  # "<account>:<customer>": the first receipt's, or the message's
    delivered_at: int | None = None  # epoch milliseconds of its echo
    read_at: int | None = None  # epoch milliseconds of the read
    updated_at: str | None = None  # ISO 8601
    expires_at: int | None = None  # TTL, epoch seconds

    def to_item(self) -> dict[str, Any]:
        return {
            **key(message_id_pk(self.message_id), MESSAGE_ID_SK),
            **to_attributes(
                {
                    "idempotency_key": self.idempotency_key,
                    "conversation_id": self.conversation_id,
                    "delivered_at": self.delivered_at,
                    "read_at": self.read_at,
                    "updated_at": self.updated_at,
                    TTL_ATTRIBUTE: self.expires_at,
                }
            ),
        }

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> "MessageIdItem":
        attributes = from_attributes(item)
        return cls(
            message_id=attributes["pk"].removeprefix(MESSAGE_ID_PK_PREFIX),
            idempotency_key=attributes.get("idempotency_key"),
            conversation_id=attributes.get("conversation_id"),
            delivered_at=attributes.get("delivered_at"),
            read_at=attributes.get("read_at"),
            updated_at=attributes.get("updated_at"),
            expires_at=attributes.get(TTL_ATTRIBUTE),
        )


LEGACY_ATTEMPT_MS = 600_000  # items written before attempts were recorded: the sender's echo lookback
UNSETTLED_SECONDS = 7 * 86_400  # how long a marker is kept: an echo comes within seconds, or never


@dataclass(frozen=True)
class UnsettledMarker:
    """An UNKNOWN message waiting in its conversation's partition (CONV#<account>#<customer> /
    UNSETTLED#<idempotency key>) for an echo that matches it; and the same in its account's partition
    (UNSETTLED#<account> / UNSETTLED#<idempotency key>), where the reconciler finds it."""

    account_id: str
    customer_id: str
    unsettled: Unsettled
    attempted_at: str  # ISO 8601, when the marker was written
    expires_at: int  # TTL, epoch seconds

    def to_item(self, *, in_account: bool = False) -> dict[str, Any]:
        """The conversation's item; with ``in_account``, the account's (which names the customer)."""
        pk = unsettled_pk(self.account_id) if in_account else conversation_pk(self.account_id, self.customer_id)
        return {
            **key(pk, unsettled_sk(self.unsettled.idempotency_key)),
            **to_attributes(
                {
                    "customer_id": self.customer_id if in_account else None,
                    "idempotency_key": self.unsettled.idempotency_key,
                    "fingerprint": self.unsettled.fingerprint,
                    "started_ms": self.unsettled.started_ms,
                    "ended_ms": self.unsettled.ended_ms,
                    "attempted_at": self.attempted_at,
                    TTL_ATTRIBUTE: self.expires_at,
                    "marker": self.unsettled.marker or None,
                }
            ),
        }

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> "UnsettledMarker":
        attributes = from_attributes(item)
        if attributes["pk"].startswith(UNSETTLED_PK_PREFIX):
            account_id, customer_id = attributes["pk"].removeprefix(UNSETTLED_PK_PREFIX), attributes["customer_id"]
        else:
            account_id, customer_id = conversation_of(attributes["pk"])
        ended_ms = attributes.get("ended_ms")
        if ended_ms is None:  # written before attempts were recorded: the lookback before it was written
            ended_ms = int(datetime.fromisoformat(attributes["attempted_at"]).timestamp() * 1000)
            started_ms = ended_ms - LEGACY_ATTEMPT_MS
        else:
            started_ms = attributes["started_ms"]
        return cls(
            account_id=account_id,
            customer_id=customer_id or "",
            unsettled=Unsettled(
                attributes["idempotency_key"],
                attributes["fingerprint"],
                attributes.get("marker"),
                started_ms,
                ended_ms,
            ),
            attempted_at=attributes["attempted_at"],
            expires_at=attributes[TTL_ATTRIBUTE],
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
        dialect: str | None = None,
        inflight_at: str | None = None,
    ) -> tuple[OutboundRecord, bool]:
        """Create the record (PENDING); or return the one that exists. True when this call created it.

        With ``inflight_at`` (ISO 8601), the record is created with its first part in flight since then, as
        begin_part(0) would leave it: one write where the claim and the mark were two. The sender claims so
        only right before that part's request goes out, after every check. A crash before this write leaves
        nothing (the next receive starts over, and nothing was sent); a crash after it leaves the part in
        flight, exactly as a crash after begin_part did: the message becomes UNKNOWN, never sent again. The
        state between the two old writes (claimed, nothing in flight) is simply skipped."""
        now = datetime.now(UTC)
        record = OutboundRecord(
            idempotency_key=idempotency_key,
            status=PENDING,
            account_id=account_id,
            customer_id=customer_id,
            kind=kind,
            payload_hash=payload_hash,
            parts_total=parts_total,
            parts_sent=0,
            inflight_part=None if inflight_at is None else 0,
            inflight_at=inflight_at,
            correlation_id=correlation_id,
            callback_url=callback_url,
            callback_data=callback_data,
            dialect=dialect,
        )
        item = record.to_item(created_at=now, expires_at=int(now.timestamp()) + self._retention_seconds)
        if inflight_at is not None:
            item.update(to_attributes({"attempts": 1}))  # begin_part's ADD attempts 1
        try:
            self._client.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(pk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            return record, True
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

    def view(self, idempotency_key: str) -> dict[str, Any] | None:
        """What a producer may see of a message (GET /v1/messages/{key}): its record without the gateway's own
        bookkeeping, and its status history from the time each status was reached."""
        item = self._call("get_item", TableName=self._table, Key=_key(idempotency_key), ConsistentRead=True).get("Item")
        if not item:
            return None
        record, attributes = OutboundRecord.from_item(item), from_attributes(item)
        history = sorted(
            ({"status": status, "at": attributes[field]} for status, field in _MOMENTS if attributes.get(field)),
            key=lambda step: step["at"],
        )
        return {
            "idempotency_key": record.idempotency_key,
            "status": record.status,
            "kind": record.kind,
            "account_id": record.account_id,
            "customer_id": record.customer_id,
            "correlation_id": record.correlation_id,
            "callback_data": record.callback_data,
            "parts_total": record.parts_total,
            "parts_sent": record.parts_sent,
            "message_ids": record.message_ids,
            "reason": record.reason,
            "detail": record.detail,
            "error": record.error,
            "created_at": attributes.get("created_at"),
            "updated_at": attributes.get("updated_at"),
            "history": history,
        }

    def begin_part(self, idempotency_key: str, part: int) -> bool:
        """Mark part ``part`` in flight; False when the record is not waiting for exactly that part."""
        return (
            self._update(
                idempotency_key,
                "SET inflight_part = :part, inflight_at = :now, updated_at = :now ADD attempts :one",
                "#status = :pending AND parts_sent = :part AND attribute_not_exists(inflight_part)",
                {":part": part, ":pending": PENDING, ":one": 1},
            )
            is not None
        )

    def part_sent(self, idempotency_key: str, part: int, message_id: str | None, last: bool) -> OutboundRecord | None:
        """Record that Meta accepted part ``part``; SENT when it was the last one. Its refusals go: each part
        has its own tries (three for Meta's codes 1 and 2), whatever the parts before it met."""
        expression, values = _part_sent_change(part, message_id, last)
        return self._update(idempotency_key, expression, "inflight_part = :part", values)

    def part_sent_linked(self, record: OutboundRecord, part: int, message_id: str, last: bool) -> OutboundRecord | None:
        """part_sent and link_message_id in one transaction, when nothing is known of the mid yet (the usual
        case): the record as part_sent leaves it. None when the transaction did not apply: nothing was written,
        and the caller takes the two steps, in their order, as before (part_sent, then link_message_id).

        ``record`` is the record as the sender holds it, part ``part`` in flight; the condition that its
        ``parts_sent`` is still ``part`` makes the record returned, built from it, the one stored.

        The two writes become one: a crash can no longer fall between them (before, it left the message SENT
        with its mid unlinked, so that the echo could not settle it); a crash before the transaction leaves the
        part in flight, as a crash before part_sent did (UNKNOWN, never resent). The mid's item must not exist:
        a receipt recorded before the link is what link_message_id's answer reports, and a transaction returns
        nothing; a receipt that comes after the transaction finds the message SENT and its mid linked, as one
        after link_message_id did. The status changes in this one write, so the table's stream has one MODIFY
        of the record carrying SENT, as before."""
        now = datetime.now(UTC)
        expression, values = _part_sent_change(part, message_id, last)
        sent = self._update_request(
            record.idempotency_key, expression, "inflight_part = :part AND parts_sent = :part", values, now
        )
        linked = {**self._link_request(message_id, record, now), "ConditionExpression": "attribute_not_exists(pk)"}
        try:
            self._client.transact_write_items(TransactItems=[{"Update": sent}, {"Update": linked}])
        except ClientError as exc:
            if error_code(exc) == "TransactionCanceledException":
                return None
            raise RecordsUnavailable(f"DynamoDB transact_write_items failed: {error_code(exc)}") from exc
        except BotoCoreError as exc:
            raise RecordsUnavailable(f"DynamoDB transact_write_items failed: {type(exc).__name__}") from exc
        return replace(
            record,
            status=SENT if last else record.status,
            sent_at=now.isoformat() if last else record.sent_at,
            parts_sent=part + 1,
            message_ids=[*record.message_ids, message_id],
            inflight_part=None,
            inflight_at=None,
            refusals=0,
        )

    def part_not_sent(self, idempotency_key: str, part: int) -> int:
        """Meta definitely did not take the part (an error answer): it may be tried again. Returns how many
        answers Meta has refused this part with so far (its retry limits count requests, not receives)."""
        record = self._update(
            idempotency_key,
            "SET updated_at = :now ADD refusals :one REMOVE inflight_part",
            "inflight_part = :part",
            {":part": part, ":one": 1},
        )
        return record.refusals if record is not None else 0

    def part_released(self, idempotency_key: str, part: int) -> None:
        """Part ``part`` was marked in flight but never left (it missed its rate slot): no longer in flight, and
        not counted as an attempt, so the next receive sends it rather than take it for possibly sent."""
        self._update(
            idempotency_key,
            "SET updated_at = :now ADD attempts :less REMOVE inflight_part",
            "inflight_part = :part",
            {":part": part, ":less": -1},
        )

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
        settles_unknown: bool = True,
    ) -> OutboundRecord | None:
        """Move to ``status`` if allowed from the current one; None when it was not (already there or past,
        or, with ``conversation`` (account, customer), when the message is not of that conversation).
        ``settles_unknown=False`` leaves an UNKNOWN message as it is: a receipt of a part whose send Meta answered
        says nothing of the part whose answer never came."""
        sets = ["#status = :status", "updated_at = :now", f"{status.lower()}_at = :now"]
        values: dict[str, Any] = {":status": status}
        for name, value in (("reason", reason), ("detail", detail), ("error", _error_json(error))):
            if value is not None:
                sets.append(f"#{name} = :{name}")  # names, because some (error) are DynamoDB reserved words
                values[f":{name}"] = value[:MAX_TEXT_ATTRIBUTE]
        allowed = tuple(s for s in PREDECESSORS[status] if settles_unknown or s != UNKNOWN)
        values.update({f":from{i}": s for i, s in enumerate(allowed)})
        condition = f"#status IN ({', '.join(f':from{i}' for i in range(len(allowed)))})"
        if conversation is not None:
            # A private reply names a comment, so its record has no customer: any of its account's will do.
            condition += (
                " AND account_id = :account"
                " AND (customer_id IN (:customer, :nobody) OR attribute_not_exists(customer_id))"
            )
            values.update({":account": conversation[0], ":customer": conversation[1], ":nobody": NO_PARTY})
        remove = " REMOVE inflight_part" if status in (FAILED, UNKNOWN) else ""
        return self._update(idempotency_key, "SET " + ", ".join(sets) + remove, condition, values)

    def link_message_id(self, message_id: str, record: OutboundRecord) -> dict[str, Any]:
        """Point Meta's mid at the message; returns any echo or read of it that came first from the message's
        own conversation (one recorded from another conversation is not its receipt)."""
        response = self._call(
            "update_item", **self._link_request(message_id, record, datetime.now(UTC)), ReturnValues="ALL_OLD"
        )
        before = from_attributes(response.get("Attributes", {}))
        scope = before.get("conversation_id")
        account, _, customer = (scope or "").partition(":")
        return before if scope is None or in_conversation(record, account, customer) else {}

    def _link_request(self, message_id: str, record: OutboundRecord, now: datetime) -> dict[str, Any]:
        """The update that points the mid's item at the message (and its conversation)."""
        values: dict[str, Any] = {
            ":key": record.idempotency_key,
            ":now": now.isoformat(),
            ":expires": int(now.timestamp()) + self._retention_seconds,
        }
        expression = "SET idempotency_key = :key, updated_at = :now, #ttl = :expires"
        if record.customer_id:  # a private reply's customer is known only from its echo
            expression += ", conversation_id = :conversation"
            values[":conversation"] = f"{record.account_id}:{record.customer_id}"
        return {
            "TableName": self._table,
            "Key": key(message_id_pk(message_id), MESSAGE_ID_SK),
            "UpdateExpression": expression,
            "ExpressionAttributeNames": {"#ttl": TTL_ATTRIBUTE},
            "ExpressionAttributeValues": to_attributes(values),
        }

    def unsettled(self, account_id: str, customer_id: str) -> list[Unsettled]:
        """The conversation's UNKNOWN messages, each with its uncertain part's fingerprint and attempt."""
        response = self._call(
            "query",
            TableName=self._table,
            ConsistentRead=True,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues=to_attributes(
                {":pk": conversation_pk(account_id, customer_id), ":prefix": UNSETTLED_SK_PREFIX}
            ),
        )
        return [UnsettledMarker.from_item(item).unsettled for item in response.get("Items", [])]

    def stored_echoes(self, account_id: str, customer_id: str, since_ms: int) -> list[Echo]:
        """The echoes of the gateway's own app stored in a conversation since ``since_ms``: the echo of a
        send whose answer never came usually arrives before the sender gives up waiting."""
        query: dict[str, Any] = {
            "TableName": self._table,
            "ConsistentRead": True,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "FilterExpression": "#kind = :echo AND occurred_at >= :since",
            "ExpressionAttributeNames": {"#kind": "kind", "#event": "event"},
            "ExpressionAttributeValues": to_attributes(
                {
                    ":pk": conversation_pk(account_id, customer_id),
                    ":prefix": EVENT_SK_PREFIX,
                    ":echo": "echo",
                    ":since": since_ms,
                }
            ),
            "ProjectionExpression": "#event, occurred_at",
        }
        found: list[Echo] = []
        while True:
            page = self._call("query", **query)
            for item in map(from_attributes, page.get("Items", [])):
                event = _json_loads(item["event"]) or {}
                attachments = event.get("attachments") or [{}]
                if event.get("message_id") and event.get("sent_by_gateway") is True:
                    found.append(
                        Echo(
                            event["message_id"],
                            fingerprint(event.get("text"), attachments[0].get("type")),
                            event.get("metadata"),
                            int(item["occurred_at"]),
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
                    "Key": key(message_id_pk(message_id), MESSAGE_ID_SK),
                    "UpdateExpression": (
                        "SET idempotency_key = :key, updated_at = :now, #ttl = if_not_exists(#ttl, :expires)"
                    ),
                    "ConditionExpression": "attribute_not_exists(idempotency_key) OR idempotency_key = :key",
                    "ExpressionAttributeNames": {"#ttl": TTL_ATTRIBUTE},
                    "ExpressionAttributeValues": to_attributes(
                        {
                            ":key": idempotency_key,
                            ":now": now.isoformat(),
                            ":expires": int(now.timestamp()) + self._retention_seconds,
                        }
                    ),
                }
            )
            is not None
        )

    def remove_unsettled(self, account_id: str, customer_id: str, idempotency_key: str) -> None:
        """Both of an UNKNOWN message's markers, once it is settled. Two requests, not one BatchWriteItem:
        IAM would judge a batch's keys of two families together, and each role's grants are per family."""
        for pk in (conversation_pk(account_id, customer_id), unsettled_pk(account_id)):
            self._call("delete_item", TableName=self._table, Key=key(pk, unsettled_sk(idempotency_key)))

    def add_unsettled(self, record: OutboundRecord, waiting: Unsettled) -> None:
        """An UNKNOWN message waits in its conversation for an echo that matches it, and in its account's
        list for the reconciler (the account's first: a marker the reconciler can see is never missing from
        the conversation, where an echo must find it)."""
        if not record.account_id or not record.customer_id:
            return
        now = datetime.now(UTC)
        marker = UnsettledMarker(
            account_id=record.account_id,
            customer_id=record.customer_id,
            unsettled=waiting,
            attempted_at=now.isoformat(),
            expires_at=int(now.timestamp()) + UNSETTLED_SECONDS,
        )
        self._call("put_item", TableName=self._table, Item=marker.to_item())
        self._call("put_item", TableName=self._table, Item=marker.to_item(in_account=True))

    # ------------------------------------------------------------------ the reconciler's side

    def account_unsettled(self, account_id: str) -> list[UnsettledMarker]:
        """The account's UNKNOWN messages that no echo has settled yet, oldest attempt first."""
        query: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": to_attributes({":pk": unsettled_pk(account_id)}),
        }
        found: list[UnsettledMarker] = []
        while True:
            page = self._call("query", **query)
            found.extend(UnsettledMarker.from_item(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return sorted(found, key=lambda m: m.unsettled.ended_ms)
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def owners(self, message_ids: list[str]) -> dict[str, str]:
        """Which of Meta's mids are known to be parts of which of our messages (mid -> idempotency key)."""
        owners: dict[str, str] = {}
        wanted = [key(message_id_pk(mid), MESSAGE_ID_SK) for mid in dict.fromkeys(message_ids)]
        for start in range(0, len(wanted), BATCH_GET_LIMIT):
            keys = wanted[start : start + BATCH_GET_LIMIT]
            for attempt in range(BATCH_ATTEMPTS):
                response = self._call(
                    "batch_get_item",
                    RequestItems={
                        self._table: {
                            "Keys": keys,
                            "ConsistentRead": True,
                            "ProjectionExpression": "pk, idempotency_key",
                        }
                    },
                )
                for item in response.get("Responses", {}).get(self._table, []):
                    found = MessageIdItem.from_item(item)
                    if found.idempotency_key:
                        owners[found.message_id] = found.idempotency_key
                keys = response.get("UnprocessedKeys", {}).get(self._table, {}).get("Keys", [])
                if not keys:
                    break
                backoff(attempt)
            else:
                raise RecordsUnavailable("DynamoDB batch_get_item left keys unprocessed")
        return owners

    def still_unknown(self, idempotency_key: str, reason: str, detail: str) -> OutboundRecord | None:
        """Why an UNKNOWN message stays UNKNOWN after a lookup: its reason and detail, on the record only."""
        return self._update(
            idempotency_key,
            "SET #reason = :reason, #detail = :detail, updated_at = :now",
            "#status = :unknown",
            {
                ":reason": reason[:MAX_TEXT_ATTRIBUTE],
                ":detail": detail[:MAX_TEXT_ATTRIBUTE],
                ":unknown": UNKNOWN,
            },
        )

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
                "Key": key(message_id_pk(message_id), MESSAGE_ID_SK),
                "UpdateExpression": f"SET {attribute} = if_not_exists({attribute}, :at), "
                "conversation_id = if_not_exists(conversation_id, :conversation), updated_at = :now, "
                "#ttl = :expires",
                "ConditionExpression": "attribute_not_exists(conversation_id) OR conversation_id = :conversation",
                "ExpressionAttributeNames": {"#ttl": TTL_ATTRIBUTE},
                "ExpressionAttributeValues": to_attributes(
                    {
                        ":at": at_ms,
                        ":conversation": conversation,
                        ":now": now.isoformat(),
                        ":expires": int(now.timestamp()) + self._retention_seconds,
                    }
                ),
                "ReturnValues": "ALL_NEW",
            }
        )
        after = (response or {}).get("Attributes")
        return MessageIdItem.from_item(after).idempotency_key if after else None

    # ------------------------------------------------------------------ plumbing

    def _update(
        self, idempotency_key: str, expression: str, condition: str, values: dict[str, Any]
    ) -> OutboundRecord | None:
        """``values`` as plain values, by placeholder; :now is added."""
        request = self._update_request(idempotency_key, expression, condition, values, datetime.now(UTC))
        response = self._conditional_update({**request, "ReturnValues": "ALL_NEW"})
        return OutboundRecord.from_item(response["Attributes"]) if response is not None else None

    def _update_request(
        self, idempotency_key: str, expression: str, condition: str, values: dict[str, Any], now: datetime
    ) -> dict[str, Any]:
        """The record's conditional update; ``now`` is :now."""
        names = {placeholder: placeholder[1:] for placeholder in re.findall(r"#\w+", expression + condition)}
        request: dict[str, Any] = {
            "TableName": self._table,
            "Key": _key(idempotency_key),
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ExpressionAttributeValues": to_attributes({**values, ":now": now.isoformat()}),
        }
        if names:
            request["ExpressionAttributeNames"] = names
        return request

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
BATCH_GET_LIMIT = 100  # keys per BatchGetItem
BATCH_ATTEMPTS = 5  # a batch DynamoDB left partly unprocessed (throttled) is asked again, then given up


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


def _part_sent_change(part: int, message_id: str | None, last: bool) -> tuple[str, dict[str, Any]]:
    """The record's update once Meta accepted part ``part``, and its values (:now apart)."""
    expression = (
        "SET parts_sent = :next, message_ids = list_append(message_ids, :mid), updated_at = :now "
        "REMOVE inflight_part, refusals"
    )
    values: dict[str, Any] = {":next": part + 1, ":part": part, ":mid": [message_id] if message_id else []}
    if last:
        expression = expression.replace("updated_at = :now", "updated_at = :now, #status = :sent, sent_at = :now")
        values[":sent"] = SENT
    return expression, values


def _key(idempotency_key: str) -> dict[str, Any]:
    return key(outbound_pk(idempotency_key), OUTBOUND_SK)


def in_conversation(record: OutboundRecord, account_id: str, customer_id: str) -> bool:
    """Whether a receipt in this conversation may be about the record's message (a private reply's
    record names no customer: any of its account's)."""
    return record.account_id == account_id and record.customer_id in (None, customer_id)


# Each status and the attribute that records when the message reached it (PENDING: when it was claimed).
_MOMENTS = (
    (PENDING, "created_at"),
    (SENT, "sent_at"),
    (UNKNOWN, "unknown_at"),
    (DELIVERED, "delivered_at"),
    (READ, "read_at"),
    (FAILED, "failed_at"),
)


def _party(value: str | None) -> str | None:
    """An account or customer id as a record holds it: NO_PARTY (or nothing, in records written before it) is none."""
    return None if value in (None, NO_PARTY) else value
