"""account_status events: a dead token, a token about to lapse, a dropped webhook subscription, an
account (re)connected. Published on the events queue in the account's own message group, so the
systems that read customers' messages learn of them where they already look.

The event id is derived from the account, the change and the day, so a run the scheduler repeats on
the same day (or the onboarding page reloaded) does not announce the same change twice; a change an
operator makes (pause, resume) also names its moment, so each of them is announced.
"""

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from igdm.contracts.events import AccountStatus, Erasure, EventKind, GraphError, InboundEvent


@dataclass(frozen=True)
class AccountChange:
    account_id: str
    status: str
    change: str
    reason: str | None = None
    detail: str | None = None
    username: str | None = None
    token_expires_at: int | None = None
    missing_fields: list[str] = field(default_factory=list)
    subscribed_fields: list[str] = field(default_factory=list)
    error: dict[str, Any] | None = None
    moment: str | None = None  # a change that may happen several times a day: part of its event id
    erasure: Erasure | None = None  # data_deleted: the request and what it deleted


def account_event(change: AccountChange, *, now: float) -> InboundEvent:
    at = datetime.fromtimestamp(now, UTC)
    day = at.date().isoformat()
    return InboundEvent(
        event_id=hashlib.sha256(
            f"account|{change.account_id}|{change.change}|{change.moment or day}".encode()
        ).hexdigest()[:32],
        kind=EventKind.ACCOUNT_STATUS,
        account_id=change.account_id,
        customer_id=None,
        conversation_id=change.account_id,
        direction="inbound",
        source="gateway",
        user_initiated=False,
        occurred_at=at,
        received_at=at,
        account=AccountStatus(
            status=change.status,  # type: ignore[arg-type]  # one of igdm.store.accounts.STATUSES
            change=change.change,  # type: ignore[arg-type]
            reason=change.reason,
            detail=change.detail,
            username=change.username,
            token_expires_at=(
                datetime.fromtimestamp(change.token_expires_at, UTC) if change.token_expires_at is not None else None
            ),
            missing_fields=change.missing_fields,
            subscribed_fields=change.subscribed_fields,
            error=GraphError.model_validate(change.error) if change.error else None,
        ),
        erasure=change.erasure,
        raw={},
    )
