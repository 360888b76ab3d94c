"""message_status events and their callback jobs against a stub SQS that answers entry by entry."""

import json
from dataclasses import replace
from typing import Any

import pytest

from igdm.queues.status_publisher import StatusNotPublished, StatusPublisher
from igdm.store.outbound_records import DELIVERED, OutboundRecord


class StatusQueues:
    """Refuses events-queue entries whose status is in ``refuse``; records what each queue took."""

    def __init__(self, refuse: set[str], sender_fault: bool = False) -> None:
        self.refuse = refuse
        self.sender_fault = sender_fault
        self.events: list[str] = []
        self.callbacks: list[str] = []

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        ok, failed = [], []
        for entry in Entries:
            status = json.loads(entry["MessageBody"])["status"]["status"]
            if status in self.refuse:
                failed.append({"Id": entry["Id"], "Code": "InternalError", "SenderFault": self.sender_fault})
            else:
                self.events.append(status)
                ok.append({"Id": entry["Id"]})
        return {"Successful": ok, "Failed": failed}

    def send_message(self, QueueUrl: str, MessageBody: str, **_: Any) -> dict[str, Any]:
        self.callbacks.append(json.loads(json.loads(MessageBody)["body"])["status"]["status"])
        return {}


def delivered() -> OutboundRecord:
    return OutboundRecord(
        idempotency_key="k-1",
        status=DELIVERED,
        account_id="1",
        customer_id="2",
        kind="text",
        payload_hash="h",
        parts_total=1,
        parts_sent=1,
        inflight_part=None,
        message_ids=["m_1"],
        callback_url="https://hooks.example.org/status",
    )


@pytest.mark.parametrize("sender_fault", [False, True])
def test_a_status_the_queue_refused_is_not_reported_as_published(sender_fault: bool) -> None:
    queues = StatusQueues(refuse={"DELIVERED"}, sender_fault=sender_fault)
    with pytest.raises(StatusNotPublished):
        StatusPublisher(queues, "events", "callbacks").publish(delivered())
    assert queues.events == ["SENT"]
    assert queues.callbacks == ["SENT"]  # no callback for the status that is not on the events queue


def test_both_statuses_and_their_callbacks_when_the_queue_takes_both() -> None:
    queues = StatusQueues(refuse=set())
    event = StatusPublisher(queues, "events", "callbacks").publish(delivered())
    assert event.status is not None and event.status.status == "DELIVERED"
    assert queues.events == queues.callbacks == ["SENT", "DELIVERED"]


def test_no_delivered_callback_while_sent_is_not_on_the_queue() -> None:
    queues = StatusQueues(refuse={"SENT"})
    with pytest.raises(StatusNotPublished):
        StatusPublisher(queues, "events", "callbacks").publish(delivered())
    assert queues.callbacks == []  # the retry publishes SENT, then both callbacks in order


def test_a_delivered_that_settles_an_unknown_keeps_its_reason_and_tells_its_detail_as_past() -> None:
    from igdm.contracts.message_status import status_event

    def record(status: str) -> OutboundRecord:
        return replace(delivered(), status=status, reason="ambiguous_outcome", detail="Meta's answer never came")

    settled = status_event(record("DELIVERED")).status
    assert settled is not None and (settled.reason, settled.detail) == (
        "ambiguous_outcome",
        "before Instagram confirmed it: Meta's answer never came",
    )
    unknown = status_event(record("UNKNOWN")).status
    assert unknown is not None and (unknown.reason, unknown.detail) == ("ambiguous_outcome", "Meta's answer never came")
