"""The callback dead-letter queue (SQS FIFO): where a callback that cannot be delivered waits, with why."""

from typing import Any


class DeadLetterQueue:
    def __init__(self, sqs: Any, queue_url: str) -> None:
        self._sqs = sqs
        self._queue_url = queue_url

    def put(self, job_body: str, *, group_id: str | None, deduplication_id: str, reason: str, detail: str) -> None:
        # If this fails the record fails too, and comes back: nothing is dropped.
        self._sqs.send_message(
            QueueUrl=self._queue_url,
            MessageBody=job_body,
            MessageGroupId=group_id or "callbacks",
            MessageDeduplicationId=deduplication_id[:128],
            MessageAttributes={
                "reason": {"DataType": "String", "StringValue": reason},
                "detail": {"DataType": "String", "StringValue": detail[:1024] or "-"},
            },
        )
