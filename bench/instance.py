"""One Lambda instance of the sender, callback, onboarding and refresher functions, each in a child process
of its own against bench.world: their peak memory (figure 5), and the sender's duration, AWS requests and
log bytes per message (figure 6).

The parent builds each function's events (the plan) and the child only invokes the handler with them:
the child's peak memory is the function's, with as little of the harness as can be. The first
invocation is the cold one (clients created, secrets read); the figures per message come from the others.

    python -m bench.instance FunctionId plan.json result.json      (the child; `make bench` runs it)
"""

import hashlib
import json
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from bench.common import CLIENTS, SHORT_NAMES, handler_module, memory_size_mb, run_child, write_result

if TYPE_CHECKING:
    from bench.world import World

SENDER_BATCHES = 4  # of 10 messages (the template's BatchSize): the first is the cold invocation
CALLBACK_BATCHES = 3
LOGINS = 3
REFRESHER_RUNS = 2
RECONCILER_RUNS = 2
ERASURES = 6  # customers the sender wrote to, erased one job per invocation (the erasure queue's BatchSize)
API_REQUESTS = 50  # authorizer checks, and POST /v1/messages
FANOUT_RECORDS = 300  # three batches of the stream's BatchSize (100)
BATCH_SIZE = 10
CHILD_TIME_LIMIT = 120.0
WORKLOADS = {
    "SenderFunction": "text messages, batches of 10",
    "CallbackFunction": "status callbacks, batches of 10",
    "OnboardingFunction": "complete Instagram logins",
    "RefresherFunction": "runs that renew and check every account's token",
    "ReconcilerFunction": "runs that read every account's conversations (the sender's messages among them)",
    "EraserFunction": "erasure requests, each for a customer the sender wrote to",
    "AuthorizerFunction": "requests to /v1 routes, each with the same API key",
    "ApiFunction": "POST /v1/messages, text messages from one API key",
    "FanoutFunction": "stream records of stored text events, batches of 100, one event webhook wanting them",
}


@dataclass(frozen=True)
class InstanceRun:
    function: str
    peak_rss_mb: float
    clients: list[str]
    units: int  # messages, callbacks, logins or runs after the cold invocation
    wall_ms_per_unit: float
    cpu_ms_per_unit: float
    log_bytes_per_unit: float
    log_lines_per_unit: float
    invocations_per_unit: float
    ledger: dict[str, Any]  # the warm invocations' AWS requests (bench.aws_ledger.Ledger.as_dict)

    def warning(self) -> str | None:
        expected = sorted(CLIENTS[self.function])
        if self.clients != expected:
            return f"{SHORT_NAMES[self.function]} created clients {self.clients}, bench.common.CLIENTS says {expected}"
        return None


# ------------------------------------------------------------------ the parent


def measure() -> dict[str, InstanceRun]:
    from bench.world import World

    runs = {}
    with (
        World(open_conversations=SENDER_BATCHES * BATCH_SIZE) as world,
        tempfile.TemporaryDirectory(prefix="bench-plan-") as scratch,
    ):
        for logical_id, plan in _plans(world).items():
            path = Path(scratch) / f"{logical_id}.json"
            # The child learns its handler and memory from the plan: reading template.yaml there would put a
            # YAML parser in the peak memory measured.
            path.write_text(
                json.dumps({**plan, "handler": handler_module(logical_id), "memory_mb": memory_size_mb(logical_id)})
            )
            result = run_child(
                "bench.instance", [logical_id, str(path)], world.environment(logical_id), CHILD_TIME_LIMIT
            )
            runs[logical_id] = InstanceRun(function=logical_id, **result)
    return runs


def _plans(world: "World") -> dict[str, dict[str, Any]]:
    from bench.world import ONBOARDING_ACCOUNT, SENDER_ACCOUNT, customer
    from igdm.queues.erasure_queue import ErasureJob
    from igdm.store.api_keys import ApiKey, ApiKeys
    from igdm.store.erasure import ErasureRequest, ErasureRequests
    from local.aws.apigw import http_api_event
    from local.samples import outbound as out
    from onboarding.state import make_invite

    outbound, callbacks = (
        world.stack.attributes[("OutboundQueue", "Arn")],
        world.stack.attributes[("CallbackQueue", "Arn")],
    )
    messages = [
        out.outbound("text", key=f"bench-instance-{n}", account_id=SENDER_ACCOUNT, recipient={"id": customer(n)})
        for n in range(SENDER_BATCHES * BATCH_SIZE)
    ]
    jobs = [world.callback_job(n) for n in range(CALLBACK_BATCHES * BATCH_SIZE)]
    erasures = world.stack.attributes[("ErasureQueue", "Arn")]
    requests = ErasureRequests(world.clients["dynamodb"], world.stack.refs["GatewayTable"])
    erasure_jobs = []
    for n in range(ERASURES):
        request = ErasureRequest.new(customer(n), "operator", now=time.time())
        requests.add(request)
        erasure_jobs.append(ErasureJob(request.code, customer(n)).to_json())
    api_key, presented = ApiKey.new("bench", ("send", "read"), None, now=time.time())
    ApiKeys(world.clients["dynamodb"], world.stack.refs["GatewayTable"]).add(api_key)
    caller = {"key_id": api_key.key_id, "scopes": "send,read", "account_id": ""}
    posts = []
    for n in range(API_REQUESTS):
        message = out.outbound("text", key=f"bench-api-{n}", account_id=SENDER_ACCOUNT, recipient={"id": customer(n)})
        event = http_api_event(
            "POST", "/v1/messages", headers={"content-type": "application/json"}, body=json.dumps(message).encode()
        )
        event["requestContext"]["authorizer"] = {"lambda": caller}
        posts.append(event)
    checks = [
        {**http_api_event("GET", "/v1/messages/x", headers={"authorization": f"Bearer {presented}"}), "type": "REQUEST"}
        for _ in range(API_REQUESTS)
    ]
    return {
        "SenderFunction": {
            "batches": [
                [
                    _record(m, f"{SENDER_ACCOUNT}:{m['recipient']['id']}", m["idempotency_key"], outbound)
                    for m in messages[i : i + BATCH_SIZE]
                ]
                for i in range(0, len(messages), BATCH_SIZE)
            ]
        },
        "CallbackFunction": {
            "batches": [
                [_record(j, j["event_id"], j["event_id"], callbacks) for j in jobs[i : i + BATCH_SIZE]]
                for i in range(0, len(jobs), BATCH_SIZE)
            ]
        },
        "OnboardingFunction": {
            "logins": LOGINS,
            "account_id": ONBOARDING_ACCOUNT,
            "invite": make_invite(world.state_key(), valid_seconds=3600),
        },
        "RefresherFunction": {"runs": REFRESHER_RUNS},
        "ReconcilerFunction": {"runs": RECONCILER_RUNS},
        # Last: the customers the sender (and the reconciler) stored something about.
        "EraserFunction": {
            "batches": [[_standard_record(job, erasures)] for job in erasure_jobs],
            "timeout_seconds": 900,  # template.yaml's Timeout
        },
        "AuthorizerFunction": {"requests": checks, "expect": "isAuthorized"},
        "ApiFunction": {"requests": posts, "expect": 202},
        "FanoutFunction": {"batches": _stream_batches(world)},
    }


def _stream_batches(world: "World") -> list[list[dict[str, Any]]]:
    """The table's stream as Lambda hands it to the fan-out: INSERTs of stored text events, with one event
    webhook registered that wants them (its URL is never called here: the jobs only reach the callback queue)."""
    from datetime import UTC, datetime

    from bench.world import SENDER_ACCOUNT, customer
    from igdm.contracts.events import EventKind, InboundEvent, conversation_id
    from igdm.contracts.serialized import SerializedEvent
    from igdm.store.webhooks import Webhook, Webhooks

    table = world.stack.refs["GatewayTable"]
    Webhooks(world.clients["dynamodb"], table).add(
        Webhook.new("http://127.0.0.1:9/bench", ("text",), None, None, "bench")
    )
    now = datetime.now(UTC)
    records = []
    for n in range(FANOUT_RECORDS):
        customer_id = customer(n % BATCH_SIZE)
        event = InboundEvent(
            event_id=f"{n:032x}",
            kind=EventKind.TEXT,
            account_id=SENDER_ACCOUNT,
            customer_id=customer_id,
            conversation_id=conversation_id(SENDER_ACCOUNT, customer_id),
            direction="inbound",
            source="messaging",
            user_initiated=True,
            occurred_at=now,
            received_at=now,
            message_id=f"m_bench_fanout_{n}",
            text="Hi, is this in stock?",
            raw={
                "sender": {"id": customer_id},
                "message": {"mid": f"m_bench_fanout_{n}", "text": "Hi, is this in stock?"},
            },
        )
        body = SerializedEvent.of(event).body
        keys = {"pk": {"S": f"CONV#{SENDER_ACCOUNT}#{customer_id}"}, "sk": {"S": f"EVT#{event.event_id}"}}
        records.append(
            {
                "eventID": f"{n:032x}",
                "eventName": "INSERT",
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": "us-east-1",
                "dynamodb": {
                    "ApproximateCreationDateTime": now.timestamp(),
                    "Keys": keys,
                    "NewImage": {**keys, "event": {"S": body}, "kind": {"S": "text"}},
                    "SequenceNumber": f"{n + 1:021d}",
                    "SizeBytes": len(body),
                    "StreamViewType": "NEW_AND_OLD_IMAGES",
                },
                "eventSourceARN": f"arn:aws:dynamodb:us-east-1:123456789012:table/{table}/stream/bench",
            }
        )
    return [records[i : i + 100] for i in range(0, len(records), 100)]


def _standard_record(body: str, queue_arn: str) -> dict[str, Any]:
    """One record from a standard queue (no group, no deduplication id, no sequence number)."""
    now = str(int(time.time() * 1000))
    return {
        "messageId": str(uuid.uuid4()),
        "receiptHandle": uuid.uuid4().hex,
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": now, "SenderId": "AIDABENCH"},
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": "us-east-1",
    }


def _record(body: dict[str, Any], group: str, deduplication_id: str, queue_arn: str) -> dict[str, Any]:
    """One record of the event Lambda's SQS integration delivers from a FIFO queue."""
    text = json.dumps(body)
    now = str(int(time.time() * 1000))
    return {
        "messageId": str(uuid.uuid4()),
        "receiptHandle": uuid.uuid4().hex,
        "body": text,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": now,
            "SenderId": "AIDABENCH",
            "ApproximateFirstReceiveTimestamp": now,
            "SequenceNumber": "18849496460467696128",
            "MessageGroupId": group,
            "MessageDeduplicationId": deduplication_id[:128],
        },
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(text.encode(), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": "us-east-1",
    }


# ------------------------------------------------------------------ the child


class _Timer:
    """Times each invocation; keeps where the ledger and the log stood after the first (cold) one."""

    def __init__(self, instance: Any) -> None:
        self.instance = instance
        self.walls: list[float] = []
        self.cpus: list[float] = []
        self.units: list[int] = []
        self.after_cold: tuple[Any, int, int] = (instance.ledger.snapshot(), 0, 0)

    def time(self, units: int, call: Any, *args: Any) -> Any:
        wall, cpu = time.perf_counter(), time.process_time()
        result = call(*args)
        self.cpus.append(time.process_time() - cpu)
        self.walls.append(time.perf_counter() - wall)
        self.units.append(units)
        if len(self.walls) == 1:
            output = self.instance.output
            self.after_cold = (self.instance.ledger.snapshot(), output.bytes, output.lines)
        return result


def _batches(handler: Any, plan: dict[str, Any], timer: _Timer, context: Any) -> None:
    for batch in plan["batches"]:
        response = timer.time(len(batch), handler.lambda_handler, {"Records": batch}, context)
        if response != {"batchItemFailures": []}:
            raise AssertionError(f"records failed: {response}")


def _logins(handler: Any, plan: dict[str, Any], timer: _Timer, context: Any) -> None:
    import requests

    from local.aws.apigw import http_api_event
    from onboarding.explainer import continue_url

    host = {"host": "127.0.0.1:3000"}  # the redirect URI the gateway names; never called here
    for _ in range(plan["logins"]):
        start = timer.time(
            1,
            handler.lambda_handler,
            http_api_event("GET", "/oauth/start", query=f"invite={plan['invite']}", headers=host),
            context,
        )
        if start["statusCode"] != 200:
            raise AssertionError(f"/oauth/start answered {start['statusCode']}")
        location, cookie = continue_url(start["body"]), start["headers"]["Set-Cookie"].split(";")[0]
        consent = requests.post(
            location.partition("?")[0],
            allow_redirects=False,
            timeout=10,
            data={**dict(parse_qsl(urlsplit(location).query)), "account_id": plan["account_id"], "decision": "allow"},
        )
        back = urlsplit(consent.headers["Location"])
        page = timer.time(
            0,
            handler.lambda_handler,
            http_api_event("GET", "/oauth/callback", query=back.query, headers={**host, "cookie": cookie}),
            context,
        )
        if page["statusCode"] != 200:
            raise AssertionError(f"/oauth/callback answered {page['statusCode']}: {page['body'][:300]}")


def _requests(handler: Any, plan: dict[str, Any], timer: _Timer, context: Any) -> None:
    """API Gateway's invocations: the authorizer's identifies the key; the API function's answers 202."""
    for event in plan["requests"]:
        answer = timer.time(1, handler.lambda_handler, event, context)
        good = (
            answer.get("statusCode") == plan["expect"]
            if plan["expect"] != "isAuthorized"
            else (answer.get("isAuthorized") is True and answer.get("context", {}).get("key_id"))
        )
        if not good:
            raise AssertionError(f"unexpected answer: {str(answer)[:300]}")


def _runs(handler: Any, plan: dict[str, Any], timer: _Timer, context: Any) -> None:
    for _ in range(plan["runs"]):
        summary = timer.time(1, handler.lambda_handler, {}, context)
        if summary.get("refresh_failed") or summary.get("check_failed") or summary.get("errors"):
            raise AssertionError(f"the run failed: {summary}")


def child(logical_id: str, plan_path: str, result_path: str) -> None:
    from bench.lambda_child import Instance

    instance = Instance()  # before the handler's import: Powertools binds stdout then
    import importlib

    from local.aws.apigw import LambdaContext

    plan = json.loads(Path(plan_path).read_text())
    handler = importlib.import_module(plan["handler"])
    instance.watch_clients()
    # The eraser stops a minute before its invocation's end (eraser.service.SAFETY_SECONDS): its context gets its
    # own timeout, as deployed; the others' work never comes near 60 s.
    context = LambdaContext(
        f"bench-{logical_id}", memory_limit_in_mb=plan["memory_mb"], timeout_seconds=plan.get("timeout_seconds", 60)
    )
    timer = _Timer(instance)
    workload = {
        "SenderFunction": _batches,
        "CallbackFunction": _batches,
        "OnboardingFunction": _logins,
        "RefresherFunction": _runs,
        "ReconcilerFunction": _runs,
        "EraserFunction": _batches,
        "AuthorizerFunction": _requests,
        "ApiFunction": _requests,
        "FanoutFunction": _batches,
    }[logical_id]
    workload(handler, plan, timer, context)
    # The cold invocation's requests and logs (clients created, secrets read) stay out of the per-unit figures.
    cold, logged, lines = timer.after_cold
    warm_units = sum(timer.units[1:]) or 1
    write_result(
        result_path,
        {
            "peak_rss_mb": instance.peak_rss_mb(),
            "clients": sorted(instance.clients),
            "units": warm_units,
            "wall_ms_per_unit": sum(timer.walls[1:]) * 1000 / warm_units,
            "cpu_ms_per_unit": sum(timer.cpus[1:]) * 1000 / warm_units,
            "log_bytes_per_unit": (instance.output.bytes - logged) / warm_units,
            "log_lines_per_unit": (instance.output.lines - lines) / warm_units,
            "invocations_per_unit": (len(timer.walls) - 1) / warm_units,
            "ledger": instance.ledger.snapshot().since(cold).as_dict(),
        },
    )


if __name__ == "__main__":
    child(*sys.argv[1:4])
