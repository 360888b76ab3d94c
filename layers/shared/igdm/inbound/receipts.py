"""Echoes and reads of the messages the sender sent: DELIVERED and READ statuses.

Meta's echo carries the mid the Send API returned; messaging_seen carries the mid that was read.
Each is recorded on the mid's item, so whichever comes second, the sender's record of the mid or
the receipt, completes the status; a receipt counts only in the conversation the message was sent in.
An echo of a message whose send had an unknown outcome (no mid came back) settles it only when the
gateway's own app sent it and it names that message unambiguously (igdm.meta.echoes): never by resending.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from igdm.contracts.event_kinds import EventKind
from igdm.meta.echoes import Echo, fingerprint, settled_by
from igdm.queues.status_publisher import StatusPublisher
from igdm.store import outbound_records as st
from igdm.store.outbound_records import OutboundRecords, in_conversation

if TYPE_CHECKING:
    from igdm.contracts.plain_event import Event


class OutboundReceipts:
    def __init__(self, records: OutboundRecords, statuses: StatusPublisher) -> None:
        self._records = records
        self._statuses = statuses

    def apply(self, events: Iterable[Event]) -> int:
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
                # The mid was linked: Meta answered that part's send. An UNKNOWN message's uncertain part has no
                # answer, so no linked mid: an earlier part's late echo or read must not settle it (a 2-part message
                # would be DELIVERED with its second part never seen by Meta).
                record = self._records.settle(key, status, conversation=conversation, settles_unknown=False)
                if record is None and event.kind == EventKind.ECHO:
                    record = self._uncertain_part_again(key, event.message_id, conversation)
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

    def _uncertain_part_again(
        self, key: str, message_id: str, conversation: tuple[str, str]
    ) -> st.OutboundRecord | None:
        """The echo of an UNKNOWN message's uncertain part, delivered again after an earlier delivery linked its mid
        (claim_echo) but did not settle the message: settled now as it would have been then. Not a part Meta
        answered (its mid is among the record's message ids): that one proves nothing of the uncertain part."""
        current = self._records.get(key)
        if current is None or current.status != st.UNKNOWN or message_id in current.message_ids:
            return None
        if not in_conversation(current, *conversation):
            return None
        return self._records.settle_by_echo(key)

    def _settle_unknown(self, echo: Event, at_ms: int) -> str | None:
        if echo.customer_id is None or echo.message_id is None:  # the caller checked; this narrows the types
            return None
        attachment = echo.attachments[0].type if echo.attachments else None
        candidate = Echo(echo.message_id, fingerprint(echo.text, attachment), echo.metadata, at_ms)
        key = settled_by(candidate, self._records.unsettled(echo.account_id, echo.customer_id))
        if key is not None and self._records.claim_echo(echo.message_id, key):
            self._records.remove_unsettled(echo.account_id, echo.customer_id, key)
            return key
        return None
