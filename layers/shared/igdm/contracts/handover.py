"""handover events the gateway raises itself: Meta sends no handover webhook to the app that passed (or took,
or released) a conversation, so the gateway publishes one for its own successful calls, in the conversation's
message group, marked source "gateway". Its id is derived from the outbound message that made the call, so a
repeated publication is dropped by the queue and by consumers alike."""

import hashlib
from datetime import UTC, datetime

from igdm.contracts.events import EventKind, Handover, InboundEvent, conversation_id


def gateway_handover_event(
    *, made_by: str, account_id: str, customer_id: str, handover: Handover, occurred_at: datetime
) -> InboundEvent:
    """``made_by``: the idempotency key of the call that made the handover (and what it was, for a take
    made before a message)."""
    return InboundEvent(
        event_id=hashlib.sha256(f"handover|{made_by}".encode()).hexdigest()[:32],
        kind=EventKind.HANDOVER,
        account_id=account_id,
        customer_id=customer_id,
        conversation_id=conversation_id(account_id, customer_id),
        direction="outbound",
        source="gateway",
        user_initiated=False,
        occurred_at=occurred_at,
        received_at=datetime.now(UTC),
        handover=handover,
        raw={},
    )
