"""Retrying SQS records later, for consumers that use Powertools' FIFO partial batch processing.

A record that must wait is hidden for its own delay (ChangeMessageVisibility) and reported as a batch
item failure. Records skipped because an earlier record of their group failed would otherwise stay
hidden for the queue's whole visibility timeout, and a FIFO group is blocked while any of its messages
is: they are made visible again at once, and SQS still delivers the group's failed head first.
"""

from collections.abc import Collection
from typing import Any

from igdm.observability import logger


class Retry(Exception):
    """Try this record again after ``delay`` seconds (its message group waits behind it)."""

    def __init__(self, delay: float, reason: str) -> None:
        super().__init__(reason)
        self.delay = delay
        self.reason = reason


MAX_VISIBILITY_SECONDS = 43_200  # SQS's limit on a message's visibility timeout
_BATCH = 10  # ChangeMessageVisibilityBatch's limit


def retry_after(sqs: Any, queue_url: str, receipt_handle: str, delay: float) -> int:
    """Hide the record for ``delay`` seconds (clamped to what SQS allows); returns the delay applied."""
    seconds = int(min(max(delay, 1), MAX_VISIBILITY_SECONDS))
    try:
        sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds)
    except Exception as exc:  # the queue's own visibility timeout still brings it back
        logger.warning("could not delay the retry", extra={"error": type(exc).__name__})
    return seconds


def hand_back(
    sqs: Any,
    queue_url: str,
    record: Any,
    failure: Exception,
    *,
    fallback_delay: float,
    receive_count: int,
    what: str,
    delayed: set[str],
) -> Retry:
    """Hide ``record`` (a Powertools SQSRecord) until it should be tried again, note it in ``delayed``,
    and return the Retry for the record handler to raise. A failure that is not a Retry (an AWS service
    unavailable, a bug) is logged with its trace and retried after ``fallback_delay``."""
    if isinstance(failure, Retry):
        retry = failure
    else:
        logger.exception(f"{what} failed unexpectedly; retried later")
        retry = Retry(fallback_delay, f"{type(failure).__name__}: {failure}")
    seconds = retry_after(sqs, queue_url, record.receipt_handle, retry.delay)
    logger.info(
        f"{what} retried later",
        extra={
            "sqs_message_id": record.message_id,
            "delay_seconds": seconds,
            "reason": retry.reason,
            "receive_count": receive_count,
        },
    )
    delayed.add(record.message_id)
    return retry


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
