"""Lambda's SQS event source mapping, locally: polls a queue and invokes a function with the batches.

It follows what the mapping does in AWS, because code that only ever runs behind it (partial batch
responses, FIFO ordering, redrive to a dead-letter queue) can only be trusted locally if the local
delivery breaks it the same way AWS would:

- the event is the one Lambda builds (the shape `sam local generate-event sqs receive-message` prints);
- a batch is deleted only once the function succeeded; an exception, or a partial batch response
  Lambda would reject, leaves every message on the queue until its visibility timeout expires, so
  ApproximateReceiveCount and the queue's RedrivePolicy work as deployed;
- with ReportBatchItemFailures, only the messages the function lists stay on the queue;
- FIFO ordering is left to SQS, which hands out no message of a group while an earlier one is in flight.

The subscriptions come from the template's `Type: SQS` function events, like the routes do.
"""

import base64
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from local import narration
from local.aws.template import REGION, Stack, TemplateError

# ReceiveMessage and DeleteMessageBatch take at most 10 messages per call.
SQS_BATCH_LIMIT = 10
# Lambda's limits for SQS event source mappings; CreateEventSourceMapping rejects anything else.
STANDARD_MAX_BATCH_SIZE = 10_000
FIFO_MAX_BATCH_SIZE = 10
MAX_BATCHING_WINDOW_SECONDS = 300
BACKOFF_SECONDS = 1.0
REPORT_BATCH_ITEM_FAILURES = "ReportBatchItemFailures"

# The SAM SQS event properties this module understands, and those with no effect on one local poller
# (concurrency, pollers, metrics, the KMS key of filter criteria). Anything else, FilterCriteria
# included, changes which messages the function sees, so it must not be silently ignored.
_FOLLOWED_PROPERTIES = {"Queue", "BatchSize", "Enabled", "FunctionResponseTypes", "MaximumBatchingWindowInSeconds"}
_NO_LOCAL_EFFECT = {"ScalingConfig", "ProvisionedPollerConfig", "MetricsConfig", "KmsKeyArn"}

# The order Lambda writes a record's attributes in; any attribute SQS adds later still goes through.
_ATTRIBUTE_ORDER = (
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
    "SequenceNumber",
    "MessageGroupId",
    "MessageDeduplicationId",
    "AWSTraceHeader",
    "DeadLetterQueueSourceArn",
)


@dataclass(frozen=True)
class QueueSubscription:
    """One `Type: SQS` event of a function: the settings of its event source mapping."""

    function_id: str
    queue_logical_id: str
    batch_size: int
    report_batch_item_failures: bool
    maximum_batching_window_seconds: float


def queue_subscriptions(stack: Stack) -> list[QueueSubscription]:
    """The enabled SQS event sources of the template's functions, validated as Lambda validates them."""
    found = []
    for function_id, function in stack.resources("AWS::Serverless::Function").items():
        events = (function.get("Properties") or {}).get("Events") or {}
        if not isinstance(events, dict):
            raise TemplateError(f"{function_id}: Events must be a mapping")
        for event_id, event in events.items():
            if not isinstance(event, dict) or event.get("Type") != "SQS":
                continue
            subscription = _subscription(stack, function_id, f"{function_id}.Events.{event_id}", event)
            if subscription is not None:
                found.append(subscription)
    return found


def _subscription(stack: Stack, function_id: str, where: str, event: dict[str, Any]) -> QueueSubscription | None:
    props = event.get("Properties")
    if not isinstance(props, dict):
        raise TemplateError(f"{where}: an SQS event needs Properties")
    unknown = set(props) - _FOLLOWED_PROPERTIES - _NO_LOCAL_EFFECT
    if unknown:
        raise TemplateError(f"{where}: the local SQS poller cannot follow {', '.join(sorted(unknown))}")
    if not _boolean(stack, props.get("Enabled", True), f"{where}.Enabled"):
        return None  # a disabled mapping does not poll in AWS either
    queue_id = _queue_logical_id(stack, props.get("Queue"), f"{where}.Queue")
    queue_props = stack.template["Resources"][queue_id].get("Properties") or {}
    fifo = _boolean(stack, queue_props.get("FifoQueue", False), f"{queue_id}.FifoQueue")
    batch_size = _integer(stack, props.get("BatchSize", 10), f"{where}.BatchSize")
    window = _integer(stack, props.get("MaximumBatchingWindowInSeconds", 0), f"{where}.MaximumBatchingWindowInSeconds")
    response_types = _resolved(stack, props.get("FunctionResponseTypes", []), f"{where}.FunctionResponseTypes")

    # The same rules CreateEventSourceMapping enforces, so a template that cannot deploy cannot run here.
    max_batch = FIFO_MAX_BATCH_SIZE if fifo else STANDARD_MAX_BATCH_SIZE
    if not 1 <= batch_size <= max_batch:
        raise TemplateError(f"{where}: BatchSize {batch_size} is outside 1..{max_batch} for this queue")
    if not 0 <= window <= MAX_BATCHING_WINDOW_SECONDS:
        raise TemplateError(f"{where}: MaximumBatchingWindowInSeconds {window} is outside 0..300")
    if fifo and window:
        raise TemplateError(f"{where}: Lambda does not support a batching window on FIFO queues")
    if batch_size > SQS_BATCH_LIMIT and window < 1:
        raise TemplateError(f"{where}: a BatchSize above 10 needs MaximumBatchingWindowInSeconds of at least 1")
    if not isinstance(response_types, list) or not set(response_types) <= {REPORT_BATCH_ITEM_FAILURES}:
        raise TemplateError(f"{where}: FunctionResponseTypes must be a list of {REPORT_BATCH_ITEM_FAILURES}")
    return QueueSubscription(
        function_id=function_id,
        queue_logical_id=queue_id,
        batch_size=batch_size,
        report_batch_item_failures=REPORT_BATCH_ITEM_FAILURES in response_types,
        maximum_batching_window_seconds=float(window),
    )


def _queue_logical_id(stack: Stack, queue: Any, where: str) -> str:
    argument = queue.get("Fn::GetAtt") if isinstance(queue, dict) and len(queue) == 1 else None
    if not (
        isinstance(argument, list) and len(argument) == 2 and isinstance(argument[0], str) and argument[1] == "Arn"
    ):
        raise TemplateError(f"{where}: expected !GetAtt <queue>.Arn, got {queue!r}")
    logical_id = argument[0]
    if stack.template["Resources"].get(logical_id, {}).get("Type") != "AWS::SQS::Queue":
        raise TemplateError(f"{where}: {logical_id} is not an AWS::SQS::Queue of this template")
    return logical_id


def _resolved(stack: Stack, value: Any, where: str) -> Any:
    try:
        return stack.resolve(value)
    except TemplateError:
        raise
    except Exception as exc:  # template.py's unresolved-reference error is private to provisioning
        raise TemplateError(f"{where}: cannot resolve {value!r} ({exc})") from exc


def _integer(stack: Stack, value: Any, where: str) -> int:
    resolved = _resolved(stack, value, where)
    if isinstance(resolved, int) and not isinstance(resolved, bool):
        return resolved
    if isinstance(resolved, str) and resolved.strip().isdigit():  # a !Ref'd parameter resolves to a string
        return int(resolved)
    raise TemplateError(f"{where}: expected a whole number, got {value!r}")


def _boolean(stack: Stack, value: Any, where: str) -> bool:
    resolved = _resolved(stack, value, where)
    if isinstance(resolved, bool):
        return resolved
    if isinstance(resolved, str) and resolved.lower() in ("true", "false"):
        return resolved.lower() == "true"
    raise TemplateError(f"{where}: expected true or false, got {value!r}")


class SqsPoller:
    """Delivers one queue to one function, batch by batch, like one event source mapping.

    ``invoke`` receives the event and returns what the function returned (or raises what it raised);
    wrap the local runtime with it, e.g. ``lambda event: runtime.invoke("MyFunction", event)``.
    Counters: ``invocations``, ``delivered`` (records handed to the function), ``failed_records``
    (records the function failed, left on the queue) and ``errors`` (invocation errors, responses
    Lambda would reject, endpoint errors).
    """

    def __init__(
        self,
        sqs_client: Any,
        queue_url: str,
        queue_arn: str,
        invoke: Callable[[dict[str, Any]], Any],
        subscription: QueueSubscription,
        *,
        region: str = REGION,
        wait_seconds: int = 1,
    ) -> None:
        if not 0 <= wait_seconds <= 20:
            raise ValueError("wait_seconds must be within SQS's 0..20")
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.subscription = subscription
        self.invocations = 0
        self.delivered = 0
        self.failed_records = 0
        self.errors = 0
        self._sqs = sqs_client
        self._invoke = invoke
        self._region = region
        self._wait_seconds = wait_seconds
        self._fifo = queue_arn.endswith(".fifo")  # SQS requires the suffix on every FIFO queue's name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError(f"{self._name} is already polling")
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"sqs-poller-{self.subscription.function_id}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop polling; True once the thread has ended (an invocation in progress is not interrupted)."""
        self._stop.set()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def poll_once(self) -> int:
        """One receive, invoke and delete cycle; the number of records delivered (0 if none arrived).

        Raises what the SQS client raises on the first receive; everything after it is handled here.
        """
        messages = self._receive_batch()
        if not messages:
            return 0
        records = [self._record(message) for message in messages]
        self.invocations += 1
        self.delivered += len(records)
        kept = self._invoke_batch({"Records": records})
        self.failed_records += len(kept)
        self._delete([m for m in messages if m["MessageId"] not in kept])
        return len(records)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                delivered = self.poll_once()
            except Exception as exc:  # the emulator restarting must not end local delivery for good
                self.errors += 1
                self._say(f"polling failed ({type(exc).__name__}: {_one_line(exc)}); retrying in 1 s")
                self._stop.wait(BACKOFF_SECONDS)
                continue
            if delivered == 0:
                # Long polling normally spent this time already; the wait covers WaitTimeSeconds=0 and
                # endpoints that answer at once, so an empty queue is never spun on.
                self._stop.wait(max(0.0, BACKOFF_SECONDS - (time.monotonic() - started)))

    def _receive_batch(self) -> list[dict[str, Any]]:
        batch_size = self.subscription.batch_size
        messages = self._receive(min(batch_size, SQS_BATCH_LIMIT), self._wait_seconds)
        # FIFO mappings have no batching window and at most 10 records: one receive is the whole batch,
        # in the order SQS gave it.
        if not messages or self._fifo:
            return messages
        # Lambda keeps reading until the batch is full or the window, opened by the first message, closes.
        deadline = time.monotonic() + self.subscription.maximum_batching_window_seconds
        while len(messages) < batch_size and not self._stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                more = self._receive(
                    min(batch_size - len(messages), SQS_BATCH_LIMIT), min(self._wait_seconds, int(remaining))
                )
            except Exception as exc:  # deliver what is already in flight rather than let it time out
                self.errors += 1
                self._say(f"receive failed while filling a batch ({type(exc).__name__}: {_one_line(exc)})")
                break
            if more:
                messages.extend(more)
            else:
                self._stop.wait(min(remaining, 0.2))
        return messages

    def _receive(self, count: int, wait_seconds: int) -> list[dict[str, Any]]:
        response = self._sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=count,
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        return list(response.get("Messages", []))

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        attributes = message.get("Attributes", {})
        ordered = {name: attributes[name] for name in _ATTRIBUTE_ORDER if name in attributes}
        ordered.update({name: value for name, value in sorted(attributes.items()) if name not in ordered})
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": ordered,
            "messageAttributes": {
                name: _message_attribute(value) for name, value in message.get("MessageAttributes", {}).items()
            },
            "md5OfBody": message["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": self._region,
        }

    def _invoke_batch(self, event: dict[str, Any]) -> set[str]:
        """Invoke the function; the message ids that stay on the queue (all of them if it failed)."""
        every_id = {record["messageId"] for record in event["Records"]}
        try:
            result = self._invoke(event)
            # Lambda hands the return value back as JSON; one that cannot be serialised fails the
            # invocation (Runtime.MarshalError), so it must fail here too.
            result = json.loads(json.dumps(result))
        except Exception as exc:
            self.errors += 1
            self._say(
                f"the function raised {type(exc).__name__}: {_one_line(exc)}; "
                f"{len(every_id)} message(s) stay on the queue"
            )
            return every_id
        if not self.subscription.report_batch_item_failures:
            return set()  # without ReportBatchItemFailures Lambda ignores the return value
        failed = _batch_item_failures(result, every_id)
        if failed is None:
            self.errors += 1
            self._say(
                f"invalid batchItemFailures {_one_line(result)}; Lambda fails the whole batch "
                f"({len(every_id)} message(s) stay on the queue)"
            )
            return every_id
        return failed

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), SQS_BATCH_LIMIT):
            chunk = messages[start : start + SQS_BATCH_LIMIT]
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)]
            try:
                failed = self._sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries).get("Failed", [])
            except Exception as exc:  # the messages come back after their visibility timeout, as in AWS
                self.errors += 1
                self._say(
                    f"could not delete {len(chunk)} message(s) ({type(exc).__name__}: {_one_line(exc)}); "
                    "they will be delivered again"
                )
                continue
            if failed:
                self.errors += 1
                self._say(
                    f"could not delete {len(failed)} message(s) ({failed[0].get('Code')}: "
                    f"{failed[0].get('Message')}); they will be delivered again"
                )

    @property
    def _name(self) -> str:
        return f"{self.subscription.function_id} <- {self.queue_arn.rsplit(':', 1)[-1]}"

    def _say(self, text: str) -> None:
        narration.say(f"sqs {self._name}", text, "bad")


def _batch_item_failures(result: Any, every_id: set[str]) -> set[str] | None:
    """The ids a partial batch response lists, or None where Lambda would fail the whole batch."""
    if not isinstance(result, dict):
        return set()  # None and other non-objects count as complete success
    failures = result.get("batchItemFailures")
    if failures is None or failures == []:
        return set()
    if not isinstance(failures, list):
        return None
    listed = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        # Lambda's rule: an empty, missing or unknown identifier fails the batch, lest a typo lose messages.
        if not isinstance(identifier, str) or identifier not in every_id:
            return None
        listed.add(identifier)
    return listed


def _message_attribute(value: dict[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] = {}
    if "StringValue" in value:
        converted["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        converted["binaryValue"] = _base64(value["BinaryValue"])
    converted["stringListValues"] = list(value.get("StringListValues", []))
    converted["binaryListValues"] = [_base64(v) for v in value.get("BinaryListValues", [])]
    converted["dataType"] = value["DataType"]
    return converted


def _base64(value: bytes | str) -> str:
    # boto3 decodes binary attributes to bytes; Lambda's JSON event carries them base64-encoded.
    return value if isinstance(value, str) else base64.b64encode(value).decode("ascii")


def _one_line(value: Any, limit: int = 300) -> str:
    # One stderr line per problem, however long or multi-line the error or the returned value is.
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[:limit] + "..."


def pollers(
    stack: Stack,
    sqs_client: Any,
    invoke: Callable[[str, dict[str, Any]], Any],
    *,
    region: str = REGION,
    wait_seconds: int = 1,
) -> list[SqsPoller]:
    """One poller per SQS subscription of a provisioned stack; ``invoke(function_id, event)``, as
    FunctionRuntime.invoke takes it."""
    built = []
    for subscription in queue_subscriptions(stack):
        queue_id = subscription.queue_logical_id
        if queue_id not in stack.refs or (queue_id, "Arn") not in stack.attributes:
            raise TemplateError(f"{queue_id} has not been provisioned")

        def invoke_function(event: dict[str, Any], function_id: str = subscription.function_id) -> Any:
            return invoke(function_id, event)

        built.append(
            SqsPoller(
                sqs_client,
                stack.refs[queue_id],
                stack.attributes[(queue_id, "Arn")],
                invoke_function,
                subscription,
                region=region,
                wait_seconds=wait_seconds,
            )
        )
    return built
