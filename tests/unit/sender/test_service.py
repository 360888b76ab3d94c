"""The sender's logic on in-memory ports: what reaches Meta, exactly, and the status each message ends in.

The windows' and error codes' edges are in test_policy.py and test_errors.py; here each outcome is
followed through the service: the record's final status and reason, the bodies handed to the Send API,
the statuses published, the Retry raised and its delay, the account's state.
"""

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import pytest

from igdm.meta.echoes import Echo, Unsettled, fingerprint, marker
from igdm.runtime.fifo_consumer import Retry
from igdm.store.account_directory import AccountLookupFailed
from igdm.store.accounts import ACTIVE, NEEDS_REAUTHORISATION, Account
from igdm.store.outbound_records import DELIVERED, OutboundRecord
from igdm.store.rate_limits import Slot
from local.samples import outbound as out
from sender.graph import Accepted, Ambiguous, NotSent
from sender.service import Sender
from tests.fakes.clock import ManualClock
from tests.fakes.metrics import CountedMetrics
from tests.fakes.sender import (
    GraphRequest,
    LastMessages,
    MemoryAccounts,
    MemoryComments,
    MemoryLimiter,
    MemoryRecords,
    PublishedStatuses,
    ScriptedGraph,
    refused,
)

ACCOUNT, CUSTOMER = out.ACCOUNT, out.CUSTOMER
TOKEN = "token-of-the-account"
NOW = 1_800_000_000.0
NOW_MS = int(NOW * 1000)
HOUR_MS = 3_600_000
TEXT = out.KINDS["text"]["text"]
TO_CUSTOMER = {"recipient": {"id": CUSTOMER}}
COMMENT = "17999999999999999"  # out.private_reply's comment


@dataclass
class World:
    clock: ManualClock
    records: MemoryRecords
    accounts: MemoryAccounts
    graph: ScriptedGraph
    limiter: MemoryLimiter
    statuses: PublishedStatuses
    conversations: LastMessages
    metrics: CountedMetrics
    sender: Sender
    comments: MemoryComments

    def send(self, message: dict[str, Any], *, receive_count: int = 1, sqs_message_id: str = "sqs-1") -> str:
        return self.sender.process(json.dumps(message), sqs_message_id=sqs_message_id, receive_count=receive_count)

    def record(self, idempotency_key: str) -> OutboundRecord:
        record = self.records.get(idempotency_key)
        assert record is not None, f"no record for {idempotency_key}"
        return record


def world(
    *,
    said_hours_ago: float | None = 1,
    account_status: str = ACTIVE,
    max_receive_count: int = 10,
    records_of: Callable[[ManualClock], MemoryRecords] = MemoryRecords,
) -> World:
    """One account with one customer, who last wrote ``said_hours_ago`` (None: never)."""
    clock = ManualClock(NOW)
    records = records_of(clock)
    accounts = MemoryAccounts(Account(ACCOUNT, account_status, f"accounts/{ACCOUNT}", "shop"), tokens={ACCOUNT: TOKEN})
    graph, limiter, statuses = ScriptedGraph(), MemoryLimiter(clock), PublishedStatuses()
    conversations, metrics, comments = LastMessages(), CountedMetrics(), MemoryComments()
    if said_hours_ago is not None:
        conversations.said(ACCOUNT, CUSTOMER, NOW_MS - int(said_hours_ago * HOUR_MS))
    sender = Sender(
        records=records,
        accounts=accounts,
        graph=graph,
        limiter=limiter,
        statuses=statuses,
        conversations=conversations,
        metrics=metrics,
        max_receive_count=max_receive_count,
        clock=clock,
        sleep=clock.sleep,
        comments=comments,
    )
    return World(clock, records, accounts, graph, limiter, statuses, conversations, metrics, sender, comments)


def text_body(key: str, part: int = 0, text: str = TEXT, **envelope: Any) -> dict[str, Any]:
    """The Send API body of a text, with the echo marker of ``key``'s part ``part``."""
    return {**TO_CUSTOMER, **envelope, "message": {"text": text, "metadata": marker(key, part)}}


# ---- sending once


def test_a_text_goes_to_meta_once_as_its_documented_body_and_ends_sent() -> None:
    w = world()
    assert w.send(out.outbound("text", key="k1")) == "SENT"
    assert w.graph.requests == [GraphRequest(TOKEN, text_body("k1"))]
    record = w.record("k1")
    assert (record.status, record.parts_sent, record.message_ids, record.inflight_part) == ("SENT", 1, ["m_1"], None)
    assert (record.account_id, record.customer_id, record.correlation_id) == (ACCOUNT, CUSTOMER, "order-123-text")
    assert w.statuses.names("k1") == ["SENT"]
    assert w.limiter.reserved == [(ACCOUNT, "text")]


def test_a_redelivered_message_that_was_sent_is_not_sent_again_and_its_status_is_published_again() -> None:
    w = world()
    message = out.outbound("text", key="once")
    assert w.send(message) == "SENT"
    # SQS may deliver it again, and a producer may send it again with its keys in another order.
    assert w.send(message, receive_count=2) == "SENT"
    reordered = json.dumps(message, indent=2, sort_keys=True)
    assert w.sender.process(reordered, sqs_message_id="sqs-2", receive_count=1) == "SENT"
    assert len(w.graph.requests) == 1
    assert w.statuses.names("once") == ["SENT", "SENT", "SENT"]  # the first publication may have been lost


def test_a_key_reused_for_another_message_is_a_conflict_and_leaves_the_first_ones_record_alone() -> None:
    w = world()
    assert w.send(out.outbound("text", key="reused")) == "SENT"
    before = w.record("reused")
    other = out.outbound("text", key="reused", message={"type": "text", "text": "something else"})
    assert w.send(other) == "CONFLICT"
    assert w.record("reused") == before
    assert w.graph.bodies == [text_body("reused")]
    assert w.statuses.names("reused") == ["SENT"]


@pytest.mark.parametrize(
    "conflicting",
    [
        {"message": {"type": "text", "text": "x" * 20_001}},  # invalid
        {"account_id": "17841499999999999"},  # names an account this stack does not have
        {"message": {"type": "nope"}, "recipient": {"id": "7777"}},  # invalid, in another conversation
    ],
    ids=["invalid", "unknown-account", "invalid-elsewhere"],
)
def test_a_reused_key_on_a_message_that_cannot_be_sent_leaves_the_pending_message_alone(
    conflicting: dict[str, Any],
) -> None:
    w = world()
    first = out.outbound("text", key="reused", message={"type": "text", "text": "the first"})
    w.graph.answer(refused(500, None))  # Meta fails for now: the first message waits, PENDING
    with pytest.raises(Retry):
        w.send(first)
    waiting = w.record("reused")
    assert w.send({**out.outbound("text", key="reused", recipient={"id": "5555"}), **conflicting}) == "CONFLICT"
    assert w.record("reused") == waiting and waiting.status == "PENDING"
    assert w.send(first, receive_count=2) == "SENT"
    assert w.graph.bodies == [text_body("reused", text="the first")] * 2
    assert w.statuses.names("reused") == ["SENT"]  # no FAILED: the refusal was not its own


# ---- refused before Meta


def test_an_invalid_message_ends_failed_invalid_message_under_its_own_key_and_nothing_is_sent() -> None:
    w = world()
    assert w.send(out.outbound("text", key="bad-1", message={"type": "text", "text": "x" * 20_001})) == "FAILED"
    record = w.record("bad-1")
    assert (record.status, record.reason) == ("FAILED", "invalid_message")
    assert record.detail is not None and "message.text: text is 20001 UTF-8 bytes" in record.detail
    assert (record.account_id, record.customer_id, record.correlation_id) == (ACCOUNT, CUSTOMER, "order-123-text")
    assert w.graph.requests == []
    assert w.statuses.names("bad-1") == ["FAILED"]


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ("{not json", "body is not JSON"),
        ("[1, 2]", "body must be a JSON object"),
        ('{"not": "a message"}', "idempotency_key: Field required; recipient: Field required"),
        ('{"idempotency_key": "deep", "x": ' + "[" * 20_000 + "]" * 20_000 + "}", "nested too deeply"),
        # JSON allows an unpaired surrogate escape; Unicode does not (found by make chaos, seed 25974868).
        ('{"\\ud800": null}', "body must be a JSON object whose keys are valid Unicode text"),
    ],
    ids=["not-json", "not-an-object", "not-a-message", "deeply-nested", "surrogate-key"],
)
def test_a_body_without_a_usable_key_fails_under_its_sqs_message_id(body: str, detail: str) -> None:
    w = world()
    assert w.sender.process(body, sqs_message_id="abc", receive_count=1) == "FAILED"
    record = w.record("sqs-abc")
    assert (record.status, record.reason, record.kind, record.customer_id) == (
        "FAILED",
        "invalid_message",
        "invalid",
        None,
    )
    assert record.detail is not None and detail in record.detail
    assert w.graph.requests == [] and w.statuses.names("sqs-abc") == ["FAILED"]


def test_a_callback_url_a_deployed_stack_may_not_call_makes_the_message_invalid() -> None:
    w = world()
    message = out.outbound("text", key="bad-callback", callback_url="http://127.0.0.1:9/cb")
    assert w.send(message) == "FAILED"
    record = w.record("bad-callback")
    assert (record.reason, record.detail) == ("invalid_message", "callback_url: the URL must be https")
    assert record.callback_url is None  # the FAILED status goes to the events queue only
    assert w.graph.requests == []


def test_a_message_from_an_account_this_stack_does_not_have_fails_no_account() -> None:
    w = world()
    assert w.send(out.outbound("text", key="stranger", account_id="17841499999999999")) == "FAILED"
    record = w.record("stranger")
    assert (record.reason, record.detail) == ("no_account", "account 17841499999999999 is not registered in this stack")
    assert w.graph.requests == []


def test_an_account_that_needs_reauthorisation_sends_nothing() -> None:
    w = world(account_status=NEEDS_REAUTHORISATION)
    assert w.send(out.outbound("text", key="while-dead")) == "FAILED"
    assert w.record("while-dead").reason == "token_invalid"
    assert w.graph.requests == []


# ---- the messaging windows


def test_outside_the_24_hour_window_a_bots_message_is_refused_before_meta() -> None:
    w = world(said_hours_ago=25)
    assert w.send(out.outbound("text", key="late")) == "FAILED"
    record = w.record("late")
    assert (record.status, record.reason) == ("FAILED", "window_closed")
    assert record.detail is not None and "25.0 hours old" in record.detail
    assert w.graph.requests == [] and w.statuses.names("late") == ["FAILED"]


def test_a_customer_who_never_wrote_is_not_messaged() -> None:
    w = world(said_hours_ago=None)
    assert w.send(out.outbound("text", key="never-wrote", human_agent=True)) == "FAILED"
    assert w.record("never-wrote").reason == "window_closed"
    assert w.graph.requests == []


def test_a_human_agents_message_after_24_hours_goes_tagged_human_agent() -> None:
    w = world(said_hours_ago=30)
    assert w.send(out.outbound("text", key="human", human_agent=True)) == "SENT"
    assert w.graph.bodies == [text_body("human", messaging_type="MESSAGE_TAG", tag="HUMAN_AGENT")]


def test_inside_24_hours_a_human_agents_message_goes_untagged() -> None:
    w = world(said_hours_ago=23)
    assert w.send(out.outbound("text", key="human-early", human_agent=True)) == "SENT"
    assert w.graph.bodies == [text_body("human-early")]  # HUMAN_AGENT only where it is needed


def test_past_7_days_even_a_human_agents_message_is_refused() -> None:
    w = world(said_hours_ago=24 * 8)
    assert w.send(out.outbound("text", key="human-late", human_agent=True)) == "FAILED"
    record = w.record("human-late")
    assert record.reason == "window_closed" and record.detail is not None and "8.0 days old" in record.detail
    assert w.graph.requests == []


def test_a_private_reply_is_governed_by_its_comment_not_a_conversation_window() -> None:
    w = world(said_hours_ago=None)
    w.comments.seen(ACCOUNT, COMMENT, NOW_MS - HOUR_MS)  # the comment's webhook came an hour ago
    assert w.send(out.private_reply(key="private-1")) == "SENT"
    assert w.graph.bodies == [
        {
            "recipient": {"comment_id": "17999999999999999"},
            "message": {"text": "Sent you the details in DM!", "metadata": marker("private-1", 0)},
        }
    ]
    assert w.limiter.reserved == [(ACCOUNT, "private_reply")]


# ---- ambiguous outcomes: settled by the echo, never by a resend


def test_an_ambiguous_answer_ends_unknown_waits_for_its_echo_and_is_never_resent() -> None:
    w = world()
    w.graph.answer(Ambiguous("no answer within the read timeout"))
    message = out.outbound("text", key="ambiguous")
    assert w.send(message) == "UNKNOWN"
    record = w.record("ambiguous")
    assert (record.status, record.reason, record.inflight_part) == ("UNKNOWN", "ambiguous_outcome", None)
    assert w.records.unsettled(ACCOUNT, CUSTOMER) == [
        Unsettled("ambiguous", fingerprint(TEXT, None), marker("ambiguous", 0), NOW_MS, NOW_MS)
    ]
    assert w.send(message, receive_count=2) == "UNKNOWN"
    assert len(w.graph.requests) == 1
    assert w.statuses.names("ambiguous") == ["UNKNOWN", "UNKNOWN"]


def test_metas_invalid_json_reply_may_have_sent_the_message_so_it_is_unknown() -> None:
    w = world()
    w.graph.answer(refused(500, 1, 1357046, "An unknown error occurred"))
    assert w.send(out.outbound("text", key="invalid-reply")) == "UNKNOWN"
    record = w.record("invalid-reply")
    assert record.reason == "ambiguous_outcome" and record.error is not None
    assert (record.error["code"], record.error["subcode"]) == (1, 1357046)
    assert len(w.graph.requests) == 1


@pytest.mark.parametrize(
    ("echo_marker", "settled"),
    [
        (marker("late-answer", 0), DELIVERED),  # its own marker
        (None, DELIVERED),  # no metadata on echoes: the same text, stamped during the attempt
        (marker("another-message", 0), "UNKNOWN"),  # another message's echo proves nothing about this one
    ],
    ids=["marker", "fingerprint", "other-marker"],
)
def test_an_echo_already_stored_settles_an_ambiguous_send(echo_marker: str | None, settled: str) -> None:
    w = world()
    w.graph.answer(Ambiguous("no answer within the read timeout"))
    w.records.store_echo(ACCOUNT, CUSTOMER, Echo("m_echo", fingerprint(TEXT, None), echo_marker, NOW_MS))
    assert w.send(out.outbound("text", key="late-answer")) == settled
    assert w.record("late-answer").status == settled
    assert w.statuses.names("late-answer") == ["UNKNOWN"] + ([DELIVERED] if settled == DELIVERED else [])
    assert len(w.records.unsettled(ACCOUNT, CUSTOMER)) == (0 if settled == DELIVERED else 1)


def test_a_part_left_in_flight_by_an_attempt_that_died_is_unknown_and_never_resent() -> None:
    w = world()
    w.graph.answer(TimeoutError("the invocation ended in the middle of the call"))
    message = out.outbound("text", key="crash")
    with pytest.raises(TimeoutError):
        w.send(message)
    assert w.record("crash").inflight_part == 0
    w.clock.advance(200)  # the visibility timeout, then SQS delivers it again
    assert w.send(message, receive_count=2) == "UNKNOWN"
    record = w.record("crash")
    assert record.detail == "an earlier attempt stopped while part 1 was being sent; it is not sent again"
    assert len(w.graph.requests) == 1
    (waiting,) = w.records.unsettled(ACCOUNT, CUSTOMER)
    assert (waiting.started_ms, waiting.ended_ms) == (NOW_MS, NOW_MS + 200_000)  # the attempt that died


# ---- when the record is written


def test_a_first_receive_writes_the_record_only_as_its_first_part_goes_out_already_in_flight() -> None:
    w = world()
    w.graph.answer(TimeoutError("the invocation ended in the middle of the call"))
    message = out.outbound("text", key="one-write")
    with pytest.raises(TimeoutError):
        w.send(message)
    record = w.record("one-write")  # created and marked at once: nothing can fall between the two
    assert (record.status, record.inflight_part, record.inflight_at) == ("PENDING", 0, iso(NOW))
    assert w.send(message, receive_count=2) == "UNKNOWN"
    assert len(w.graph.requests) == 1


class DecliningLinks(MemoryRecords):
    """Records whose part_sent_linked never applies (a receipt of the mid came first, the record moved on)."""

    def part_sent_linked(self, record: OutboundRecord, part: int, message_id: str, last: bool) -> OutboundRecord | None:
        return None


@pytest.mark.parametrize("declined", [False, True], ids=["one-transaction", "step-by-step"])
def test_a_part_sent_is_recorded_and_linked_in_one_request_or_else_in_two_to_the_same_end(declined: bool) -> None:
    w = world(records_of=DecliningLinks if declined else MemoryRecords)
    assert w.send(out.outbound("text_with_media", key="two")) == "SENT"
    record = w.record("two")
    assert (record.parts_sent, record.message_ids, record.inflight_part) == (2, ["m_1", "m_2"], None)
    assert [w.records.mids[m]["idempotency_key"] for m in record.message_ids] == ["two", "two"]
    assert w.statuses.of("two") == [record]


def test_a_key_taken_before_a_first_receive_is_not_failed_by_a_check_that_no_longer_passes() -> None:
    w = world()
    message = out.outbound("text", key="sent-before")
    assert w.send(message) == "SENT"
    w.conversations.said(ACCOUNT, CUSTOMER, NOW_MS - 30 * HOUR_MS)  # the window has closed since
    # The producer queues it again: SQS counts a first receive, and its record is found, not failed.
    assert w.send(message, sqs_message_id="sqs-2") == "SENT"
    assert w.statuses.names("sent-before") == ["SENT", "SENT"]
    assert w.record("sent-before").reason is None


def test_a_message_queued_again_after_it_took_the_conversation_back_does_not_take_it_again() -> None:
    w = world()
    w.conversations.record_owner(ACCOUNT, CUSTOMER, INBOX, NOW_MS - 1000)
    message = out.outbound("text", key="take-once", take_control=True)
    assert w.send(message) == "SENT"
    w.conversations.record_owner(ACCOUNT, CUSTOMER, INBOX, NOW_MS + 1000)  # a person took the conversation since
    assert w.send(message, sqs_message_id="sqs-2") == "SENT"
    assert [r.endpoint for r in w.graph.requests] == ["take_thread_control", "messages"]
    assert w.conversations.owner(ACCOUNT, CUSTOMER) == INBOX


def test_a_key_taken_while_a_first_receive_waited_for_its_slot_is_sent_once() -> None:
    w = world()
    message = out.outbound("text", key="raced")
    raced: list[str] = []

    class AnotherReceiveMeanwhile(MemoryLimiter):
        def acquire(self, account_id: str, rate_class: str, max_wait: float = 0.0) -> Slot:
            if not raced:  # the same key, in another message group, gets there first
                raced.append("racing")
                raced.append(w.send(message, receive_count=2, sqs_message_id="sqs-2"))
            return super().acquire(account_id, rate_class, max_wait)

    w.sender.limiter = AnotherReceiveMeanwhile(w.clock)
    assert w.send(message) == "SENT" and raced == ["racing", "SENT"]
    assert len(w.graph.requests) == 1
    assert w.statuses.names("raced") == ["SENT", "SENT"]  # found sent: its status again, nothing more


# ---- several parts


def test_a_multi_part_message_goes_part_by_part_in_order_and_ends_sent_with_every_mid() -> None:
    w = world()
    key = "two-parts"
    assert w.send(out.outbound("text_with_media", key=key)) == "SENT"
    assert w.graph.bodies == [
        text_body(key, 0, "Here is your invoice"),
        {
            **TO_CUSTOMER,
            "message": {
                "attachment": {"type": "file", "payload": {"url": f"{out.HTTPS}/invoice.pdf"}},
                "metadata": marker(key, 1),
            },
        },
    ]
    record = w.record(key)
    assert (record.status, record.parts_total, record.parts_sent, record.message_ids) == (
        "SENT",
        2,
        2,
        ["m_1", "m_2"],
    )
    assert w.statuses.names(key) == ["SENT"]  # once, when the last part went out


def test_a_retry_resumes_after_the_last_part_that_went_out() -> None:
    w = world()
    key = "resumed"
    w.graph.answer(Accepted("m_first", CUSTOMER, None), refused(500, None))
    with pytest.raises(Retry):
        w.send(out.outbound("text_with_media", key=key))
    record = w.record(key)
    assert (record.status, record.parts_sent, record.refusals, record.inflight_part) == ("PENDING", 1, 1, None)
    assert w.send(out.outbound("text_with_media", key=key), receive_count=2) == "SENT"
    assert [b["message"]["metadata"] for b in w.graph.bodies] == [marker(key, 0), marker(key, 1), marker(key, 1)]
    assert w.record(key).message_ids == ["m_first", "m_3"]


def test_a_long_text_goes_as_ordered_parts_of_at_most_1000_bytes() -> None:
    w = world()
    words = " ".join(f"word{i:04d}" for i in range(250))  # 2,249 bytes: three parts
    assert w.send(out.outbound("text", key="long", message={"type": "text", "text": words})) == "SENT"
    texts = [b["message"]["text"] for b in w.graph.bodies]
    assert len(texts) == 3 and " ".join(texts) == words
    assert all(len(t.encode()) <= 1000 for t in texts)
    assert [b["message"]["metadata"] for b in w.graph.bodies] == [marker("long", p) for p in range(3)]


# ---- Meta's refusals


def test_metas_throttle_pauses_the_account_for_the_time_meta_names_and_hands_the_message_back() -> None:
    w = world()
    usage = {ACCOUNT: [{"type": "instagram", "call_count": 100, "estimated_time_to_regain_access": 5}]}
    w.graph.answer(refused(400, 80002, message="Too many calls", usage=usage))
    message = out.outbound("text", key="throttled")
    with pytest.raises(Retry) as retry:
        w.send(message)
    assert retry.value.delay == 300  # Meta's five minutes
    assert w.limiter.paused_until[ACCOUNT] == NOW + 300
    record = w.record("throttled")
    assert (record.status, record.refusals, record.inflight_part) == ("PENDING", 1, None)
    w.clock.advance(300)
    assert w.send(message, receive_count=2) == "SENT"
    assert w.graph.bodies == [text_body("throttled")] * 2


def test_a_throttle_without_metas_estimate_pauses_up_to_a_minute(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(random, "random", lambda: 1.0)  # the top of the jitter range
    w = world()
    w.graph.answer(refused(429, 4, message="Application request limit reached"))
    with pytest.raises(Retry) as retry:
        w.send(out.outbound("text", key="throttled"))
    assert retry.value.delay == 60
    assert w.limiter.paused_until[ACCOUNT] == NOW + 60


def test_an_account_paused_beyond_the_inline_wait_hands_the_message_back_unsent() -> None:
    w = world()
    w.limiter.pause(ACCOUNT, 30)
    with pytest.raises(Retry) as retry:
        w.send(out.outbound("text", key="paused"))
    assert retry.value.delay == 30
    assert w.graph.requests == []
    record = w.record("paused")
    assert (record.status, record.refusals, record.inflight_part) == ("PENDING", 0, None)


def test_a_slot_less_than_a_second_away_is_waited_for_inside_the_invocation() -> None:
    w = world()
    w.limiter.pause(ACCOUNT, 0.5)
    assert w.send(out.outbound("text", key="short-wait")) == "SENT"
    assert w.clock.slept == [0.5]


def test_a_transient_failure_is_retried_with_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(random, "random", lambda: 1.0)
    w = world()
    w.graph.answer(refused(500, None), NotSent("connection refused"))
    message = out.outbound("text", key="flaky")
    with pytest.raises(Retry) as first:
        w.send(message)
    with pytest.raises(Retry) as second:
        w.send(message, receive_count=2)
    assert (first.value.delay, second.value.delay) == (2.0, 4.0)  # by Meta's answers so far
    assert w.send(message, receive_count=3) == "SENT"
    assert len(w.graph.requests) == 3 and w.statuses.names("flaky") == ["SENT"]


def test_on_the_last_receive_a_failure_ends_failed_retries_exhausted_rather_than_in_the_dlq() -> None:
    w = world(max_receive_count=3)
    w.graph.answer(refused(503, None, message="Service temporarily unavailable"))
    assert w.send(out.outbound("text", key="exhausted"), receive_count=3) == "FAILED"
    record = w.record("exhausted")
    assert (record.reason, record.error is not None and record.error["http_status"]) == ("retries_exhausted", 503)
    assert record.detail == "Meta had a transient failure; gave up after 1 attempts in 3 receives"
    assert w.statuses.names("exhausted") == ["FAILED"]


def test_metas_temporary_codes_give_up_after_three_answers() -> None:
    w = world()
    message = out.outbound("text", key="code-2")
    for receive_count in (1, 2):
        w.graph.answer(refused(500, 2, message="Service temporarily unavailable"))
        with pytest.raises(Retry):
            w.send(message, receive_count=receive_count)
    w.graph.answer(refused(500, 2, message="Service temporarily unavailable"))
    assert w.send(message, receive_count=3) == "FAILED"
    record = w.record("code-2")
    assert (record.reason, record.detail) == (
        "retries_exhausted",
        "Meta had a temporary failure; gave up after 3 attempts",
    )
    assert len(w.graph.requests) == 3


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (refused(403, 10, 2534022, "This message is sent outside of allowed window."), "window_closed"),
        (refused(400, 100, message="(#100) Invalid parameter"), "meta_rejected"),
        (refused(400, 551, message="This person isn't available right now."), "recipient_unavailable"),
        (refused(403, 200, message="Permissions error"), "permission_denied"),
    ],
    ids=["window", "invalid-parameter", "recipient-unavailable", "permission"],
)
def test_a_permanent_refusal_fails_at_once_with_metas_details(answer: Any, reason: str) -> None:
    w = world()
    w.graph.answer(answer)
    assert w.send(out.outbound("text", key="refused")) == "FAILED"
    record = w.record("refused")
    assert (record.status, record.reason, record.detail) == ("FAILED", reason, answer.error.message)
    assert record.error == answer.error.as_dict()
    assert len(w.graph.requests) == 1  # never retried
    assert w.statuses.names("refused") == ["FAILED"]


def test_if_meta_refuses_the_metadata_field_messages_go_without_it_from_then_on() -> None:
    w = world()
    w.graph.answer(refused(400, 100, message="(#100) Param message[metadata] is not supported"))
    assert w.send(out.outbound("text", key="no-metadata-1")) == "SENT"
    assert w.send(out.outbound("text", key="no-metadata-2")) == "SENT"
    assert w.graph.bodies == [
        text_body("no-metadata-1"),
        {**TO_CUSTOMER, "message": {"text": TEXT}},
        {**TO_CUSTOMER, "message": {"text": TEXT}},
    ]


# ---- the account's token


def test_a_token_meta_rejects_even_after_reading_it_again_marks_the_account_for_reauthorisation() -> None:
    w = world()
    expired = refused(401, 190, 463, "Session has expired")
    w.graph.answer(expired, expired)
    assert w.send(out.outbound("text", key="dead-token")) == "FAILED"
    record = w.record("dead-token")
    assert (record.reason, record.error is not None and record.error["code"]) == ("token_invalid", 190)
    account = w.accounts.resolve(ACCOUNT)
    assert (account.status, account.status_detail) == (NEEDS_REAUTHORISATION, "Session has expired")
    assert len(w.graph.requests) == 2  # the token was read again once
    assert w.send(out.outbound("text", key="while-dead")) == "FAILED"
    assert w.record("while-dead").reason == "token_invalid"
    assert len(w.graph.requests) == 2  # nothing more went to Meta


def test_a_token_renewed_since_it_was_cached_is_read_again_after_190() -> None:
    w = world()
    w.accounts.secrets[ACCOUNT] = "renewed-token"  # the refresher renewed it; the cache still serves the old one
    w.graph.answer(refused(401, 190, message="Error validating access token"))
    assert w.send(out.outbound("text", key="after-refresh")) == "SENT"
    assert [r.token for r in w.graph.requests] == [TOKEN, "renewed-token"]
    assert w.accounts.resolve(ACCOUNT).status == ACTIVE


def test_a_token_that_cannot_be_read_is_retried_and_never_taken_as_a_possible_send() -> None:
    w = world()
    w.accounts.unreadable_token_reads = 1
    message = out.outbound("text", key="secret-hiccup")
    with pytest.raises(AccountLookupFailed):
        w.send(message)
    assert w.records.get("secret-hiccup") is None  # nothing in flight: nothing written at all
    assert w.send(message, receive_count=2) == "SENT"
    assert len(w.graph.requests) == 1


# ---- receipts that came before the send was recorded


def test_an_echo_and_a_read_recorded_before_the_mid_are_applied_once_it_is_known() -> None:
    w = world()
    w.graph.answer(Accepted("m_fast", CUSTOMER, None))
    w.records.receipt("m_fast", DELIVERED, NOW_MS, ACCOUNT, CUSTOMER)
    w.records.receipt("m_fast", "READ", NOW_MS, ACCOUNT, CUSTOMER)
    assert w.send(out.outbound("text", key="fast")) == "READ"
    assert w.statuses.names("fast") == ["SENT", "DELIVERED", "READ"]


def test_a_read_from_another_conversation_recorded_first_is_not_applied() -> None:
    w = world()
    w.graph.answer(Accepted("m_foreign", CUSTOMER, None))
    w.records.receipt("m_foreign", "READ", NOW_MS, ACCOUNT, "4444")
    assert w.send(out.outbound("text", key="read-elsewhere")) == "SENT"
    assert w.statuses.names("read-elsewhere") == ["SENT"]


# ---- validity (valid_until)


def iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat()


def test_a_message_already_past_its_validity_ends_expired_without_a_call_to_meta() -> None:
    w = world()
    assert w.send(out.outbound("text", key="late", valid_until=iso(NOW - 60))) == "FAILED"
    record = w.record("late")
    assert (record.status, record.reason) == ("FAILED", "expired")
    assert "nothing was sent" in (record.detail or "")
    assert w.graph.requests == [] and w.limiter.reserved == []
    assert w.statuses.names("late") == ["FAILED"]


def test_a_message_within_its_validity_is_sent() -> None:
    w = world()
    assert w.send(out.outbound("text", key="in-time", valid_until="2027-01-15T10:00:00+01:00")) == "SENT"  # NOW + 1 h
    assert w.graph.bodies == [text_body("in-time")]


def test_a_retry_that_would_come_after_the_validity_ends_expired_now_not_late() -> None:
    w = world()
    w.graph.answer(refused(500, None))
    assert w.send(out.outbound("text", key="short-lived", valid_until=iso(NOW + 1))) == "FAILED"
    record = w.record("short-lived")
    assert (record.status, record.reason, record.refusals) == ("FAILED", "expired", 1)
    assert len(w.graph.requests) == 1  # the one try it had time for


def test_a_rate_wait_past_the_validity_expires_the_message_unsent() -> None:
    w = world()
    w.limiter.pause(ACCOUNT, 0.5)  # a slot half a second away, inside the inline wait, but after its validity
    assert w.send(out.outbound("text", key="no-time", valid_until=iso(NOW + 0.2))) == "FAILED"
    assert (w.record("no-time").reason, w.graph.requests) == ("expired", [])


def test_a_retried_message_whose_validity_passed_meanwhile_is_not_sent_late() -> None:
    w = world()
    w.limiter.pause(ACCOUNT, 30)
    message = out.outbound("text", key="waited", valid_until=iso(NOW + 120))
    with pytest.raises(Retry):
        w.send(message)
    w.clock.advance(200)  # SQS hands it back after its validity
    assert w.send(message, receive_count=2) == "FAILED"
    assert (w.record("waited").reason, w.graph.requests) == ("expired", [])


def test_a_validity_without_an_offset_is_refused_naming_the_field() -> None:
    w = world()
    assert w.send(out.outbound("text", key="naive", valid_until="2027-01-15T09:00:00")) == "FAILED"
    record = w.record("naive")
    assert record.reason == "invalid_message" and "valid_until" in (record.detail or "")


# ---- thread control (handover to the Instagram Inbox and back)


def test_passing_a_conversation_to_the_instagram_inbox_is_one_call_to_metas_endpoint_and_ends_sent() -> None:
    w = world()
    message = out.outbound(
        "text", key="to-inbox", message={"type": "pass_thread_control", "metadata": "wants a person"}
    )
    assert w.send(message) == "SENT"
    body = {**TO_CUSTOMER, "target_app_id": "1217981644879628", "metadata": "wants a person"}
    assert w.graph.requests == [GraphRequest(TOKEN, body, "pass_thread_control")]
    assert w.statuses.names("to-inbox") == ["SENT"]
    assert w.send(message, receive_count=2) == "SENT" and len(w.graph.requests) == 1  # exactly once


@pytest.mark.parametrize("kind", ["take_thread_control", "release_thread_control", "request_thread_control"])
def test_taking_releasing_or_requesting_control_calls_the_endpoint_of_that_name(kind: str) -> None:
    w = world(said_hours_ago=None)  # no window applies: the customer is sent nothing
    assert w.send(out.outbound("text", key=kind, message={"type": kind})) == "SENT"
    assert w.graph.requests == [GraphRequest(TOKEN, dict(TO_CUSTOMER), kind)]


def test_thread_control_meta_refuses_ends_failed_with_metas_reason() -> None:
    w = world()
    w.graph.answer(refused(400, 10, message="(#10) Take thread control is not supported for this app"))
    assert w.send(out.outbound("text", key="take", message={"type": "take_thread_control"})) == "FAILED"
    record = w.record("take")
    assert record.status == "FAILED" and record.error is not None and record.error["code"] == 10
    assert "not supported" in (record.detail or "")


def test_a_pass_to_another_app_names_it_and_only_a_pass_may_name_a_target() -> None:
    w = world()
    to_app = {"type": "pass_thread_control", "target_app_id": "263902037430900"}
    assert w.send(out.outbound("text", key="to-app", message=to_app)) == "SENT"
    assert w.graph.requests[0].body == {**TO_CUSTOMER, "target_app_id": "263902037430900"}
    wrong = {"type": "take_thread_control", "target_app_id": "263902037430900"}
    assert w.send(out.outbound("text", key="wrong", message=wrong)) == "FAILED"
    assert "target_app_id" in (w.record("wrong").detail or "") and len(w.graph.requests) == 1


# ---- who answers the conversation (thread owner)

INBOX = "1217981644879628"


def test_a_pass_records_the_inbox_as_the_owner_and_publishes_the_handover_the_gateway_made() -> None:
    w = world()
    assert w.send(out.outbound("text", key="to-inbox", message={"type": "pass_thread_control"})) == "SENT"
    assert w.conversations.owner(ACCOUNT, CUSTOMER) == INBOX
    [event] = w.statuses.events
    assert (event.kind, event.source, event.customer_id) == ("handover", "gateway", CUSTOMER)
    assert event.handover is not None and (event.handover.type, event.handover.new_owner_app_id) == (
        "pass_thread_control",
        INBOX,
    )


def test_while_the_inbox_owns_a_conversation_an_automated_message_is_refused_before_meta() -> None:
    w = world()
    w.conversations.record_owner(ACCOUNT, CUSTOMER, INBOX, NOW_MS - 1000)
    assert w.send(out.outbound("text", key="bot")) == "FAILED"
    record = w.record("bot")
    assert (record.status, record.reason) == ("FAILED", "thread_owned_by_inbox")
    assert "the Instagram Inbox answers this conversation" in (record.detail or "")
    assert w.graph.requests == []


def test_a_message_that_takes_control_back_takes_it_then_is_sent_in_that_order() -> None:
    w = world()
    w.conversations.record_owner(ACCOUNT, CUSTOMER, INBOX, NOW_MS - 1000)
    assert w.send(out.outbound("text", key="back", take_control=True)) == "SENT"
    assert [(r.endpoint, r.body) for r in w.graph.requests] == [
        ("take_thread_control", dict(TO_CUSTOMER)),
        ("messages", text_body("back")),
    ]
    assert w.conversations.owner(ACCOUNT, CUSTOMER) == "gateway"
    assert [e.handover.type for e in w.statuses.events if e.handover] == ["take_thread_control"]
    w.send(out.outbound("text", key="next"))  # the gateway answers again: no take before the next one
    assert [r.endpoint for r in w.graph.requests] == ["take_thread_control", "messages", "messages"]


def test_a_take_meta_refuses_ends_the_message_failed_unsent_with_metas_error() -> None:
    w = world()
    w.conversations.record_owner(ACCOUNT, CUSTOMER, INBOX, NOW_MS - 1000)
    w.graph.answer(refused(400, 10, message="(#10) take_thread_control is not supported for this app"))
    assert w.send(out.outbound("text", key="refused", take_control=True)) == "FAILED"
    record = w.record("refused")
    assert (record.reason, record.error and record.error["code"]) == ("thread_owned_by_inbox", 10)
    assert [r.endpoint for r in w.graph.requests] == ["take_thread_control"]


def test_a_take_without_an_answer_is_tried_again_and_the_message_goes_once() -> None:
    w = world()
    w.conversations.record_owner(ACCOUNT, CUSTOMER, INBOX, NOW_MS - 1000)
    w.graph.answer(Ambiguous("no answer within the read timeout"))
    message = out.outbound("text", key="retry-take", take_control=True)
    with pytest.raises(Retry):
        w.send(message)
    assert w.send(message, receive_count=2) == "SENT"
    assert [r.endpoint for r in w.graph.requests] == ["take_thread_control", "take_thread_control", "messages"]


def test_take_and_release_by_the_gateway_move_the_owner_and_a_request_does_not() -> None:
    w = world()
    w.conversations.record_owner(ACCOUNT, CUSTOMER, INBOX, NOW_MS - 1000)
    w.send(out.outbound("text", key="ask", message={"type": "request_thread_control"}))
    assert w.conversations.owner(ACCOUNT, CUSTOMER) == INBOX
    w.clock.advance(1)
    w.send(out.outbound("text", key="take", message={"type": "take_thread_control"}))
    assert w.conversations.owner(ACCOUNT, CUSTOMER) == "gateway"
    w.clock.advance(1)
    w.send(out.outbound("text", key="release", message={"type": "release_thread_control"}))
    assert w.conversations.owner(ACCOUNT, CUSTOMER) is None
    assert [e.handover.type for e in w.statuses.events if e.handover] == [
        "take_thread_control",
        "release_thread_control",
    ]


def test_a_pass_redelivered_after_it_was_sent_records_its_handover_again_with_the_same_event() -> None:
    w = world()
    message = out.outbound("text", key="to-inbox", message={"type": "pass_thread_control"})
    w.send(message)
    w.conversations.owners.clear()  # as if the attempt died between Meta's answer and recording the owner
    assert w.send(message, receive_count=2) == "SENT"
    assert w.conversations.owner(ACCOUNT, CUSTOMER) == INBOX and len(w.graph.requests) == 1
    assert len({e.event_id for e in w.statuses.events}) == 1  # the same event: the queue drops the repeat


def test_a_take_meta_keeps_failing_ends_the_message_failed_after_the_allowed_attempts_unsent() -> None:
    w = world()
    w.conversations.record_owner(ACCOUNT, CUSTOMER, INBOX, NOW_MS - 1000)
    message = out.outbound("text", key="never-back", take_control=True)
    for receive in range(1, 10):
        w.graph.answer(refused(500, None))
        with pytest.raises(Retry):
            w.send(message, receive_count=receive)
    w.graph.answer(refused(500, None))
    assert w.send(message, receive_count=10) == "FAILED"
    assert w.record("never-back").reason == "retries_exhausted"
    assert {r.endpoint for r in w.graph.requests} == {"take_thread_control"}


# ---- a paused account (tools.accounts pause)


def paused_world() -> World:
    w = world()
    account = w.accounts.accounts[ACCOUNT]
    w.accounts.accounts[ACCOUNT] = replace(account, paused_at="2027-01-15T07:00:00+00:00")
    return w


def test_a_paused_accounts_message_waits_unsent_and_goes_once_the_account_is_resumed() -> None:
    w = paused_world()
    message = out.outbound("text", key="held")
    delays = []
    for receive in (1, 2, 3):
        with pytest.raises(Retry) as held:
            w.send(message, receive_count=receive)
        delays.append(held.value.delay)
    assert delays == [60, 120, 240] and w.graph.requests == [] and w.statuses.published == []
    w.accounts.accounts[ACCOUNT] = replace(w.accounts.accounts[ACCOUNT], paused_at=None)
    assert w.send(message, receive_count=4) == "SENT"
    assert w.graph.bodies == [text_body("held")]


def test_a_paused_accounts_message_whose_validity_passes_first_ends_expired_unsent() -> None:
    w = paused_world()
    assert w.send(out.outbound("text", key="soon", valid_until=iso(NOW + 30))) == "FAILED"
    record = w.record("soon")
    assert (record.reason, w.graph.requests) == ("expired", []) and "is paused" in (record.detail or "")


def test_a_message_held_as_long_as_the_queue_keeps_it_ends_failed_account_paused() -> None:
    w = paused_world()
    assert w.send(out.outbound("text", key="forever"), receive_count=10) == "FAILED"  # max_receive_count
    assert (w.record("forever").reason, w.graph.requests) == ("account_paused", [])


def test_a_take_meta_refuses_with_190_marks_the_account_and_ends_token_invalid_unsent() -> None:
    w = world()
    w.conversations.record_owner(ACCOUNT, CUSTOMER, INBOX, NOW_MS - 1000)
    w.graph.answer(refused(400, 190, 460, message="Error validating access token"))
    assert w.send(out.outbound("text", key="dead", take_control=True)) == "FAILED"
    assert w.record("dead").reason == "token_invalid"
    assert w.accounts.accounts[ACCOUNT].status == "needs_reauthorisation"
    assert [r.endpoint for r in w.graph.requests] == ["take_thread_control"]


# ---- Meta's 2026 rules, before any call


@pytest.mark.parametrize("content_type", ["user_email", "user_phone_number"])
def test_quick_replies_meta_disabled_in_2026_are_refused_naming_the_rule(content_type: str) -> None:
    w = world()
    message = {"type": "text", "text": "Your e-mail?", "quick_replies": [{"content_type": content_type}]}
    assert w.send(out.outbound("text", key=content_type, message=message)) == "FAILED"
    record = w.record(content_type)
    assert record.reason == "invalid_message" and "disabled by Meta since 2026-10-05" in (record.detail or "")
    assert w.graph.requests == []


@pytest.mark.parametrize(
    "tag", ["ACCOUNT_UPDATE", "CONFIRMED_EVENT_UPDATE", "POST_PURCHASE_UPDATE", "CUSTOMER_FEEDBACK"]
)
def test_message_tags_meta_retired_are_refused_naming_the_rule(tag: str) -> None:
    w = world(said_hours_ago=30)
    assert w.send(out.outbound("text", key=tag, tag=tag)) == "FAILED"
    record = w.record(tag)
    assert record.reason == "invalid_message" and "retired" in (record.detail or "") and tag in (record.detail or "")
    assert w.graph.requests == []


def test_the_human_agent_tag_from_a_messenger_producer_is_the_human_agent_flag() -> None:
    w = world(said_hours_ago=30)
    assert w.send(out.outbound("text", key="tagged", tag="HUMAN_AGENT")) == "SENT"
    assert w.graph.bodies == [text_body("tagged", messaging_type="MESSAGE_TAG", tag="HUMAN_AGENT")]


# ---- private replies: Meta's rules before the call


def test_a_private_reply_to_a_comment_the_gateway_never_saw_is_refused_naming_the_rule() -> None:
    w = world()
    assert w.send(out.private_reply(key="unseen")) == "FAILED"
    record = w.record("unseen")
    assert record.reason == "comment_unknown" and "only to a comment, within 7 days" in (record.detail or "")
    assert w.graph.requests == []


def test_a_private_reply_more_than_seven_days_after_the_comment_is_refused() -> None:
    w = world()
    w.comments.seen(ACCOUNT, COMMENT, NOW_MS - 8 * 24 * HOUR_MS)
    assert w.send(out.private_reply(key="late")) == "FAILED"
    assert (w.record("late").reason, w.graph.requests) == ("private_reply_window_closed", [])


def test_one_private_reply_per_comment_and_the_same_one_again_is_not_a_second() -> None:
    w = world()
    w.comments.seen(ACCOUNT, COMMENT, NOW_MS - HOUR_MS)
    first = out.private_reply(key="first")
    assert w.send(first) == "SENT"
    assert w.comments.items[(ACCOUNT, COMMENT)].replied_by == "first"
    assert w.send(first, receive_count=2) == "SENT"  # its redelivery is the same reply, not a second
    assert w.send(out.private_reply(key="second")) == "FAILED"
    second = w.record("second")
    assert second.reason == "private_reply_already_sent" and "message first already replied" in (second.detail or "")
    assert len(w.graph.requests) == 1


def test_a_disconnected_account_sends_nothing_and_says_why() -> None:
    w = world(account_status="disconnected")
    assert w.send(out.outbound("text", key="removed")) == "FAILED"
    assert (w.record("removed").reason, w.graph.requests) == ("account_disconnected", [])


def test_each_part_has_its_own_three_tries_for_metas_codes_1_and_2() -> None:
    """Found by make chaos (seed 1409860460): a refusal of part 1 counted against part 2's three tries."""
    w = world()
    message = out.outbound("text_with_media", key="two-tries-each")
    w.graph.answer(refused(500, 2, transient=True))  # part 1: code 2 once, then it goes
    with pytest.raises(Retry):
        w.send(message)
    w.graph.answer(Accepted("m_1", CUSTOMER, None), refused(500, 2, transient=True))  # part 2: code 2 twice
    with pytest.raises(Retry):
        w.send(message, receive_count=2)
    w.graph.answer(refused(500, 2, transient=True))
    with pytest.raises(Retry):
        w.send(message, receive_count=3)
    assert w.send(message, receive_count=4) == "SENT"  # its third try
    assert len(w.graph.requests) == 5
