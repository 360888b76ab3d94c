"""message_status events: what became of an outbound message, as consumers and callback receivers get it.

The event goes into the conversation's message group, so a consumer sees a message's SENT after
the customer's message it answers and before the customer's reply. Its id is derived from the
message and the status, so a repeated publication is dropped by the queue and by consumers alike.
"""

import hashlib
from datetime import UTC, datetime

from igdm.contracts.events import EventKind, GraphError, InboundEvent, MessageStatus, conversation_id
from igdm.store.outbound_records import OutboundRecord


def status_event(record: OutboundRecord, *, account_id: str | None = None) -> InboundEvent:
    account = record.account_id or account_id or "unknown"
    now = datetime.now(UTC)
    # The reason stays on later statuses (docs/events.md: the DELIVERED that settles an UNKNOWN still says
    # ambiguous_outcome), but its detail describes the UNKNOWN: on a DELIVERED or READ it is told as what was.
    troubled = record.status in ("FAILED", "UNKNOWN")
    detail = record.detail if troubled or not record.detail else f"before Instagram confirmed it: {record.detail}"
    error = GraphError.model_validate(record.error) if record.error else None
    return InboundEvent(
        event_id=hashlib.sha256(f"status|{record.idempotency_key}|{record.status}".encode()).hexdigest()[:32],
        kind=EventKind.MESSAGE_STATUS,
        account_id=account,
        customer_id=record.customer_id,
        conversation_id=conversation_id(account, record.customer_id),
        direction="outbound",
        source="gateway",
        user_initiated=False,
        occurred_at=now,
        received_at=now,
        message_id=record.message_ids[-1] if record.message_ids else None,
        status=MessageStatus(
            idempotency_key=record.idempotency_key,
            status=record.status,  # type: ignore[arg-type]  # PENDING is never published
            correlation_id=record.correlation_id,
            callback_data=record.callback_data,
            message_ids=record.message_ids,
            parts_total=record.parts_total or None,
            reason=record.reason,
            detail=detail,
            error=error,
        ),
        raw={},
    )
