"""The SQS adapter against a stub client that answers as SQS does, entry by entry."""

from typing import Any

from igdm.contracts.serialized import SerializedEvent
from igdm.inbound.meta_payload import Envelope
from igdm.inbound.normalize import normalize
from igdm.queues.event_queue import SqsEventPublisher, group_id
from igdm.runtime.observability import metrics
from local.samples import meta as p


class ScriptedSqs:
    """Refuses the entries named in ``refusals`` (one set per call), accepts the rest, records order."""

    def __init__(self, refusals: list[set[str]], sender_fault: bool = False) -> None:
        self.refusals = refusals
        self.sender_fault = sender_fault
        self.queue: list[str] = []
        self.calls = 0

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        refuse = self.refusals[self.calls] if self.calls < len(self.refusals) else set()
        self.calls += 1
        ok, failed = [], []
        for entry in Entries:
            mid = entry["MessageBody"].split('"message_id":"')[1].split('"')[0]
            if mid in refuse:
                failed.append({"Id": entry["Id"], "Code": "InternalError", "SenderFault": self.sender_fault})
            else:
                self.queue.append(mid)
                ok.append({"Id": entry["Id"]})
        return {"Successful": ok, "Failed": failed}


def events(*mids: str, customer: str = p.CUSTOMER) -> list[SerializedEvent]:
    items = [p.text(mid=mid, ts=p.T0 + i, customer=customer) for i, mid in enumerate(mids)]
    return [SerializedEvent.of(e) for e in normalize(Envelope.model_validate(p.envelope(*items)), 0)]


def test_refused_entries_are_retried_and_everything_lands() -> None:
    sqs = ScriptedSqs([{"m1"}])
    sent = SqsEventPublisher(sqs, "q").publish(events("m0", "m1", "m2"))
    assert len(sent) == 3 and sorted(sqs.queue) == ["m0", "m1", "m2"] and sqs.calls == 2


def test_an_entry_overtaken_in_its_conversation_is_counted() -> None:
    sqs = ScriptedSqs([{"m0"}])
    metrics.clear_metrics()
    SqsEventPublisher(sqs, "q").publish(events("m0", "m1"))
    assert sqs.queue == ["m1", "m0"]
    assert metrics.metric_set["EventsOutOfOrder"]["Value"] == [1.0]
    metrics.clear_metrics()


def test_sender_faults_are_not_repeated_and_later_batches_wait() -> None:
    sqs = ScriptedSqs([{"m3"}, {"m3"}], sender_fault=True)
    sent = SqsEventPublisher(sqs, "q").publish(events(*(f"m{i}" for i in range(15))))
    assert sqs.calls == 1  # no retry of a refusal that cannot succeed, no second batch overtaking it
    assert [s.event.message_id for s in sent] == [f"m{i}" for i in range(10) if i != 3]


def test_other_refusals_in_a_batch_are_still_retried_after_a_sender_fault() -> None:
    class Mixed(ScriptedSqs):
        def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
            response = super().send_message_batch(QueueUrl, Entries)
            for refusal in response["Failed"]:
                refusal["SenderFault"] = refusal["Id"] == "0"
            return response

    sqs = Mixed([{"m0", "m1"}])
    sent = SqsEventPublisher(sqs, "q").publish(events("m0", "m1", "m2"))
    assert sqs.calls == 2 and [s.event.message_id for s in sent] == ["m1", "m2"]


def test_group_ids_are_always_ones_sqs_accepts() -> None:
    assert group_id("17841400000000001:6543210987654321") == "17841400000000001:6543210987654321"
    long = group_id("a" * 200)
    assert long.startswith("sha256-") and len(long) <= 128 and long == group_id("a" * 200)
