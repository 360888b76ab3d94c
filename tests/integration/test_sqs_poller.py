"""The local SQS event source mapping against moto, with plain callables as the function.

Visibility timeouts are real time in moto, so the queues use 1 s and the tests that need a message
back sleep just past it."""

import base64
import copy
import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.sqs.models import SQSBackend

from local.aws.sqs_poller import BACKOFF_SECONDS, QueueSubscription, SqsPoller, pollers, queue_subscriptions
from local.aws.template import REGION, Stack, TemplateError, load
from tests.integration.conftest import in_process_aws

SAM_EVENT = json.loads(
    (Path(__file__).parent.parent / "fixtures" / "sam_generate_event_sqs_receive_message.json").read_text(
        encoding="utf-8"
    )
)
VISIBILITY_TIMEOUT = 1
MAX_RECEIVE_COUNT = 3
FIFO_ATTRIBUTES = {"SequenceNumber", "MessageGroupId", "MessageDeduplicationId"}

Event = dict[str, Any]


@dataclass
class Queues:
    sqs: Any
    fifo_url: str
    fifo_arn: str
    dlq_url: str
    standard_url: str
    standard_arn: str


def _release_expired_in_flight_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    """Work around a moto bug (5.2.5) that breaks FIFO order after a partial batch failure.

    moto frees a timed-out message's group one message at a time while scanning, so with A2, A3 and A4
    of group A timing out together it skips A2 and A3 (A4 still "in flight") and hands out A4 first.
    SQS frees them all when their visibility timeout expires and hands out A2 first. Freeing every
    expired message before moto scans does what SQS does, and is harmless once moto is fixed.
    """
    receive_message = SQSBackend.receive_message

    def receive_in_order(self: Any, queue_name: str, *args: Any, **kwargs: Any) -> Any:
        queue = self.get_queue(queue_name)
        for message in [m for m in queue.pending_messages if m.visible]:
            queue.pending_messages.discard(message)
        return receive_message(self, queue_name, *args, **kwargs)

    monkeypatch.setattr(SQSBackend, "receive_message", receive_in_order)


@pytest.fixture
def queues(monkeypatch: pytest.MonkeyPatch) -> Iterator[Queues]:
    _release_expired_in_flight_messages(monkeypatch)
    with in_process_aws(monkeypatch):
        sqs = boto3.client("sqs", region_name=REGION)
        dlq_url = sqs.create_queue(QueueName="poller-test-dlq.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
        redrive = {"deadLetterTargetArn": _arn(sqs, dlq_url), "maxReceiveCount": MAX_RECEIVE_COUNT}
        fifo_url = sqs.create_queue(
            QueueName="poller-test.fifo",
            Attributes={
                "FifoQueue": "true",
                "VisibilityTimeout": str(VISIBILITY_TIMEOUT),
                "RedrivePolicy": json.dumps(redrive),
            },
        )["QueueUrl"]
        standard_url = sqs.create_queue(
            QueueName="poller-test", Attributes={"VisibilityTimeout": str(VISIBILITY_TIMEOUT)}
        )["QueueUrl"]
        yield Queues(sqs, fifo_url, _arn(sqs, fifo_url), dlq_url, standard_url, _arn(sqs, standard_url))


def _arn(sqs: Any, url: str) -> str:
    arn: str = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return arn


class Function:
    """A stand-in for a Lambda handler: keeps every event it was given, answers with ``respond``."""

    def __init__(self, respond: Callable[[Event], Any] = lambda _: None) -> None:
        self.events: list[Event] = []
        self._respond = respond

    def __call__(self, event: Event) -> Any:
        self.events.append(copy.deepcopy(event))
        return self._respond(event)

    def bodies(self, invocation: int = -1) -> list[str]:
        return [record["body"] for record in self.events[invocation]["Records"]]

    def receive_counts(self, invocation: int = -1) -> list[str]:
        return [record["attributes"]["ApproximateReceiveCount"] for record in self.events[invocation]["Records"]]


def failing(*bodies: str) -> Callable[[Event], Any]:
    """A partial batch response listing the records with these bodies."""
    return lambda event: {
        "batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"] if r["body"] in bodies]
    }


def raising(_: Event) -> Any:
    raise RuntimeError("downstream unavailable\nsecond line")


class FifoGroupProcessor:
    """What Powertools' SqsFifoPartialProcessor(skip_group_on_error=True) returns: once a record fails,
    it and every later record of its message group are reported failed, so the group is retried in order.
    Other groups carry on."""

    def __init__(self, fail_once: set[str]) -> None:
        self.processed: list[str] = []
        self._fail_once = set(fail_once)

    def __call__(self, event: Event) -> Any:
        failed_groups: set[str] = set()
        failures = []
        for record in event["Records"]:
            group = record["attributes"]["MessageGroupId"]
            if group not in failed_groups and record["body"] in self._fail_once:
                self._fail_once.discard(record["body"])
                failed_groups.add(group)
            if group in failed_groups:
                failures.append({"itemIdentifier": record["messageId"]})
            else:
                self.processed.append(record["body"])
        return {"batchItemFailures": failures}


def subscription(batch_size: int = 10, *, report: bool = True, window: float = 0.0) -> QueueSubscription:
    return QueueSubscription("Consumer", "Queue", batch_size, report, window)


def standard_poller(queues: Queues, function: Callable[[Event], Any], **settings: Any) -> SqsPoller:
    return SqsPoller(
        queues.sqs, queues.standard_url, queues.standard_arn, function, subscription(**settings), wait_seconds=0
    )


def fifo_poller(queues: Queues, function: Callable[[Event], Any], **settings: Any) -> SqsPoller:
    return SqsPoller(queues.sqs, queues.fifo_url, queues.fifo_arn, function, subscription(**settings), wait_seconds=0)


def send_standard(queues: Queues, *bodies: str, **extra: Any) -> None:
    for body in bodies:
        queues.sqs.send_message(QueueUrl=queues.standard_url, MessageBody=body, **extra)


def send_fifo(queues: Queues, *messages: tuple[str, str]) -> None:
    """(group, body) pairs; the body doubles as the deduplication id."""
    for group, body in messages:
        queues.sqs.send_message(
            QueueUrl=queues.fifo_url, MessageBody=body, MessageGroupId=group, MessageDeduplicationId=body
        )


def depth(queues: Queues, url: str) -> tuple[int, int]:
    """(visible, in flight) messages of a queue."""
    attributes = queues.sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


def wait_for_visibility_timeout() -> None:
    time.sleep(VISIBILITY_TIMEOUT + 0.1)


# ------------------------------------------------------------------------------------- event shape


def test_event_has_the_shape_of_sams_sample(queues: Queues) -> None:
    send_standard(
        queues,
        '{"hello":"world"}',
        MessageAttributes={
            "kind": {"DataType": "String", "StringValue": "text"},
            "count": {"DataType": "Number", "StringValue": "3"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\xff"},
        },
    )
    function = Function()
    assert standard_poller(queues, function).poll_once() == 1

    (event,) = function.events
    (record,) = event["Records"]
    (sample,) = SAM_EVENT["Records"]
    assert list(event) == list(SAM_EVENT)
    assert list(record) == list(sample)
    assert list(record["attributes"]) == list(sample["attributes"])
    assert record["body"] == '{"hello":"world"}'
    assert record["md5OfBody"] == hashlib.md5(b'{"hello":"world"}').hexdigest()  # noqa: S324 - SQS's checksum
    assert (record["eventSource"], record["eventSourceARN"], record["awsRegion"]) == (
        "aws:sqs",
        queues.standard_arn,
        REGION,
    )
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert all(isinstance(v, str) for v in record["attributes"].values())
    assert record["messageAttributes"] == {
        "kind": {"stringValue": "text", "stringListValues": [], "binaryListValues": [], "dataType": "String"},
        "count": {"stringValue": "3", "stringListValues": [], "binaryListValues": [], "dataType": "Number"},
        "blob": {
            "binaryValue": base64.b64encode(b"\x00\xff").decode(),
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "Binary",
        },
    }
    assert json.loads(json.dumps(event)) == event


def test_fifo_records_carry_the_group_sequence_and_deduplication_id(queues: Queues) -> None:
    send_fifo(queues, ("conversation-1", "first"))
    function = Function()
    fifo_poller(queues, function).poll_once()

    attributes = function.events[0]["Records"][0]["attributes"]
    assert list(attributes) == [
        *SAM_EVENT["Records"][0]["attributes"],
        "SequenceNumber",
        "MessageGroupId",
        "MessageDeduplicationId",
    ]
    assert (attributes["MessageGroupId"], attributes["MessageDeduplicationId"]) == ("conversation-1", "first")
    assert function.events[0]["Records"][0]["eventSourceARN"] == queues.fifo_arn


# -------------------------------------------------------------------------------------- batching


def test_batch_size_is_honoured(queues: Queues) -> None:
    send_standard(queues, *(f"m{i}" for i in range(15)))
    function = Function()
    assert standard_poller(queues, function, batch_size=4).poll_once() == 4
    assert standard_poller(queues, function, batch_size=10).poll_once() == 10
    assert [len(e["Records"]) for e in function.events] == [4, 10]
    assert depth(queues, queues.standard_url) == (1, 0)

    send_fifo(queues, *(("A", f"a{i}") for i in range(5)))
    assert fifo_poller(queues, function, batch_size=3).poll_once() == 3
    assert function.bodies() == ["a0", "a1", "a2"]


def test_a_batching_window_fills_batches_beyond_one_receive(queues: Queues) -> None:
    send_standard(queues, *(f"m{i}" for i in range(25)))
    function = Function()
    poller = standard_poller(queues, function, batch_size=25, window=1)
    assert poller.poll_once() == 25
    assert poller.invocations == 1 and sorted(function.bodies()) == sorted(f"m{i}" for i in range(25))

    send_standard(queues, *(f"n{i}" for i in range(12)))
    started = time.monotonic()
    assert poller.poll_once() == 12  # the window closes on a part-filled batch: the 13 more never come
    assert poller.invocations == 2
    assert time.monotonic() - started >= 0.9  # it waited for the window (however slow the machine, not less)
    assert depth(queues, queues.standard_url) == (0, 0)


# ----------------------------------------------------------------------- success and failure


@pytest.mark.parametrize(
    "returned", [None, {}, {"batchItemFailures": []}, {"batchItemFailures": None}, {"statusCode": 200}]
)
def test_a_successful_batch_is_deleted(queues: Queues, returned: Any) -> None:
    send_standard(queues, "a", "b", "c")
    poller = standard_poller(queues, Function(lambda _: returned))
    assert poller.poll_once() == 3
    assert depth(queues, queues.standard_url) == (0, 0)
    assert (poller.invocations, poller.delivered, poller.failed_records, poller.errors) == (1, 3, 0, 0)


def test_all_succeed_empties_the_fifo_queue(queues: Queues) -> None:
    send_fifo(queues, ("A", "a1"), ("B", "b1"), ("A", "a2"))
    function = Function()
    poller = fifo_poller(queues, function)
    while poller.poll_once():
        pass
    assert [b for i in range(len(function.events)) for b in function.bodies(i)] == ["a1", "b1", "a2"]
    assert depth(queues, queues.fifo_url) == (0, 0)


def test_partial_failure_redelivers_only_the_failed_record(queues: Queues) -> None:
    send_standard(queues, "ok-1", "broken", "ok-2")
    poller = standard_poller(queues, Function(failing("broken")))
    assert poller.poll_once() == 3
    assert depth(queues, queues.standard_url) == (0, 1)
    assert (poller.failed_records, poller.errors) == (1, 0)

    wait_for_visibility_timeout()
    retry = Function()
    assert standard_poller(queues, retry).poll_once() == 1
    assert retry.bodies() == ["broken"] and retry.receive_counts() == ["2"]
    assert depth(queues, queues.standard_url) == (0, 0)


def test_an_exception_leaves_the_whole_batch_on_the_queue(queues: Queues, capsys: pytest.CaptureFixture[str]) -> None:
    send_standard(queues, "a", "b", "c")
    poller = standard_poller(queues, Function(raising))
    assert poller.poll_once() == 3
    assert (poller.invocations, poller.failed_records, poller.errors) == (1, 3, 1)
    stderr = capsys.readouterr().err
    assert stderr.count("\n") == 1 and "RuntimeError: downstream unavailable second line" in stderr

    wait_for_visibility_timeout()
    retry = Function()
    assert standard_poller(queues, retry).poll_once() == 3
    assert sorted(retry.bodies()) == ["a", "b", "c"] and retry.receive_counts() == ["2", "2", "2"]


@pytest.mark.parametrize(
    "returned",
    [
        {"batchItemFailures": [{"itemIdentifier": ""}]},
        {"batchItemFailures": [{"itemIdentifier": None}]},
        {"batchItemFailures": [{"itemIdentifier": "not-in-this-batch"}]},
        {"batchItemFailures": [{"id": "bad key name"}]},
        {"batchItemFailures": "not a list"},
        {"unserialisable": object()},
    ],
)
def test_a_response_lambda_rejects_fails_the_whole_batch(queues: Queues, returned: Any) -> None:
    send_standard(queues, "a", "b")
    poller = standard_poller(queues, Function(lambda _: returned))
    assert poller.poll_once() == 2
    assert depth(queues, queues.standard_url) == (0, 2)
    assert (poller.failed_records, poller.errors) == (2, 1)


def test_without_report_batch_item_failures_the_response_is_ignored(queues: Queues) -> None:
    send_standard(queues, "a", "b")
    poller = standard_poller(queues, Function(failing("a")), report=False)
    assert poller.poll_once() == 2
    assert depth(queues, queues.standard_url) == (0, 0)
    assert poller.failed_records == 0


def test_a_message_failing_every_time_lands_in_the_dead_letter_queue(queues: Queues) -> None:
    send_fifo(queues, ("A", "poison"))
    function = Function(raising)
    poller = fifo_poller(queues, function)
    for attempt in range(MAX_RECEIVE_COUNT):
        if attempt:
            wait_for_visibility_timeout()
        assert poller.poll_once() == 1
    wait_for_visibility_timeout()
    assert poller.poll_once() == 0

    assert [function.receive_counts(i) for i in range(MAX_RECEIVE_COUNT)] == [["1"], ["2"], ["3"]]
    dead = queues.sqs.receive_message(QueueUrl=queues.dlq_url, MaxNumberOfMessages=10).get("Messages", [])
    assert [m["Body"] for m in dead] == ["poison"]
    assert depth(queues, queues.fifo_url) == (0, 0)


def test_fifo_order_within_a_group_survives_a_failure(queues: Queues) -> None:
    send_fifo(queues, ("A", "a1"), ("B", "b1"), ("A", "a2"), ("B", "b2"), ("A", "a3"), ("A", "a4"))
    function = FifoGroupProcessor(fail_once={"a2"})
    events = Function(function)
    poller = fifo_poller(queues, events)

    assert poller.poll_once() == 6
    assert events.bodies() == ["a1", "b1", "a2", "b2", "a3", "a4"]
    assert function.processed == ["a1", "b1", "b2"]
    assert poller.failed_records == 3

    # While a2..a4 are in flight SQS holds back group A, even a message sent since; B keeps flowing.
    send_fifo(queues, ("B", "b3"), ("A", "a5"))
    assert poller.poll_once() == 1
    assert events.bodies() == ["b3"]

    wait_for_visibility_timeout()
    assert poller.poll_once() == 4
    assert events.bodies() == ["a2", "a3", "a4", "a5"]
    assert events.receive_counts() == ["2", "2", "2", "1"]
    assert [b for b in function.processed if b.startswith("a")] == ["a1", "a2", "a3", "a4", "a5"]
    assert depth(queues, queues.fifo_url) == (0, 0)


# --------------------------------------------------------------------------------------- thread


def test_the_thread_survives_endpoint_errors_never_spins_and_stops_quickly(
    queues: Queues, capsys: pytest.CaptureFixture[str]
) -> None:
    receives = {queues.standard_url: 0, queues.fifo_url: 0}
    lock = threading.Lock()

    def count_and_fail_first(params: dict[str, Any], **_: Any) -> None:
        with lock:
            receives[params["QueueUrl"]] += 1
            first = params["QueueUrl"] == queues.standard_url and receives[queues.standard_url] == 1
        if first:
            raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "injected"}}, "ReceiveMessage")

    queues.sqs.meta.events.register("before-parameter-build.sqs.ReceiveMessage", count_and_fail_first)
    send_standard(queues, "hello")
    function = Function()
    long_polling = SqsPoller(queues.sqs, queues.standard_url, queues.standard_arn, function, subscription())
    short_polling = fifo_poller(queues, Function())  # an empty queue and WaitTimeSeconds=0: the spin risk
    running_since = time.monotonic()
    long_polling.start()
    short_polling.start()

    deadline = time.monotonic() + 30  # a loaded machine may take a while; it stops waiting at the delivery
    while long_polling.delivered == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    # Stopping ends a one-second poll at once, not after SQS's longest wait (20 s).
    assert long_polling.stop(10) and short_polling.stop(10)
    ran = time.monotonic() - running_since

    assert function.bodies() == ["hello"]
    assert long_polling.errors == 1 and "ServiceUnavailable" in capsys.readouterr().err
    # Never spins on an empty queue: about one receive per second it ran, however long that was.
    assert receives[queues.fifo_url] <= ran / BACKOFF_SECONDS + 2, (receives[queues.fifo_url], ran)
    assert depth(queues, queues.standard_url) == (0, 0)


def test_stop_without_start_and_restart(queues: Queues) -> None:
    poller = standard_poller(queues, Function())
    assert poller.stop(0.1)
    poller.start()
    with pytest.raises(RuntimeError):
        poller.start()
    assert poller.stop(2)
    send_standard(queues, "after restart")
    poller.start()
    deadline = time.monotonic() + 30  # stops waiting at the delivery; a loaded machine may take a while
    while poller.delivered == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert poller.stop(2) and poller.delivered == 1


# -------------------------------------------------------------------------------- subscriptions

TEMPLATE: dict[str, Any] = {
    "Parameters": {"ConsumerBatch": {"Type": "Number", "Default": 5}},
    "Resources": {
        "Orders": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "orders.fifo", "FifoQueue": True}},
        "Jobs": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "jobs"}},
        "Consumer": {
            "Type": "AWS::Serverless::Function",
            "Properties": {
                "Handler": "c.handler",
                "Events": {
                    "Api": {"Type": "HttpApi", "Properties": {"Path": "/x", "Method": "GET"}},
                    "FromOrders": {
                        "Type": "SQS",
                        "Properties": {
                            "Queue": {"Fn::GetAtt": ["Orders", "Arn"]},
                            "BatchSize": {"Ref": "ConsumerBatch"},
                            "FunctionResponseTypes": ["ReportBatchItemFailures"],
                        },
                    },
                },
            },
        },
        "Worker": {
            "Type": "AWS::Serverless::Function",
            "Properties": {
                "Handler": "w.handler",
                "Events": {
                    "FromJobs": {"Type": "SQS", "Properties": {"Queue": {"Fn::GetAtt": ["Jobs", "Arn"]}}},
                    "Bulk": {
                        "Type": "SQS",
                        "Properties": {
                            "Queue": {"Fn::GetAtt": ["Jobs", "Arn"]},
                            "BatchSize": 100,
                            "MaximumBatchingWindowInSeconds": 5,
                            "ScalingConfig": {"MaximumConcurrency": 2},
                        },
                    },
                    "Paused": {
                        "Type": "SQS",
                        "Properties": {"Queue": {"Fn::GetAtt": ["Jobs", "Arn"]}, "Enabled": False},
                    },
                },
            },
        },
        "Quiet": {"Type": "AWS::Serverless::Function", "Properties": {"Handler": "q.handler"}},
    },
}


def test_queue_subscriptions_reads_the_templates_sqs_events() -> None:
    assert queue_subscriptions(Stack("test", TEMPLATE)) == [
        QueueSubscription("Consumer", "Orders", 5, True, 0.0),
        QueueSubscription("Worker", "Jobs", 10, False, 0.0),
        QueueSubscription("Worker", "Jobs", 100, False, 5.0),
    ]


def test_queue_subscriptions_follows_the_short_getatt_form(tmp_path: Path) -> None:
    (tmp_path / "template.yaml").write_text(
        """
Resources:
  Jobs:
    Type: AWS::SQS::Queue
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        FromJobs:
          Type: SQS
          Properties:
            Queue: !GetAtt Jobs.Arn
            BatchSize: 3
""",
        encoding="utf-8",
    )
    assert queue_subscriptions(Stack("test", load(tmp_path / "template.yaml"))) == [
        QueueSubscription("Worker", "Jobs", 3, False, 0.0)
    ]


@pytest.mark.parametrize(
    ("properties", "message"),
    [
        ({"Queue": {"Ref": "Jobs"}}, "expected !GetAtt"),
        ({"Queue": {"Fn::GetAtt": ["Jobs", "QueueName"]}}, "expected !GetAtt"),
        ({"Queue": "arn:aws:sqs:us-east-1:123456789012:elsewhere"}, "expected !GetAtt"),
        ({"Queue": {"Fn::GetAtt": ["Worker", "Arn"]}}, "not an AWS::SQS::Queue"),
        ({"Queue": {"Fn::GetAtt": ["Orders", "Arn"]}, "BatchSize": 11}, "outside 1..10"),
        ({"Queue": {"Fn::GetAtt": ["Orders", "Arn"]}, "MaximumBatchingWindowInSeconds": 1}, "FIFO"),
        ({"Queue": {"Fn::GetAtt": ["Jobs", "Arn"]}, "BatchSize": 11}, "at least 1"),
        (
            {"Queue": {"Fn::GetAtt": ["Jobs", "Arn"]}, "BatchSize": 10_001, "MaximumBatchingWindowInSeconds": 1},
            "outside 1..10000",
        ),
        ({"Queue": {"Fn::GetAtt": ["Jobs", "Arn"]}, "BatchSize": "ten"}, "whole number"),
        ({"Queue": {"Fn::GetAtt": ["Jobs", "Arn"]}, "FunctionResponseTypes": ["Everything"]}, "FunctionResponseTypes"),
        ({"Queue": {"Fn::GetAtt": ["Jobs", "Arn"]}, "FilterCriteria": {"Filters": []}}, "FilterCriteria"),
        ({"Queue": {"Fn::GetAtt": ["Jobs", "Arn"]}, "BatchSize": {"Ref": "Undeclared"}}, "cannot resolve"),
    ],
)
def test_queue_subscriptions_fails_loudly_on_what_it_cannot_follow(properties: dict[str, Any], message: str) -> None:
    template = copy.deepcopy(TEMPLATE)
    template["Resources"]["Worker"]["Properties"]["Events"] = {"Broken": {"Type": "SQS", "Properties": properties}}
    with pytest.raises(TemplateError, match=message):
        queue_subscriptions(Stack("test", template))


def test_pollers_wires_each_subscription_to_its_function(queues: Queues) -> None:
    template = {
        "Resources": {
            "Jobs": {"Type": "AWS::SQS::Queue"},
            "Worker": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "Events": {
                        "FromJobs": {
                            "Type": "SQS",
                            "Properties": {"Queue": {"Fn::GetAtt": ["Jobs", "Arn"]}, "BatchSize": 2},
                        }
                    }
                },
            },
        }
    }
    stack = Stack(
        "test", template, refs={"Jobs": queues.standard_url}, attributes={("Jobs", "Arn"): queues.standard_arn}
    )
    calls: list[tuple[str, int]] = []

    def invoke(function_id: str, event: Event) -> None:
        calls.append((function_id, len(event["Records"])))

    (poller,) = pollers(stack, queues.sqs, invoke)
    send_standard(queues, "a", "b", "c")
    assert poller.poll_once() == 2
    assert calls == [("Worker", 2)]
    with pytest.raises(TemplateError, match="not been provisioned"):
        pollers(Stack("test", template), queues.sqs, lambda *_: None)
