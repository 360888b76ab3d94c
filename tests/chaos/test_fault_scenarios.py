"""The fault scenarios of `make chaos`, short: AWS faults on the webhook path, Graph faults and crashes on
the sender, faults in the refresher's writes. Each counts from the table, the queues and the sandbox."""

import re

from chaos import reconcile_faults, refresher_faults, sender_faults, webhook_faults
from tests.chaos import SEED


def test_webhook_faults_lose_duplicate_and_reorder_no_event() -> None:
    result = webhook_faults.run(webhook_faults.WebhookFaultPlan(events=150, round_events=75, fault_rate=0.1), SEED)
    assert (result.lost, result.duplicated, result.out_of_order, result.violations) == (0, 0, 0, []), result.line()
    figures = result.figures
    assert figures["sent"] == figures["stored"] == figures["queued"] == 150
    assert figures["faults"] > 0 and figures["answered_503"] > 0  # the faults were felt: Meta had to retry


def test_graph_faults_on_a_fifth_of_sends_lose_duplicate_and_reorder_no_message() -> None:
    plan = sender_faults.SenderFaultPlan(messages=20, customers=4, fault_rate=0.3)
    result = sender_faults.run_graph_faults(plan, SEED)
    assert (result.lost, result.duplicated, result.out_of_order, result.violations) == (0, 0, 0, []), result.line()
    figures = result.figures
    assert figures["faults"] > 0 and figures["requests"] > figures["delivered_once"]  # some sends were retried
    # Every message ends in a final state: delivered once, UNKNOWN (a timeout Meta did not deliver behind),
    # FAILED (retries spent), or a known bug's outcome (chaos/known.py), each counted.
    accounted = figures["delivered_once"] + figures["unknown_not_delivered"] + figures["failed"]
    assert accounted + sum(result.known.values()) >= 20


def test_a_sender_dying_after_meta_answered_never_sends_twice() -> None:
    result = sender_faults.run_crash_after_send(sender_faults.CrashPlan(messages=10, customers=3, crash_rate=0.5), SEED)
    assert (result.lost, result.duplicated, result.out_of_order, result.violations) == (0, 0, 0, []), result.line()
    assert result.figures["crashes"] > 0
    # Delivered once; or, for a message of several parts whose crash came after Meta took part N, FAILED
    # partially_sent once part N's echo proves it went (the later parts are never guessed at).
    assert result.figures["delivered_once"] + result.figures["failed"] + sum(result.known.values()) == 10
    assert set(re.findall(r"\d+ (\w+) after \d+ of \d+ parts", result.summary)) <= {"partially_sent"}, result.line()


def test_the_refresher_failing_mid_write_never_leaves_an_account_without_a_working_token() -> None:
    result = refresher_faults.run(refresher_faults.RefresherFaultPlan(accounts=5), SEED)
    assert (result.lost, result.violations) == (0, []), result.line()
    assert result.figures["faults"] > 0
    assert result.figures["refreshed"] == 5  # and a later run completed every refresh


def test_webhooks_never_sent_or_sent_late_with_a_failing_conversations_api_lose_and_duplicate_nothing() -> None:
    result = reconcile_faults.run(reconcile_faults.ReconcileFaultPlan(messages=40, customers=5, fault_rate=0.3), SEED)
    assert (result.lost, result.duplicated, result.violations) == (0, 0, []), result.line()
    figures = result.figures
    assert figures["backfilled"] > 0 and figures["webhooked"] > 0  # both ways in were used
    assert figures["backfilled"] + figures["webhooked"] == figures["messages"] == 40
    assert figures["faults"] > 0  # and the reconciler met Instagram's failures on the way
    assert figures["unknown_sends"] == 4 and 0 < figures["unknown_delivered"] < 4  # both outcomes were settled
