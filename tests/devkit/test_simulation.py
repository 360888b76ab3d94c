"""The simulation over many accounts (bench.simulation) in small: the real sender and rate limiter over 20
accounts in simulated time. Its figures are only worth reading if every message goes out once, in its
conversation's order, without a throttling answer, so that is what is asserted here, never a timing."""

import pytest

from bench.graph import LIMIT_PER_SECOND
from bench.simulation import Run, SimulatedGraph, simulate, token_of, workers
from bench.virtual_time import VirtualTime


def assert_sound(run: Run) -> None:
    assert run.errors == []
    assert run.complete
    assert run.sent == run.messages  # every message reached Meta, and only once each
    assert run.duplicates == 0
    assert run.out_of_order == 0
    assert run.throttled == 0
    assert sum(n for status, n in run.outcomes.items() if status != "retried") == run.messages
    assert set(run.outcomes) <= {"SENT", "retried"}


@pytest.mark.parametrize("workload", ["campaign", "conversations"])
def test_twenty_accounts_every_message_once_in_order_never_throttled(workload: str) -> None:
    run = simulate("test", 20, workers(), workload, 200)

    assert_sound(run)
    assert run.rate_updates_per_send >= 1  # the real limiter ran: one conditional update per send at least
    assert run.requests_per_send["sqs.SendMessageBatch"] == 1  # the real status publisher: one per send
    assert run.account_listings >= 1 and run.secret_reads_per_send > 0  # the real account directory


def test_one_busy_account_is_held_under_metas_limit() -> None:
    # 50 instances on one account's campaign: only the shared rate item keeps them under Meta's 100 a second.
    run = simulate("test", 1, workers(), "campaign", 300)

    assert_sound(run)
    assert run.busiest_account_second <= LIMIT_PER_SECOND


def test_the_simulated_meta_refuses_the_call_over_its_limit() -> None:
    """So that "no throttling answer" above means something: a call over the limit is refused."""
    account = "17841400000000001"
    limit = LIMIT_PER_SECOND
    clock = VirtualTime(start=1_000_000.0, wall_limit=10)
    graph = SimulatedGraph(clock, limit, {token_of(account): account})
    body = {"recipient": {"id": "9000000000000001"}, "message": {"text": "sim 0"}}

    def one_call() -> None:  # every thread starts at the same simulated moment: limit + 1 calls at once
        graph.send(token_of(account), body)

    clock.start_threads(one_call, limit + 1)
    try:
        clock.run(until=clock.now + 10)
    finally:
        clock.stop()

    assert clock.errors == []
    assert len(graph.accepted) == limit
    assert graph.throttled == 1
