"""For producers: put an outbound message on the outbound queue the way the sender expects it.

    from tools.producer import enqueue
    enqueue(boto3.client("sqs"), outbound_queue_url, {"idempotency_key": "order-123-confirmation",
            "recipient": {"id": igsid}, "message": {"type": "text", "text": "Your order shipped"}})

The message is validated first (a ValueError says exactly what is wrong), its group is the
conversation (account and recipient: ordered within it, parallel across them) and its deduplication
id is the idempotency key, so a producer's own retry within five minutes is dropped by SQS itself.
The gateway's webhook uses the same code (igdm.queues.outbound_queue) for the handover it enqueues itself.
"""

from igdm.queues.outbound_queue import enqueue, message_group_id

__all__ = ["enqueue", "message_group_id"]
