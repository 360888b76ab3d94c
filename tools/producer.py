"""For producers: put an outbound message on the outbound queue the way the sender expects it.

    from tools.producer import enqueue
    enqueue(boto3.client("sqs"), outbound_queue_url, {"idempotency_key": "order-123-confirmation",
            "recipient": {"id": igsid}, "message": {"type": "text", "text": "Your order shipped"}})

The message is validated first (a ValueError says exactly what is wrong), its group is the
conversation (account and recipient: ordered within it, parallel across them) and its deduplication
id is the idempotency key, so a producer's own retry within five minutes is dropped by SQS itself.
"""

from typing import Any

from pydantic import ValidationError

from igdm.contracts.outbound import OutboundMessage, validation_reason
from igdm.queues.event_queue import group_id


def message_group_id(message: OutboundMessage) -> str:
    recipient = message.recipient.id or f"comment:{message.recipient.comment_id}"
    return group_id(f"{message.account_id or '-'}:{recipient}")


def enqueue(sqs: Any, queue_url: str, message: OutboundMessage | dict[str, Any]) -> str:
    """Validates and sends; returns SQS's MessageId."""
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
