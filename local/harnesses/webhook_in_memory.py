"""In-memory stand-ins for the webhook service's ports (its store, publisher and secret source): the webhook's
unit tests and the chaos fuzzer drive the real service on them."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from igdm.contracts.events import CONTENT_KINDS, InboundEvent
from igdm.contracts.plain_event import as_model
from igdm.contracts.serialized import SerializedEvent
from igdm.inbound.ingest import EventKey, Found, WindowUpdate


class MemoryStore:
    """Keyed as the table is: conversation and event id, so a probe under the wrong key finds nothing."""

    def __init__(self) -> None:
        self.by_key: dict[EventKey, InboundEvent] = {}
        self.tombstones: set[EventKey] = set()  # messages deleted before their event was stored
        self.windows: dict[tuple[str, str], WindowUpdate] = {}

    @property
    def items(self) -> dict[str, InboundEvent]:
        return {key.event_id: event for key, event in self.by_key.items()}

    def find(self, keys: Sequence[EventKey]) -> Found:
        return Found(
            stored=frozenset(k.event_id for k in keys if k in self.by_key),
            tombstoned=frozenset(k.event_id for k in keys if k in self.tombstones),
        )

    def save(self, events: Sequence[SerializedEvent]) -> None:
        for serialized in events:
            key = EventKey.of(serialized.event)
            if key not in self.by_key:
                self.by_key[key] = as_model(serialized.event)
                self.tombstones.discard(key)

    def tombstone(self, key: EventKey, received_at: datetime) -> None:
        if key not in self.by_key:
            self.tombstones.add(key)

    def advance_windows(self, windows: Sequence[WindowUpdate]) -> None:
        for window in windows:
            key = (window.account_id, window.customer_id)
            if key not in self.windows or self.windows[key].occurred_at < window.occurred_at:
                self.windows[key] = window

    def content_events(self, account_id: str, customer_id: str, message_id: str) -> list[InboundEvent]:
        return [
            e
            for k, e in self.by_key.items()
            if (k.account_id, k.customer_id) == (account_id, customer_id)
            and e.message_id == message_id
            and e.kind in CONTENT_KINDS
        ]

    def overwrite(self, events: Sequence[SerializedEvent]) -> None:
        for serialized in events:
            self.by_key[EventKey.of(serialized.event)] = as_model(serialized.event)


class MemoryQueue:
    """Accepts events until ``fail_after`` have been taken, then refuses the rest."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.messages: list[InboundEvent] = []
        self.fail_after = fail_after

    def publish(self, events: Sequence[SerializedEvent]) -> list[SerializedEvent]:
        accepted = []
        for serialized in events:
            if self.fail_after is not None and len(self.messages) >= self.fail_after:
                break
            self.messages.append(as_model(serialized.event))
            accepted.append(serialized)
        return accepted


@dataclass
class Secret:
    app_secrets: list[str] = field(default_factory=list)
    verify_token: str | None = None
    app_ids: frozenset[str] = frozenset()


class StaticSecrets:
    def __init__(self, current: Secret, rotated: Secret | None = None) -> None:
        self._current = current
        self._rotated = rotated
        self.refreshes = 0

    def current(self) -> Secret:
        return self._current

    def refreshed(self) -> Secret | None:
        self.refreshes += 1
        if self._rotated is not None:
            self._current = self._rotated
        return self._rotated
