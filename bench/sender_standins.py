"""In-memory stand-ins for what the sender reads and writes in DynamoDB, SQS and Secrets Manager, at the sender's
ports rather than over HTTP: no botocore, so none of its CPU (figure 3, bench.sender, now sends every AWS request
through botocore to bench.dynamo_standin instead; these are for runs that measure the sender's own logic).

An emulator would spend milliseconds of CPU per call (moto about 2.5 ms), so on a 2-core machine the
run would measure the emulator, not the sender. These keep the semantics the sender relies on: the rate
limiter's item is updated atomically with its exact SET and condition expressions (as a DynamoDB
conditional update is), and the outbound records keep their conditions (claimed once, one part in
flight, statuses only moving forward). The sender's code, its GCRA limiter and its Graph client are
the real ones.
"""

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from botocore.exceptions import ClientError

from igdm.contracts.events import InboundEvent
from igdm.contracts.message_status import status_event
from igdm.contracts.serialized import SerializedEvent
from igdm.store.accounts import Account
from igdm.store.conversation_state import ConversationView
from igdm.store.outbound_records import PREDECESSORS, OutboundRecord


class RateTable:
    """The rate limiter's DynamoDB items, in memory: `update_item` applied under one lock."""

    _TERM = re.compile(r"^(?:attribute_not_exists\((\w+)\)|(\w+) (<=|>=|<|>|=) (:\w+))$")

    def __init__(self) -> None:
        self._items: dict[str, dict[str, float]] = {}
        self._lock = threading.Lock()
        self.requests = 0

    def update_item(
        self,
        *,
        Key: dict[str, Any],
        UpdateExpression: str,
        ConditionExpression: str,
        ExpressionAttributeValues: dict[str, Any],
        ExpressionAttributeNames: dict[str, str],
        **options: Any,
    ) -> dict[str, Any]:
        values = {k: float(v["N"]) for k, v in ExpressionAttributeValues.items()}
        with self._lock:
            self.requests += 1
            key = Key["pk"]["S"]
            item = self._items.get(key, {})
            if not self._holds(ConditionExpression, item, values):
                failure: Any = {
                    "Error": {"Code": "ConditionalCheckFailedException", "Message": "failed"},
                    "Item": {k: {"N": str(v)} for k, v in item.items()},
                }
                raise ClientError(failure, "UpdateItem")
            updated = dict(item)
            for assignment in UpdateExpression.removeprefix("SET ").split(", "):
                target, _, expression = assignment.partition(" = ")
                operands = expression.split(" + ")
                total = sum(updated.get(o, 0.0) if not o.startswith(":") else values[o] for o in operands)
                updated[ExpressionAttributeNames.get(target, target)] = total
            self._items[key] = updated
        old = {k: {"N": str(v)} for k, v in item.items() if k in updated}
        return {"Attributes": old} if options.get("ReturnValues") == "UPDATED_OLD" and old else {}

    def _holds(self, condition: str, item: dict[str, float], values: dict[str, float]) -> bool:
        return any(
            all(self._term(term, item, values) for term in alternative.split(" AND "))
            for alternative in condition.split(" OR ")
        )

    def _term(self, term: str, item: dict[str, float], values: dict[str, float]) -> bool:
        match = self._TERM.match(term.strip())
        if match is None:
            raise ValueError(f"RateTable does not understand {term!r}")
        if match.group(1):
            return match.group(1) not in item
        name, operator, placeholder = match.group(2), match.group(3), match.group(4)
        if name not in item:
            return False
        left, right = item[name], values[placeholder]
        return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right, "=": left == right}[
            operator
        ]


@dataclass
class MemoryRecords:
    """igdm.store.outbound_records.OutboundRecords' operations, in memory, with the same conditions."""

    records: dict[str, OutboundRecord] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: int = 0

    def claim(
        self, *, idempotency_key: str, inflight_at: str | None = None, **fields: Any
    ) -> tuple[OutboundRecord, bool]:
        """As OutboundRecords.claim: with ``inflight_at``, the record is created with its first part in flight
        (the sender's merged claim and in-flight mark)."""
        with self.lock:
            self.requests += 1
            if idempotency_key in self.records:
                return self.records[idempotency_key], False
            record = OutboundRecord(
                idempotency_key=idempotency_key,
                status="PENDING",
                parts_sent=0,
                inflight_part=None if inflight_at is None else 0,
                inflight_at=inflight_at,
                message_ids=[],
                **fields,
            )
            self.records[idempotency_key] = record
            return record, True

    def get(self, idempotency_key: str) -> OutboundRecord | None:
        with self.lock:
            self.requests += 1
            return self.records.get(idempotency_key)

    def begin_part(self, idempotency_key: str, part: int) -> bool:
        return (
            self._change(
                idempotency_key,
                lambda r: r.status == "PENDING" and r.parts_sent == part and r.inflight_part is None,
                inflight_part=part,
            )
            is not None
        )

    def part_sent(self, idempotency_key: str, part: int, message_id: str | None, last: bool) -> OutboundRecord | None:
        with self.lock:
            record = self.records[idempotency_key]
        changes: dict[str, Any] = {
            "parts_sent": part + 1,
            "inflight_part": None,
            "message_ids": [*record.message_ids, *([message_id] if message_id else [])],
        }
        if last:
            changes["status"] = "SENT"
        return self._change(idempotency_key, lambda r: r.inflight_part == part, **changes)

    def part_not_sent(self, idempotency_key: str, part: int) -> int:
        with self.lock:
            refusals = self.records[idempotency_key].refusals + 1
        changed = self._change(
            idempotency_key, lambda r: r.inflight_part == part, inflight_part=None, refusals=refusals
        )
        return changed.refusals if changed is not None else 0

    def part_released(self, idempotency_key: str, part: int) -> None:
        self._change(idempotency_key, lambda r: r.inflight_part == part, inflight_part=None)

    def settle_by_echo(self, idempotency_key: str) -> OutboundRecord | None:
        return self.settle(idempotency_key, "DELIVERED")  # the bench's messages are one part each

    def settle(
        self,
        idempotency_key: str,
        status: str,
        *,
        reason: str | None = None,
        detail: str | None = None,
        error: dict[str, Any] | None = None,
    ) -> OutboundRecord | None:
        return self._change(
            idempotency_key,
            lambda r: r.status in PREDECESSORS[status],
            status=status,
            reason=reason,
            detail=detail,
            error=error,
        )

    def link_message_id(self, message_id: str, record: OutboundRecord) -> dict[str, Any]:
        with self.lock:
            self.requests += 1
        return {}

    def part_sent_linked(self, record: OutboundRecord, part: int, message_id: str, last: bool) -> OutboundRecord | None:
        """As OutboundRecords.part_sent_linked: the part sent and its mid's link in one request (a transaction)."""
        return self.part_sent(record.idempotency_key, part, message_id, last)

    def _change(self, key: str, allowed: Callable[[OutboundRecord], bool], **changes: Any) -> OutboundRecord | None:
        with self.lock:
            self.requests += 1
            record = self.records.get(key)
            if record is None or not allowed(record):
                return None
            self.records[key] = replace(record, **changes)
            return self.records[key]


class Statuses:
    """The status publisher: builds each status event (the sender's work), sends it nowhere."""

    def __init__(self) -> None:
        self.published = 0
        self._lock = threading.Lock()

    def publish(self, record: OutboundRecord) -> None:
        SerializedEvent.of(status_event(record))
        with self._lock:
            self.published += 1

    def publish_event(self, event: InboundEvent) -> None:
        SerializedEvent.of(event)


class Accounts:
    """Every account active, its token the one the sandbox knows it by."""

    def __init__(self, accounts: list[str], token_of: Callable[[str], str]) -> None:
        self._accounts = {a: Account(a, "active", f"bench/{a}") for a in accounts}
        self._token_of = token_of

    def resolve(self, account_id: str | None) -> Account:
        return self._accounts[account_id or next(iter(self._accounts))]

    def token(self, account: Account, *, fresh: bool = False) -> str:
        return self._token_of(account.account_id)

    def mark_needs_reauthorisation(self, account_id: str, detail: str) -> None:
        raise AssertionError("the sandbox accepts the bench's tokens")


class OpenWindow:
    """Every customer wrote a minute ago: the 24-hour window is open, and no handover was ever made."""

    def view(self, account_id: str, customer_id: str) -> ConversationView:
        return ConversationView(int(time.time() * 1000) - 60_000, None)

    def record_owner(self, account_id: str, customer_id: str, owner: str | None, at_ms: int) -> bool:
        return True


class NoMetrics:
    def count(self, name: str, value: int = 1, **dimensions: str) -> None:
        pass
