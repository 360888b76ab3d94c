"""The time of each account's latest webhook, on its account item: how an operator tells "Meta stopped
delivering" from "nobody wrote" (docs/accounts.md). Written at most once a minute per account by each
warm container, so a busy account costs one UpdateItem a minute, not one per request."""

import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Protocol

from igdm.runtime.observability import logger

INTERVAL_SECONDS = 60.0


class AccountWrites(Protocol):
    def record_webhook(self, account_id: str, at: str) -> None: ...


class WebhookHeartbeat:
    def __init__(
        self,
        accounts: AccountWrites,
        *,
        interval_seconds: float = INTERVAL_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._accounts = accounts
        self._interval = interval_seconds
        self._clock = clock
        self._written: dict[str, float] = {}  # account id -> when this container last wrote it

    def seen(self, account_ids: Iterable[str]) -> None:
        now = self._clock()
        at = datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        for account_id in sorted(set(account_ids)):
            if now - self._written.get(account_id, -self._interval) < self._interval:
                continue
            self._written[account_id] = now  # also on failure: an unreachable table is not asked every request
            try:
                self._accounts.record_webhook(account_id, at)
            except Exception as exc:  # a diagnostic, so any failure is swallowed: the events are durable
                # An unknown account (its item is missing) lands here too: the condition refuses to create one.
                logger.info(
                    "last_webhook_at not recorded", extra={"account_id": account_id, "reason": type(exc).__name__}
                )
