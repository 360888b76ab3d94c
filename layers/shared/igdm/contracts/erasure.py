"""customer_forgotten events: the gateway deleted what it stored about a customer (Meta's data-deletion callback,
or an operator's tools.accounts forget), and says so on the events queue so that the systems reading it delete
what they keep too. One per account of the stack, in the customer's conversation's message group (after its
earlier events). The id is derived from the request's confirmation code, so a repeated publication is dropped
by the queue and by consumers alike."""

import hashlib
from datetime import UTC, datetime

from igdm.contracts.events import Erasure, EventKind, InboundEvent, conversation_id


def customer_forgotten_event(*, account_id: str, customer_id: str, erasure: Erasure, now: float) -> InboundEvent:
    at = datetime.fromtimestamp(now, UTC)
    return InboundEvent(
        event_id=hashlib.sha256(f"forgotten|{erasure.confirmation_code}|{account_id}".encode()).hexdigest()[:32],
        kind=EventKind.CUSTOMER_FORGOTTEN,
        account_id=account_id,
        customer_id=customer_id,
        conversation_id=conversation_id(account_id, customer_id),
        direction="inbound",
        source="gateway",
        user_initiated=False,
        occurred_at=at,
        received_at=at,
        erasure=erasure,
        raw={},
    )
