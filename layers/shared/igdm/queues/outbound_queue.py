"""Puts an outbound message on the outbound FIFO queue the way the sender expects it: validated, its group the
conversation (account and recipient: ordered within it, parallel across them), its deduplication id the
idempotency key, so a repeat within five minutes is dropped by SQS itself (and by the sender after that)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

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
