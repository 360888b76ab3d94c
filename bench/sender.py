"""Figure 3: sustained sends per second for one account, against the Graph sandbox holding Meta's limit of
100 calls per second per account and answering after 150 ms, with no throttling answer and every
conversation's order kept; and the same for 10 accounts at once.

The senders are the real service (`sender.service.Sender.process`), the real GCRA rate limiter
(`igdm.store.rate_limits.RateLimiter`) and the real Graph client over HTTP to the sandbox, which runs in a
process of its own on 127.0.0.1 (bench.graph adds the latency). DynamoDB, SQS and Secrets Manager
are in-memory stand-ins (bench.sender_standins). Worker threads stand in for Lambda instances, as many
as the template's MaximumConcurrency for the outbound queue; they take messages from an in-memory FIFO
queue that behaves as SQS FIFO does for this: one message in flight per message group (account and
recipient), and a message given back with a retry delay holds its group until it is received again.

It all runs in a child process of its own (`python -m bench.sender result.json`), whose standard output,
where the sender logs each message, is counted rather than printed (bench.lambda_child).

Bounded: a fixed number of messages per run, a time limit on each run and on every wait.
"""

import contextlib
import heapq
import itertools
import json
import multiprocessing
import re
import sys
import threading
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from typing import Any

import requests

from bench.common import (
    LOOPBACK,
    Figure,
    clean_environment,
    function_property,
    lambda_path,
    median,
    run_child,
    stand_in_stack,
    template,
    write_result,
)
from bench.graph import LATENCY_SECONDS, THROTTLING_CODES

ONE_ACCOUNT_MESSAGES = 1000  # about 10 s at the limit
TEN_ACCOUNT_MESSAGES = 3000
MESSAGES_PER_CONVERSATION = 10  # so that order within a conversation is put to the test
RUN_TIME_LIMIT = 40.0
CHILD_TIME_LIMIT = 3 * RUN_TIME_LIMIT + 60
UNEXPECTED_RETRY_SECONDS = 1.0
PROBES = 20  # bare Send API calls that measure the sandbox's round trip
TARGET_PER_SECOND = 95.0
GRAPH_VERSION = "v24.0"
TOKEN_PREFIX = "bench-token-"  # noqa: S105 - the sandbox's tokens
PROBE_ACCOUNT = "17841499999999999"
_SEQUENCE = re.compile(r"^bench (\d+)$")


def text_limit() -> int:
    return int(template()["Parameters"]["TextRatePerSecond"]["Default"])


def workers() -> int:
    """The template's MaximumConcurrency for the sender's queue: how many instances Lambda may run."""
    events = function_property("SenderFunction", "Events")
    return int(events["Outbound"]["Properties"]["ScalingConfig"]["MaximumConcurrency"])


def token_of(account: str) -> str:
    return TOKEN_PREFIX + account


# ------------------------------------------------------------------ the Graph sandbox, in its own process


def _sandbox_process(accounts: list[str], limit: int, port_out: Any, commands: Any) -> None:
    from bench.graph import SlowGraphSandbox

    sandbox = SlowGraphSandbox(text_rate_per_second=limit).start()
    try:
        for account in accounts:  # Meta knows the account by its token: one token each
            sandbox.add_account(account, token_of(account))
        port_out.send(sandbox.port)
        while commands.poll(RUN_TIME_LIMIT * 4) and (command := commands.recv()) != "stop":
            if command == "stats":
                sent = [
                    (s.account_id, s.body["recipient"]["id"], s.body["message"].get("text", ""), s.at)
                    for s in sandbox.sent
                ]
                throttled = sum(1 for r in sandbox.requests if r.error_code in THROTTLING_CODES or r.status == 429)
                commands.send({"sent": sent, "throttled": throttled, "requests": len(sandbox.requests)})
            elif command == "reset":
                sandbox.reset()
                commands.send("ok")
    finally:
        sandbox.stop()


class SandboxProcess:
    """The sandbox in a child process, so that its CPU is not taken from the senders' process."""

    def __init__(self, accounts: list[str], limit: int) -> None:
        context = multiprocessing.get_context("spawn")
        port_in, port_out = context.Pipe()
        self._commands, child_commands = context.Pipe()
        self._process = context.Process(
            target=_sandbox_process, args=(accounts, limit, port_out, child_commands), daemon=True
        )
        self._process.start()
        if not port_in.poll(30):
            self.stop()
            raise RuntimeError("the Graph sandbox did not start")
        self.base_url = f"http://{LOOPBACK}:{port_in.recv()}"

    def ask(self, command: str) -> Any:
        self._commands.send(command)
        if not self._commands.poll(30):
            raise RuntimeError(f"the Graph sandbox did not answer {command}")
        return self._commands.recv()

    def stop(self) -> None:
        if self._process.is_alive():
            with contextlib.suppress(BrokenPipeError, OSError):
                self._commands.send("stop")
            self._process.join(10)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(5)


def probe_latency(sandbox: SandboxProcess) -> float:
    """The sandbox's round trip for a bare Send API call: the least time a send can take here."""
    times = []
    with requests.Session() as session:
        for i in range(PROBES):
            started = time.perf_counter()
            answer = session.post(
                f"{sandbox.base_url}/{GRAPH_VERSION}/me/messages",
                timeout=10,
                headers={"Authorization": f"Bearer {token_of(PROBE_ACCOUNT)}"},
                json={"recipient": {"id": f"9{i:015d}"}, "message": {"text": "probe"}},
            )
            times.append(time.perf_counter() - started)
            answer.raise_for_status()
    sandbox.ask("reset")
    return median(times)


# ------------------------------------------------------------------ SQS FIFO, as far as the sender sees it


@dataclass
class Job:
    group: str
    body: str
    receive_count: int = 1


class FifoQueue:
    """One message in flight per group, in order; a retried message holds its group until its delay ends."""

    def __init__(self, jobs: list[Job]) -> None:
        self._groups: dict[str, deque[Job]] = {}
        for job in jobs:
            self._groups.setdefault(job.group, deque()).append(job)
        self._ready: deque[str] = deque(self._groups)
        self._delayed: list[tuple[float, str]] = []
        self._changed = threading.Condition()
        self._remaining = len(jobs)

    def take(self, deadline: float) -> Job | None:
        with self._changed:
            while True:
                now = time.monotonic()
                while self._delayed and self._delayed[0][0] <= now:
                    self._ready.append(heapq.heappop(self._delayed)[1])
                if self._ready:
                    return self._groups[self._ready.popleft()][0]
                if self._remaining == 0 or now >= deadline:
                    return None
                next_due = self._delayed[0][0] - now if self._delayed else 0.05
                self._changed.wait(max(0.001, min(deadline - now, next_due, 0.05)))

    def done(self, job: Job) -> None:
        with self._changed:
            group = self._groups[job.group]
            group.popleft()
            self._remaining -= 1
            if group:
                self._ready.append(job.group)
            else:
                del self._groups[job.group]
            self._changed.notify()

    def retry(self, job: Job, delay: float) -> None:
        with self._changed:
            job.receive_count += 1
            heapq.heappush(self._delayed, (time.monotonic() + delay, job.group))


# ------------------------------------------------------------------ the run


@dataclass
class Run:
    messages: int
    sent: int
    rate: float  # sends per second over the run, first send to last
    span: float
    throttled: int
    out_of_order: int
    duplicates: int
    outcomes: dict[str, int]
    cpu_ms_per_send: float
    busiest_second: int  # the most sends of one account in any one-second window at the sandbox
    limiter_updates_per_send: float
    per_account: dict[str, float] = field(default_factory=dict)


def _jobs(accounts: list[str], messages: int) -> list[Job]:
    from local.samples import outbound as out

    conversations = max(1, messages // (len(accounts) * MESSAGES_PER_CONVERSATION))
    jobs = []
    for i in range(messages):
        account = accounts[i % len(accounts)]
        nth = i // len(accounts)  # the nth message of this account
        customer, sequence = f"9{nth % conversations:015d}", nth // conversations
        body = out.outbound(
            "text",
            key=f"bench-{account}-{nth}",
            account_id=account,
            recipient={"id": customer},
            message={"type": "text", "text": f"bench {sequence}"},
        )
        jobs.append(Job(f"{account}:{customer}", json.dumps(body)))
    return jobs


def throughput(sandbox: SandboxProcess, accounts: list[str], messages: int, limit: int) -> Run:
    from bench.sender_standins import Accounts, MemoryRecords, NoMetrics, OpenWindow, RateTable, Statuses
    from igdm.runtime.fifo_consumer import Retry
    from igdm.store.rate_limits import RateLimiter, intervals
    from sender.graph import GraphClient
    from sender.service import Sender
    from sender.settings import SenderSettings

    sandbox.ask("reset")
    rates, records, statuses = RateTable(), MemoryRecords(), Statuses()
    defaults = SenderSettings.model_fields
    limits = intervals(
        limit,
        defaults["media_rate_per_second"].default,
        defaults["private_replies_per_hour"].default,
        defaults["rate_headroom"].default,
    )
    queue = FifoQueue(_jobs(accounts, messages))
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + RUN_TIME_LIMIT

    def instance() -> None:
        sender = Sender(
            records=records,  # type: ignore[arg-type]
            accounts=Accounts(accounts, token_of),
            graph=GraphClient(sandbox.base_url, GRAPH_VERSION, 10),
            limiter=RateLimiter(rates, "t", limits),
            statuses=statuses,
            conversations=OpenWindow(),
            metrics=NoMetrics(),
        )
        while (job := queue.take(deadline)) is not None:
            try:
                status = sender.process(job.body, sqs_message_id=f"sqs-{id(job)}", receive_count=job.receive_count)
            except Retry as retry:
                queue.retry(job, retry.delay)
                status = "retried"
            except Exception as exc:  # as the handler would: the message comes back after a pause, and is counted
                queue.retry(job, UNEXPECTED_RETRY_SECONDS)
                status = f"raised {type(exc).__name__}"
            else:
                queue.done(job)
            with lock:
                outcomes[status] += 1

    threads = [threading.Thread(target=instance, name=f"sender-{i}", daemon=True) for i in range(workers())]
    cpu_started = time.process_time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()) + 5)
    cpu = time.process_time() - cpu_started
    stats = sandbox.ask("stats")
    return _summary(stats, messages, dict(outcomes), cpu, rates.requests, accounts)


def _summary(
    stats: dict[str, Any], messages: int, outcomes: dict[str, int], cpu: float, rate_updates: int, accounts: list[str]
) -> Run:
    sent = stats["sent"]
    times = sorted(at for *_, at in sent)
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    by_conversation: dict[tuple[str, str], list[int]] = {}
    by_account: dict[str, list[float]] = {}
    for account, recipient, text, at in sent:  # in the order the sandbox accepted them
        match = _SEQUENCE.match(text)
        by_conversation.setdefault((account, recipient), []).append(int(match.group(1)) if match else -1)
        by_account.setdefault(account, []).append(at)
    out_of_order = sum(1 for seqs in by_conversation.values() for a, b in itertools.pairwise(seqs) if b <= a)
    duplicates = sum(len(seqs) - len(set(seqs)) for seqs in by_conversation.values())
    per_account = {a: (len(t) - 1) / (max(t) - min(t)) for a, t in by_account.items() if len(t) > 1 and max(t) > min(t)}
    return Run(
        messages=messages,
        sent=len(sent),
        rate=(len(times) - 1) / span if span > 0 else 0.0,
        span=span,
        throttled=stats["throttled"],
        out_of_order=out_of_order,
        duplicates=duplicates,
        outcomes=outcomes,
        cpu_ms_per_send=cpu * 1000 / max(len(sent), 1),
        busiest_second=max((_busiest_second(t) for t in by_account.values()), default=0),
        limiter_updates_per_send=rate_updates / max(len(sent), 1),
        per_account=per_account,
    )


def _busiest_second(times: list[float]) -> int:
    times = sorted(times)
    best, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def measure() -> list[Figure]:
    environment = {
        **clean_environment(),
        **stand_in_stack().function_environment("SenderFunction"),
        "PYTHONPATH": lambda_path("SenderFunction"),
        # The stand-ins make no AWS request; were one made, it would fail here, on a closed loopback port.
        "AWS_ENDPOINT_URL": f"http://{LOOPBACK}:9",
    }
    result = run_child("bench.sender", [], environment, CHILD_TIME_LIMIT)
    return _figures(text_limit(), result["latency"], Run(**result["single"]), Run(**result["several"]))


def child(result_path: str) -> None:
    from bench.lambda_child import Instance

    Instance()  # the sender's logs go to a counting sink, not to the bench's output
    limit = text_limit()
    one = ["17841400000000001"]
    ten = [f"178414000000000{i:02d}" for i in range(1, 11)]
    sandbox = SandboxProcess([*ten, PROBE_ACCOUNT], limit)
    try:
        latency = probe_latency(sandbox)
        single = throughput(sandbox, one, ONE_ACCOUNT_MESSAGES, limit)
        several = throughput(sandbox, ten, TEN_ACCOUNT_MESSAGES, limit)
    finally:
        sandbox.stop()
    write_result(result_path, {"latency": latency, "single": asdict(single), "several": asdict(several)})


def _figures(limit: int, latency: float, single: Run, several: Run) -> list[Figure]:
    n = workers()
    ceiling = min(limit * 10, n / latency)
    order_ok = single.out_of_order == 0 and several.out_of_order == 0 and single.duplicates == several.duplicates == 0
    complete = single.sent == single.messages and several.sent == several.messages

    def details(run: Run) -> list[str]:
        return [
            f"{run.sent} of {run.messages} sent in {run.span:.1f} s; outcomes {dict(sorted(run.outcomes.items()))}",
            f"busiest second of one account at the sandbox: {run.busiest_second} sends; "
            f"{run.cpu_ms_per_send:.2f} ms of sender CPU and {run.limiter_updates_per_send:.2f} rate-limit "
            "updates per send",
        ]

    setup = (
        f"The real sender (`Sender.process`, its GCRA rate limiter and Graph client) in {n} threads, one per "
        "Lambda instance the template allows (the outbound queue's MaximumConcurrency), sends text messages "
        f"to the Graph sandbox, which allows {limit} calls per second per account (a sliding second, as Meta) "
        f"and answers each after {LATENCY_SECONDS * 1000:.0f} ms; the sandbox runs in its own process. "
        f"Messages come from an in-memory FIFO queue that keeps SQS FIFO's rule (one message in flight per "
        f"conversation, a retried message holding its conversation), {MESSAGES_PER_CONVERSATION} per "
        "conversation. DynamoDB, SQS and Secrets Manager are in-memory stand-ins (an emulator would take "
        "the CPU the senders need). Rate: sends the sandbox accepted, first to last."
    )
    return [
        Figure(
            "sender_one",
            "Sender, 1 account: sends per second",
            single.rate,
            float(limit),
            "/s",
            f">= {TARGET_PER_SECOND:g}/s, 0 throttled, order kept",
            single.rate >= TARGET_PER_SECOND and single.throttled == 0 and order_ok and complete,
            method=(
                f"{setup} {single.messages} messages to one account; the floor column holds Meta's limit. "
                f"Target: at least {TARGET_PER_SECOND:g} per second with no throttling answer (codes "
                f"{', '.join(str(c) for c in sorted(THROTTLING_CODES))} or HTTP 429) and every "
                "conversation's messages in the order they were queued."
            ),
            target_value=TARGET_PER_SECOND,
            details=[
                f"throttling answers: {single.throttled}; out of order: {single.out_of_order}; sent twice: "
                f"{single.duplicates}",
                *details(single),
            ],
        ),
        Figure(
            "sender_ten",
            "Sender, 10 accounts: sends per second",
            several.rate,
            ceiling,
            "/s",
            "(0 throttled, order kept)",
            None if several.throttled == 0 and order_ok and complete else False,
            method=(
                f"As above, {several.messages} messages spread over 10 accounts at once. The floor column "
                f"holds the most this setup allows: {n} instances each waiting {latency * 1000:.0f} ms (the "
                f"sandbox's measured round trip for a bare call, median of {PROBES}) per send, or 10 times "
                f"the limit if less ({ceiling:.0f}/s). No target; throttling and order are still checked."
            ),
            details=[
                f"throttling answers: {several.throttled}; out of order: {several.out_of_order}; sent twice: "
                f"{several.duplicates}; per account {min(several.per_account.values(), default=0):.0f}-"
                f"{max(several.per_account.values(), default=0):.0f}/s",
                *details(several),
            ],
        ),
    ]


if __name__ == "__main__":
    child(sys.argv[1])
