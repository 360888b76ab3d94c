"""Scenario: webhooks Meta never sends, or sends late, and a Conversations API that fails now and then.

The Graph sandbox plays Instagram: customers write, and a share of their webhooks is withheld: those of
the first two batches are delivered "late" (after a reconciler run may have published them), the rest
never. The real reconciler's handler runs between batches while the sandbox answers a share of its
Conversations API calls with 5xx, throttling, timeouts or errors. Once the faults stop, the reconciler runs
until a run finds nothing left (bounded). Counted on the events queue: every customer message published
exactly once, whichever of the webhook and the reconciler brought it.
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
from local.harnesses.outbound import ACCOUNT
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
            if not (summary["errors"] or summary["unfinished"] or summary["backfilled"]):
                break
        published = Counter(
            e["message_id"] for e in loop.events() if e["kind"] not in ("message_status", "account_status")
        )
        sources = Counter(e["source"] for e in loop.events() if e["message_id"] in set(mids))
    lost = sum(1 for mid in mids if published[mid] == 0)
    duplicated = sum(count - 1 for mid, count in published.items() if mid in set(mids) and count > 1)
    strangers = [mid for mid in published if mid not in set(mids)]
    faults_text = ", ".join(f"{kind} {n}" for kind, n in sorted(injected.items()))
    return Result(
        "reconciler faults",
        f"{len(mids)} customer messages, {sum(1 for s in sources.elements() if s == 'backfill')} published by the "
        f"reconciler and {sources['messaging']} by their webhook; lost {lost}, duplicated {duplicated}; "
        f"{runs} reconciler runs, Conversations API faults injected {sum(injected.values())} ({faults_text})",
        lost=lost,
        duplicated=duplicated,
        violations=[f"published a message nobody sent: {mid}" for mid in strangers],
        seconds=time.monotonic() - started,
        figures={
            "messages": len(mids),
            "backfilled": sources["backfill"],
            "webhooked": sources["messaging"],
            "faults": sum(injected.values()),
            "runs": runs,
        },
    )
