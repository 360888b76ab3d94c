"""Scenarios b and c: the sender under Graph faults, and dying right after Meta answered.

Both drive the real sender as Lambda's SQS event source mapping does (local/aws/sqs_poller.py, through the
Loop of local/harnesses/outbound.py): the Graph sandbox as Meta, its echo webhooks through the
real webhook handler. They end once every message has left the outbound queue (bounded time), and count
at the sandbox: each part of each message delivered at most once, in order per recipient; and from the
table: the status each message ended in, which must also have been published as a message_status event.

What the sender promises, and so what is counted (functions/sender/sender/service.py):
  SENT / DELIVERED / READ  every part reached Meta exactly once (DELIVERED: its echo came back);
  FAILED                   Meta refused it, or kept failing until the attempts ran out; the parts
                           Meta had accepted before stay sent, the rest are never sent;
  UNKNOWN                  a request went out and no answer came back (a read timeout, or an attempt that
                           died while a part was in flight). It is never sent again: if Meta did deliver
                           it, its echo settles it to DELIVERED; if Meta did not, it stays UNKNOWN, and the
                           producer, told so, decides. Such a message is neither lost nor duplicated.
Lost is a message with no final status, or one reported SENT/DELIVERED that Meta did not wholly get; except
where the known bugs of chaos/known.py explain it (UNKNOWN, then DELIVERED by an echo: by another message's,
or by its own while its later parts were never sent), which are counted under their names instead.
"""

import json
import random
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from chaos.faults import AwsFaults
from chaos.report import Result
from chaos.stacks import outbound_stack, sender_poller
from igdm.store import outbound_records as st
from igdm.store.outbound_records import OutboundRecords
from local.aws.template import REGION
from local.harnesses.outbound import Loop
from local.samples import outbound as out
from sender.graph import Accepted, GraphClient, Outcome

# What Meta does to a send, as the sandbox can play it: 5xx, throttling, and read timeouts, with the
# message delivered or not behind the timeout. The delay is set by the plan (beyond the client's timeout).
GRAPH_FAULTS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("http_5xx", {}),
    ("http_5xx", {"status": 503}),
    ("throttle", {"code": 80002}),
    ("throttle", {"code": 4}),
    ("throttle", {"code": 613}),
    ("timeout", {}),
    ("timeout", {"deliver": True}),
)


class ProcessDied(BaseException):
    """The sender's process ends here (Lambda timeout, out of memory): no handler code runs after it, and
    the whole batch comes back after the queue's visibility timeout. BaseException, because the handler
    and Powertools' batch processor turn every Exception into a handled failure."""


@dataclass(frozen=True)
class SenderFaultPlan:
    messages: int = 200
    customers: int = 10
    two_part_share: float = 0.2  # text_with_media: two sends per message
    fault_rate: float = 0.2  # of the sends (scenario b)
    graph_timeout_seconds: float = 0.5
    timeout_delay_seconds: float = 2.5  # how long the sandbox holds a timed-out answer: well beyond the client's
    seconds: float = 240.0


@dataclass(frozen=True)
class CrashPlan:
    messages: int = 60
    customers: int = 6
    crash_rate: float = 0.3  # of the sends Meta accepts
    seconds: float = 240.0


@dataclass
class Tally:
    messages: int = 0
    delivered_once: int = 0
    settled_by_echo: int = 0  # UNKNOWN first, then DELIVERED by its echo
    unknown_not_delivered: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    lost: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    violations: list[str] = field(default_factory=list)
    known: Counter[str] = field(default_factory=Counter)


def _messages(
    count: int, customers: int, two_part_share: float, rng: random.Random
) -> list[tuple[str, str, dict[str, Any], int]]:
    """(key, recipient, message, parts) in enqueue order; texts and URLs carry the key, to be found at Meta."""
    made = []
    for number in range(count):
        recipient = f"70000000000{rng.randrange(customers):05d}"
        key = f"chaos-{recipient[-5:]}-{number:05d}"
        if rng.random() < two_part_share:
            content = {
                "type": "text_with_media",
                "text": f"chaos {key}",
                "media_type": "file",
                "url": f"{out.HTTPS}/{key}.pdf",
            }
            parts = 2
        else:
            content, parts = {"type": "text", "text": f"chaos {key}"}, 1
        made.append(
            (
                key,
                recipient,
                out.outbound("text", key=key, recipient={"id": recipient}, message=content, correlation_id=key),
                parts,
            )
        )
    return made


def _part_of(body: dict[str, Any]) -> tuple[str, int] | None:
    """(key, part) of a send the sandbox received: part 0 is the text, part 1 the file."""
    message = body.get("message") or {}
    text = message.get("text")
    if isinstance(text, str) and text.startswith("chaos "):
        return text.removeprefix("chaos "), 0
    url = ((message.get("attachment") or {}).get("payload") or {}).get("url", "")
    if isinstance(url, str) and url.startswith(f"{out.HTTPS}/chaos-"):
        return url.removeprefix(f"{out.HTTPS}/").removesuffix(".pdf"), 1
    return None


def drive(loop: Loop, deadline: float, *, died: Counter[str] | None = None) -> bool:
    """Poll the outbound queue like the event source mapping until nothing is left on it (visible or
    hidden for a retry), then let the sandbox's echo webhooks finish. False if the deadline came first."""
    batches: list[list[str]] = []
    poller = sender_poller(loop, batches)
    while time.monotonic() < deadline:
        try:
            delivered = poller.poll_once()
        except ProcessDied:
            if died is None:
                raise
            died["invocations"] += 1
            # Its batch comes back once the visibility timeout (180 s) has passed: now, here. (Left to
            # expire, moto hands out the last in-flight message of a FIFO group first; SQS does not.)
            loop.sqs.change_message_visibility_batch(
                QueueUrl=loop.outbound_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                    for i, handle in enumerate(batches[-1])
                ],
            )
            continue
        if delivered == 0:
            if loop._in_flight() == 0:
                loop.sandbox.drain_webhooks(timeout=max(1.0, deadline - time.monotonic()))
                return True
            time.sleep(0.1)
    return False


def count(loop: Loop, messages: list[tuple[str, str, dict[str, Any], int]], finished: bool) -> Tally:
    tally = Tally(messages=len(messages))
    sends: Counter[tuple[str, int]] = Counter()
    attempts: Counter[tuple[str, int]] = Counter()  # requests Meta got, answered or not
    for request in loop.sandbox.requests:
        attempted = _part_of(request.body) if isinstance(request.body, dict) else None
        if attempted is not None:
            attempts[attempted] += 1
    order: dict[str, list[tuple[int, int]]] = {}
    number_of = {key: index for index, (key, _, _, _) in enumerate(messages)}
    for sent in loop.sandbox.sent:
        found = _part_of(sent.body)
        if found is None or found[0] not in number_of:
            tally.violations.append(f"Meta got a message nobody enqueued: {sent.body}")
            continue
        sends[found] += 1
        order.setdefault(sent.body["recipient"]["id"], []).append((number_of[found[0]], found[1]))
    tally.duplicated = sum(n - 1 for n in sends.values() if n > 1)
    for sequence in order.values():
        highest = (-1, -1)
        for position in sequence:
            if position < highest:
                tally.out_of_order += 1
            highest = max(highest, position)

    # The harness's own client: the function's may carry injected faults.
    table = OutboundRecords(boto3.client("dynamodb", region_name=REGION), loop.stack.refs["GatewayTable"], 1)
    published: dict[str, list[str]] = {}
    for status in loop.statuses():
        published.setdefault(status["idempotency_key"], []).append(status["status"])
    dead_lettered = dead_letters(loop)
    max_receives = int(loop.stack.function_environment("SenderFunction")["MAX_RECEIVE_COUNT"])
    left_unknown: list[str] = []
    for key, _recipient, _message, parts in messages:
        record = table.get(key)
        delivered = sum(1 for part in range(parts) if sends[(key, part)])
        final = record.status if record is not None else None
        history = published.get(key, [])
        if final is None or final == st.PENDING:
            tally.lost += 1
            where = (
                f"in the dead-letter queue after {dead_lettered[key]} receives"
                if key in dead_lettered
                else "time ran out"
                if not finished
                else "not on any queue"
            )
            tally.violations.append(
                f"{key} has no final status ({final}, {attempts[(key, delivered)]} requests "
                f"to Meta for its part {delivered + 1}): {where}"
            )
            continue
        if final not in history:
            tally.violations.append(f"{key} ended {final}, but no {final} status event was published ({history})")
        if final in (st.SENT, st.DELIVERED, st.READ):
            unknown_part = record.parts_sent if record is not None else 0  # the part whose answer never came
            if delivered < parts and st.UNKNOWN in history and sends[(key, unknown_part)]:
                tally.lost += 1  # settled by its own echo while later parts never went: FAILED partially_sent
                tally.violations.append(f"{key} reported {final}, but Meta got {delivered} of {parts} parts")
            elif delivered < parts:  # settled by an echo that was not its own, or never sent whole
                tally.lost += 1
                tally.violations.append(f"{key} reported {final}, but Meta got {delivered} of {parts} parts")
            else:
                tally.delivered_once += 1
                tally.settled_by_echo += st.UNKNOWN in history
        elif final == st.UNKNOWN:
            if delivered == parts:
                left_unknown.append(key)
            else:
                tally.unknown_not_delivered += 1
        else:
            reason = record.reason if record else "?"
            detail = (record.detail if record else None) or ""
            tally.failed[f"{reason} after {delivered} of {parts} parts"] += 1
            tried = attempts[(key, delivered)]
            receives = re.search(r"in (\d+) receives", detail)
            last_receive = receives is not None and int(receives.group(1)) >= max_receives
            if (
                reason == "retries_exhausted" and "temporary failure" in detail and tried < 3 and not last_receive
            ):  # on the queue's last receive it ends FAILED rather than dead-lettered
                tally.violations.append(
                    f"{key} given up after {tried} request(s) to Meta for codes 1/2, whose limit is 3"
                )
    for key in left_unknown:  # its echo came back carrying its marker, and still did not settle it
        tally.violations.append(f"{key} reached Meta and its echo came back, but it stayed UNKNOWN")
    return tally


def dead_letters(loop: Loop) -> dict[str, int]:
    """The outbound dead-letter queue, read whole (and emptied: it is FIFO, so a message held in flight would
    hide the rest of its group): idempotency key -> receives before SQS moved it there."""
    url = loop.stack.refs["OutboundDeadLetterQueue"]
    found: dict[str, int] = {}
    for _ in range(1000):  # at most 10,000 messages; a run enqueues a few hundred
        got = loop.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"]).get("Messages", [])
        if not got:
            break
        for message in got:
            try:
                key = str(json.loads(message["Body"]).get("idempotency_key"))
            except (ValueError, AttributeError):
                key = message["MessageId"]
            found[key] = int(message["Attributes"].get("ApproximateReceiveCount", 0))
        loop.sqs.delete_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)]
        )
    return found


@contextmanager
def wrapped_send(
    wrapper: Callable[
        [Callable[[GraphClient, str, dict[str, Any]], Outcome], GraphClient, str, dict[str, Any]], Outcome
    ],
) -> Iterator[None]:
    """Every Send API call of the sender goes through ``wrapper(original, client, token, body)``."""
    original = GraphClient.send
    with pytest.MonkeyPatch.context() as patch:
        # Only the Send API: the scenarios send messages, never thread control.
        patch.setattr(GraphClient, "send", lambda client, token, body, *_: wrapper(original, client, token, body))
        yield


def _open_windows(loop: Loop, messages: list[tuple[str, str, dict[str, Any], int]]) -> None:
    for recipient in sorted({recipient for _, recipient, _, _ in messages}):
        loop.say(customer=recipient)  # the customer wrote first: the 24-hour window is open


def _result(name: str, tally: Tally, extra: str, seconds: float, figures: dict[str, int]) -> Result:
    failed = ", ".join(f"{n} {reason}" for reason, n in sorted(tally.failed.items())) or "none"
    summary = (
        f"{tally.messages} messages: delivered once {tally.delivered_once} (of which UNKNOWN, then "
        f"settled by their echo: {tally.settled_by_echo}), UNKNOWN and not delivered "
        f"{tally.unknown_not_delivered}, "
        f"failed {sum(tally.failed.values())} ({failed}); lost {tally.lost}, duplicated {tally.duplicated}, "
        f"out of order {tally.out_of_order}; {extra}"
    )
    figures = {
        **figures,
        "messages": tally.messages,
        "delivered_once": tally.delivered_once,
        "settled_by_echo": tally.settled_by_echo,
        "unknown_not_delivered": tally.unknown_not_delivered,
        "failed": sum(tally.failed.values()),
    }
    return Result(
        name,
        summary,
        tally.lost,
        tally.duplicated,
        tally.out_of_order,
        tally.violations[:20],
        seconds,
        known=tally.known,
        figures=figures,
    )


def run_graph_faults(plan: SenderFaultPlan, seed: int) -> Result:
    """Scenario b: 5xx, throttling and timeouts (delivered behind the timeout, or not) on a share of sends."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible fault schedule, no secret  # nosec B311
    messages = _messages(plan.messages, plan.customers, plan.two_part_share, rng)
    injected: Counter[str] = Counter()
    started = time.monotonic()
    with outbound_stack(graph_timeout_seconds=plan.graph_timeout_seconds) as loop:
        _open_windows(loop, messages)

        def faulty(original: Any, client: GraphClient, token: str, body: dict[str, Any]) -> Outcome:
            if rng.random() < plan.fault_rate:  # Meta, not the sender, decides; the sandbox plays it
                kind, options = rng.choice(GRAPH_FAULTS)
                if kind == "timeout":
                    options = {**options, "delay": plan.timeout_delay_seconds}
                loop.sandbox.inject(kind, **options)
                injected[kind + (" after delivering" if options.get("deliver") else "")] += 1
            result: Outcome = original(client, token, body)
            return result

        for _, _, message, _ in messages:
            loop.enqueue(message)
        with wrapped_send(faulty):
            finished = drive(loop, started + plan.seconds)
        tally = count(loop, messages, finished)
        requests = len([r for r in loop.sandbox.requests if r.path.endswith("/messages")])
    faults = ", ".join(f"{kind} {n}" for kind, n in sorted(injected.items()))
    return _result(
        "sender graph faults",
        tally,
        f"{requests} Send API requests, faults injected {sum(injected.values())} ({faults})",
        time.monotonic() - started,
        {"faults": sum(injected.values()), "requests": requests},
    )


def run_crash_after_send(plan: CrashPlan, seed: int) -> Result:
    """Scenario c: right after Meta accepted a part, the sender dies, or its record write is refused or
    loses its answer; SQS delivers the message again."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible fault schedule, no secret  # nosec B311
    messages = _messages(plan.messages, plan.customers, 0.3, rng)
    injected: Counter[str] = Counter()
    died: Counter[str] = Counter()
    started = time.monotonic()
    with outbound_stack() as loop:
        _open_windows(loop, messages)
        faults = AwsFaults(random.Random(rng.random())).attach("dynamodb")  # noqa: S311  # nosec B311

        def crashing(original: Any, client: GraphClient, token: str, body: dict[str, Any]) -> Outcome:
            result: Outcome = original(client, token, body)
            if isinstance(result, Accepted) and rng.random() < plan.crash_rate:
                how = rng.choice(("process died", "record write refused", "record write answer lost"))
                injected[how] += 1
                if how == "process died":
                    raise ProcessDied("after Meta accepted the send")
                # The sender's very next DynamoDB call is the write that records Meta's answer.
                faults.arm("dynamodb", "refused" if how == "record write refused" else "lost", this_thread=True)
            return result

        for _, _, message, _ in messages:
            loop.enqueue(message)
        with wrapped_send(crashing):
            finished = drive(loop, started + plan.seconds, died=died)
        tally = count(loop, messages, finished)
    crashes = ", ".join(f"{kind} {n}" for kind, n in sorted(injected.items()))
    return _result(
        "sender crash after send",
        tally,
        f"crashes injected {sum(injected.values())} ({crashes}), invocations that died {died['invocations']}",
        time.monotonic() - started,
        {"crashes": sum(injected.values()), "died": died["invocations"]},
    )
