"""Publishes account_status events (igdm.contracts.account_status) on the events queue."""

from typing import Any

from igdm.contracts.account_status import AccountChange, account_event
from igdm.contracts.serialized import SerializedEvent
from igdm.queues.event_queue import SqsEventPublisher


class AccountEventPublisher:
    def __init__(self, sqs: Any, events_queue_url: str) -> None:
        self._events = SqsEventPublisher(sqs, events_queue_url)

    def publish(self, changes: list[AccountChange], *, now: float) -> list[AccountChange]:
        """Publish every change; returns those the queue did not take (the caller reports them)."""
        serialized = [SerializedEvent.of(account_event(c, now=now)) for c in changes]
        accepted = {s.event.event_id for s in self._events.publish(serialized)}
        return [c for c, s in zip(changes, serialized, strict=True) if s.event.event_id not in accepted]
