"""Figure 2: the webhook's CPU per event and AWS requests per event, for signed 1000-event POSTs through the
real handler with AWS answered over HTTP by a loopback stand-in; also what the cost and memory figures need
from the webhook.

Runs in a child process that plays one warm Lambda instance (bench.lambda_child): the template's
environment, the handler imported as Lambda imports it, every AWS request sent by botocore through urllib3 to
bench.aws_standin, a process of its own (so its CPU is not the function's). Each POST alternates with its floor
in the same process: the least any webhook does with the same events (verify the signature, parse the body,
publish each event with plain boto3 SendMessageBatch to the same stand-in), so load on this machine affects
both alike.

    python -m bench.webhook result.json      (the child; `make bench` runs it)
"""

import hashlib
import hmac
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.aws_standin import StandIn
from bench.common import (
    Figure,
    clean_environment,
    lambda_path,
    median,
    memory_size_mb,
    package_group,
    run_child,
    stand_in_stack,
    write_result,
)

EVENTS_PER_POST = 1000
CONVERSATIONS = 100
POSTS = 15  # measured 1000-event POSTs, each next to its floor
PROFILED_POSTS = 3  # after the measured ones, under cProfile: where the CPU goes
SINGLE_POSTS = 300  # one-event POSTs, as Meta mostly delivers them: the cost figure's duration and requests
REQUESTS_TARGET = 0.121
CPU_TARGET_RATIO = 2.0
SQS_BATCH_LIMIT = 10  # SendMessageBatch's limit: publishing n events takes at least n / 10 requests
APP_SECRET = "bench-app-secret-0123456789"  # noqa: S105 - signs the synthetic POSTs only
CHILD_TIME_LIMIT = 240.0


@dataclass(frozen=True)
class SinglePosts:
    """The one-event POSTs: medians per POST, and their AWS requests and billing units in total."""

    events: int
    body_bytes: int
    wall_ms: float
    cpu_ms: float
    ledger: dict[str, Any]  # bench.aws_ledger.Ledger.as_dict()
    log_bytes: float  # per POST
    log_lines: float


@dataclass(frozen=True)
class WebhookRun:
    figures: list[Figure]
    peak_rss_mb: float
    clients: list[str]
    single: SinglePosts


def measure() -> WebhookRun:
    with StandIn(json.dumps({"app_secrets": [APP_SECRET], "verify_token": "bench"})) as aws:
        environment = {
            **clean_environment(),
            **stand_in_stack().function_environment("WebhookFunction"),
            "PYTHONPATH": lambda_path("WebhookFunction"),
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_size_mb("WebhookFunction")),
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_ENDPOINT_URL": aws.url,  # every client, the floor's too: nothing leaves loopback
        }
        result = run_child("bench.webhook", [], environment, CHILD_TIME_LIMIT)
    cpu_us, floor_us = result["cpu_per_event_us"], result["floor_per_event_us"]
    requests = result["requests_per_event"]
    floor_requests = 1 / SQS_BATCH_LIMIT
    breakdown = ", ".join(f"{n / POSTS:g} {name}" for name, n in sorted(result["requests"].items()))
    figures = [
        Figure(
            "webhook_cpu",
            f"Webhook CPU per event ({EVENTS_PER_POST}-event POST)",
            cpu_us,
            floor_us,
            "µs",
            f"<= {CPU_TARGET_RATIO}x floor",
            cpu_us / floor_us <= CPU_TARGET_RATIO,
            method=(
                f"The real handler (`webhook.handler.lambda_handler`) in a child process, with the "
                f"template's environment, is given a signed POST of {EVENTS_PER_POST} text messages "
                f"over {CONVERSATIONS} conversations ({result['body_bytes'] / 1024:.0f} KB) as an API "
                f"Gateway HTTP API event, {POSTS} times after one cold POST. Every AWS request goes through "
                "botocore and urllib3 over HTTP to a stand-in for AWS on loopback (`bench/aws_standin.py`, a "
                "process of its own, so its CPU is not counted): validating, serialising, signing, sending and "
                "parsing all count, as in Lambda; only TLS does not. CPU is `time.process_time()` around each "
                "invocation. The floor, in the same process and alternated with the POSTs, does the least any "
                "webhook must do with the same events: an HMAC-SHA256 over the body, `json.loads` of it, and each "
                "messaging item published as its own message (`json.dumps`) with a plain boto3 "
                "`SendMessageBatch` of 10 to the same stand-in, its group the conversation, its deduplication id "
                f"the message id. Medians. Target <= {CPU_TARGET_RATIO}x the floor."
            ),
            target_value=CPU_TARGET_RATIO * floor_us,
            details=[
                f"cold first POST: {result['cold_wall_ms']:.0f} ms wall, {result['cold_cpu_ms']:.0f} ms CPU "
                "(imports done; clients created, app secret read)",
                f"where the CPU goes (cProfile over {PROFILED_POSTS} warm POSTs, own time): "
                + ", ".join(
                    f"{area} {share:.0%}"
                    for area, share in sorted(result["profile"].items(), key=lambda kv: -kv[1])
                    if share >= 0.005
                ),
                f"warm POST: {result['wall_ms']:.0f} ms wall, i.e. "
                f"{EVENTS_PER_POST / result['wall_ms'] * 1000:.0f} events/s on one core",
            ],
        ),
        Figure(
            "webhook_requests",
            f"Webhook AWS requests per event ({EVENTS_PER_POST}-event POST)",
            requests,
            floor_requests,
            "req",
            f"<= {REQUESTS_TARGET}",
            requests <= REQUESTS_TARGET,
            method=(
                f"The AWS requests of the same warm {EVENTS_PER_POST}-event POSTs, counted at botocore's "
                "`before-send` hook (retries and batch splits included), divided by the events: publishing "
                "(SendMessageBatch), which events are stored already (BatchGetItem, 100 keys each), storing "
                "them and moving the conversations' windows on (TransactWriteItems, 100 actions each). The floor "
                f"is publishing alone: SQS takes at most {SQS_BATCH_LIMIT} messages per SendMessageBatch. "
                "The app secret is read once per instance and cached "
                f"(`SECRET_MAX_AGE_SECONDS`), so warm POSTs make no Secrets Manager call. Target "
                f"<= {REQUESTS_TARGET}."
            ),
            target_value=REQUESTS_TARGET,
            details=[f"per POST: {breakdown}"],
        ),
    ]
    return WebhookRun(figures, result["peak_rss_mb"], result["clients"], SinglePosts(**result["single"]))


# ------------------------------------------------------------------ the child


def _signed(items: list[dict[str, Any]]) -> tuple[bytes, dict[str, str]]:
    from local.samples import meta as m

    body = m.body(m.envelope(*items))
    signature = "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return body, {
        "content-type": "application/json",
        "x-hub-signature-256": signature,
        "user-agent": "facebookexternalua",
    }


def _floor(sqs: Any, queue_url: str) -> Callable[[bytes, str], None]:
    """The least a webhook must do with a POST: check its signature, parse it, publish each event once (SQS
    FIFO, 10 per request), with plain boto3."""

    def floor(body: bytes, signature: str) -> None:
        expected = "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            raise AssertionError("the floor's signature does not match")
        entries = [
            {
                "Id": str(i),
                "MessageBody": json.dumps(item),
                "MessageGroupId": f"{entry['id']}:{item['sender']['id']}",
                "MessageDeduplicationId": item["message"]["mid"],
            }
            for entry in json.loads(body)["entry"]
            for i, item in enumerate(entry["messaging"])
        ]
        for start in range(0, len(entries), SQS_BATCH_LIMIT):
            answer = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries[start : start + SQS_BATCH_LIMIT])
            if answer.get("Failed"):
                raise AssertionError(f"the floor's publishing failed: {answer['Failed'][:1]}")

    return floor


def child(result_path: str) -> None:
    from bench.lambda_child import Instance

    instance = Instance()  # before the handler's import: Powertools binds stdout then
    import boto3

    from local.aws.apigw import LambdaContext, http_api_event
    from local.samples import meta as m
    from webhook import handler

    instance.watch_clients()  # counted; answered by the stand-in at AWS_ENDPOINT_URL
    floor = _floor(boto3.client("sqs"), os.environ["EVENTS_QUEUE_URL"])
    context = LambdaContext("bench-webhook", memory_limit_in_mb=int(os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]))

    def invoke(body: bytes, headers: dict[str, str]) -> tuple[float, float]:
        event = http_api_event("POST", "/webhook", headers=headers, body=body, now_ms=m.RECEIVED_MS)
        wall, cpu = time.perf_counter(), time.process_time()
        response = handler.lambda_handler(event, context)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        if response["statusCode"] != 200:
            raise AssertionError(f"the webhook answered {response}")
        return wall, cpu

    items = [
        m.text(mid=f"m_bench_{i}", ts=m.T0 + i, customer=f"9{i % CONVERSATIONS:015d}") for i in range(EVENTS_PER_POST)
    ]
    body, headers = _signed(items)
    cold_wall, cold_cpu = invoke(body, headers)

    instance.ledger.detailed = False  # billing units are read from the one-event POSTs below
    before = instance.ledger.snapshot()
    walls, cpus, floors = [], [], []
    for round_ in range(POSTS):
        for step in ("post", "floor") if round_ % 2 == 0 else ("floor", "post"):
            if step == "post":
                wall, cpu = invoke(body, headers)
                walls.append(wall)
                cpus.append(cpu)
            else:
                started = time.process_time()
                floor(body, headers["x-hub-signature-256"])
                floors.append(time.process_time() - started)
    batch = instance.ledger.snapshot().since(before)

    profile = _profile(lambda: invoke(body, headers))
    instance.ledger.detailed = True
    before, logged, lines = instance.ledger.snapshot(), instance.output.bytes, instance.output.lines
    single_walls, single_cpus, single_bytes = [], [], 0
    for i in range(SINGLE_POSTS):
        one, one_headers = _signed([m.text(mid=f"m_single_{i}", ts=m.T0 + i, customer=f"9{i % CONVERSATIONS:015d}")])
        single_bytes = max(single_bytes, len(one))
        wall, cpu = invoke(one, one_headers)
        single_walls.append(wall)
        single_cpus.append(cpu)
    single = instance.ledger.snapshot().since(before)

    write_result(
        result_path,
        {
            "body_bytes": len(body),
            "cold_wall_ms": cold_wall * 1000,
            "cold_cpu_ms": cold_cpu * 1000,
            "wall_ms": median(walls) * 1000,
            "cpu_per_event_us": median(cpus) / EVENTS_PER_POST * 1e6,
            "floor_per_event_us": median(floors) / EVENTS_PER_POST * 1e6,
            "requests_per_event": batch.total / (POSTS * EVENTS_PER_POST),
            "requests": dict(batch.requests),
            "single": {
                "events": SINGLE_POSTS,
                "body_bytes": single_bytes,
                "wall_ms": median(single_walls) * 1000,
                "cpu_ms": median(single_cpus) * 1000,
                "ledger": single.as_dict(),
                "log_bytes": (instance.output.bytes - logged) / SINGLE_POSTS,
                "log_lines": (instance.output.lines - lines) / SINGLE_POSTS,
            },
            "clients": sorted(instance.clients),
            "peak_rss_mb": instance.peak_rss_mb(),
            "profile": profile,
        },
    )


def _profile(post: Any) -> dict[str, float]:
    """Where a warm 1000-event POST spends its CPU, by package (cProfile's own times, in shares). The profiler
    slows everything down, so these are proportions, not times; botocore's parameter validation is kept apart."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(PROFILED_POSTS):
        post()
    profiler.disable()
    shares: dict[str, float] = {}
    # {(file, line, name): (primitive calls, calls, own time, cumulative time, {caller: (..., own time, ...)})}
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    for (path, _, name), (_, _, own, _, _) in stats.items():
        # A built-in (C code: json's scanner, hashlib, socket, pydantic-core's validators) is charged to the
        # package whose C code it is, not to the Python function that called it.
        area = _c_area(name) if path == "~" else _area(path)
        shares[area] = shares.get(area, 0.0) + own
    total = sum(shares.values()) or 1.0
    return {area: own / total for area, own in shares.items()}


def _c_area(name: str) -> str:
    if "pydantic_core" in name:
        return "pydantic"
    return "C built-ins (json, hashlib, socket, str ...)"


def _area(path: str) -> str:
    if path.endswith("botocore/validate.py"):
        return "botocore parameter validation"
    if "site-packages/" in path:
        return package_group(path.split("site-packages/", 1)[1].split("/", 1)[0])
    if "/layers/shared/" in path or "/functions/" in path:
        return "gateway"
    if "/bench/" in path:
        return "the bench's request counting"  # a before-send handler: counted in the figure too
    return "stdlib and other"


if __name__ == "__main__":
    child(sys.argv[1])
