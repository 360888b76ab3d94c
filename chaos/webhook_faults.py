"""Scenario a: DynamoDB and SQS refusing, unreachable or losing answers on a fraction of the webhook's calls,
while Meta delivers bodies the way it does: each body again until it gets a 200 (at most ``max_attempts``),
and now and then a body it already had a 200 for.

Counted afterwards, from the table and from the whole events queue: every event of every body stored
once and queued once, and each conversation's events on the queue in the order they happened.
"""

import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from chaos.faults import AwsFaults
from chaos.report import Result
from chaos.stacks import webhook_stack
from local.samples import meta as m

KINDS = ("text", "text", "text", "text", "text", "attachment", "reaction", "read", "postback", "echo")


@dataclass(frozen=True)
class WebhookFaultPlan:
    events: int = 2000
    round_events: int = 100  # events per fresh stack (see run)
    customers: int = 25
    max_items_per_body: int = 20
    fault_rate: float = 0.08  # of the webhook's DynamoDB and SQS calls: refused or unreachable
    lost_rate: float = 0.02  # of its successful calls: done at AWS, answer lost
    redelivery_rate: float = 0.05  # bodies Meta sends once more after their 200
    max_attempts: int = 30  # Meta's retries of one body, bounded
    seconds: float = 240.0  # the whole delivery, bounded


def _customer(index: int) -> str:
    return f"90000000000{index:05d}"


def _item(kind: str, customer: str, tag: str, ts: int) -> dict[str, Any]:
    """One messaging item whose event carries ``tag`` as its message_id, so it can be found again."""
    if kind == "text":
        return m.text(mid=tag, words=f"chaos {tag}", customer=customer, ts=ts)
    if kind == "attachment":
        return m.inbound(
            {"message": {"mid": tag, "attachments": [{"type": "image", "payload": {"url": m.CDN.format(tag)}}]}},
            customer=customer,
            ts=ts,
        )
    if kind == "reaction":
        return m.inbound(
            {"reaction": {"mid": tag, "action": "react", "reaction": "love", "emoji": "\u2764"}},
            customer=customer,
            ts=ts,
        )
    if kind == "read":
        return m.inbound({"read": {"mid": tag}}, customer=customer, ts=ts)
    if kind == "postback":
        return m.inbound(
            {"postback": {"mid": tag, "title": "Talk to a human", "payload": "HUMAN"}}, customer=customer, ts=ts
        )
    return {
        "sender": {"id": m.ACCOUNT},
        "recipient": {"id": customer},
        "timestamp": ts,
        "message": {"mid": tag, "text": f"chaos {tag}", "is_echo": True},
    }


def bodies(
    events: int, plan: WebhookFaultPlan, rng: random.Random
) -> tuple[list[dict[str, Any]], dict[str, tuple[str, int]]]:
    """Meta-shaped bodies holding ``events`` events; and each event's tag -> (customer, sequence).
    A body lists its items in any order (Meta's batches are not sorted); time only moves forward from
    one body to the next, per conversation."""
    documents: list[dict[str, Any]] = []
    expected: dict[str, tuple[str, int]] = {}
    sequence: Counter[str] = Counter()
    made = 0
    while made < events:
        items = []
        for _ in range(min(rng.randint(1, plan.max_items_per_body), events - made)):
            customer = _customer(rng.randrange(plan.customers))
            sequence[customer] += 1
            tag = f"c{customer[-5:]}-{sequence[customer]:06d}"
            items.append(_item(rng.choice(KINDS), customer, tag, m.T0 + sequence[customer] * 1000))
            expected[tag] = (customer, sequence[customer])
            made += 1
        rng.shuffle(items)
        documents.append(m.envelope(*items))
    return documents, expected


def run(plan: WebhookFaultPlan, seed: int) -> Result:
    rng = random.Random(seed)  # noqa: S311 - a reproducible fault schedule, no secret  # nosec B311
    started = time.monotonic()
    deadline = started + plan.seconds
    total = _Round()
    made = 0
    while made < plan.events:
        # A fresh stack per round: moto copies a whole table for every item of every transaction, so a
        # table of thousands of events would make the run quadratic. Each round is a gateway of its own.
        size = min(plan.round_events, plan.events - made)
        total.add(_round(plan, size, rng, deadline))
        made += size
    elapsed = time.monotonic() - started
    violations = []
    if total.crashes:
        violations.append(f"unhandled exceptions {dict(total.crashes)}")
    if set(total.statuses) - {200, 503}:
        violations.append(f"answers other than 200 and 503: {dict(total.statuses)}")
    if total.gave_up:
        violations.append(f"Meta gave up on {total.gave_up} bodies after {plan.max_attempts} attempts each")
    if total.unexpected:
        violations.append(f"{total.unexpected} events nobody sent")
    statuses = total.statuses
    summary = (
        f"sent {total.sent} events in {total.bodies} bodies, stored {total.stored}, queued {total.queued}, "
        f"lost {total.lost}, duplicated {total.duplicated}, out of order {total.out_of_order}, "
        f"faults injected {total.faults.total()} ({_describe(total.faults)}); "
        f"{sum(statuses.values())} POSTs: {statuses[200]} x 200, {statuses[503]} x 503, "
        f"Meta gave up on {total.gave_up}"
    )
    figures = {
        "sent": total.sent,
        "stored": total.stored,
        "queued": total.queued,
        "faults": sum(total.faults.values()),
        "posts": sum(statuses.values()),
        "answered_503": statuses[503],
    }
    return Result(
        "webhook faults",
        summary,
        total.lost,
        total.duplicated,
        total.out_of_order,
        violations,
        elapsed,
        figures=figures,
    )


@dataclass
class _Round:
    sent: int = 0
    bodies: int = 0
    stored: int = 0
    queued: int = 0
    lost: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    unexpected: int = 0
    gave_up: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    crashes: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)

    def add(self, other: "_Round") -> None:
        for name in (
            "sent",
            "bodies",
            "stored",
            "queued",
            "lost",
            "duplicated",
            "out_of_order",
            "unexpected",
            "gave_up",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.statuses.update(other.statuses)
        self.crashes.update(other.crashes)
        self.faults.update(other.faults)


def _describe(faults: Counter[str]) -> str:
    return ", ".join(f"{name} {count}" for name, count in sorted(faults.items()))


def _round(plan: WebhookFaultPlan, size: int, rng: random.Random, deadline: float) -> _Round:
    documents, expected = bodies(size, plan, rng)
    found = _Round(sent=len(expected), bodies=len(documents))
    with webhook_stack() as harness:
        faults = AwsFaults(
            random.Random(rng.random()),  # noqa: S311  # nosec B311 - a reproducible fault schedule
            rate=plan.fault_rate,
            lost_rate=plan.lost_rate,
        ).attach("dynamodb", "sqs")

        def deliver(document: dict[str, Any]) -> bool:
            """Meta: the same bytes again until a 200, at most max_attempts times."""
            for _ in range(plan.max_attempts):
                if time.monotonic() > deadline:
                    return False
                try:
                    status = int(harness.post(document)["statusCode"])
                except Exception as exc:  # Lambda would answer 500 for it; Meta retries
                    found.crashes[type(exc).__name__] += 1
                    continue
                found.statuses[status] += 1
                if status == 200:
                    return True
            return False

        for document in documents:
            if not deliver(document):
                found.gave_up += 1
            if rng.random() < plan.redelivery_rate and not deliver(document):
                found.gave_up += 1
        faults.pause()
        found.faults = faults.by_kind()
        queued = [json.loads(message["Body"]) for message in harness.drain()]
        stored = [item["message_id"] for item in harness.event_items()]

    queued_tags = Counter(event["message_id"] for event in queued)
    stored_tags = Counter(stored)
    found.stored, found.queued = len(set(stored_tags) & set(expected)), len(set(queued_tags) & set(expected))
    found.lost = sum(1 for tag in expected if not queued_tags[tag] or not stored_tags[tag])
    found.duplicated = sum(n - 1 for n in (*queued_tags.values(), *stored_tags.values()) if n > 1)
    found.unexpected = len(set(queued_tags) - set(expected)) + len(set(stored_tags) - set(expected))
    latest: dict[str, int] = {}
    for event in queued:
        customer, number = expected.get(event["message_id"], (event["customer_id"], 0))
        if number < latest.get(customer, 0):
            found.out_of_order += 1
        latest[customer] = max(latest.get(customer, 0), number)
    return found
