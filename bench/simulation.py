"""The simulation over many accounts (docs/scaling.md): where the sender bends as the number of active
accounts grows from 1 to 1,000.

What is real: the sender (`sender.service.Sender.process`), its GCRA rate limiter
(`igdm.store.rate_limits.RateLimiter`), its account directory (`igdm.store.account_directory.AccountDirectory`,
with Powertools' secret cache), its conversation view (`ConversationState`) and its status publisher
(`StatusPublisher`). What is simulated, in this process:

- Meta: a Send API with Meta's rule (100 text calls per account in any sliding second, refused calls not
  counted, as the Graph sandbox counts them) that answers GRAPH_LATENCY (give or take ANSWER_JITTER) after a
  call leaves, the call reaching Meta up to TRANSIT_JITTER after it left.
- AWS: DynamoDB, SQS and Secrets Manager answer from memory (bench.sender_standins' rate table and outbound
  records, and bench.simulation_aws), each request taking AWS_ROUND_TRIP (the cost model's).
- Lambda and SQS FIFO: one thread per instance the outbound queue's event source allows (MaximumConcurrency,
  read from template.yaml), taking one message at a time from a queue that keeps FIFO's rule (one message in
  flight per conversation; a message handed back holds its conversation until its delay ends).
- Time: virtual (bench.virtual_time). Exactly one thread runs at a time; the clock moves only when every
  thread waits (for Meta, for AWS, for a rate slot, for a message). So 2 CPU cores simulate 1,000 instances,
  and a machine under load gives the same curve. The price: the sender's own CPU takes no simulated time
  (it is reported as measured, per send), and nothing here contends for a network or a core. The caches of
  the account directory (a minute) and of Powertools (SecretMaxAgeSeconds) keep real time; a run lasts less
  than either, so each instance lists the accounts once and reads each token it needs once: the cold start
  of every cache, the most reads the caches allow.
- Limits are counted, not enforced, except Meta's: a DynamoDB item written more than 1,000 times in a second
  is reported, not throttled.

The runs: a campaign (every account's messages queued at once: the most the stack sends) and conversational
traffic (each account offering OFFERED_PER_ACCOUNT messages a second: the latency a message sees), each over
1 to 1,000 accounts with the template's MaximumConcurrency; then, with MaximumConcurrency raised to its
CloudFormation maximum (RAISED_CONCURRENCY), the conversational traffic of 1,000 accounts and one account's
campaign to 1,000 customers, to show which limits come next.

Bounded: fixed message counts, a simulated-time limit and a wall-clock limit on every run, every wait of a
thread with a wall-clock limit; nothing leaves the process (no socket is opened).

    python -m bench simulation          the stage, as `make bench` runs it (in a child process)
    python -m bench.simulation out.json  the child itself
"""

import functools
import itertools
import json
import random
import sys
import threading
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.common import (
    LOOPBACK,
    Figure,
    busiest_second,
    clean_environment,
    function_property,
    lambda_path,
    percentile,
    run_child,
    stand_in_stack,
    template,
    write_result,
)
from bench.cost import AWS_ROUND_TRIP_MS
from bench.graph import LATENCY_SECONDS, LIMIT_PER_SECOND
from bench.virtual_time import VirtualTime

ACCOUNT_LEVELS = (1, 10, 100, 1000)
CAMPAIGN_MESSAGES = 2000  # per level, spread over its accounts
OFFERED_PER_ACCOUNT = 1.0  # messages a second per account: a busy conversational account
OFFERED_SECONDS = 5.0  # how long each account offers them
MESSAGES_PER_CONVERSATION = 10  # so that order within a conversation is put to the test
# CloudFormation's largest MaximumConcurrency for an SQS event source (ScalingConfig), and Lambda's default
# regional quota: the what-if run, to see which limit the gateway meets once the template's is raised.
RAISED_CONCURRENCY = 1000
# The what-if's one busy account: a campaign to many customers at once, as many conversations as instances.
ONE_ACCOUNT_MESSAGES = 3000
ONE_ACCOUNT_CONVERSATIONS = 1000
GRAPH_LATENCY = LATENCY_SECONDS  # the sender bench's Meta latency, so the two stages agree
TRANSIT_JITTER = 0.030  # a call reaches Meta 0 to 30 ms after it left: calls may arrive closer than they left
ANSWER_JITTER = 0.040  # Meta answers 110 to 190 ms after the call left, 150 on average
AWS_ROUND_TRIP = AWS_ROUND_TRIP_MS / 1000
VIRTUAL_TIME_LIMIT = 600.0  # simulated seconds a run may last
RUN_WALL_LIMIT = 60.0  # real seconds a run may last: a bound, far above what a run takes on an idle machine
CHILD_TIME_LIMIT = 300.0
# Meta's and AWS's limits the figures are set against (docs/scaling.md, "The limits", with their sources).
DYNAMODB_PARTITION_WRITE_UNITS = 1000
DYNAMODB_PARTITION_READ_UNITS = 3000
SQS_PARTITION_TPS = 300  # per action, per partition of a high-throughput FIFO queue
SECRETS_READS_PER_SECOND = 10_000  # GetSecretValue + DescribeSecret, per Region, not adjustable
ACCOUNT_ITEM_KB = 0.8  # an ACCOUNTS item as the stack writes it (docs/scaling.md); the stand-in's are smaller
ACCOUNTS_CACHE_SECONDS = 60  # AccountDirectory's default: each instance lists the accounts once a minute
SEED = 18  # the jitter's: the same run twice gives the same figures


def workers() -> int:
    """The template's MaximumConcurrency for the sender's queue: how many instances Lambda may run."""
    events = function_property("SenderFunction", "Events")
    return int(events["Outbound"]["Properties"]["ScalingConfig"]["MaximumConcurrency"])


def text_limit() -> int:
    return int(template()["Parameters"]["TextRatePerSecond"]["Default"])


def token_of(account: str) -> str:
    return f"sim-token-{account}"


def account_ids(count: int) -> list[str]:
    return [f"178414{i:011d}" for i in range(1, count + 1)]


# ------------------------------------------------------------------ Meta


@dataclass(frozen=True)
class Accepted:
    account: str
    recipient: str
    sequence: int
    at: float  # when the call reached Meta


class SimulatedGraph:
    """The Send API as the sender's Graph port sees it, with Meta's per-account sliding second."""

    def __init__(self, clock: VirtualTime, limit: int, tokens: dict[str, str]) -> None:
        self._time = clock
        self._limit = limit
        self._accounts = tokens  # token -> account: Meta knows the account by its token
        self._windows: dict[str, deque[float]] = {}
        self._random = random.Random(SEED)  # noqa: S311 - jitter, not a secret
        self.accepted: list[Accepted] = []
        self.throttled = 0
        self._ids = itertools.count(1)

    def send(self, token: str, body: dict[str, Any], endpoint: str = "messages") -> Any:
        from local.meta.answers import RATE_LIMIT_MESSAGE
        from local.meta.graph_sandbox import RATE_WINDOW_SECONDS
        from sender.errors import MetaError
        from sender.graph import Accepted as Sent
        from sender.graph import Refused

        transit = self._random.uniform(0.0, TRANSIT_JITTER)
        # Meta's answers vary: without it every instance would take exactly as long per message, and the
        # instances would take the queue's messages in lock step (each serving the same few accounts).
        answer = GRAPH_LATENCY + self._random.uniform(-ANSWER_JITTER, ANSWER_JITTER)
        self._time.sleep(transit)
        account, now = self._accounts[token], self._time.now
        window = self._windows.setdefault(account, deque())
        while window and window[0] <= now - RATE_WINDOW_SECONDS:
            window.popleft()
        refused = len(window) >= self._limit
        if refused:  # what the sandbox answers (local.meta.graph_sandbox), and it does not count the call
            self.throttled += 1
        else:
            window.append(now)
            text = str(body.get("message", {}).get("text", ""))
            sequence = int(text.rpartition(" ")[2]) if text.startswith("sim ") else -1
            self.accepted.append(Accepted(account, str(body["recipient"]["id"]), sequence, now))
        self._time.sleep(answer - transit)
        if refused:
            error = MetaError(400, 80002, None, "OAuthException", RATE_LIMIT_MESSAGE, None, True)
            return Refused(error, None)
        return Sent(f"m_sim{next(self._ids)}", str(body["recipient"]["id"]), None)


# ------------------------------------------------------------------ SQS FIFO and the Lambda instances


@dataclass
class Job:
    group: str
    body: str
    key: str
    account: str
    enqueued_at: float
    receive_count: int = 1
    taken_at: float | None = None
    done_at: float | None = None


class FifoQueue:
    """The outbound queue as the event source sees it: one message in flight per group, in order; a
    message handed back holds its group until its delay ends; an idle instance is woken by a ready group."""

    def __init__(self, clock: VirtualTime) -> None:
        self._time = clock
        self._groups: dict[str, deque[Job]] = {}
        self._ready: deque[str] = deque()
        self._idle: list[threading.Event] = []
        self.remaining = 0
        self.retries = 0

    def arrive(self, job: Job) -> None:
        """A producer's SendMessage (run by the clock, at the job's enqueue time)."""
        self.remaining += 1
        group = self._groups.get(job.group)
        if group is None:
            self._groups[job.group] = deque([job])
            self._make_ready(job.group)
        else:
            group.append(job)  # behind the one in flight, or in the ready line already

    def take(self) -> Job:
        while not self._ready:
            self._idle.append(self._time.baton())
            self._time.park()
        job = self._groups[self._ready.popleft()][0]
        if job.taken_at is None:
            job.taken_at = self._time.now
        return job

    def done(self, job: Job) -> None:
        group = self._groups[job.group]
        group.popleft()
        self.remaining -= 1
        job.done_at = self._time.now
        if group:
            self._make_ready(job.group)
        else:
            del self._groups[job.group]

    def retry(self, job: Job, delay: float) -> None:
        self.retries += 1
        job.receive_count += 1
        self._time.call_at(self._time.now + max(delay, 0.0), lambda: self._make_ready(job.group))

    def _make_ready(self, group: str) -> None:
        self._ready.append(group)
        if self._idle:
            # The instance idle the shortest time: Lambda keeps the instances it needs warm and lets the
            # others go, so a light load is served by few instances (few caches to fill), not all of them.
            self._time.wake(self._idle.pop())


# ------------------------------------------------------------------ one run


@dataclass
class Run:
    label: str
    accounts: int
    instances: int
    workload: str  # "campaign" or "conversations"
    messages: int
    offered_per_second: float  # 0 for a campaign
    sent: int
    complete: bool
    span: float  # simulated seconds, first message queued to last one done
    sends_per_second: float  # accepted by Meta, over the run
    per_account_per_second: float  # the mean of the accounts' rates
    latency_p50: float  # queued to done (its SENT status on the events queue), simulated seconds
    latency_p99: float
    service_p50: float  # taken by an instance to done: what an instance spends on a message
    throttled: int
    out_of_order: int
    duplicates: int
    retries: int
    outcomes: dict[str, int]
    peak_instances: int
    used_instances: int
    requests_per_send: dict[str, float]
    rate_updates_per_send: float
    hottest_rate_item_writes: int  # the busiest rate item's writes in its busiest simulated second
    hottest_rate_item_mean: float  # the busiest rate item's writes a second over the whole run
    hottest_index_writes: int  # the busiest account's outbound-record writes (its AccountCustomer partition)
    busiest_account_second: int  # the most of one account's calls that reached Meta within one second
    events_queue_batches_per_second: float
    secret_reads_per_send: float
    secret_reads_peak_second: int
    account_listings: int
    account_items_read: int
    cpu_ms_per_send: float
    wall_seconds: float
    errors: list[str] = field(default_factory=list)  # exceptions that ended an instance (a harness bug)


def _jobs(accounts: list[str], workload: str, messages: int, start: float, per_conversation: int) -> list[Job]:
    from local.samples import outbound as out

    per_account = messages // len(accounts)
    conversations = max(1, per_account // per_conversation)
    jobs = []
    for index, account in enumerate(accounts):
        # Conversational traffic: each account's messages a second apart, the accounts staggered over it.
        offset = index / len(accounts) / OFFERED_PER_ACCOUNT
        for nth in range(per_account):
            customer, sequence = f"9{nth % conversations:015d}", nth // conversations
            key = f"sim-{account}-{nth}"
            body = out.outbound(
                "text",
                key=key,
                account_id=account,
                recipient={"id": customer},
                message={"type": "text", "text": f"sim {sequence}"},
            )
            at = start if workload == "campaign" else start + offset + nth / OFFERED_PER_ACCOUNT
            jobs.append(Job(f"{account}:{customer}", json.dumps(body), key, account, at))
    jobs.sort(key=lambda j: j.enqueued_at)
    return jobs


def simulate(
    label: str,
    accounts: int,
    instances: int,
    workload: str,
    messages: int,
    per_conversation: int = MESSAGES_PER_CONVERSATION,
) -> Run:
    """Run ``messages`` through ``instances`` senders over ``accounts`` accounts; every limit on."""
    from bench.sender_standins import MemoryRecords, NoMetrics, RateTable
    from bench.simulation_aws import SimulatedAws
    from igdm.queues.status_publisher import StatusPublisher
    from igdm.runtime.fifo_consumer import Retry
    from igdm.store.account_directory import AccountDirectory
    from igdm.store.conversation_state import ConversationState
    from igdm.store.rate_limits import RateLimiter, intervals
    from sender.service import Sender
    from sender.settings import SenderSettings

    wall_started = time.monotonic()
    ids = account_ids(accounts)
    clock = VirtualTime(start=time.time(), wall_limit=RUN_WALL_LIMIT)
    graph = SimulatedGraph(clock, LIMIT_PER_SECOND, {token_of(a): a for a in ids})  # Meta's, not the template's
    aws = SimulatedAws(clock, AWS_ROUND_TRIP, ids, RateTable(), token_of=token_of, account_item_kb=ACCOUNT_ITEM_KB)
    records = aws.records(MemoryRecords())
    queue = FifoQueue(clock)
    defaults = SenderSettings.model_fields
    limits = intervals(
        float(text_limit()),
        defaults["media_rate_per_second"].default,
        defaults["private_replies_per_hour"].default,
        defaults["rate_headroom"].default,
    )
    jobs = _jobs(ids, workload, messages, clock.now, per_conversation)
    for job in jobs:
        clock.call_at(job.enqueued_at, functools.partial(queue.arrive, job))
    outcomes: Counter[str] = Counter()
    busy = [0, 0]  # instances between taking a message and ending it; the peak of that
    used: set[int] = set()  # the instances that took at least one message

    def instance() -> None:
        me = threading.get_ident()
        sender = Sender(
            records=records,
            accounts=AccountDirectory(
                aws, "sim", aws, secret_max_age_seconds=defaults["secret_max_age_seconds"].default
            ),
            graph=graph,
            limiter=RateLimiter(aws, "sim", limits, clock=clock.clock),
            statuses=StatusPublisher(aws, "sim-events.fifo", None),
            conversations=ConversationState(aws, "sim", defaults["event_retention_days"].default),
            metrics=NoMetrics(),
            max_receive_count=defaults["max_receive_count"].default,
            clock=clock.clock,
            sleep=clock.sleep,
        )
        while True:
            job = queue.take()
            used.add(me)
            busy[0] += 1
            busy[1] = max(busy[1], busy[0])
            try:
                status = sender.process(job.body, sqs_message_id=f"sqs-{job.key}", receive_count=job.receive_count)
            except Retry as retry:  # the handler changes the message's visibility: back after the delay
                queue.retry(job, retry.delay)
                status = "retried"
            except Exception as exc:  # as the handler would: back after a pause, and counted
                queue.retry(job, 1.0)
                status = f"raised {type(exc).__name__}"
            else:
                queue.done(job)
            busy[0] -= 1
            outcomes[status] += 1

    cpu_started = time.process_time()
    clock.start_threads(instance, instances)
    try:
        clock.run(until=clock.now + VIRTUAL_TIME_LIMIT)
    finally:
        clock.stop()
    cpu = time.process_time() - cpu_started
    summary = _summary(jobs, graph, aws, queue, cpu, accounts, workload)
    return Run(
        label=label,
        accounts=accounts,
        instances=instances,
        workload=workload,
        outcomes=dict(outcomes),
        peak_instances=busy[1],
        used_instances=len(used),
        wall_seconds=time.monotonic() - wall_started,
        errors=clock.errors + (["the run hit its time limit"] if clock.timed_out else []),
        **summary,
    )


def _summary(
    jobs: list[Job], graph: SimulatedGraph, aws: Any, queue: FifoQueue, cpu: float, accounts: int, workload: str
) -> dict[str, Any]:
    sent = graph.accepted
    done = [j for j in jobs if j.done_at is not None]
    start = min(j.enqueued_at for j in jobs)
    end = max((j.done_at for j in done if j.done_at is not None), default=start)
    span = end - start
    by_conversation: dict[tuple[str, str], list[int]] = {}
    by_account: dict[str, list[float]] = {}
    for call in sent:  # in the order Meta accepted them
        by_conversation.setdefault((call.account, call.recipient), []).append(call.sequence)
        by_account.setdefault(call.account, []).append(call.at)
    out_of_order = sum(1 for seqs in by_conversation.values() for a, b in itertools.pairwise(seqs) if b <= a)
    duplicates = sum(len(seqs) - len(set(seqs)) for seqs in by_conversation.values())
    latencies = [j.done_at - j.enqueued_at for j in done if j.done_at is not None]
    service = [j.done_at - j.taken_at for j in done if j.done_at is not None and j.taken_at is not None]
    n = max(len(sent), 1)
    requests: Counter[str] = aws.requests
    offered = accounts * OFFERED_PER_ACCOUNT if workload == "conversations" else 0.0
    rate_writes = [at for kind, _, at in aws.writes if kind == "rate"]
    return {
        "messages": len(jobs),
        "offered_per_second": offered,
        "sent": len(sent),
        "complete": len(done) == len(jobs),
        "span": span,
        "sends_per_second": len(sent) / span if span > 0 else 0.0,
        "per_account_per_second": len(sent) / span / accounts if span > 0 else 0.0,
        "latency_p50": percentile(latencies, 50) if latencies else 0.0,
        "latency_p99": percentile(latencies, 99) if latencies else 0.0,
        "service_p50": percentile(service, 50) if service else 0.0,
        "throttled": graph.throttled,
        "out_of_order": out_of_order,
        "duplicates": duplicates,
        "retries": queue.retries,
        "requests_per_send": {k: v / n for k, v in sorted(requests.items())},
        "rate_updates_per_send": len(rate_writes) / n,
        "hottest_rate_item_writes": _busiest_second_by_key(aws.writes, "rate"),
        "hottest_rate_item_mean": max(Counter(p for k, p, _ in aws.writes if k == "rate").values(), default=0) / span
        if span > 0
        else 0.0,
        "hottest_index_writes": _busiest_second_by_key(aws.writes, "record"),
        "busiest_account_second": max((busiest_second(t) for t in by_account.values()), default=0),
        "events_queue_batches_per_second": requests["sqs.SendMessageBatch"] / span if span > 0 else 0.0,
        "secret_reads_per_send": requests["secretsmanager.GetSecretValue"] / n,
        "secret_reads_peak_second": busiest_second([at for at in aws.secret_reads]),
        "account_listings": aws.listings,
        "account_items_read": aws.account_items_read,
        "cpu_ms_per_send": cpu * 1000 / n,
    }


def _busiest_second_by_key(writes: list[tuple[str, str, float]], kind: str) -> int:
    by_key: dict[str, list[float]] = {}
    for what, partition, at in writes:
        if what == kind:
            by_key.setdefault(partition, []).append(at)
    return max((busiest_second(t) for t in by_key.values()), default=0)


# ------------------------------------------------------------------ the stage

CONVERSATION_LEVELS = (1, 10, 100, 200, 300, 1000)  # 200 and 300: either side of where it bends


def child(result_path: str) -> None:
    from bench.lambda_child import Instance

    Instance()  # the sender's logs go to a counting sink, not to the bench's output
    n = workers()
    campaigns = [simulate(f"campaign {a}", a, n, "campaign", CAMPAIGN_MESSAGES) for a in ACCOUNT_LEVELS]
    conversations = [
        simulate(f"conversations {a}", a, n, "conversations", int(a * OFFERED_PER_ACCOUNT * OFFERED_SECONDS))
        for a in CONVERSATION_LEVELS
    ]
    top = CONVERSATION_LEVELS[-1]
    offered = int(top * OFFERED_PER_ACCOUNT * OFFERED_SECONDS)
    raised = [
        simulate(
            f"conversations {top}, {RAISED_CONCURRENCY} instances", top, RAISED_CONCURRENCY, "conversations", offered
        ),
        simulate(
            f"campaign 1 to {ONE_ACCOUNT_CONVERSATIONS} conversations, {RAISED_CONCURRENCY} instances",
            1,
            RAISED_CONCURRENCY,
            "campaign",
            ONE_ACCOUNT_MESSAGES,
            ONE_ACCOUNT_MESSAGES // ONE_ACCOUNT_CONVERSATIONS,
        ),
    ]
    write_result(
        result_path,
        {
            "campaigns": [asdict(r) for r in campaigns],
            "conversations": [asdict(r) for r in conversations],
            "raised": [asdict(r) for r in raised],
        },
    )


def measure() -> list[Figure]:
    environment = {
        **clean_environment(),
        **stand_in_stack().function_environment("SenderFunction"),
        "PYTHONPATH": lambda_path("SenderFunction"),
        # The simulation makes no AWS request; were one made, it would fail here, on a closed loopback port.
        "AWS_ENDPOINT_URL": f"http://{LOOPBACK}:9",
    }
    result = run_child("bench.simulation", [], environment, CHILD_TIME_LIMIT)
    campaigns = [Run(**r) for r in result["campaigns"]]
    conversations = [Run(**r) for r in result["conversations"]]
    return figures(campaigns, conversations, [Run(**r) for r in result["raised"]])


def sound(run: Run) -> bool:
    """Everything sent, once, in order, never throttled, no instance ended by an error."""
    return (
        run.complete
        and run.sent == run.messages
        and run.throttled == 0
        and run.out_of_order == 0
        and run.duplicates == 0
        and not run.errors
    )


def ceiling(accounts: int, instances: int) -> float:
    """The most any sender could do here: Meta's limit for every account, or every instance waiting only for
    Meta's answer."""
    return min(accounts * LIMIT_PER_SECOND, instances / GRAPH_LATENCY)


def describe(run: Run) -> list[str]:
    """The run's facts, one line each, for the table's details and docs/scaling.md."""
    per_send = ", ".join(f"{v:.2f} {k}" for k, v in run.requests_per_send.items())
    round_trips = sum(run.requests_per_send.values())
    listing_units = run.account_items_read / max(run.account_listings, 1) * ACCOUNT_ITEM_KB / 4
    steady_reads = run.used_instances / ACCOUNTS_CACHE_SECONDS * listing_units
    offered = f", offered {run.offered_per_second:g}/s" if run.offered_per_second else ""
    return [
        f"{run.label}: {run.sent} of {run.messages} sent in {run.span:.1f} simulated s ({run.wall_seconds:.1f} s real)"
        f"{offered}: {run.sends_per_second:.0f}/s, {run.per_account_per_second:.2f}/s per account; queued to "
        f"done p50 {run.latency_p50 * 1000:.0f} ms, p99 {run.latency_p99 * 1000:.0f} ms; an instance per message "
        f"p50 {run.service_p50 * 1000:.0f} ms; {run.peak_instances} of {run.instances} instances busy at most, "
        f"{run.used_instances} used",
        f"{run.label}: throttling answers {run.throttled}, out of order {run.out_of_order}, sent twice "
        f"{run.duplicates}, handed back {run.retries}; busiest account at Meta {run.busiest_account_second} calls "
        f"in one second; outcomes {dict(sorted(run.outcomes.items()))}"
        + (f"; ERRORS {run.errors}" if run.errors else ""),
        f"{run.label}: AWS requests per send {round_trips:.2f} ({per_send}); rate-limit updates "
        f"{run.rate_updates_per_send:.2f} per send, the busiest rate item {run.hottest_rate_item_writes} writes "
        f"in its busiest second, {run.hottest_rate_item_mean:.0f}/s over the run (a partition takes "
        f"{DYNAMODB_PARTITION_WRITE_UNITS}); the busiest account's record "
        f"writes {run.hottest_index_writes} in one second",
        f"{run.label}: events queue {run.events_queue_batches_per_second:.0f} SendMessageBatch/s (a FIFO partition "
        f"takes {SQS_PARTITION_TPS}); GetSecretValue {run.secret_reads_per_send:.2f} per send, at most "
        f"{run.secret_reads_peak_second} in one second (the Region takes {SECRETS_READS_PER_SECOND}); "
        f"{run.account_listings} ACCOUNTS listings of {run.account_items_read // max(run.account_listings, 1)} "
        f"items, about {listing_units:.0f} read units each: once a minute per instance, about {steady_reads:.0f} "
        f"read units/s (a partition takes {DYNAMODB_PARTITION_READ_UNITS}); {run.cpu_ms_per_send:.2f} ms of "
        "this process's CPU per send",
    ]


def figures(campaigns: list[Run], conversations: list[Run], raised: list[Run]) -> list[Figure]:
    n = campaigns[0].instances
    setup = (
        f"A simulation in simulated time (bench.simulation): the real sender, rate limiter, account directory, "
        f"conversation view and status publisher in {n} threads (the outbound queue's MaximumConcurrency in "
        f"template.yaml), a FIFO queue with SQS FIFO's rule, Meta's {LIMIT_PER_SECOND} calls per second per account "
        f"(a sliding second) answering after {GRAPH_LATENCY * 1000:.0f} ms on average, and every AWS request "
        f"taking {AWS_ROUND_TRIP * 1000:.0f} ms. The sender's own CPU takes no simulated time. docs/scaling.md "
        "has the method and what it shows."
    )

    def plural(accounts: int) -> str:
        return f"{accounts} account{'s' if accounts > 1 else ''}"

    out = [
        Figure(
            f"simulation_campaign_{run.accounts}",
            f"Simulation, {plural(run.accounts)}, campaign: sends per second",
            run.sends_per_second,
            ceiling(run.accounts, run.instances),
            "/s",
            "-",
            None if sound(run) else False,
            method=(
                f"{setup} Campaign: {run.messages} messages queued at once over the accounts. Floor: the most any "
                "sender could do, Meta's limit for every account or every instance waiting only for Meta."
            )
            if run is campaigns[0]
            else "",
            details=describe(run),
        )
        for run in campaigns
    ]
    wide, one = raised
    out += [
        Figure(
            f"simulation_conversations_{run.accounts}" + (f"_{run.instances}" if run is wide else ""),
            f"Simulation, {plural(run.accounts)} at {OFFERED_PER_ACCOUNT:g}/s each"
            + (f", {run.instances} instances" if run is wide else "")
            + ": p99 queued to sent",
            run.latency_p99 * 1000,
            GRAPH_LATENCY * 1000,
            "ms",
            "-",
            None if sound(run) else False,
            method=(
                f"Conversational traffic: each account offers {OFFERED_PER_ACCOUNT:g} message a second for "
                f"{OFFERED_SECONDS:g} s; p99 of the time from a message queued to its SENT status published. "
                f"Floor: Meta's answer alone. The last run raises MaximumConcurrency to {RAISED_CONCURRENCY}."
            )
            if run is conversations[0]
            else "",
            details=describe(run),
        )
        for run in [*conversations, wide]
    ]
    out += [
        Figure(
            f"simulation_rate_item_{run.instances}",
            f"Simulation, 1 account's campaign, {run.instances} instances: busiest rate item writes/s",
            float(run.hottest_rate_item_writes),
            float(LIMIT_PER_SECOND),
            "/s",
            "-",
            None if sound(run) else False,
            method=(
                "The busiest second of one account's rate item (RATE#<account>#text), in writes, against the "
                f"least: one per call at Meta's limit. A DynamoDB partition takes {DYNAMODB_PARTITION_WRITE_UNITS} "
                "writes a second; the simulation counts them and does not throttle."
            )
            if run is campaigns[0]
            else "",
            details=describe(run) if run is one else [],
        )
        for run in (campaigns[0], one)
    ]
    return out


if __name__ == "__main__":
    child(sys.argv[1])
