"""Status changes of outbound messages, published on the events queue as message_status events
(igdm.contracts.message_status); messages with a callback URL also get a callback job on the callback
queue (functions/callback)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from igdm.contracts.plain_event import as_model
from igdm.contracts.serialized import SerializedEvent
from igdm.queues.event_queue import SqsEventPublisher
from igdm.runtime.unavailable import StatusNotPublished as StatusNotPublished
from igdm.store.outbound_records import DELIVERED, SENT, OutboundRecord

if TYPE_CHECKING:  # the webhook builds a publisher for every request and publishes with it rarely
    from igdm.contracts.events import InboundEvent
    from igdm.contracts.plain_event import Event


class StatusPublisher:
    def __init__(self, sqs: Any, events_queue_url: str, callback_queue_url: str | None) -> None:
        self._sqs = sqs
        self._events = SqsEventPublisher(sqs, events_queue_url)
        self._callback_queue_url = callback_queue_url

    def publish(self, record: OutboundRecord) -> InboundEvent:
        """Publish the record's status; DELIVERED is preceded by SENT. The echo can reach the webhook,
        which settles DELIVERED, in the moment between the sender recording SENT and publishing it, and
        a consumer must still see SENT first. The repeat is dropped by the queue within its five-minute
        deduplication window, and by consumers after it (same event id); in the same batch, it costs no
        extra request to the events queue."""
        from igdm.contracts.message_status import status_event

        records = [record]
        if record.status == DELIVERED and record.message_ids:
            records.insert(0, replace(record, status=SENT, reason=None, detail=None, error=None))
        serialized = [SerializedEvent.of(status_event(r)) for r in records]
        published = {id(s) for s in self._events.publish(serialized)}
        # A callback only for a status that is on the events queue, and never for DELIVERED before SENT's.
        for body in serialized:
            if id(body) not in published:
                break
            self._callback(record, body)
        if len(published) < len(serialized):
            # The caller retries the whole: the queue and the callback queue drop what they already took.
            raise StatusNotPublished(
                f"the events queue took {len(published)} of {len(serialized)} message_status events"
            )
        return as_model(serialized[-1].event)  # a status event is pydantic's already: as it is

    def publish_event(self, event: Event) -> None:
        """An event the gateway raises itself about a conversation (a handover it made)."""
        serialized = SerializedEvent.of(event)
        if not self._events.publish([serialized]):
            raise StatusNotPublished(f"the events queue did not take the {event.kind.value} event")

    def _callback(self, record: OutboundRecord, serialized: SerializedEvent) -> None:
        event = serialized.event
        if record.callback_url and self._callback_queue_url:
            # The body goes as the exact text to POST, so every attempt signs the same bytes. One message
            # group per outbound message keeps its callbacks in order (SENT before DELIVERED) without
            # one slow receiver holding up other messages' callbacks.
            body = serialized.body
            if record.dialect:  # a vendor's status report, for a caller that sent in its format
                from igdm.contracts.dialects import dialect

                body = json.dumps(dialect(record.dialect).status_report(json.loads(body)), ensure_ascii=True)
            job = {"url": record.callback_url, "event_id": event.event_id, "body": body}
            try:
                self._sqs.send_message(
                    QueueUrl=self._callback_queue_url,
                    MessageBody=json.dumps(job),
                    MessageGroupId=record.idempotency_key,
                    MessageDeduplicationId=event.event_id,
                )
            except Exception as exc:
                raise StatusNotPublished(f"the callback queue refused a job: {type(exc).__name__}") from None
