"""One SQS FIFO consumer for every function that reads a FIFO queue (the sender, the callback function).

FIFO partial-batch processing: the records are handled in order; a failed record fails the rest of its
message group in the batch (so a conversation, or a message's callbacks, keep their order) while other
groups go on, and ReportBatchItemFailures returns only those to the queue. On top of it:

- a record that must wait raises Retry; it is hidden for its own delay (ChangeMessageVisibility) and
  reported as a batch item failure. Any other exception (an AWS service unavailable, a bug) is logged
  with its trace and retried after the service's backoff;
- records skipped because an earlier record of their group failed would otherwise stay hidden for the
  queue's whole visibility timeout, and a FIFO group is blocked while any of its messages is: they are
  made visible again at once, and SQS still delivers the group's failed head first;
- each message says how long the invocation has left (``remaining_seconds``), so no work starts that
  would outlive it.

The batch loop is ours rather than Powertools' (SqsFifoPartialProcessor(skip_group_on_error=True) with
process_partial_response): importing aws_lambda_powertools.utilities.batch, which pulls in every event
source's data classes, cost the sender's and the callback function's cold start about 50 ms (-X importtime put
Powertools at 59-69 ms of their import with it, 13-14 ms without), for a loop of a few lines. It answers as
that processor did, raise_on_entire_batch_failure=False: a record without a MessageGroupId fails no other
record; a batch whose every record failed is answered, not raised; an event without records is refused
(tests/unit/layer/test_fifo_consumer.py holds it to Powertools).
"""

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, Protocol

from igdm.runtime.invocation import time_left
from igdm.runtime.observability import logger


class Retry(Exception):
    """Try this record again after ``delay`` seconds (its message group waits behind it)."""

    def __init__(self, delay: float, reason: str) -> None:
        super().__init__(reason)
        self.delay = delay
        self.reason = reason


@dataclass(frozen=True)
class QueuedMessage:
    """One record of the batch, as a service needs it."""

    body: str
    message_id: str
    group_id: str | None
    receive_count: int  # SQS's ApproximateReceiveCount: 1 on the first delivery
    remaining_seconds: Callable[[], float]  # how long the invocation has left: no work may outlive it
    dialect: str | None = None  # the message attribute "dialect": a vendor's body (igdm.contracts.dialects)


class QueueService(Protocol):
    def handle(self, message: QueuedMessage) -> str:
        """What became of the message (logged), or raise Retry to see it again later."""
        ...

    def backoff_seconds(self, receive_count: int) -> float:
        """How long to wait before the next attempt after an unexpected failure."""
        ...


MAX_VISIBILITY_SECONDS = 43_200  # SQS's limit on a message's visibility timeout
_BATCH = 10  # ChangeMessageVisibilityBatch's limit


class NotABatch(Exception):
    """The event holds no records (Lambda never sends such a batch): refused, as Powertools' processor did."""


class FifoConsumer:
    def __init__(
        self, service: QueueService, sqs: Any, queue_url: str, *, what: str, default_seconds: float = 30.0
    ) -> None:
        self._service = service
        self._sqs = sqs
        self._queue_url = queue_url
        self._what = what  # names the records in log lines: "outbound message", "callback"
        self._default_seconds = default_seconds  # the time left, when invoked without a Lambda context
        self._delayed: set[str] = set()  # message ids given their own retry delay in this invocation
        self._remaining: Callable[[], float] = lambda: default_seconds

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self._remaining = time_left(context, self._default_seconds)
        self._delayed.clear()
        response = {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in self._failed(event)]}
        release_skipped(self._sqs, self._queue_url, event, response, self._delayed)
        return response

    def _failed(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        """The batch's records that failed, in order: those whose handling raised, and those of a message group
        that already failed in this batch, not handled. A record without a MessageGroupId fails no other.
        Even a batch whose every record failed is answered: each record already carries its own retry delay,
        and a function error would only add noise to the Errors metric."""
        records = event.get("Records", [])
        if not records or not isinstance(records, list):
            raise NotABatch("not an SQS batch: the event has no Records")
        failed, failed_groups = [], set()
        for record in records:
            group_id = record.get("attributes", {}).get("MessageGroupId")
            if group_id not in failed_groups:
                try:
                    self._record(record)
                    continue
                except Exception:  # logged and delayed by _hand_back (a record too malformed to read: neither)
                    if group_id:
                        failed_groups.add(group_id)
            failed.append(record)
        return failed

    def _record(self, record: dict[str, Any]) -> None:
        attributes = record["attributes"]
        receive_count = int(attributes["ApproximateReceiveCount"] or 1)
        dialect = (record.get("messageAttributes") or {}).get("dialect") or {}
        message = QueuedMessage(
            record["body"],
            record["messageId"],
            attributes.get("MessageGroupId"),
            receive_count,
            self._remaining,
            dialect.get("stringValue"),
        )
        try:
            outcome = self._service.handle(message)
        except Exception as exc:
            raise self._hand_back(record, exc, receive_count) from None
        logger.info(
            f"{self._what} processed",
            extra={"sqs_message_id": message.message_id, "outcome": outcome, "receive_count": receive_count},
        )

    def _hand_back(self, record: dict[str, Any], failure: Exception, receive_count: int) -> Retry:
        """Hide the record until it should be tried again, and return the Retry for _record to raise, so the
        record is reported as a batch item failure."""
        if isinstance(failure, Retry):
            retry = failure
        else:
            logger.exception(f"{self._what} failed unexpectedly; retried later")
            retry = Retry(self._service.backoff_seconds(receive_count), f"{type(failure).__name__}: {failure}")
        seconds = retry_after(self._sqs, self._queue_url, record["receiptHandle"], retry.delay)
        logger.info(
            f"{self._what} retried later",
            extra={
                "sqs_message_id": record["messageId"],
                "delay_seconds": seconds,
                "reason": retry.reason,
                "receive_count": receive_count,
            },
        )
        self._delayed.add(record["messageId"])
        return retry


def retry_after(sqs: Any, queue_url: str, receipt_handle: str, delay: float) -> int:
    """Hide the record for ``delay`` seconds (clamped to what SQS allows); returns the delay applied."""
    seconds = int(min(max(delay, 1), MAX_VISIBILITY_SECONDS))
    try:
        sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds)
    except Exception as exc:  # the queue's own visibility timeout still brings it back
        logger.warning("could not delay the retry", extra={"error": type(exc).__name__})
    return seconds


def release_skipped(
    sqs: Any, queue_url: str, event: dict[str, Any], response: dict[str, Any], delayed: Collection[str]
) -> None:
    """Make visible now the failed records that were not given a delay of their own (``delayed``
    holds the message ids that were)."""
    failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
    skipped = [r for r in event.get("Records", []) if r.get("messageId") in failed and r["messageId"] not in delayed]
    for start in range(0, len(skipped), _BATCH):
        chunk = skipped[start : start + _BATCH]
        try:
            sqs.change_message_visibility_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": r["receiptHandle"], "VisibilityTimeout": 0}
                    for i, r in enumerate(chunk)
                ],
            )
        except Exception as exc:  # they come back after the visibility timeout instead
            logger.warning("could not release skipped records", extra={"error": type(exc).__name__})
