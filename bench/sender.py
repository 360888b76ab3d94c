"""Figure 3: sustained sends per second for one account, against the Graph sandbox holding Meta's limit of
100 calls per second per account and answering after 150 ms, with no throttling answer and every
conversation's order kept; and the same for 10 accounts at once.

The senders are the real service as the sender's wiring builds it (`sender.wiring.service()`: the real
`Sender`, its GCRA rate limiter, its records, account directory, conversation state and status publisher on
boto3 clients, and its Graph client), one per Lambda instance the template allows (the outbound queue's
MaximumConcurrency), each with clients of its own, in a thread of its own, the threads shared out over a few
processes (SenderProcesses: one process would hold them all to one core). Every AWS request they make goes
through botocore and urllib3 over HTTP on 127.0.0.1 to a stand-in in a process of its own, provisioned from
template.yaml, that keeps DynamoDB's semantics for what the sender asks and holds each answer back by a fixed
latency, 5 ms unless BENCH_AWS_LATENCY_MS says otherwise (bench.dynamo_standin; BENCH_SENDER_AWS=moto puts moto
there instead, bench.moto_standin, which spends more CPU per send than this machine has). The Graph sandbox runs
in a process of its own too (bench.graph adds Meta's latency). Only the outbound queue is a model in memory, in
each sender process for its share of the conversations: a FIFO queue that behaves as SQS FIFO does for this, one
message in flight per message group (account and recipient), and a message given back with a retry delay holds
its group until it is received again. The event source mapping's receive and delete are not the sender's
requests, so they are not part of the figure.

It all runs in a child process of its own (`python -m bench.sender <latency ms> <processes> <stand-in>
result.json`), which starts the others; the sender processes' standard output, where the sender logs each message
and its metrics, is counted rather than printed (bench.lambda_child). Each process's CPU is read apart.

Bounded: a fixed number of messages per run, a time limit on each run and on every wait; every process started is
stopped on the way out, whatever happens.
"""

import contextlib
import gc
import heapq
import itertools
import json
import multiprocessing
import os
import re
import sys
import threading
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from typing import Any

import requests

from bench.aws_ledger import Ledger
from bench.common import (
    LOOPBACK,
    REGION,
    Figure,
    busiest_second,
    clean_environment,
    function_property,
    lambda_path,
    median,
    run_child,
    stand_in_stack,
    template,
    write_result,
)
from bench.dynamo_standin import DynamoStandIn
from bench.graph import LATENCY_SECONDS, THROTTLING_CODES
from bench.moto_standin import CREDENTIALS, DEFAULT_LATENCY_MS, MotoStandIn, StandInProcess, process_cpu_seconds

ONE_ACCOUNT_MESSAGES = 1000  # about 10 s at the limit
TEN_ACCOUNT_MESSAGES = 3000
MESSAGES_PER_CONVERSATION = 10  # so that order within a conversation is put to the test
RUN_TIME_LIMIT = 40.0
STRAGGLER_SECONDS = 15.0  # how long after a run's time limit its last sends may still finish
CHILD_TIME_LIMIT = 2 * (RUN_TIME_LIMIT + STRAGGLER_SECONDS) + 120  # the runs, and starting everything
UNEXPECTED_RETRY_SECONDS = 1.0
PROBES = 20  # bare Send API calls (and bare GetItems) that measure the sandbox's (and the stand-in's) round trip
TARGET_PER_SECOND = 96.0
LATENCY_VARIABLE = "BENCH_AWS_LATENCY_MS"  # the stand-in's latency per AWS request, DEFAULT_LATENCY_MS unless set
PROCESSES_VARIABLE = "BENCH_SENDER_PROCESSES"  # the processes the sender instances are shared out over
SENDER_PROCESSES = 2  # one per core of the development machine
STAND_IN_VARIABLE = "BENCH_SENDER_AWS"  # "dynamo" (bench.dynamo_standin, the default) or "moto" (bench.moto_standin)
STAND_INS: dict[str, type[StandInProcess]] = {"dynamo": DynamoStandIn, "moto": MotoStandIn}
STAND_IN_WORDS = {
    "dynamo": "a stand-in for DynamoDB, SQS and Secrets Manager (`bench/dynamo_standin.py`; moto, served the same way "
    "with BENCH_SENDER_AWS=moto, spends about 25 ms of CPU per send, more than this machine has to give)",
    "moto": "moto's DynamoDB, SQS and Secrets Manager with the local stack's fixes (`bench/moto_standin.py`, "
    "BENCH_SENDER_AWS=moto)",
}
START_TIME_LIMIT = 60.0  # a sender process's imports, clients and warm-up
# How long a thread holds the GIL while others wait (CPython's default is 5 ms). A Lambda instance is a process of
# its own; here the instances of a process share one GIL, and a sender woken for its rate slot would wait up to the
# switch interval for each thread ahead of it, which on its own exceeds the limiter's jitter allowance.
SWITCH_INTERVAL_SECONDS = 0.0005
# The sender processes yield the CPU to the Graph sandbox and the AWS stand-in, which in reality run on other
# machines: a sandbox kept waiting for a core would stamp the requests it then reads all at once closer together
# than they were sent, and count throttling that Meta would not.
SENDER_NICENESS = 10
STACK_NAME = "bench"
DAY = 86_400
GRAPH_VERSION = "v24.0"
TOKEN_PREFIX = "bench-token-"  # noqa: S105 - the sandbox's tokens
PROBE_ACCOUNT = "17841499999999999"
_SEQUENCE = re.compile(r"^bench (\d+)$")
_ACCOUNT_ID = re.compile(r"\b\d{15,}\b")


def text_limit() -> int:
    return int(template()["Parameters"]["TextRatePerSecond"]["Default"])


def workers() -> int:
    """The template's MaximumConcurrency for the sender's queue: how many instances Lambda may run."""
    events = function_property("SenderFunction", "Events")
    return int(events["Outbound"]["Properties"]["ScalingConfig"]["MaximumConcurrency"])


def token_of(account: str) -> str:
    return TOKEN_PREFIX + account


def customer(n: int) -> str:
    return f"9{n:015d}"


def aws_latency_ms() -> float:
    return float(os.environ.get(LATENCY_VARIABLE) or DEFAULT_LATENCY_MS)


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

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self._process.pid or 0)

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
                json={"recipient": {"id": customer(i)}, "message": {"text": "probe"}},
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


# ------------------------------------------------------------------ AWS: the stand-in, provisioned from the template


def provision_aws(stand_in: StandInProcess, accounts: list[str], customers: int) -> dict[str, str]:
    """The template's table, queues and secrets in the stand-in; the accounts registered (their items, their
    tokens in Secrets Manager) and each one's first ``customers`` conversations open (the customer wrote a minute
    ago). Returns what the sender's environment takes from the stack (its Refs) and the bench sets on top."""
    from igdm.store.conversation_state import ConversationStateItem
    from local.aws.template import provision
    from tools.accounts import register_account

    clients = stand_in.clients()
    stack = provision(clients, STACK_NAME, template=template())
    table, prefix = stack.refs["GatewayTable"], stack.resolve({"Fn::Sub": "${AWS::StackName}/accounts/"})
    now = time.time()
    for account in accounts:
        register_account(
            clients["dynamodb"],
            clients["secretsmanager"],
            table=table,
            secret_prefix=prefix,
            account_id=account,
            access_token=token_of(account),
            expires_at=int(now + 50 * DAY),
            refreshed_at=int(now - 10 * DAY),
        )
    wrote = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 60))
    states = [
        ConversationStateItem(account, customer(i), int((now - 60) * 1000), wrote, None, "text", wrote, int(now + DAY))
        for account in accounts
        for i in range(customers)
    ]
    for start in range(0, len(states), 25):  # BatchWriteItem's most
        pending = {table: [{"PutRequest": {"Item": s.to_item()}} for s in states[start : start + 25]]}
        for _ in range(10):
            pending = clients["dynamodb"].batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
            if not pending:
                break
        else:
            raise RuntimeError("the stand-in did not take the conversations' states")
    return {
        **stack.function_environment("SenderFunction"),
        "AWS_ENDPOINT_URL": stand_in.url,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"],
    }


def probe_aws(stand_in: StandInProcess, table: str) -> float:
    """The stand-in's round trip for a bare GetItem through botocore: the least an AWS request takes here."""
    dynamodb = stand_in.clients()["dynamodb"]
    times = []
    for i in range(PROBES):
        started = time.perf_counter()
        dynamodb.get_item(TableName=table, Key={"pk": {"S": f"bench-probe-{i}"}, "sk": {"S": "probe"}})
        times.append(time.perf_counter() - started)
    return median(times)


class Requests:
    """Every AWS request the senders make, counted at botocore's before-send (bench.aws_ledger, without item
    sizes: reading them would be counted as the senders' CPU), and among them the rate limiter's updates."""

    def __init__(self) -> None:
        self.ledger = Ledger(detailed=False)
        self.rate_updates = 0
        self._lock = threading.Lock()

    def watch(self, service: str, client: Any) -> None:
        self.ledger.count(client)
        if service == "dynamodb":
            client.meta.events.register("before-send.dynamodb.UpdateItem", self._update)

    def _update(self, request: Any, **_: Any) -> None:
        body = request.body or b""
        if (b'"RATE#' if isinstance(body, bytes) else '"RATE#') in body:  # the limiter's item (igdm.store.keys)
            with self._lock:
                self.rate_updates += 1

    def snapshot(self) -> tuple[Ledger, int]:
        with self._lock:
            return self.ledger.snapshot(), self.rate_updates


def instances(count: int, counts: Requests) -> list[Any]:
    """``count`` senders, each built by the sender's own wiring with clients of its own, as that many Lambda
    instances would be."""
    from igdm.runtime import aws
    from sender import wiring

    made = []
    for _ in range(count):
        wiring.reset()  # a new instance: new clients, settings read again
        sender = wiring.service()
        for service in ("dynamodb", "sqs", "secretsmanager"):
            counts.watch(service, aws.client(service))  # the clients service() just created
        made.append(sender)
    return made


def warm(senders: list[Any], first_customer: int, accounts: list[str]) -> None:
    """Each sender sends one message, all at once, to an account of its own (PROBE_ACCOUNT, whose rate is apart)
    and customers of their own: the instances are then as warm as after their first invocation (their account
    directory loaded, tokens read, connections open, botocore's operation models loaded), as they are in a
    sustained run, rather than all cold in its first second."""
    from local.samples import outbound as out

    def first_message(sender: Any, n: int) -> None:
        body = out.outbound(
            "text",
            key=f"bench-warm-{n}",
            account_id=PROBE_ACCOUNT,
            recipient={"id": customer(n)},
            message={"type": "text", "text": "warm"},
        )
        with contextlib.suppress(Exception):  # a slot further off than the sender waits: warm enough
            sender.process(json.dumps(body), sqs_message_id=f"sqs-warm-{n}", receive_count=1)
        for account_id in accounts:  # and each account's token read, as a sustained run has them
            sender.accounts.token(sender.accounts.resolve(account_id))

    threads = [
        threading.Thread(target=first_message, args=(sender, first_customer + i), daemon=True)
        for i, sender in enumerate(senders)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(RUN_TIME_LIMIT)


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
    cpu_ms_per_send: float  # the senders' process
    busiest_second: int  # the most sends of one account in any one-second window at the sandbox
    limiter_updates_per_send: float
    per_account: dict[str, float] = field(default_factory=dict)
    requests_per_send: dict[str, float] = field(default_factory=dict)  # AWS requests by "service.Operation"
    aws_cpu_ms_per_send: float = 0.0  # the stand-in's process (moto)
    sandbox_cpu_ms_per_send: float = 0.0
    wall: float = 0.0  # from the first sender's start to the last one's end
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds over the run, by process
    gc_longest_ms: float = 0.0  # the longest garbage collection in a sender process


def _jobs(run: str, accounts: list[str], messages: int) -> list[Job]:
    from local.samples import outbound as out

    conversations = conversations_needed(len(accounts), messages)
    jobs = []
    for i in range(messages):
        account = accounts[i % len(accounts)]
        nth = i // len(accounts)  # the nth message of this account
        recipient, sequence = customer(nth % conversations), nth // conversations
        body = out.outbound(
            "text",
            key=f"bench-{run}-{account}-{nth}",  # the records stay in the table from one run to the next
            account_id=account,
            recipient={"id": recipient},
            message={"type": "text", "text": f"bench {sequence}"},
        )
        jobs.append(Job(f"{account}:{recipient}", json.dumps(body)))
    return jobs


def conversations_needed(accounts: int, messages: int) -> int:
    return max(1, messages // (accounts * MESSAGES_PER_CONVERSATION))


# ------------------------------------------------------------------ the senders, in processes of their own


class GcPauses:
    """The longest garbage collection while it watches: it holds the GIL, so every instance of the process waits."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._started = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.longest = max(self.longest, time.perf_counter() - self._started)

    def stop(self) -> None:
        gc.callbacks.remove(self._callback)


def _play(senders: list[Any], counts: Requests, jobs: list[Job], begin: float) -> dict[str, Any]:
    """The senders take the jobs from a FIFO queue of this process's own from ``begin`` (epoch seconds), until it is
    empty or the time is up: what they did, and the CPU and AWS requests it took."""
    from igdm.runtime.fifo_consumer import Retry

    queue = FifoQueue(jobs)
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + RUN_TIME_LIMIT
    pauses = GcPauses()

    def instance(sender: Any) -> None:
        while (job := queue.take(deadline)) is not None:
            try:
                status = sender.process(job.body, sqs_message_id=f"sqs-{id(job)}", receive_count=job.receive_count)
            except Retry as retry:
                queue.retry(job, retry.delay)
                status = "retried: " + _ACCOUNT_ID.sub("<account>", retry.reason)
            except Exception as exc:  # as the handler would: the message comes back after a pause, and is counted
                queue.retry(job, UNEXPECTED_RETRY_SECONDS)
                status = f"raised {type(exc).__name__}"
            else:
                queue.done(job)
            with lock:
                outcomes[status] += 1

    threads = [
        threading.Thread(target=instance, args=(sender,), name=f"sender-{i}", daemon=True)
        for i, sender in enumerate(senders)
    ]
    ledger_before, updates_before = counts.snapshot()
    cpu_before = time.process_time()
    time.sleep(max(0.0, min(begin - time.time(), 5.0)))
    for thread in threads:
        thread.start()
    for thread in threads:  # a send under way at the deadline may finish within botocore's and Graph's timeouts
        thread.join(max(0.0, deadline + STRAGGLER_SECONDS - time.monotonic()))
    cpu = time.process_time() - cpu_before
    pauses.stop()
    ledger_after, updates_after = counts.snapshot()
    return {
        "gc_longest_ms": pauses.longest * 1000,
        "outcomes": dict(outcomes),
        "cpu": cpu,
        "requests": dict(ledger_after.since(ledger_before).requests),
        "rate_updates": updates_after - updates_before,
    }


def _sender_process(count: int, first_customer: int, accounts: list[str], commands: Any) -> None:
    """A process of ``count`` sender instances: built and warmed, then a run for each ("run", jobs) it is sent,
    until "stop". Its standard output, where the senders log, is counted rather than printed."""
    from bench.lambda_child import Instance

    Instance()
    os.nice(SENDER_NICENESS)
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    counts = Requests()
    senders = instances(count, counts)
    warm(senders, first_customer, accounts)
    # What the instances built (modules, clients, botocore's models) is kept out of the collector's passes: a full
    # collection of a process holding 25 instances' clients took 65 to 85 ms, and held back every sender in it by
    # more than the limiter's jitter allowance (40 ms); a Lambda instance's heap is a 25th of that, its pauses too.
    gc.collect()
    gc.freeze()
    commands.send("ready")
    while commands.poll(CHILD_TIME_LIMIT) and (command := commands.recv()) != "stop":
        _, jobs, begin = command
        commands.send(_play(senders, counts, [Job(*job) for job in jobs], begin))


class SenderProcesses:
    """The template's sender instances (MaximumConcurrency), shared out over a few processes of threads: a Lambda
    instance is a process of its own, and one process of 50 threads would hold all their CPU to one core (the
    GIL). Each process takes its own share of the conversations (message groups) from a FIFO queue of its own,
    which SQS FIFO allows: a group's messages go to one consumer at a time, in order, whichever it is."""

    def __init__(self, processes: int, instances_total: int, accounts: list[str]) -> None:
        context = multiprocessing.get_context("spawn")  # the environment the stand-in's stack set, inherited
        self._pipes: list[Any] = []
        self._processes: list[Any] = []
        shares = [instances_total // processes + (i < instances_total % processes) for i in range(processes)]
        try:
            for i, share in enumerate(shares):
                ours, theirs = context.Pipe()
                first_customer = sum(shares[:i])  # each instance's warm-up message to a customer of its own
                process = context.Process(
                    target=_sender_process, args=(share, first_customer, accounts, theirs), daemon=True
                )
                process.start()
                self._pipes.append(ours)
                self._processes.append(process)
            for pipe in self._pipes:
                if not pipe.poll(START_TIME_LIMIT) or pipe.recv() != "ready":
                    raise RuntimeError("a sender process did not start")
        except BaseException:
            self.stop()
            raise

    def run(self, jobs: list[Job]) -> list[dict[str, Any]]:
        """The jobs, each conversation's to one process, all processes at once; what each did."""
        shares: list[list[tuple[str, str]]] = [[] for _ in self._pipes]
        owner: dict[str, int] = {}
        for job in jobs:
            shares[owner.setdefault(job.group, len(owner) % len(shares))].append((job.group, job.body))
        begin = time.time() + 0.2  # a moment all processes wait for, so that they start together
        for pipe, share in zip(self._pipes, shares, strict=True):
            pipe.send(("run", share, begin))
        results = []
        for pipe in self._pipes:
            if not pipe.poll(RUN_TIME_LIMIT + STRAGGLER_SECONDS + 30):
                raise RuntimeError("a sender process did not finish its run")
            results.append(pipe.recv())
        return results

    def stop(self) -> None:
        for pipe in self._pipes:
            with contextlib.suppress(BrokenPipeError, OSError):
                pipe.send("stop")
        for process in self._processes:
            process.join(10)
            if process.is_alive():
                process.terminate()
                process.join(5)
            if process.is_alive():
                process.kill()
                process.join(5)


def throughput(
    sandbox: SandboxProcess,
    stand_in: StandInProcess,
    senders: SenderProcesses,
    run: str,
    accounts: list[str],
    messages: int,
) -> Run:
    sandbox.ask("reset")
    jobs = _jobs(run, accounts, messages)
    cpu_before = (stand_in.cpu_seconds(), sandbox.cpu_seconds())
    started = time.monotonic()
    results = senders.run(jobs)
    wall = time.monotonic() - started
    aws_cpu, sandbox_cpu = (
        b - a for a, b in zip(cpu_before, (stand_in.cpu_seconds(), sandbox.cpu_seconds()), strict=True)
    )
    outcomes: Counter[str] = Counter()
    by_operation: Counter[str] = Counter()
    for result in results:
        outcomes.update(result["outcomes"])
        by_operation.update(result["requests"])
    senders_cpu = sum(r["cpu"] for r in results)
    rate_updates = sum(r["rate_updates"] for r in results)
    stats = sandbox.ask("stats")
    summary = _summary(stats, messages, dict(outcomes), senders_cpu, rate_updates, accounts)
    sent = max(summary.sent, 1)
    summary.requests_per_send = {name: count / sent for name, count in sorted(by_operation.items())}
    summary.aws_cpu_ms_per_send = aws_cpu * 1000 / sent
    summary.sandbox_cpu_ms_per_send = sandbox_cpu * 1000 / sent
    summary.wall = wall
    summary.gc_longest_ms = max(r["gc_longest_ms"] for r in results)
    summary.cpu = {
        **{f"senders {i + 1}": r["cpu"] for i, r in enumerate(results)},
        "aws": aws_cpu,
        "sandbox": sandbox_cpu,
    }
    return summary


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
        busiest_second=max((busiest_second(t) for t in by_account.values()), default=0),
        limiter_updates_per_send=rate_updates / max(len(sent), 1),
        per_account=per_account,
    )


def measure(latency_ms: float | None = None) -> list[Figure]:
    """Figure 3; the stand-in's latency per AWS request is ``latency_ms``, else BENCH_AWS_LATENCY_MS, else 5 ms."""
    latency_ms = aws_latency_ms() if latency_ms is None else latency_ms
    environment = {
        **clean_environment(),
        # The template's values; the child replaces those that name the stack's resources once it has made them.
        **stand_in_stack(STACK_NAME).function_environment("SenderFunction"),
        "PYTHONPATH": lambda_path("SenderFunction"),
        # Until the child has started the stand-in, a request would fail here, on a closed loopback port.
        "AWS_ENDPOINT_URL": f"http://{LOOPBACK}:9",
    }
    processes = int(os.environ.get(PROCESSES_VARIABLE) or SENDER_PROCESSES)
    kind = os.environ.get(STAND_IN_VARIABLE) or "dynamo"
    if kind not in STAND_INS:
        raise ValueError(f"{STAND_IN_VARIABLE} is one of {', '.join(STAND_INS)}, not {kind!r}")
    result = run_child("bench.sender", [str(latency_ms), str(processes), kind], environment, CHILD_TIME_LIMIT)
    return _figures(
        text_limit(),
        result["latency"],
        result["aws_latency"],
        latency_ms,
        result["processes"],
        result["stand_in"],
        Run(**result["single"]),
        Run(**result["several"]),
    )


def child(latency_ms: str, processes: str, stand_in_kind: str, result_path: str) -> None:
    from bench.lambda_child import Instance

    Instance()  # the sender's logs go to a counting sink, not to the bench's output
    limit = text_limit()
    one = ["17841400000000000"]  # not one of the ten: a run leaves its accounts' rate items behind
    ten = [f"178414000000000{i:02d}" for i in range(1, 11)]
    customers = max(
        conversations_needed(1, ONE_ACCOUNT_MESSAGES), conversations_needed(10, TEN_ACCOUNT_MESSAGES), workers()
    )
    with contextlib.ExitStack() as running:  # everything started is stopped, whatever happens
        sandbox = SandboxProcess([*one, *ten, PROBE_ACCOUNT], limit)
        running.callback(sandbox.stop)
        stand_in = running.enter_context(STAND_INS[stand_in_kind](float(latency_ms), time_limit=CHILD_TIME_LIMIT))
        os.environ.update(provision_aws(stand_in, [*one, *ten, PROBE_ACCOUNT], customers))  # senders inherit it
        os.environ.update({"GRAPH_API_BASE_URL": sandbox.base_url, "LOCAL_STACK": "true"})
        latency = probe_latency(sandbox)
        aws_latency = probe_aws(stand_in, os.environ["TABLE_NAME"])
        senders = SenderProcesses(int(processes), workers(), [*one, *ten])
        running.callback(senders.stop)
        single = throughput(sandbox, stand_in, senders, "one", one, ONE_ACCOUNT_MESSAGES)
        several = throughput(sandbox, stand_in, senders, "ten", ten, TEN_ACCOUNT_MESSAGES)
    document = {
        "latency": latency,
        "aws_latency": aws_latency,
        "processes": int(processes),
        "stand_in": stand_in_kind,
        "single": asdict(single),
        "several": asdict(several),
    }
    write_result(result_path, document)


def _figures(
    limit: int,
    latency: float,
    aws_latency: float,
    latency_ms: float,
    processes: int,
    stand_in: str,
    single: Run,
    several: Run,
) -> list[Figure]:
    n = workers()
    cores = os.cpu_count() or 1
    aws_per_send = sum(several.requests_per_send.values())
    waits = n / (latency + aws_per_send * aws_latency)
    cpu_per_send = (several.cpu_ms_per_send + several.aws_cpu_ms_per_send + several.sandbox_cpu_ms_per_send) / 1000
    machine = cores / cpu_per_send if cpu_per_send > 0 else float("inf")
    ceiling = min(limit * 10, waits, machine)

    def clean(run: Run) -> bool:
        """No throttling answer, every message sent once, every conversation in order."""
        return run.throttled == 0 and run.out_of_order == 0 and run.duplicates == 0 and run.sent == run.messages

    def details(run: Run) -> list[str]:
        requests = ", ".join(f"{count:.2f} {name}" for name, count in run.requests_per_send.items())
        wall = max(run.wall, 1e-9)
        senders = sum(v for k, v in run.cpu.items() if k.startswith("senders"))
        aws, sandbox = run.cpu.get("aws", 0.0) / wall, run.cpu.get("sandbox", 0.0) / wall
        return [
            f"{run.sent} of {run.messages} sent in {run.span:.1f} s; outcomes {dict(sorted(run.outcomes.items()))}",
            f"per send: {run.cpu_ms_per_send:.2f} ms of sender CPU, {run.limiter_updates_per_send:.2f} rate-limit "
            f"updates, AWS requests {requests} ({sum(run.requests_per_send.values()):.2f}); the AWS stand-in "
            f"spent {run.aws_cpu_ms_per_send:.2f} ms of CPU and the Graph sandbox {run.sandbox_cpu_ms_per_send:.2f}",
            f"CPU over the run, in cores of this machine's {cores}: senders {senders / wall:.2f} ("
            + ", ".join(f"{v / wall:.2f}" for k, v in run.cpu.items() if k.startswith("senders"))
            + f"), AWS stand-in {aws:.2f}, Graph sandbox {sandbox:.2f}"
            f"; longest garbage collection in a sender process {run.gc_longest_ms:.0f} ms; busiest second of one "
            f"account at the sandbox: {run.busiest_second} sends",
        ]

    setup = (
        f"The real sender, built by its own wiring (`sender.wiring.service()`: `Sender.process` with its GCRA rate "
        f"limiter, records, account directory, conversation state, status publisher and Graph client), {n} times, "
        "one per Lambda instance the template allows (the outbound queue's MaximumConcurrency), each with boto3 "
        f"clients of its own, as threads of {processes} processes (one process of {n} threads would hold them all "
        "to one core), sends text messages to the Graph sandbox, which allows "
        f"{limit} calls per second per account (a sliding second, as Meta) and answers each after "
        f"{LATENCY_SECONDS * 1000:.0f} ms. Every AWS request goes through botocore and urllib3 over HTTP on "
        f"127.0.0.1 to {STAND_IN_WORDS[stand_in]} that keeps DynamoDB's semantics for what the sender asks "
        "(conditional writes, returned items, transactions cancelled whole, one request at a time) and answers each "
        f"after {latency_ms:g} ms (BENCH_AWS_LATENCY_MS), with the table, queues and secrets template.yaml declares; "
        "the sandbox and the stand-in run in processes of their own, which the senders yield the CPU to (in reality "
        "they are other machines). Only the "
        "outbound queue is a model in memory, in each sender process for its share of the conversations: it "
        "keeps SQS FIFO's rule (one message in flight per conversation, a retried message holding its "
        f"conversation), {MESSAGES_PER_CONVERSATION} messages per conversation; its receive and delete are the "
        "event source mapping's requests, not the sender's. Each instance sends one message to another account "
        "before the runs, warm as in a sustained run; what they built by then is kept out of the garbage "
        "collector's passes (gc.freeze), so that a collection, which stops every instance of a process, is as "
        f"short as one instance's; a process's threads take turns on its GIL every {SWITCH_INTERVAL_SECONDS * 1000:g} "
        "ms rather than 5. Rate: sends the sandbox accepted, first to last."
    )
    return [
        Figure(
            "sender_one",
            "Sender, 1 account: sends per second",
            single.rate,
            float(limit),
            "/s",
            f">= {TARGET_PER_SECOND:g}/s, 0 throttled, order kept",
            single.rate >= TARGET_PER_SECOND and clean(single),
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
            None if clean(several) else False,
            method=(
                f"As above, {several.messages} messages spread over 10 accounts at once. The floor column holds "
                f"the most this setup allows, the least of: 10 times Meta's limit ({limit * 10}/s); {n} instances "
                f"each waiting per send for the sandbox's round trip ({latency * 1000:.0f} ms, median of {PROBES} "
                f"bare calls) and for {aws_per_send:.2f} AWS round trips ({aws_latency * 1000:.1f} ms each, median "
                f"of {PROBES} bare GetItems), {waits:.0f}/s; and this machine's {cores} cores divided by the CPU a "
                f"send takes in all the processes (senders, stand-in, sandbox: {cpu_per_send * 1000:.1f} ms), "
                f"{machine:.0f}/s. No target; throttling and order are still checked."
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
    child(*sys.argv[1:])
