"""Figure 4: end to end on the local stack (`make run`), from a signed webhook POST sent to its event being
readable on the events queue, for 1000 inbound messages: p50 and p99.

The stack runs as a process of its own on free ports (as tests/e2e/test_local_stack.py starts it), from a
plain environment. One POST carries one message, as Meta mostly delivers them, and POSTs go one after
another on one keep-alive connection (which acknowledges each answer at once: see _acknowledge_at_once).
A consumer thread long-polls the events queue and deletes what it reads, noting when each event became
readable.

The floor, alternated with the POSTs: one HTTP request to the same API server that invokes no function
(a path with no route, answered 404 at once), then one SendMessage of a small message straight to the
events queue, timed until the same consumer reads it. That is the least any design that answers an
HTTP request and puts the event on this queue pays on this machine.

Bounded: a time limit on the stack's start, on each request, on the run and on the wait for the last
events; the stack is stopped (terminated, then killed) whatever happens.
"""

import hashlib
import hmac
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import boto3

from bench.common import LOOPBACK, REGION, ROOT, Figure, clean_environment, free_port, percentile, stop_process

MESSAGES = 1000
CONVERSATIONS = 100
APP_SECRET = "bench-e2e-app-secret-0123456789"  # noqa: S105 - the stack's local secret, for this run only
STARTUP_LIMIT = 90.0
RUN_LIMIT = 240.0
DRAIN_LIMIT = 30.0
REQUEST_TIMEOUT = 15.0
POLL_SECONDS = 1  # the consumer's long poll


class LocalStack:
    """`python -m local.stack` on free loopback ports, stopped on leaving the `with` block."""

    def __init__(self) -> None:
        self.aws_port, self.api_port = free_port(), free_port()
        self.output: deque[str] = deque(maxlen=200)
        self._ready = threading.Event()
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> Self:
        from bench.common import LAYER, code_path, functions

        path = [str(code_path(f)) for f in functions()] + [str(LAYER), str(ROOT)]
        environment = {
            **clean_environment(),
            "LOCAL_AWS_PORT": str(self.aws_port),
            "LOCAL_API_PORT": str(self.api_port),
            "LOCAL_GRAPH_PORT": str(free_port()),
            "LOCAL_CALLBACK_PORT": str(free_port()),
            "PYTHONPATH": os.pathsep.join(path),
            "APP_SECRET": APP_SECRET,
            "PYTHONUNBUFFERED": "1",
        }
        self._process = subprocess.Popen(
            [sys.executable, "-m", "local.stack"],
            cwd=ROOT,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._pump, name="local-stack-output", daemon=True).start()
        if not self._ready.wait(STARTUP_LIMIT):
            self.__exit__(None, None, None)
            raise RuntimeError("the local stack did not start:\n" + "".join(self.output))
        return self

    def _pump(self) -> None:  # read everything, so the stack never blocks on a full pipe
        if self._process is None or self._process.stdout is None:
            return
        for line in self._process.stdout:
            self.output.append(line)
            if line.strip() == "ready":
                self._ready.set()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._process is None:
            return
        stop_process(self._process, grace=15)

    def sqs(self) -> Any:
        session = boto3.session.Session(
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106
            region_name=REGION,
        )
        return session.client("sqs", endpoint_url=f"http://{LOOPBACK}:{self.aws_port}")


@dataclass
class Consumer:
    """Reads and deletes everything on the events queue, noting when each of ours became readable."""

    sqs: Any
    queue_url: str
    seen: dict[str, float] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)
    failure: list[str] = field(default_factory=list)

    def run(self, deadline: float) -> None:
        try:
            while not self.stop.is_set() and time.monotonic() < deadline:
                got = self.sqs.receive_message(
                    QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=POLL_SECONDS
                ).get("Messages", [])
                now = time.perf_counter()
                for message in got:
                    self.seen.setdefault(_key(json.loads(message["Body"])), now)
                if got:
                    self.sqs.delete_message_batch(
                        QueueUrl=self.queue_url,
                        Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)],
                    )
        except Exception as exc:  # reported by the run, which then fails loudly
            self.failure.append(f"{type(exc).__name__}: {exc}")


def _key(document: dict[str, Any]) -> str:
    if "bench_floor" in document:
        return f"floor-{document['bench_floor']}"
    return str(document.get("message_id") or document.get("event_id"))


def _signed_post(i: int) -> tuple[bytes, dict[str, str]]:
    from local.samples import meta as m

    body = m.body(
        m.envelope(m.text(mid=f"bench-e2e-{i}", ts=int(time.time() * 1000), customer=f"9{i % CONVERSATIONS:015d}"))
    )
    signature = "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return body, {"Content-Type": "application/json", "X-Hub-Signature-256": signature}


@dataclass
class Latencies:
    real: list[float]
    floor: list[float]
    missing: int
    post_ms: list[float]
    seconds: float


def run() -> Latencies:
    with LocalStack() as stack:
        sqs = stack.sqs()
        queue_url = next(u for u in sqs.list_queues()["QueueUrls"] if u.endswith("-events.fifo"))
        started = time.monotonic()
        deadline = started + RUN_LIMIT
        consumer = Consumer(stack.sqs(), queue_url)
        reader = threading.Thread(
            target=consumer.run, args=(deadline + DRAIN_LIMIT,), name="events-consumer", daemon=True
        )
        reader.start()
        sent: dict[str, float] = {}
        post_ms: list[float] = []
        api = http.client.HTTPConnection(LOOPBACK, stack.api_port, timeout=REQUEST_TIMEOUT)
        try:
            for i in range(MESSAGES):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"end-to-end run over its {RUN_LIMIT:.0f} s limit after {i} messages")
                steps = (_post, _floor) if i % 2 == 0 else (_floor, _post)
                for step in steps:
                    step(i, api, sqs, queue_url, sent, post_ms)
            _wait_for(consumer, sent, time.monotonic() + DRAIN_LIMIT)
        finally:
            api.close()
            consumer.stop.set()
            reader.join(POLL_SECONDS + REQUEST_TIMEOUT)
        if consumer.failure:
            raise RuntimeError(f"the events consumer failed: {consumer.failure[0]}")
        real = [consumer.seen[k] - t for k, t in sent.items() if k in consumer.seen and not k.startswith("floor-")]
        floor = [consumer.seen[k] - t for k, t in sent.items() if k in consumer.seen and k.startswith("floor-")]
        return Latencies(real, floor, len(sent) - len(real) - len(floor), post_ms, time.monotonic() - started)


def _post(
    i: int, api: http.client.HTTPConnection, sqs: Any, queue_url: str, sent: dict[str, float], post_ms: list[float]
) -> None:
    body, headers = _signed_post(i)
    sent[f"bench-e2e-{i}"] = started = time.perf_counter()
    api.request("POST", "/webhook", body=body, headers=headers)
    _acknowledge_at_once(api)
    response = api.getresponse()
    answer = response.read()
    post_ms.append((time.perf_counter() - started) * 1000)
    if response.status != 200:
        raise RuntimeError(f"the webhook answered {response.status}: {answer[:300]!r}")


def _floor(
    i: int, api: http.client.HTTPConnection, sqs: Any, queue_url: str, sent: dict[str, float], post_ms: list[float]
) -> None:
    sent[f"floor-{i}"] = time.perf_counter()
    api.request("GET", "/bench-floor")
    _acknowledge_at_once(api)
    response = api.getresponse()
    response.read()
    if response.status != 404:
        raise RuntimeError(f"the floor's request was answered {response.status}, not 404")
    sqs.send_message(
        QueueUrl=queue_url,
        MessageBody=json.dumps({"bench_floor": i}),
        MessageGroupId=f"bench-floor-{i % CONVERSATIONS}",
        MessageDeduplicationId=f"bench-floor-{i}",
    )


def _acknowledge_at_once(api: http.client.HTTPConnection) -> None:
    """Linux's TCP_QUICKACK for the answer about to come. The local API server writes an answer's headers
    and body in two sends with Nagle's algorithm on, so the body waits for the ACK of the headers, which
    the client delays by 40 ms: a stall of the local server (reported), not of the gateway, that would
    otherwise add 40 ms to every request of both the measured path and its floor."""
    quick_ack = getattr(socket, "TCP_QUICKACK", None)
    if quick_ack is not None and api.sock is not None:
        api.sock.setsockopt(socket.IPPROTO_TCP, quick_ack, 1)


def _wait_for(consumer: Consumer, sent: dict[str, float], deadline: float) -> None:
    while time.monotonic() < deadline and not consumer.failure:
        if all(k in consumer.seen for k in list(sent)):
            return
        time.sleep(0.05)


def measure() -> list[Figure]:
    latencies = run()
    if not latencies.real or not latencies.floor:
        raise RuntimeError("no event came through the local stack")
    real_ms = [s * 1000 for s in latencies.real]
    floor_ms = [s * 1000 for s in latencies.floor]
    method = (
        f"`python -m local.stack` runs as a process on free loopback ports (moto server, the real handlers, "
        f"the Graph sandbox), from a plain environment. {MESSAGES} signed webhook POSTs of one text message "
        f"each ({CONVERSATIONS} conversations) go one after another over one keep-alive connection; a consumer "
        f"thread long-polls the events queue ({POLL_SECONDS} s waits) and deletes what it reads. Latency: from "
        "just before the POST is sent to the moment the consumer has the event (the webhook publishes before "
        "it stores, so the event is often readable before the POST is answered). The floor, alternated with "
        "the POSTs: a request the same API server answers 404 without invoking a function, then a SendMessage "
        "straight to the events queue, timed until the consumer has it. The client acknowledges each answer "
        "at once (`TCP_QUICKACK`): the local API server writes headers and body in two sends with Nagle's "
        "algorithm on, which otherwise stalls every answer 40 ms on the client's delayed ACK. The time to the "
        "POST's answer (in the details) is mostly the emulator's: moto copies the whole table on every "
        "TransactWriteItems, so it grows with the events stored. Everything, the emulator included, shares "
        "this machine's cores: these are local figures, not AWS's."
    )
    details = [
        f"{len(real_ms)} of {MESSAGES} events read; lost: {latencies.missing}; POST answered in "
        f"{percentile(latencies.post_ms, 50):.1f} ms (p50), {percentile(latencies.post_ms, 99):.1f} ms (p99); "
        f"the run took {latencies.seconds:.0f} s"
    ]
    return [
        Figure(
            "e2e_p50",
            "End to end, POST to event on the queue: p50",
            percentile(real_ms, 50),
            percentile(floor_ms, 50),
            "ms",
            "-",
            None if latencies.missing == 0 else False,
            method=method,
            details=details,
        ),
        Figure(
            "e2e_p99",
            "End to end, POST to event on the queue: p99",
            percentile(real_ms, 99),
            percentile(floor_ms, 99),
            "ms",
            "-",
            None if latencies.missing == 0 else False,
        ),
    ]
