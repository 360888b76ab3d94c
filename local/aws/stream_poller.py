"""The template's DynamoDB stream event sources, played locally as Lambda's event source mapping does: read the
table's stream shard by shard from LATEST, keep the records the mapping's FilterCriteria match (EventBridge
patterns, matched by moto's own matcher), hand them to the function in batches of BatchSize in stream order, and
with ReportBatchItemFailures give the batch again from the first record the function reports as failed.

moto serves the stream API (its DynamoDBStreams handler); botocore sends that API to an account-specific host
when a stream ARN is given, so the client is always built with the endpoint passed explicitly: the local stack's
emulator on 127.0.0.1, or, in a test's moto in this process, the stream API's regional name, which moto answers
without a request leaving the process.
"""

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from moto.events.models import EventPattern

from local import narration
from local.aws.template import Stack, TemplateError

BACKOFF_SECONDS = 0.5
MAX_ATTEMPTS = 5  # a batch the function keeps failing is dropped after this many, loudly (Lambda: OnFailure)


@dataclass(frozen=True)
class StreamSubscription:
    function_id: str
    table_logical_id: str
    batch_size: int
    patterns: tuple[str, ...]
    report_batch_item_failures: bool

    def wants(self, record: dict[str, Any]) -> bool:
        event: Any = record  # moto types its argument as an EventBridge event; a stream record matches alike
        return not self.patterns or any(EventPattern.load(p).matches_event(event) for p in self.patterns)


def stream_subscriptions(stack: Stack) -> list[StreamSubscription]:
    found = []
    for function_id, function in stack.resources("AWS::Serverless::Function").items():
        for event in (function.get("Properties", {}).get("Events") or {}).values():
            if event.get("Type") != "DynamoDB":
                continue
            properties = event["Properties"]
            stream = properties["Stream"]
            if not (isinstance(stream, dict) and "Fn::GetAtt" in stream and stream["Fn::GetAtt"][1] == "StreamArn"):
                raise TemplateError(f"{function_id}: a DynamoDB event's Stream must be !GetAtt <table>.StreamArn")
            filters = (properties.get("FilterCriteria") or {}).get("Filters") or []
            found.append(
                StreamSubscription(
                    function_id=function_id,
                    table_logical_id=stream["Fn::GetAtt"][0],
                    batch_size=int(properties.get("BatchSize", 100)),
                    patterns=tuple(f["Pattern"] for f in filters),
                    report_batch_item_failures="ReportBatchItemFailures" in properties.get("FunctionResponseTypes", []),
                )
            )
    return found


class StreamPoller:
    """One table's stream to one function. ``poll_once`` reads what the stream holds and invokes the function
    with it; ``start`` does so on a thread until ``stop``."""

    def __init__(
        self,
        streams: Any,
        stream_arn: str,
        invoke: Callable[[dict[str, Any]], Any],
        subscription: StreamSubscription,
        interval: float = BACKOFF_SECONDS,
    ) -> None:
        self.subscription = subscription
        self._interval = interval
        self.invocations = 0
        self.errors = 0
        self._streams = streams
        self._arn = stream_arn
        self._invoke = invoke
        self._iterators: dict[str, str] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        for shard in streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"]:
            self._iterators[shard["ShardId"]] = streams.get_shard_iterator(
                StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="LATEST"
            )["ShardIterator"]

    def poll_once(self) -> int:
        """Every record the stream has now, through the function; how many the filters let through."""
        with self._lock:
            handed = 0
            for shard, iterator in list(self._iterators.items()):
                answer = self._streams.get_records(ShardIterator=iterator, Limit=1000)
                self._iterators[shard] = answer["NextShardIterator"]
                records = [self._record(r) for r in answer.get("Records", [])]
                wanted = [r for r in records if self.subscription.wants(r)]
                for start in range(0, len(wanted), self.subscription.batch_size):
                    self._deliver(wanted[start : start + self.subscription.batch_size])
                handed += len(wanted)
            return handed

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"stream-{self.subscription.function_id}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> bool:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        return self._thread is None or not self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception as exc:  # the emulator restarting must not end local delivery for good
                self.errors += 1
                self._say(f"polling failed ({type(exc).__name__}: {exc}); retrying")
            self._stop.wait(self._interval)

    def _deliver(self, batch: list[dict[str, Any]]) -> None:
        for _ in range(MAX_ATTEMPTS):
            self.invocations += 1
            try:
                result = json.loads(json.dumps(self._invoke({"Records": batch})))
            except Exception as exc:
                self.errors += 1
                self._say(f"the function raised {type(exc).__name__}: {exc}; the batch is given again")
                continue
            failures = (result or {}).get("batchItemFailures") if self.subscription.report_batch_item_failures else []
            if not failures:
                return
            first = str(failures[0].get("itemIdentifier"))
            at = next((i for i, r in enumerate(batch) if r["dynamodb"]["SequenceNumber"] == first), 0)
            batch = batch[at:]  # Lambda gives the batch again from the first failed record
        self.errors += 1
        self._say(f"a batch of {len(batch)} record(s) failed {MAX_ATTEMPTS} times: dropped, as OnFailure would")

    def _record(self, record: dict[str, Any]) -> dict[str, Any]:
        change = dict(record["dynamodb"])
        created: Any = change.get("ApproximateCreationDateTime")
        if hasattr(created, "timestamp"):  # botocore parses it; Lambda's event carries epoch seconds
            change["ApproximateCreationDateTime"] = created.timestamp()
        return {**record, "dynamodb": change, "eventSourceARN": self._arn}

    def _say(self, text: str) -> None:
        narration.say(f"stream {self.subscription.function_id}", text, "bad")


def stream_pollers(stack: Stack, streams: Any, invoke: Callable[[str, dict[str, Any]], Any]) -> list[StreamPoller]:
    """One poller per DynamoDB stream subscription of a provisioned stack; ``invoke(function_id, event)``."""
    built = []
    for subscription in stream_subscriptions(stack):
        arn = stack.attributes.get((subscription.table_logical_id, "StreamArn"))
        if arn is None:
            raise TemplateError(f"{subscription.table_logical_id} has no stream: is it provisioned?")

        def invoke_function(event: dict[str, Any], function_id: str = subscription.function_id) -> Any:
            return invoke(function_id, event)

        built.append(StreamPoller(streams, arn, invoke_function, subscription))
    return built
