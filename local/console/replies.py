"""The console's reply box: a text from the account to the customer, put on the outbound queue as `make send`
puts its message there (local/try_it.py): local.samples.outbound.local_reply, a text with its status callbacks
asked for to the local callback inbox, and tools.producer.enqueue, which validates it and
queues it in the conversation's message group with its idempotency key as the deduplication id.

The table holds nothing of a message until the sender takes it, so the console remembers the replies it queued
(and when), to show them QUEUED from the first moment."""

import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from local.console.reads import QueuedReply
from local.samples import outbound as outbound_samples
from tools.producer import enqueue

KEY_PREFIX = "console-"  # `make send`'s keys start local-: the page tells who queued a message
CORRELATION_ID = "local-console"
REMEMBERED = 1000  # replies kept for their QUEUED moment; the oldest are forgotten first


class EmptyReply(ValueError):
    """Nothing to send."""


class Replies:
    def __init__(self, sqs: Any, queue_url: str, callback_url: str, *, clock: Callable[[], float] = time.time) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._callback_url = callback_url
        self._clock = clock
        self._lock = threading.Lock()  # the API server answers each request in a thread of its own
        self._queued: OrderedDict[str, QueuedReply] = OrderedDict()

    def send(self, account_id: str, customer_id: str, text: str) -> QueuedReply:
        """Queue ``text`` for the customer. EmptyReply for blank text, ValueError with the contract's reason for
        any other text the sender would refuse (tools.producer.enqueue); SQS's errors as boto3 raises them."""
        if not text.strip():
            raise EmptyReply("text: the reply is empty; write something to send")
        key = f"{KEY_PREFIX}{uuid.uuid4().hex[:12]}"
        message = outbound_samples.local_reply(
            "text",
            key,
            account_id,
            self._callback_url,
            text=text,
            recipient={"id": customer_id},
            correlation_id=CORRELATION_ID,
        )
        enqueue(self._sqs, self._queue_url, message)
        queued_at = datetime.fromtimestamp(self._clock(), UTC).isoformat(timespec="milliseconds")
        reply = QueuedReply(key, account_id, customer_id, text, queued_at)
        with self._lock:
            self._queued[key] = reply
            while len(self._queued) > REMEMBERED:
                self._queued.popitem(last=False)
        return reply

    def queued(self, account_id: str, customer_id: str) -> list[QueuedReply]:
        with self._lock:
            return [r for r in self._queued.values() if (r.account_id, r.customer_id) == (account_id, customer_id)]
