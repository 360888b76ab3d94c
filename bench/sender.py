"""`make bench`: the sender's figures, each against a floor or a limit measured in the same run.

- cold import of `sender.handler` in a fresh interpreter with no bytecode cache, against the floor
  `import boto3` + the three clients the function creates;
- AWS requests per outbound text message: the real handler against moto (in-process), counted at
  botocore's `before-call` hook;
- sustained sends per second for one account, against the Graph sandbox's 100/s limit (target: at
  least 95/s, no throttling answer), and across 10 accounts.

For the throughput runs the senders are the real service (`Sender.process`), the real GCRA rate
limiter and the real Graph client over HTTP to the Graph sandbox, which runs in its own process on
127.0.0.1 and enforces Meta's limit in a sliding second. DynamoDB and SQS are replaced by in-memory
stand-ins (thread-safe, atomic like DynamoDB's conditional updates): moto spends about 2.5 ms of CPU
per call, so with it this 2-core machine would measure moto, not the sender. Worker threads stand
in for concurrent Lambda instances; a Retry puts the message back with its delay, as SQS would.

Bounded: a fixed number of messages per run and a time limit on each; nothing leaves 127.0.0.1.
"""

import json
import multiprocessing
import os
import re
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# As in Lambda: the function's code and the layer (the webhook's package only for the local tools).
PATHS = [str(ROOT / "functions/sender"), str(ROOT / "layers/shared"), str(ROOT / "functions/webhook"), str(ROOT)]
sys.path[:0] = PATHS

from bench.webhook import cold_import_ms  # noqa: E402 - after the path is set

IMPORT_RUNS = 7
FLOOR_IMPORT = "import boto3; [boto3.client(s) for s in ('dynamodb', 'sqs', 'secretsmanager')]"
LIMIT_PER_SECOND = 100  # the sandbox's (Meta's) text limit per account
ONE_ACCOUNT_MESSAGES = 1000  # about 10 s at the limit
TEN_ACCOUNT_MESSAGES = 3000
RUN_TIME_LIMIT_SECONDS = 40.0
WORKERS = 24  # concurrent senders (Lambda instances): enough that waiting on Meta never leaves a slot unused
TOKEN = "bench-token"  # noqa: S105 - the sandbox's


# ------------------------------------------------------------------ the Graph sandbox, in its own process

def token_of(account: str) -> str:
    return f"{TOKEN}-{account}"


def _sandbox_process(accounts: list[str], port_out: Any, commands: Any) -> None:
    from local.graph_sandbox import GraphSandbox

    sandbox = GraphSandbox(text_rate_per_second=LIMIT_PER_SECOND).start()
    for account in accounts:  # Meta knows the account by its token: one token each
        sandbox.add_account(account, token_of(account))
    port_out.send(sandbox.port)
    while (command := commands.recv()) != "stop":
        if command == "stats":
            sent = sandbox.sent
            throttled = sum(1 for r in sandbox.requests if r.error_code in (4, 17, 32, 613, 80002, 80006)
                            or r.status == 429)
            commands.send({"sent": [(s.account_id, s.at) for s in sent], "throttled": throttled,
                           "requests": len(sandbox.requests)})
        elif command == "reset":
            sandbox.reset()
            commands.send("ok")
    sandbox.stop()


class SandboxProcess:
    def __init__(self, accounts: list[str]) -> None:
        context = multiprocessing.get_context("spawn")
        port_in, port_out = context.Pipe()
        self._commands, child_commands = context.Pipe()
        self._process = context.Process(target=_sandbox_process, args=(accounts, port_out, child_commands),
                                        daemon=True)
        self._process.start()
        if not port_in.poll(30):
            raise SystemExit("the Graph sandbox did not start")
        self.base_url = f"http://127.0.0.1:{port_in.recv()}"

    def stats(self) -> dict[str, Any]:
        self._commands.send("stats")
        result: dict[str, Any] = self._commands.recv()
        return result

    def reset(self) -> None:
        self._commands.send("reset")
        self._commands.recv()

    def stop(self) -> None:
        self._commands.send("stop")
        self._process.join(10)


# ------------------------------------------------------------------ in-memory stand-ins for DynamoDB and SQS

class RateTable:
    """The rate limiter's DynamoDB item, in memory: `update_item` with the GCRA limiter's SET and
    condition expressions, applied atomically under one lock as DynamoDB applies a conditional update."""

    _TERM = re.compile(r"^(?:attribute_not_exists\((\w+)\)|(\w+) (<=|>=|<|>|=) (:\w+))$")

    def __init__(self) -> None:
        self._items: dict[str, dict[str, float]] = {}
        self._lock = threading.Lock()
        self.requests = 0

    def update_item(self, *, Key: dict[str, Any], UpdateExpression: str, ConditionExpression: str,
                    ExpressionAttributeValues: dict[str, Any], ExpressionAttributeNames: dict[str, str],
                    **options: Any) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        values = {k: float(v["N"]) for k, v in ExpressionAttributeValues.items()}
        with self._lock:
            self.requests += 1
            key = Key["pk"]["S"]
            item = self._items.get(key, {})
            if not self._holds(ConditionExpression, item, values):
                failure: Any = {"Error": {"Code": "ConditionalCheckFailedException", "Message": "failed"},
                                "Item": {k: {"N": str(v)} for k, v in item.items()}}
                raise ClientError(failure, "UpdateItem")
            updated = dict(item)
            for assignment in UpdateExpression.removeprefix("SET ").split(", "):
                target, _, expression = assignment.partition(" = ")
                operands = expression.split(" + ")
                total = sum(updated.get(o, 0.0) if not o.startswith(":") else values[o] for o in operands)
                updated[ExpressionAttributeNames.get(target, target)] = total
            self._items[key] = updated
        old = {k: {"N": str(v)} for k, v in item.items() if k in updated}
        return {"Attributes": old} if options.get("ReturnValues") == "UPDATED_OLD" and old else {}

    def _holds(self, condition: str, item: dict[str, float], values: dict[str, float]) -> bool:
        return any(all(self._term(term, item, values) for term in alternative.split(" AND "))
                   for alternative in condition.split(" OR "))

    def _term(self, term: str, item: dict[str, float], values: dict[str, float]) -> bool:
        match = self._TERM.match(term.strip())
        if match is None:
            raise ValueError(f"RateTable does not understand {term!r}")
        if match.group(1):
            return match.group(1) not in item
        name, operator, placeholder = match.group(2), match.group(3), match.group(4)
        if name not in item:
            return False
        left, right = item[name], values[placeholder]
        return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right,
                "=": left == right}[operator]


@dataclass
class MemoryRecords:
    """The sender's record operations (igdm.outbound_records.OutboundRecords), in memory, with the same
    conditions: claim once, one part in flight, statuses moving only forward."""

    records: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: int = 0

    def claim(self, *, idempotency_key: str, **fields: Any) -> tuple[Any, bool]:
        from igdm.outbound_records import OutboundRecord

        with self.lock:
            self.requests += 1
            if idempotency_key in self.records:
                return self.records[idempotency_key], False
            record = OutboundRecord(idempotency_key=idempotency_key, status="PENDING", parts_sent=0,
                                    inflight_part=None, message_ids=[], **fields)
            self.records[idempotency_key] = record
            return record, True

    def get(self, idempotency_key: str) -> Any:
        with self.lock:
            self.requests += 1
            return self.records.get(idempotency_key)

    def begin_part(self, idempotency_key: str, part: int) -> bool:
        return self._change(idempotency_key, lambda r: r.status == "PENDING" and r.parts_sent == part
                            and r.inflight_part is None, inflight_part=part) is not None

    def part_sent(self, idempotency_key: str, part: int, message_id: str | None, last: bool) -> Any:
        with self.lock:
            record = self.records[idempotency_key]
        changes: dict[str, Any] = {"parts_sent": part + 1, "inflight_part": None,
                                   "message_ids": [*record.message_ids, *([message_id] if message_id else [])]}
        if last:
            changes["status"] = "SENT"
        return self._change(idempotency_key, lambda r: r.inflight_part == part, **changes)

    def part_not_sent(self, idempotency_key: str, part: int) -> None:
        self._change(idempotency_key, lambda r: r.inflight_part == part, inflight_part=None)

    def settle(self, idempotency_key: str, status: str, *, reason: str | None = None, detail: str | None = None,
               error: dict[str, Any] | None = None) -> Any:
        from igdm.outbound_records import PREDECESSORS

        return self._change(idempotency_key, lambda r: r.status in PREDECESSORS[status], status=status,
                            reason=reason, detail=detail, error=error)

    def link_message_id(self, message_id: str, idempotency_key: str) -> dict[str, Any]:
        with self.lock:
            self.requests += 1
        return {}

    def _change(self, key: str, allowed: Callable[[Any], bool], **changes: Any) -> Any:
        with self.lock:
            self.requests += 1
            record = self.records.get(key)
            if record is None or not allowed(record):
                return None
            self.records[key] = replace(record, **changes)
            return self.records[key]


class Statuses:
    def __init__(self) -> None:
        self.published = 0
        self._lock = threading.Lock()

    def publish(self, record: Any) -> None:
        from igdm.serialized import SerializedEvent
        from igdm.status_events import status_event

        SerializedEvent.of(status_event(record))  # the work of building the event, not the SQS call
        with self._lock:
            self.published += 1


class Accounts:
    def __init__(self, accounts: list[str]) -> None:
        from igdm.accounts import Account

        self._accounts = {a: Account(a, "active", f"bench/{a}") for a in accounts}

    def resolve(self, account_id: str | None) -> Any:
        return self._accounts[account_id or next(iter(self._accounts))]

    def token(self, account: Any, *, fresh: bool = False) -> str:
        return token_of(account.account_id)

    def mark_needs_reauthorisation(self, account_id: str, detail: str) -> None:
        raise AssertionError("the sandbox accepts the bench token")


class OpenWindow:
    def last_user_message_at(self, account_id: str, customer_id: str) -> int:
        return int(time.time() * 1000) - 60_000


class NoMetrics:
    def count(self, name: str, value: int = 1, **dimensions: str) -> None:
        pass


# ------------------------------------------------------------------ the run

@dataclass(order=True)
class _Job:
    not_before: float
    body: str = field(compare=False)
    receive_count: int = field(compare=False, default=1)


def throughput(sandbox: SandboxProcess, accounts: list[str], messages: int, workers: int) -> dict[str, Any]:
    import heapq

    from igdm.sqs_retry import Retry
    from local import outbound_samples as out
    from sender.graph import GraphClient
    from sender.rate_limit import RateLimiter, intervals
    from sender.service import Sender
    from sender.settings import SenderSettings

    sandbox.reset()
    rates = RateTable()
    records = MemoryRecords()
    statuses = Statuses()
    limits = intervals(LIMIT_PER_SECOND, 10, 750, SenderSettings.model_fields["rate_headroom"].default)
    jobs = [_Job(0.0, json.dumps(out.outbound("text", key=f"bench-{i}", account_id=accounts[i % len(accounts)],
                                              recipient={"id": f"9{i:015d}"})))
            for i in range(messages)]
    heapq.heapify(jobs)
    lock = threading.Lock()
    outcomes: dict[str, int] = {}
    deadline = time.monotonic() + RUN_TIME_LIMIT_SECONDS

    def worker() -> None:
        sender = Sender(records=records, accounts=Accounts(accounts),  # type: ignore[arg-type]
                        graph=GraphClient(sandbox.base_url, "v24.0", 5), limiter=RateLimiter(rates, "t", limits),
                        statuses=statuses, conversations=OpenWindow(), metrics=NoMetrics())
        while time.monotonic() < deadline:
            with lock:
                if not jobs:
                    return
                job = heapq.heappop(jobs)
            wait = job.not_before - time.monotonic()
            if wait > 0:
                with lock:
                    heapq.heappush(jobs, job)
                time.sleep(min(wait, 0.05))
                continue
            try:
                status = sender.process(job.body, sqs_message_id=f"sqs-{job.body[:24]}",
                                        receive_count=job.receive_count)
            except Retry as retry:
                with lock:
                    heapq.heappush(jobs, _Job(time.monotonic() + retry.delay, job.body, job.receive_count + 1))
                    outcomes["retried"] = outcomes.get("retried", 0) + 1
                continue
            with lock:
                outcomes[status] = outcomes.get(status, 0) + 1

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(workers)]
    started, cpu_started = time.monotonic(), time.process_time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(RUN_TIME_LIMIT_SECONDS + 5)
    elapsed = time.monotonic() - started
    cpu = time.process_time() - cpu_started
    stats = sandbox.stats()
    times = sorted(at for _, at in stats["sent"])
    span = times[-1] - times[0] if len(times) > 1 else elapsed
    per_account: dict[str, list[float]] = {}
    for account, at in stats["sent"]:
        per_account.setdefault(account, []).append(at)
    return {"sent": len(times), "span": span, "rate": (len(times) - 1) / span if span > 0 else 0.0,
            "throttled": stats["throttled"], "outcomes": outcomes, "workers": workers,
            "cpu_ms_per_send": cpu * 1000 / max(len(times), 1),
            "max_per_account_second": max(_busiest_second(v) for v in per_account.values()) if per_account else 0,
            "rate_requests_per_message": rates.requests / max(len(times), 1),
            "record_requests_per_message": records.requests / max(len(times), 1)}


def _busiest_second(times: list[float]) -> int:
    times = sorted(times)
    best, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def aws_requests_per_message(messages: int = 20) -> float:
    """The real handler, with moto as AWS: every request the sender makes for one text message."""
    import boto3
    from moto import mock_aws

    from igdm import aws
    from igdm.accounts import register_account
    from igdm.config import clear_settings_cache
    from igdm.table import CONVERSATION_STATE_SK, conversation_pk
    from local import outbound_samples as out
    from local.apigw import LambdaContext
    from local.generate_events import sqs_event
    from local.graph_sandbox import GraphSandbox
    from local.template import REGION, provision
    from sender import handler

    os.environ.update({"AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                       "POWERTOOLS_LOG_LEVEL": "WARNING"})
    os.environ.pop("AWS_ENDPOINT_URL", None)
    counted = [0]

    def count(**_: Any) -> None:
        counted[0] += 1

    with mock_aws(), GraphSandbox() as sandbox:
        clients = {s: boto3.client(s, region_name=REGION) for s in ("dynamodb", "sqs", "secretsmanager")}
        stack = provision(clients, "bench", {"AppSecret": json.dumps({"app_secrets": ["x" * 32]})})
        os.environ.update(stack.function_environment("SenderFunction"))
        os.environ["GRAPH_API_BASE_URL"] = sandbox.base_url
        register_account(clients["dynamodb"], clients["secretsmanager"], table=stack.refs["GatewayTable"],
                         secret_prefix=os.environ["ACCOUNT_SECRET_PREFIX"], account_id=out.ACCOUNT,
                         access_token=TOKEN)
        sandbox.add_account(out.ACCOUNT, TOKEN)
        for i in range(messages):  # each customer wrote recently: the window is open
            clients["dynamodb"].put_item(TableName=stack.refs["GatewayTable"], Item={
                "pk": {"S": conversation_pk(out.ACCOUNT, f"9{i:015d}")}, "sk": {"S": CONVERSATION_STATE_SK},
                "last_user_message_at": {"N": str(int(time.time() * 1000))}})
        clear_settings_cache()
        aws.clear_clients()
        handler._sender.cache_clear()
        for service in ("dynamodb", "sqs", "secretsmanager"):
            aws.client(service).meta.events.register("before-call.*.*", count)
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - EMF metrics lines would swamp the report
        try:
            handler.lambda_handler(sqs_event(out.outbound("text", key="warm", recipient={"id": "9000000000000000"})),
                                   LambdaContext("bench", timeout_seconds=30))
            counted[0] = 0
            for i in range(1, messages + 1):
                body = out.outbound("text", key=f"count-{i}", recipient={"id": f"9{i % messages:015d}"})
                result = handler.lambda_handler(sqs_event(body), LambdaContext("bench", timeout_seconds=30))
                assert result == {"batchItemFailures": []}, result
        finally:
            sys.stdout = sys.__stdout__
        assert len(sandbox.sent) == messages + 1, len(sandbox.sent)
    return counted[0] / messages


def main() -> None:
    lambda_paths = PATHS[:2]
    imports = [(cold_import_ms(FLOOR_IMPORT, lambda_paths), cold_import_ms("import sender.handler", lambda_paths))
               for _ in range(IMPORT_RUNS)]
    floor_import = statistics.median(f for f, _ in imports)
    handler_import = statistics.median(h for _, h in imports)
    requests = aws_requests_per_message()

    one = ["17841400000000001"]
    ten = [f"178414000000000{i:02d}" for i in range(1, 11)]
    sandbox = SandboxProcess(ten)
    try:
        single = throughput(sandbox, one, ONE_ACCOUNT_MESSAGES, WORKERS)
        several = throughput(sandbox, ten, TEN_ACCOUNT_MESSAGES, WORKERS)
    finally:
        sandbox.stop()

    print(f"sender, text messages against the Graph sandbox's {LIMIT_PER_SECOND}/s per-account limit")
    print(f"  cold import of sender.handler      {handler_import:8.1f} ms  floor (boto3 + 3 clients) "
          f"{floor_import:.1f} ms  ratio {handler_import / floor_import:.2f}x")
    print(f"  AWS requests per message           {requests:8.1f}  (real handler against moto, warm)")
    for name, result, limit in (("1 account  ", single, LIMIT_PER_SECOND), ("10 accounts", several, None)):
        share = f"  {result['rate'] / limit:.1%} of the limit" if limit else ""
        print(f"  {name} sends per second        {result['rate']:8.1f}{share}  ({result['sent']} sends in "
              f"{result['span']:.1f} s; throttled by Meta: {result['throttled']}; busiest second of one account: "
              f"{result['max_per_account_second']})")
        outcomes = dict(sorted(result["outcomes"].items()))
        print(f"              {result['workers']} concurrent senders; outcomes {outcomes}; "
              f"per send: {result['cpu_ms_per_send']:.2f} ms CPU in the senders, "
              f"{result['rate_requests_per_message']:.2f} rate-item updates, "
              f"{result['record_requests_per_message']:.2f} record operations")


if __name__ == "__main__":
    main()
