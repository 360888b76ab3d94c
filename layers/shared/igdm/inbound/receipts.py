"""Echoes and reads of the messages the sender sent: DELIVERED and READ statuses.

Meta's echo carries the mid the Send API returned; messaging_seen carries the mid that was read.
Each is recorded on the mid's item, so whichever comes second, the sender's record of the mid or
the receipt, completes the status; a receipt counts only in the conversation the message was sent in.
An echo of a message whose send had an unknown outcome (no mid came back) settles it only when the
gateway's own app sent it and it names that message unambiguously (igdm.meta.echoes): never by resending.
"""

from collections.abc import Iterable

from igdm.contracts.events import EventKind, InboundEvent
from igdm.meta.echoes import Echo, fingerprint, settled_by
from igdm.queues.status_publisher import StatusPublisher
from igdm.store import outbound_records as st
from igdm.store.outbound_records import OutboundRecords, in_conversation


class OutboundReceipts:
    def __init__(self, records: OutboundRecords, statuses: StatusPublisher) -> None:
        self._records = records
        self._statuses = statuses

    def apply(self, events: Iterable[InboundEvent]) -> int:
        """Returns how many statuses moved."""
        moved = 0
        for event in events:
            if not event.message_id or not event.customer_id or event.kind not in (EventKind.ECHO, EventKind.READ):
                continue
            status = st.DELIVERED if event.kind == EventKind.ECHO else st.READ
            at_ms = int(event.occurred_at.timestamp() * 1000)
            conversation = (event.account_id, event.customer_id)
            key = self._records.receipt(event.message_id, status, at_ms, *conversation)
            record = None
            if key is not None:
                record = self._records.settle(key, status, conversation=conversation)
            elif event.kind == EventKind.ECHO and event.sent_by_gateway:
                key = self._settle_unknown(event, at_ms)
                record = self._records.settle_by_echo(key) if key is not None else None
            if key is None:
                continue
            if record is not None:
                self._statuses.publish(record)
                moved += 1
                continue
            # Already there: a webhook Meta delivers again, perhaps because publishing failed after the
            # status was recorded. Publish it again; the queue and consumers drop a repeat by event id.
            current = self._records.get(key)
            if current is not None and current.status == status and in_conversation(current, *conversation):
                self._statuses.publish(current)
        return moved

    def _settle_unknown(self, echo: InboundEvent, at_ms: int) -> str | None:
        if echo.customer_id is None or echo.message_id is None:  # the caller checked; this narrows the types
            return None
        attachment = echo.attachments[0].type if echo.attachments else None
        candidate = Echo(echo.message_id, fingerprint(echo.text, attachment), echo.metadata, at_ms)
        key = settled_by(candidate, self._records.unsettled(echo.account_id, echo.customer_id))
        if key is not None and self._records.claim_echo(echo.message_id, key):
            self._records.remove_unsettled(echo.account_id, echo.customer_id, key)
            return key
        return None
