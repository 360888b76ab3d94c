"""What the callback function does with one job from the callback queue.

  parse the job -> sign the body -> POST it -> delivered, or retried later with backoff, or moved to
  the dead-letter queue with its reason (a target that may not be called, a redirect, 410 Gone, or
  the last attempt spent).

At least once: a receiver that times out is retried (its answer may have been lost), so receivers
deduplicate on X-Gateway-Event-Id. Nothing is dropped: what cannot be delivered waits in the
dead-letter queue, from which it can be replayed.
"""

import hashlib
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from callback.http_client import Delivered, Result, RetryLater, Undeliverable
from callback.jobs import CallbackJob, JobRefused, read_job
from igdm.contracts.callbacks import signed_headers
from igdm.runtime.fifo_consumer import QueuedMessage, Retry
from igdm.runtime.observability import logger


class Client(Protocol):
    @property
    def longest_attempt_seconds(self) -> float: ...

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> Result: ...


class DeadLetters(Protocol):
    def put(self, job_body: str, *, group_id: str | None, deduplication_id: str, reason: str, detail: str) -> None: ...


class DeliveryLog(Protocol):
    def attempted(
        self, webhook_id: str, delivery_id: str, state: str, *, http_status: int | None, detail: str
    ) -> None: ...


class Metrics(Protocol):
    def count(self, name: str, value: int = 1, **dimensions: str) -> None: ...


@dataclass
class CallbackDelivery:
    client: Client
    signing_secret: Callable[[], str]
    dead_letters: DeadLetters
    metrics: Metrics
    max_receive_count: int = 12
    retry_base_seconds: float = 5.0
    retry_cap_seconds: float = 900.0
    remaining_seconds: Callable[[], float] = lambda: 60.0
    clock: Callable[[], float] = time.time
    log: DeliveryLog | None = None  # event webhooks' delivery log; None: status callbacks only

    def handle(self, message: QueuedMessage) -> str:
        self.remaining_seconds = message.remaining_seconds
        return self.process(
            message.body,
            sqs_message_id=message.message_id,
            group_id=message.group_id,
            receive_count=message.receive_count,
        )

    def process(self, job_body: str, *, sqs_message_id: str, group_id: str | None, receive_count: int) -> str:
        """Handle one job; returns what became of it (for logs), or raises Retry."""
        try:
            job = read_job(job_body)
        except JobRefused as refused:
            return self._dead_letter(job_body, group_id, f"invalid-{sqs_message_id}", "invalid_job", refused.detail)
        if self.remaining_seconds() < self.client.longest_attempt_seconds + 2:
            raise Retry(0, "not enough time left in this invocation for another attempt")
        body = job.body.encode("utf-8")
        result = self.client.post(
            job.url, body, signed_headers(self.signing_secret(), job.event_id, body, now=self.clock())
        )
        context = {"event_id": job.event_id, "receive_count": receive_count}
        if isinstance(result, Delivered):
            self.metrics.count("CallbacksDelivered")
            logger.info("callback delivered", extra={**context, "http_status": result.status})
            self._logged(job, "delivered", result.status, f"answered {result.status}")
            return "delivered"
        parked = _parked_id(job)
        if isinstance(result, Undeliverable):
            self._logged(job, "failed", None, f"{result.reason}: {result.detail}")
            return self._dead_letter(job_body, group_id, parked, result.reason, result.detail)
        if not isinstance(result, RetryLater):  # the last of the three Result kinds (callback.http_client)
            raise TypeError(f"unexpected delivery result {type(result).__name__}")
        if receive_count >= self.max_receive_count:
            detail = f"{receive_count} attempts; the last: {result.detail}"
            self._logged(job, "failed", None, f"retries_exhausted: {detail}")
            return self._dead_letter(job_body, group_id, parked, "retries_exhausted", detail)
        self._logged(job, "pending", None, f"{result.reason}: {result.detail}; retried")
        self.metrics.count("CallbacksRetried", reason=result.reason)
        delay = self.backoff_seconds(receive_count)
        if result.retry_after is not None:
            delay = min(max(delay, result.retry_after), self.retry_cap_seconds)
        raise Retry(delay, result.detail)

    def _logged(self, job: CallbackJob, state: str, http_status: int | None, detail: str) -> None:
        """An event webhook's attempt in its delivery log. Best effort: the POST happened whatever the log says,
        and failing the job for its log would POST it again."""
        if job.hook is None or self.log is None:
            return
        try:
            self.log.attempted(job.hook.webhook_id, job.hook.delivery_id, state, http_status=http_status, detail=detail)
        except Exception:  # the table refused or the log expired: counted, never a second POST
            self.metrics.count("DeliveryLogMisses")
            logger.warning("a delivery's attempt was not logged", extra={"delivery_id": job.hook.delivery_id})

    def backoff_seconds(self, receive_count: int) -> float:
        """Exponential backoff with jitter, by how many times the job was received."""
        ceiling = min(self.retry_cap_seconds, self.retry_base_seconds * 2.0 ** max(receive_count - 1, 0))
        return ceiling * (0.5 + random.random() / 2)  # noqa: S311  # nosec B311 # jitter, not cryptography

    def _dead_letter(self, job_body: str, group_id: str | None, deduplication_id: str, reason: str, detail: str) -> str:
        self.dead_letters.put(
            job_body, group_id=group_id, deduplication_id=deduplication_id, reason=reason, detail=detail
        )
        self.metrics.count("CallbacksUndeliverable", reason=reason)
        logger.warning(
            "callback moved to the dead-letter queue",
            extra={"reason": reason, "detail": detail, "event_id": _event_id(job_body)},
        )
        return "dead_lettered"


def _parked_id(job: CallbackJob) -> str:
    """The dead-letter queue's deduplication id: the event's for a status callback; for an event webhook's
    delivery its registration and delivery, or the same event failing at two webhooks would park once."""
    if job.hook is None:
        return job.event_id
    return hashlib.sha256(f"{job.hook.webhook_id}|{job.hook.delivery_id}".encode()).hexdigest()


def _event_id(job_body: str) -> str | None:
    try:
        value = json.loads(job_body).get("event_id")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None
