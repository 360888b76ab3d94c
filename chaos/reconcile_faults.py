"""Scenario: webhooks Meta never sends, or sends late, and a Conversations API that fails now and then.

The Graph sandbox plays Instagram: customers write, and a share of their webhooks is withheld: those of
the first two batches are delivered "late" (after a reconciler run may have published them), the rest
never. The real reconciler's handler runs between batches while the sandbox answers a share of its
Conversations API calls with 5xx, throttling, timeouts or errors. In each batch the business also answers
once through the sender, and Meta's answer is unreadable (an UNKNOWN send): Meta took some of those answers,
and their echo never comes, and never took the others. Once the faults stop, the reconciler runs until a run
finds nothing left (bounded). Counted on the events queue: every customer message, and the echo of every
answer Meta took, published exactly once, whichever of the webhook and the reconciler brought it; every
answer settled (DELIVERED when Meta took it, FAILED not_delivered when not) and none sent twice.
"""

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from chaos.report import Result
from chaos.stacks import outbound_stack
from local.harnesses.outbound import ACCOUNT, Loop
from local.samples import outbound as out
from reconciler import service as reconciler_service
from reconciler import wiring as reconciler_wiring
from reconciler.conversations import ConversationsClient

RATE = 50  # Conversations API calls per second here (Meta allows 2): the scenario is about faults, not pace
# What Instagram may do to a Conversations API call, as the sandbox plays it (a timeout outlasts the client's).
CONVERSATION_FAULTS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("http_5xx", {}),
    ("throttle", {"code": 80002}),
    ("timeout", {"delay": 1.5}),
    ("error", {"code": 1, "message": "An unknown error has occurred."}),
)


@dataclass(frozen=True)
class ReconcileFaultPlan:
    messages: int = 120
    customers: int = 12
    batches: int = 4  # the messages come in batches, a faulty reconciler run after each
    drop_rate: float = 0.5  # webhooks Meta withholds
    fault_rate: float = 0.2  # Conversations API calls answered with a fault during the faulty runs
    clean_runs: int = 6  # at most, once the faults stop
    reach_rate: float = 0.5  # the business's UNKNOWN answers Meta in fact took


def run(plan: ReconcileFaultPlan, seed: int) -> Result:
    rng = random.Random(seed)  # noqa: S311  # nosec B311 - a reproducible fault schedule
    started = time.monotonic()
    injected: Counter[str] = Counter()
    mids: list[str] = []
    runs = 0
    with (
        outbound_stack(echo_delay_seconds=0.0, conversations_rate_per_second=RATE) as loop,
        pytest.MonkeyPatch.context() as patch,
    ):
        patch.setenv("CONVERSATIONS_RATE_PER_SECOND", str(RATE))
        patch.setenv("GRAPH_TIMEOUT_SECONDS", "1")  # a timeout fault costs a second, not ten
        patch.setattr(reconciler_service, "THROTTLE_PAUSE_SECONDS", 1.0)
        patch.setenv("UNKNOWN_SETTLE_AFTER_SECONDS", "0")  # an UNKNOWN send is looked up by the next run
        answers: dict[str, bool] = {}  # idempotency key -> whether Meta took it
        questions: list[str] = []  # the customer's messages each answer follows
        faulty = [False]
        original = ConversationsClient._get

        def sometimes_failing(
            client: ConversationsClient, path: str, token: str, pace: Callable[[], None], params: Any = None
        ) -> dict[str, Any]:
            if faulty[0] and rng.random() < plan.fault_rate:  # Instagram, not the reconciler, decides
                kind, options = rng.choice(CONVERSATION_FAULTS)
                loop.sandbox.inject(kind, endpoint="conversations", account_id=ACCOUNT, **options)
                injected[kind] += 1
            answer: dict[str, Any] = original(client, path, token, pace, params)
            return answer

        patch.setattr(ConversationsClient, "_get", sometimes_failing)
        reconciler_wiring.reset()
        per_batch = max(1, plan.messages // plan.batches)
        for batch in range(plan.batches):
            for _ in range(per_batch if batch < plan.batches - 1 else plan.messages - len(mids)):
                if rng.random() < plan.drop_rate:
                    loop.sandbox.drop_webhooks(1)
                customer = f"90000000000{rng.randrange(plan.customers):04d}"
                mids.append(loop.sandbox.customer_says(ACCOUNT, customer, f"message {len(mids)}"))
            loop.sandbox.drain_webhooks(timeout=30)
            key = f"answer-{batch}"
            answers[key] = rng.random() < plan.reach_rate
            questions.append(unknown_answer(loop, key, reached=answers[key]))
            if batch == 1:
                loop.sandbox.redeliver_dropped()  # late: those of the first batch after the reconciler found them
                loop.sandbox.drain_webhooks(timeout=30)
            faulty[0] = True
            loop.reconcile()
            faulty[0] = False
            runs += 1
        backfilled_at_the_end = 0
        for _ in range(plan.clean_runs):  # bounded: each clean run reads from where the last one stopped
            summary = loop.reconcile()
            runs += 1
            backfilled_at_the_end += summary["backfilled"]
            if not (summary["errors"] or summary["unfinished"] or summary["backfilled"] or summary["unknown_left"]):
                break
        events = loop.events()
        echoes = [s.message_id for s in loop.sandbox.sent if s.message_id]  # the answers Meta took
        wrong = settled_wrongly(loop, answers, len(echoes))
    published = Counter(e["message_id"] for e in events if e["kind"] not in ("message_status", "account_status"))
    sources = Counter(e["source"] for e in events if e["message_id"] in set(mids))
    expected = set(mids) | set(questions) | set(echoes)
    lost = sum(1 for mid in expected if published[mid] == 0)
    duplicated = sum(count - 1 for mid, count in published.items() if mid in expected and count > 1)
    violations = wrong + [f"published a message nobody sent: {mid}" for mid in published if mid not in expected]
    faults_text = ", ".join(f"{kind} {n}" for kind, n in sorted(injected.items()))
    return Result(
        "reconciler faults",
        f"{len(mids)} customer messages, {sum(1 for s in sources.elements() if s == 'backfill')} published by the "
        f"reconciler and {sources['messaging']} by their webhook; {len(answers)} UNKNOWN answers ({len(echoes)} "
        f"taken by Meta), {len(wrong)} settled wrongly; lost {lost}, duplicated {duplicated}; {runs} reconciler "
        f"runs, Conversations API faults injected {sum(injected.values())} ({faults_text})",
        lost=lost,
        duplicated=duplicated,
        violations=violations,
        seconds=time.monotonic() - started,
        figures={
            "messages": len(mids),
            "backfilled": sources["backfill"],
            "webhooked": sources["messaging"],
            "faults": sum(injected.values()),
            "runs": runs,
            "unknown_sends": len(answers),
            "unknown_delivered": len(echoes),
        },
    )


ANSWERED = "9000000000009999"  # the customer the business answers: its webhooks always come


def unknown_answer(loop: Loop, key: str, *, reached: bool) -> str:
    """The customer writes (its webhook comes: the window opens); the business answers through the sender, and
    Meta's answer is unreadable. With ``reached``, Meta took the message, and its echo is never sent. Returns
    the customer's message's mid."""
    question = loop.sandbox.customer_says(ACCOUNT, ANSWERED, f"a question before {key}")
    loop.sandbox.drain_webhooks(timeout=30)
    loop.sandbox.inject("invalid_json_reply", deliver=reached, account_id=ACCOUNT)
    if reached:
        loop.sandbox.drop_webhooks(1)  # its echo
    message = {"type": "text", "text": f"the answer {key}"}
    loop.enqueue(out.outbound("text", key=key, account_id=ACCOUNT, recipient={"id": ANSWERED}, message=message))
    loop.run()
    return question


def settled_wrongly(loop: Loop, answers: dict[str, bool], taken: int) -> list[str]:
    """Every UNKNOWN answer ends DELIVERED when Meta took it, FAILED not_delivered when not; none sent twice."""
    found = []
    for key, reached in answers.items():
        statuses = loop.statuses(key)
        last = statuses[-1] if statuses else {}
        wanted = ("DELIVERED", "ambiguous_outcome") if reached else ("FAILED", "not_delivered")
        if (last.get("status"), last.get("reason")) != wanted:
            found.append(f"{key}: {[s['status'] for s in statuses]} ({last.get('reason')}), wanted {wanted[0]}")
    if taken != sum(answers.values()):
        found.append(f"Meta took {taken} answers, {sum(answers.values())} were sent once each")
    return found
