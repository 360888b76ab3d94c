"""Event webhooks' fan-out: the table's stream -> one delivery per event and registration that wants it.

The webhook function stores every conversation event it publishes (CONV# / EVT# items), and every status change
of an outbound message rewrites its record (OUT# / MESSAGE): the table's stream therefore carries every event an
event webhook may ask for, in order per conversation (a stream keeps each item key's changes in order, and a
conversation's events share their partition) and per message. Reading the stream takes nothing away from the
events queue's own consumers, and adds no request to the webhook function: DynamoDB writes the stream itself,
and Lambda's reads of it are free.

For each event: the registrations that want it (one Query per batch), a delivery recorded in the log (pending),
and a job on the callback queue, whose function signs, POSTs, retries with backoff and records each attempt
(callback.service). A batch that fails part-way reports the first record it did not finish; Lambda gives the batch
again from there, and what was recorded or queued already is found again (conditional writes, the queue's
deduplication ids) rather than sent twice.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from igdm.contracts.event_webhooks import bodies
from igdm.contracts.stored_events import expanded
from igdm.runtime.observability import logger
from igdm.store.attributes import from_attributes
from igdm.store.event_items import is_tombstone
from igdm.store.keys import EVENT_SK_PREFIX, OUTBOUND_SK
from igdm.store.webhooks import Delivery, Webhook, job


class Hooks(Protocol):
    def all(self) -> list[Webhook]: ...

    def record(self, delivery: Delivery, now: datetime) -> bool: ...

    def scrub_message(self, account_id: str, customer_id: str, message_id: str) -> int: ...


class Jobs(Protocol):
    def send(self, jobs: list[tuple[str, str, str]]) -> None:
        """(body, message group, deduplication id), in order."""
        ...


class Metrics(Protocol):
    def count(self, name: str, value: int = 1, **dimensions: str) -> None: ...


@dataclass
class Fanout:
    hooks: Hooks
    jobs: Jobs
    metrics: Metrics
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def handle(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        found = [(record, events_of(record)) for record in records]
        if not any(events for _, events in found):
            return {"batchItemFailures": []}
        hooks = self.hooks.all()
        queued: list[tuple[str, str, str]] = []
        failed_at: str | None = None
        for record, events in found:
            try:
                for at_ms, event, canonical in events:
                    queued.extend(self._deliveries(hooks, at_ms, event, canonical))
                    self._forget_deleted(event)
            except Exception:  # DynamoDB refused: this record and the rest come again
                logger.exception("a stream record was not fanned out", extra={"sequence": _sequence(record)})
                failed_at = _sequence(record)
                break
        try:
            self.jobs.send(queued)
        except Exception:  # SQS refused: the whole batch comes again, nothing is lost
            logger.exception("the callback queue refused the deliveries")
            failed_at = _sequence(records[0])
        else:
            self.metrics.count("WebhookDeliveriesQueued", len(queued))
        return {"batchItemFailures": [{"itemIdentifier": failed_at}] if failed_at else []}

    def _forget_deleted(self, event: dict[str, Any]) -> None:
        """The customer deleted a message: the logged deliveries of it lose its content, as the stored event
        did (a registration deleted since included: its log is kept 30 days)."""
        if event.get("kind") == "message_deleted" and event.get("message_id") and event.get("customer_id"):
            scrubbed = self.hooks.scrub_message(event["account_id"], event["customer_id"], event["message_id"])
            if scrubbed:
                self.metrics.count("WebhookDeliveriesScrubbed", scrubbed)

    def _deliveries(
        self, hooks: list[Webhook], at_ms: int, event: dict[str, Any], canonical: str
    ) -> list[tuple[str, str, str]]:
        jobs = []
        for hook in hooks:
            if not hook.wants(event):
                continue
            shaped = bodies(hook.dialect, event, canonical)
            for part, body in enumerate(shaped, 1):
                delivery = Delivery(
                    webhook_id=hook.webhook_id,
                    delivery_id=Delivery.id_of(at_ms, event["event_id"], part if len(shaped) > 1 else None),
                    event_id=event["event_id"],
                    kind=event["kind"],
                    conversation_id=event.get("conversation_id") or event["account_id"],
                    body=body,
                    account_id=event.get("account_id"),
                    customer_id=event.get("customer_id"),
                    message_id=event.get("message_id"),
                )
                self.hooks.record(delivery, self.clock())
                payload, group, dedup = job(hook, delivery)
                jobs.append((json.dumps(payload), group, dedup))
        return jobs


def events_of(record: dict[str, Any]) -> list[tuple[int, dict[str, Any], str]]:
    """The events one stream record carries: (when, the event, its JSON as published). A stored event (INSERT
    of CONV# / EVT#, or the MODIFY that stores it in place of its tombstone: its message was deleted first), or a
    status an outbound message reached (MODIFY of OUT# / MESSAGE that changed its status: the same message_status
    event the sender or the webhook published, SENT first when the echo's DELIVERED came before the sender
    recorded SENT, as the publisher does). A tombstone is no event, and a scrub (MODIFY of a stored event) is
    not a new one."""
    change = record.get("dynamodb") or {}
    keys = from_attributes(change.get("Keys") or {})
    at_ms = int(float(change.get("ApproximateCreationDateTime") or 0) * 1000)
    sk = str(keys.get("sk", ""))
    if sk.startswith(EVENT_SK_PREFIX):
        new = from_attributes(change.get("NewImage") or {})
        stored = new.get("event")
        if not isinstance(stored, str) or not _stores_an_event(record.get("eventName"), new, change):
            return []
        canonical = expanded(stored)  # the item keeps it without its default fields
        return [(at_ms, json.loads(canonical), canonical)]
    if record.get("eventName") == "MODIFY" and sk == OUTBOUND_SK:
        return [(at_ms, e, c) for e, c in _statuses(change.get("OldImage") or {}, change.get("NewImage") or {})]
    return []


def _stores_an_event(name: Any, new_image: dict[str, Any], change: dict[str, Any]) -> bool:
    """Whether a write of an event key stored an event where none was: a new item, or one over a tombstone."""
    if is_tombstone(new_image):
        return False
    if name == "INSERT":
        return True
    return name == "MODIFY" and is_tombstone(from_attributes(change.get("OldImage") or {}))


def _statuses(old_image: dict[str, Any], new_image: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    from igdm.contracts.message_status import status_event
    from igdm.contracts.serialized import SerializedEvent
    from igdm.store import outbound_records as st

    before = from_attributes(old_image).get("status")
    record = st.OutboundRecord.from_item(new_image)
    if record.status == before or record.status == st.PENDING:
        return []
    records = [record]
    if record.status in (st.DELIVERED, st.READ) and before == st.PENDING and record.message_ids:
        records.insert(0, replace(record, status=st.SENT, reason=None, detail=None, error=None))
    found = []
    for each in records:
        body = SerializedEvent.of(status_event(each)).body
        found.append((json.loads(body), body))
    return found


def _sequence(record: dict[str, Any]) -> str:
    return str((record.get("dynamodb") or {}).get("SequenceNumber", ""))
