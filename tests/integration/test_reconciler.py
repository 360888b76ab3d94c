"""The reconciler end to end: the real handler against moto with the template's resources and the Graph
sandbox as Instagram, whose webhooks for some messages never come (or come late) through the real webhook
handler. Every message ends on the events queue exactly once."""

import json
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from igdm.contracts.stored_events import expanded
from igdm.store.keys import conversation_pk, event_sk, key
from local.harnesses.outbound import ACCOUNT, CUSTOMER, Loop, outbound_loop
from local.samples import meta as m
from local.samples import outbound as out

RATE = 20  # the reconciler's Conversations API limit here (Meta's is 2): a quicker test
# The sandbox allows twice that: at the exact limit, a request the loaded test machine holds back by more than the
# limiter's 40 ms jitter allowance arrives next to the one after it and is throttled, and these tests are about
# what is backfilled, not about the limit (test_rate_limiter.py holds the same limiter to its limit).
SANDBOX_RATE = 2 * RATE


@pytest.fixture
def loop(monkeypatch: pytest.MonkeyPatch) -> Iterator[Loop]:
    with outbound_loop(monkeypatch, conversations_rate_per_second=SANDBOX_RATE) as running:
        monkeypatch.setenv("CONVERSATIONS_RATE_PER_SECOND", str(RATE))
        yield running


def message_events(loop: Loop) -> list[dict[str, Any]]:
    return [e for e in loop.events() if e["kind"] != "account_status"]


def messages_by_mid(events: list[dict[str, Any]]) -> Counter[str]:
    return Counter(e["message_id"] for e in events if e["kind"] not in ("message_status", "account_status"))


def test_fifty_messages_whose_webhooks_never_came_are_published_once_and_their_late_webhooks_add_nothing(
    loop: Loop,
) -> None:
    loop.sandbox.drop_webhooks(50)
    mids = [
        loop.sandbox.customer_says(ACCOUNT, f"90000000000000{c:02d}", f"message {k} of customer {c}")
        for c in range(10)
        for k in range(5)
    ]
    loop.sandbox.drain_webhooks()
    assert loop.events() == [] and len(loop.sandbox.dropped) == 50  # Meta sent nothing

    summary = loop.reconcile()
    events = [e for e in loop.events() if e["kind"] != "account_status"]
    assert messages_by_mid(events) == Counter(mids)  # each once
    assert {e["source"] for e in events} == {"backfill"} and {e["kind"] for e in events} == {"text"}
    assert (summary["conversations"], summary["backfilled"], summary["errors"], summary["unfinished"]) == (10, 50, 0, 0)
    first = next(e for e in events if e["message_id"] == mids[0])
    assert (first["customer_id"], first["text"], first["user_initiated"]) == (
        "9000000000000000",
        "message 0 of customer 0",
        True,
    )
    # Graph calls per reconciled conversation: its message ids, and the details of its five messages.
    assert summary["calls"] == 1 + 10 * 6

    assert loop.sandbox.redeliver_dropped() == 50  # Meta delivers them after all, hours late
    loop.sandbox.drain_webhooks()
    assert message_events(loop) == events  # the webhook found every one stored: nothing new published

    again = loop.reconcile()
    assert again["backfilled"] == 0 and message_events(loop) == events


def test_a_message_webhooked_first_and_found_again_by_the_reconciler_is_published_once(loop: Loop) -> None:
    delivered = loop.sandbox.customer_says(ACCOUNT, "9000000000000001", "this one's webhook came")
    loop.sandbox.drop_webhooks(1)
    missed = loop.sandbox.customer_says(ACCOUNT, "9000000000000001", "this one's did not")
    loop.sandbox.drain_webhooks()
    loop.reconcile()
    events = message_events(loop)
    assert messages_by_mid(events) == Counter([delivered, missed])
    assert {e["message_id"]: e["source"] for e in events} == {delivered: "messaging", missed: "backfill"}


def test_a_message_deleted_before_its_webhook_came_is_backfilled_without_its_content(loop: Loop) -> None:
    customer = "9000000000000003"
    loop.sandbox.drop_webhooks(1)
    missed = loop.sandbox.customer_says(ACCOUNT, customer, "my address is 1 Main St")
    loop.sandbox.drain_webhooks()
    deletion = m.inbound(
        {"message": {"mid": missed, "is_deleted": True}}, customer=customer, ts=int(time.time() * 1000)
    )
    loop.webhook(deletion)  # the deletion's webhook came: it left a tombstone where the message's event goes
    summary = loop.reconcile()  # Meta still gives the message's details here
    assert summary["backfilled"] == 1
    [backfilled] = [e for e in message_events(loop) if e["kind"] == "text"]
    assert (backfilled["message_id"], backfilled["source"], backfilled["text"]) == (missed, "backfill", None)
    assert backfilled["content_deleted"] is True and "1 Main St" not in json.dumps(backfilled)
    item = loop.stack_clients["dynamodb"].get_item(
        TableName=loop.stack.refs["GatewayTable"],
        Key=key(conversation_pk(ACCOUNT, customer), event_sk(backfilled["event_id"])),
        ConsistentRead=True,
    )["Item"]
    assert "tombstone" not in item and json.loads(expanded(item["event"]["S"])) == backfilled  # in its place
    assert loop.reconcile()["backfilled"] == 0  # stored now: found by the next run


def test_a_message_the_business_sent_from_the_instagram_app_arrives_as_its_echo(loop: Loop) -> None:
    loop.sandbox.customer_says(ACCOUNT, "9000000000000002", "do you ship to Lisbon?")
    loop.sandbox.drop_webhooks(1)
    answer = loop.sandbox.business_says(ACCOUNT, "9000000000000002", "yes, in two days")
    loop.sandbox.drain_webhooks()
    loop.reconcile()
    [echo] = [e for e in loop.events() if e["message_id"] == answer]
    assert (echo["kind"], echo["direction"], echo["source"], echo["text"]) == (
        "echo",
        "outbound",
        "backfill",
        "yes, in two days",
    )


def test_a_dropped_subscription_is_reported_and_restored_within_one_run(
    loop: Loop, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEBHOOK_SILENCE_SECONDS", "0")  # here, a message is overdue at once
    loop.sandbox.unsubscribe(ACCOUNT)  # Meta dropped the subscription after failed deliveries
    loop.sandbox.drop_webhooks(3)  # and so sends nothing
    for k in range(3):
        loop.sandbox.customer_says(ACCOUNT, "9000000000000003", f"hello? {k}")
    loop.sandbox.drain_webhooks()
    summary = loop.reconcile()
    assert (summary["backfilled"], summary["webhooks_silent"]) == (3, 1)
    changes = [e["account"]["change"] for e in loop.events() if e["kind"] == "account_status"]
    assert changes == ["history_imported", "webhooks_silent", "subscription_restored"]  # the account's first run
    required = loop.stack.function_environment("ReconcilerFunction")["WEBHOOK_FIELDS"].split(",")
    assert set(loop.sandbox.subscribed_fields(ACCOUNT)) >= set(required)


def test_unknown_sends_whose_echo_never_came_are_settled_within_one_run_and_never_resent(
    loop: Loop, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UNKNOWN_SETTLE_AFTER_SECONDS", "0")  # here, an echo had its chance at once
    loop.sandbox.customer_says(ACCOUNT, CUSTOMER, "where is my order?")  # opens the window; its webhook comes
    loop.sandbox.drain_webhooks()
    # Meta takes the first answer but answers too late, and its echo never comes; the second it never takes.
    loop.sandbox.inject("timeout", delay=loop.answer_timeout(1.0), deliver=True)
    loop.sandbox.drop_webhooks(1)
    loop.enqueue(out.outbound("text", key="reached", message={"type": "text", "text": "It ships tomorrow"}))
    loop.run()
    loop.sandbox.inject("timeout", delay=loop.answer_timeout(1.0))
    loop.enqueue(out.outbound("text", key="lost", message={"type": "text", "text": "Anything else?"}))
    loop.run()
    assert (loop.status_names("reached"), loop.status_names("lost")) == (["UNKNOWN"], ["UNKNOWN"])
    [mid] = [s.message_id for s in loop.sandbox.sent]

    summary = loop.reconcile()
    assert (summary["unknown_settled"], summary["unknown_left"], summary["errors"]) == (2, 0, 0)
    assert loop.status_names("reached") == ["UNKNOWN", "DELIVERED"]
    assert loop.status_names("lost") == ["UNKNOWN", "FAILED"]
    assert loop.statuses("lost")[-1]["reason"] == "not_delivered"
    assert len(loop.sandbox.sent) == 1  # nothing sent again
    # The answer itself comes in once, as the echo its webhook would have been.
    [echo] = [e for e in loop.events() if e["kind"] == "echo"]
    assert (echo["message_id"], echo["source"], echo["text"]) == (mid, "backfill", "It ships tomorrow")

    loop.sandbox.redeliver_dropped()  # the echo's webhook comes after all
    loop.sandbox.drain_webhooks()
    again = loop.reconcile()
    assert again["unknown_settled"] == 0
    assert [e for e in loop.events() if e["kind"] == "echo"] == [echo]
    # The late echo finds the message DELIVERED already: at most that status again, with the same event id,
    # which the events queue and consumers drop as a repeat.
    statuses = [
        e for e in loop.events() if e["kind"] == "message_status" and e["status"]["idempotency_key"] == "reached"
    ]
    assert {e["status"]["status"] for e in statuses[1:]} == {"DELIVERED"}
    assert len({e["event_id"] for e in statuses[1:]}) == 1
