"""Puts an outbound message on the outbound FIFO queue the way the sender expects it: validated, its group the
conversation (account and recipient: ordered within it, parallel across them), its deduplication id the
idempotency key, so a repeat within five minutes is dropped by SQS itself (and by the sender after that)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from igdm.inbound.ingest import StorageUnavailable
from igdm.queues.event_queue import group_id
from igdm.runtime.aws import error_code

if TYPE_CHECKING:  # imported when a message is enqueued: the webhook's cold start does without it
    from igdm.contracts.outbound import OutboundMessage


def message_group_id(message: OutboundMessage) -> str:
    recipient = message.recipient.id or f"comment:{message.recipient.comment_id}"
    return group_id(f"{message.account_id or '-'}:{recipient}")


def enqueue(sqs: Any, queue_url: str, message: OutboundMessage | dict[str, Any]) -> str:
    """Validates and sends; returns SQS's MessageId. An invalid message raises ValueError saying what is wrong."""
    from pydantic import ValidationError

    from igdm.contracts.outbound import OutboundMessage, validation_reason

    if not isinstance(message, OutboundMessage):
        try:
            message = OutboundMessage.model_validate(message)
        except ValidationError as exc:
            raise ValueError(validation_reason(exc.errors(include_url=False, include_input=False))) from None
    response = sqs.send_message(
        QueueUrl=queue_url,
        MessageBody=message.model_dump_json(exclude_none=True),
        MessageGroupId=message_group_id(message),
        MessageDeduplicationId=message.idempotency_key,
    )
    return str(response["MessageId"])


class NotQueued(Exception):
    """SQS took some of a batch and refused the rest: the caller sends it again (the same idempotency keys)."""


SEND_BATCH_LIMIT = 10  # SendMessageBatch's entries per call


def enqueue_all(sqs: Any, queue_url: str, messages: list[dict[str, Any]]) -> None:
    """Validates every message before any is queued (ValueError names the first invalid one, by its position
    when there are several), then sends them in order with SendMessageBatch, ten per call: what one request
    made several (a vendor's message to many customers) costs a tenth of the requests."""
    from pydantic import ValidationError

    from igdm.contracts.outbound import OutboundMessage, validation_reason

    valid = []
    for n, message in enumerate(messages, 1):
        try:
            valid.append(OutboundMessage.model_validate(message))
        except ValidationError as exc:
            reason = validation_reason(exc.errors(include_url=False, include_input=False))
            raise ValueError(f"message {n} of {len(messages)}: {reason}" if len(messages) > 1 else reason) from None
    for start in range(0, len(valid), SEND_BATCH_LIMIT):
        chunk = valid[start : start + SEND_BATCH_LIMIT]
        response = sqs.send_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {
                    "Id": str(n),
                    "MessageBody": m.model_dump_json(exclude_none=True),
                    "MessageGroupId": message_group_id(m),
                    "MessageDeduplicationId": m.idempotency_key,
                }
                for n, m in enumerate(chunk)
            ],
        )
        if response.get("Failed"):
            codes = sorted({str(f.get("Code")) for f in response["Failed"]})
            raise NotQueued(f"the outbound queue refused {len(response['Failed'])} of {len(chunk)}: {', '.join(codes)}")


class OutboundQueue:
    """The gateway's own producer (the handover trigger): SQS's refusal is StorageUnavailable, so the webhook
    answers 503 and Meta's retry enqueues it again (the same idempotency key: sent once)."""

    def __init__(self, sqs: Any, queue_url: str) -> None:
        self._sqs = sqs
        self._queue_url = queue_url

    def enqueue(self, message: OutboundMessage) -> None:
        try:
            enqueue(self._sqs, self._queue_url, message)
        except (ClientError, BotoCoreError) as exc:
            raise StorageUnavailable(f"the outbound queue refused a message: {error_code(exc)}") from exc
