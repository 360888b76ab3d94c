"""The FIFO consumer's own batch loop against Powertools' SqsFifoPartialProcessor(skip_group_on_error=True),
which it replaced: the same batches give the same batchItemFailures, in the same order, the same records
handled, and the same calls to SQS (a retry's own delay, the release of the skipped records)."""

from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from hypothesis import given, settings
from hypothesis import strategies as st

from igdm.runtime.fifo_consumer import FifoConsumer, NotABatch, QueuedMessage, Retry, release_skipped

URL = "https://sqs.us-east-1.amazonaws.com/123456789012/outbound.fifo"
NO_GROUP = "-"  # a record without a MessageGroupId
NO_ATTRIBUTES = "!"  # a record without its attributes at all: its handling fails before the service is asked


class ScriptedService:
    """Does what each record's body says: "ok", "retry" (Retry) or "boom" (an unexpected exception)."""

    def __init__(self) -> None:
        self.handled: list[tuple[str, str | None, int, str | None]] = []

    def handle(self, message: QueuedMessage) -> str:
        self.handled.append((message.message_id, message.group_id, message.receive_count, message.dialect))
        if message.body == "retry":
            raise Retry(7, "waits")
        if message.body == "boom":
            raise RuntimeError("unavailable")
        return "done"

    def backoff_seconds(self, receive_count: int) -> float:
        return 2.0 * receive_count


class RecordingSqs:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def change_message_visibility(self, **request: Any) -> dict[str, Any]:
        self.calls.append(("change_message_visibility", request))
        return {}

    def change_message_visibility_batch(self, **request: Any) -> dict[str, Any]:
        self.calls.append(("change_message_visibility_batch", request))
        return {"Successful": [], "Failed": []}


def record(number: int, group: str, body: str, receive_count: str = "1", dialect: str | None = None) -> dict[str, Any]:
    attributes = {"ApproximateReceiveCount": receive_count, "SentTimestamp": "1700000000000"}
    if group != NO_GROUP:
        attributes["MessageGroupId"] = group
    raw: dict[str, Any] = {
        "messageId": f"m-{number}",
        "receiptHandle": f"r-{number}",
        "body": body,
        "attributes": attributes,
        "messageAttributes": {"dialect": {"stringValue": dialect, "dataType": "String"}} if dialect else {},
        "eventSource": "aws:sqs",
    }
    if group == NO_ATTRIBUTES:
        del raw["attributes"]
    return raw


def ours(event: dict[str, Any]) -> tuple[Any, ...]:
    service, sqs = ScriptedService(), RecordingSqs()
    response = FifoConsumer(service, sqs, URL, what="message")(event, None)
    return response, service.handled, sqs.calls


def powertools(event: dict[str, Any]) -> tuple[Any, ...]:
    """The consumer as it was: Powertools' processor around the same handling of each record."""
    service, sqs = ScriptedService(), RecordingSqs()
    consumer = FifoConsumer(service, sqs, URL, what="message")
    processor = SqsFifoPartialProcessor(skip_group_on_error=True)
    processor.raise_on_entire_batch_failure = False
    response = dict(
        process_partial_response(
            event=event, record_handler=lambda record: consumer._record(record.raw_event), processor=processor
        )
    )
    release_skipped(sqs, URL, event, response, consumer._delayed)
    return response, service.handled, sqs.calls


def test_a_mixed_batch_fails_what_powertools_failed() -> None:
    event = {
        "Records": [
            record(1, "a", "ok"),
            record(2, "a", "retry"),
            record(3, "b", "ok"),
            record(4, "a", "ok"),  # skipped: a failed before it
            record(5, NO_GROUP, "boom"),
            record(6, NO_GROUP, "ok"),  # no group: handled
            record(7, "b", "boom", receive_count="3"),
            record(8, "", "retry"),
            record(9, "", "ok"),  # an empty group id fails no other record either
            record(10, "c", "ok", dialect="twilio"),
            record(11, "b", "ok"),  # skipped
            record(12, NO_ATTRIBUTES, "ok"),  # fails without reaching the service
        ]
    }
    answer = ours(event)
    assert answer == powertools(event)
    response, handled, calls = answer
    assert response == {"batchItemFailures": [{"itemIdentifier": f"m-{n}"} for n in (2, 4, 5, 7, 8, 11, 12)]}
    assert [h[0] for h in handled] == [f"m-{n}" for n in (1, 2, 3, 5, 6, 7, 8, 9, 10)]
    assert handled[-1] == ("m-10", "c", 1, "twilio")
    delays = [(c[1]["ReceiptHandle"], c[1]["VisibilityTimeout"]) for c in calls[:-1]]
    assert delays == [("r-2", 7), ("r-5", 2), ("r-7", 6), ("r-8", 7)]
    assert calls[-1] == (
        "change_message_visibility_batch",
        {
            "QueueUrl": URL,
            "Entries": [
                {"Id": "0", "ReceiptHandle": "r-4", "VisibilityTimeout": 0},
                {"Id": "1", "ReceiptHandle": "r-11", "VisibilityTimeout": 0},
                {"Id": "2", "ReceiptHandle": "r-12", "VisibilityTimeout": 0},
            ],
        },
    )


def test_a_batch_whose_every_record_failed_is_answered_not_raised() -> None:
    event = {"Records": [record(1, "a", "retry"), record(2, "a", "ok"), record(3, "b", "boom")]}
    answer = ours(event)
    assert answer == powertools(event)
    assert answer[0] == {"batchItemFailures": [{"itemIdentifier": f"m-{n}"} for n in (1, 2, 3)]}


def test_a_batch_without_failures_reports_none() -> None:
    event = {"Records": [record(1, "a", "ok"), record(2, NO_GROUP, "ok")]}
    answer = ours(event)
    assert answer == powertools(event)
    assert answer[0] == {"batchItemFailures": []} and answer[2] == []


@pytest.mark.parametrize("event", [{"Records": []}, {}, {"Records": None}, {"Records": {"0": record(1, "a", "ok")}}])
def test_an_event_without_records_is_refused_as_powertools_refused_it(event: dict[str, Any]) -> None:
    with pytest.raises(Exception) as refused:
        powertools(event)
    assert type(refused.value).__name__ == "UnexpectedBatchTypeError"
    service, sqs = ScriptedService(), RecordingSqs()
    with pytest.raises(NotABatch):
        FifoConsumer(service, sqs, URL, what="message")(event, None)
    assert service.handled == [] and sqs.calls == []


records = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c", "", NO_GROUP, NO_ATTRIBUTES]),
        st.sampled_from(["ok", "ok", "retry", "boom"]),
        st.sampled_from(["1", "2", "", "12"]),
    ),
    min_size=1,
    max_size=25,  # more than ChangeMessageVisibilityBatch's 10: the release goes in chunks
)


@settings(max_examples=300, deadline=None)
@given(records)
def test_any_batch_fails_what_powertools_failed(batch: list[tuple[str, str, str]]) -> None:
    event = {"Records": [record(n, group, body, count) for n, (group, body, count) in enumerate(batch)]}
    assert ours(event) == powertools(event)
