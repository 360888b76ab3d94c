"""The gateway's own producer (igdm.queues.outbound_queue): a message the contract refuses never reaches the
queue, and SQS's refusal is StorageUnavailable, so the webhook answers 503 and Meta retries."""

from typing import Any

import pytest
from botocore.exceptions import ClientError

from igdm.contracts.outbound import OutboundMessage
from igdm.inbound.ingest import StorageUnavailable
from igdm.queues.outbound_queue import OutboundQueue, enqueue
from local.samples import outbound as out


class Sqs:
    def __init__(self, refuse: bool = False) -> None:
        self.refuse = refuse
        self.sent: list[dict[str, Any]] = []

    def send_message(self, **request: Any) -> dict[str, Any]:
        if self.refuse:
            raise ClientError({"Error": {"Code": "AWS.SimpleQueueService.Throttled", "Message": "no"}}, "SendMessage")
        self.sent.append(request)
        return {"MessageId": "mid-1"}


def test_a_message_goes_in_its_conversations_group_deduplicated_by_its_key() -> None:
    sqs = Sqs()
    assert enqueue(sqs, "url", out.outbound("text", key="k-1")) == "mid-1"
    [request] = sqs.sent
    assert (request["MessageGroupId"], request["MessageDeduplicationId"]) == (f"{out.ACCOUNT}:{out.CUSTOMER}", "k-1")


def test_an_invalid_message_says_why_and_is_not_sent() -> None:
    sqs = Sqs()
    with pytest.raises(ValueError, match="recipient"):
        enqueue(sqs, "url", {"idempotency_key": "k", "message": {"type": "text", "text": "hi"}})
    assert sqs.sent == []


def test_sqs_refusing_the_gateways_own_message_is_storage_unavailable() -> None:
    with pytest.raises(StorageUnavailable, match="Throttled"):
        OutboundQueue(Sqs(refuse=True), "url").enqueue(OutboundMessage.model_validate(out.outbound("text")))
