"""The sender end to end in one process: outbound queue -> sender -> Graph sandbox -> echo and read
webhooks -> statuses on the events queue (the loop is in local/harnesses/outbound.py)."""

import json
import time
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from igdm.contracts.outbound import THREAD_CONTROL_KINDS
from igdm.queues.status_publisher import StatusNotPublished, StatusPublisher
from igdm.runtime import aws
from igdm.store.account_directory import AccountDirectory, AccountLookupFailed
from igdm.store.outbound_records import OutboundRecords
from local.aws.template import REGION
from local.harnesses.outbound import ACCOUNT, CUSTOMER, Loop
from local.samples import outbound as out
from sender.graph import GraphClient
from tests.unit.sender.test_graph_requests import sent

NOT_MESSAGES = ("react", "unreact", "typing_on", "typing_off", "mark_seen", *THREAD_CONTROL_KINDS)
MESSAGE_KINDS = [k for k in out.KINDS if k not in NOT_MESSAGES]


def test_every_kind_reaches_meta_as_the_documented_body_and_ends_delivered(loop: Loop) -> None:
    loop.say()
    for kind in out.KINDS:
        loop.enqueue(out.outbound(kind))
    loop.run()
    expected = [body for kind in out.KINDS for body in sent(kind)]
    assert sorted(map(json.dumps, loop.sent_to_meta())) == sorted(map(json.dumps, expected))
    for kind in MESSAGE_KINDS:
        assert loop.status_names(f"example-{kind}-0001") == ["SENT", "DELIVERED"], kind
    for kind in NOT_MESSAGES:  # no mid, no echo
        assert loop.status_names(f"example-{kind}-0001") == ["SENT"], kind
    status = loop.statuses("example-text_with_media-0001")[0]
    assert status["correlation_id"] == "order-123-text_with_media" and len(status["message_ids"]) == 2


def test_an_invalid_message_fails_with_its_reason_and_is_not_retried(loop: Loop) -> None:
    loop.say()
    bad = out.outbound("text", key="bad-1", message={"type": "text", "text": "x" * 20_001})
    loop.enqueue(bad)
    loop.enqueue({"not": "a message"})
    loop.run()
    assert loop.sent_to_meta() == []
    (failed,) = loop.statuses("bad-1")
    assert failed["status"] == "FAILED" and failed["reason"] == "invalid_message"
    assert "message.text: text is 20001 UTF-8 bytes" in failed["detail"]
    anonymous = [s for s in loop.statuses() if s["idempotency_key"].startswith("sqs-")]
    assert [s["reason"] for s in anonymous] == ["invalid_message"]
    record = OutboundRecords(aws.client("dynamodb"), loop.stack.refs["GatewayTable"], 1).get(
        anonymous[0]["idempotency_key"]
    )
    assert record is not None and (record.kind, record.customer_id) == ("invalid", None)
    assert loop._in_flight() == 0


def test_window_rules(loop: Loop) -> None:
    loop.enqueue(out.outbound("text", key="never-wrote"))
    loop.run()
    assert [(s["status"], s["reason"]) for s in loop.statuses("never-wrote")] == [("FAILED", "window_closed")]

    loop.say(hours_ago=30)
    loop.enqueue(out.outbound("text", key="bot-after-24h"))
    loop.enqueue(out.outbound("text", key="human-after-24h", human_agent=True))
    loop.run()
    assert loop.status_names("bot-after-24h") == ["FAILED"]
    assert loop.status_names("human-after-24h") == ["SENT", "DELIVERED"]
    (tagged,) = loop.sent_to_meta()
    assert tagged["tag"] == "HUMAN_AGENT" and tagged["messaging_type"] == "MESSAGE_TAG"

    loop.say(hours_ago=1, customer="1111", text="recent")
    loop.enqueue(out.outbound("text", key="human-within-24h", human_agent=True, recipient={"id": "1111"}))
    loop.run()
    assert "tag" not in loop.sent_to_meta()[-1]  # HUMAN_AGENT only where it is needed

    loop.say(hours_ago=24 * 8, customer="2222")
    loop.enqueue(out.outbound("text", key="human-after-7d", human_agent=True, recipient={"id": "2222"}))
    loop.run()
    assert [s["reason"] for s in loop.statuses("human-after-7d")] == ["window_closed"]
    assert len(loop.sent_to_meta()) == 2


def test_transient_faults_are_retried_and_end_delivered_with_one_send(loop: Loop) -> None:
    loop.say()
    loop.sandbox.inject("http_5xx", count=2)
    loop.enqueue(out.outbound("text", key="flaky"))
    loop.run(seconds=1)
    assert len(loop.sent_to_meta()) == 1
    assert loop.status_names("flaky") == ["SENT", "DELIVERED"]
    assert [r.status for r in loop.sandbox.requests] == [500, 500, 200]


def test_throttling_slows_down_and_retries(loop: Loop) -> None:
    loop.say()
    loop.sandbox.inject("throttle", code=80002)
    loop.enqueue(out.outbound("text", key="throttled"))
    loop.run(seconds=1)
    assert loop.status_names("throttled") == ["SENT", "DELIVERED"]
    assert len(loop.sent_to_meta()) == 1


def test_permanent_errors_fail_at_once_with_metas_details(loop: Loop) -> None:
    loop.say()
    loop.sandbox.inject(
        "error", status=403, code=10, subcode=2534022, message="This message is sent outside of allowed window."
    )
    loop.sandbox.inject("error", status=400, code=100, message="(#100) Invalid parameter")
    loop.enqueue(out.outbound("text", key="outside"))
    loop.enqueue(out.outbound("text", key="invalid-param"))
    loop.run()
    (outside,) = loop.statuses("outside")
    assert (outside["status"], outside["reason"], outside["error"]["code"], outside["error"]["subcode"]) == (
        "FAILED",
        "window_closed",
        10,
        2534022,
    )
    assert outside["error"]["fbtrace_id"]
    (invalid,) = loop.statuses("invalid-param")
    assert (invalid["reason"], invalid["error"]["code"]) == ("meta_rejected", 100)
    assert len(loop.sandbox.requests) == 2  # neither was retried


def test_an_ambiguous_timeout_becomes_unknown_and_the_echo_settles_it_without_a_resend(loop: Loop) -> None:
    loop.say()
    late = loop.answer_timeout(1.0)
    loop.sandbox.inject("timeout", delay=late, deliver=True)  # Meta sends it, but answers too late
    loop.enqueue(out.outbound("text", key="ambiguous"))
    loop.run()
    loop.sandbox.drain_webhooks(timeout=10)
    assert len(loop.sent_to_meta()) == 1
    assert loop.status_names("ambiguous") == ["UNKNOWN", "DELIVERED"]
    loop.enqueue(out.outbound("text", key="ambiguous"))  # redelivered by the producer: still never resent
    loop.run()
    assert len(loop.sent_to_meta()) == 1


def test_a_redelivered_message_is_sent_once(loop: Loop) -> None:
    loop.say()
    message = out.outbound("text", key="once")
    loop.enqueue(message)
    loop.run()
    loop.enqueue(message)
    loop.enqueue(message)
    loop.run()
    assert len(loop.sent_to_meta()) == 1
    assert loop.status_names("once").count("SENT") >= 1 and loop.status_names("once")[:2] == ["SENT", "DELIVERED"]


def test_a_sender_that_died_after_meta_answered_does_not_send_again(loop: Loop) -> None:
    loop.say()
    dynamodb = aws.client("dynamodb")
    state = {"armed": True}

    def die_recording_the_send(params: dict[str, Any], model: Any, **_: Any) -> None:
        # The write that records Meta's answer: part_sent's update, alone or in a transaction with the mid's link.
        updates = [params, *(item.get("Update", {}) for item in params.get("TransactItems", []))]
        if state["armed"] and any("parts_sent = :next" in str(u.get("UpdateExpression", "")) for u in updates):
            state["armed"] = False
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "injected"}}, model.name)

    for operation in ("UpdateItem", "TransactWriteItems"):
        dynamodb.meta.events.register(f"before-parameter-build.dynamodb.{operation}", die_recording_the_send)
    loop.enqueue(out.outbound("text", key="crash"))
    loop.run(seconds=1)
    assert len(loop.sent_to_meta()) == 1
    assert loop.status_names("crash") == ["UNKNOWN", "DELIVERED"]  # settled by the echo


def test_a_conversation_stays_in_order_under_retries(loop: Loop) -> None:
    loop.say()
    loop.sandbox.inject("http_5xx", count=1)
    for i in range(5):
        loop.enqueue(out.outbound("text", key=f"order-{i}", message={"type": "text", "text": f"part {i}"}))
    loop.run(seconds=1)
    assert [b["message"]["text"] for b in loop.sent_to_meta()] == [f"part {i}" for i in range(5)]


def test_a_read_receipt_moves_the_status_to_read(loop: Loop) -> None:
    loop.say()
    loop.enqueue(out.outbound("text", key="to-be-read"))
    loop.run()
    (sent,) = loop.sandbox.sent
    assert sent.message_id
    loop.sandbox.send_read(ACCOUNT, CUSTOMER, sent.message_id)
    loop.sandbox.drain_webhooks(timeout=10)
    assert loop.status_names("to-be-read") == ["SENT", "DELIVERED", "READ"]


def test_a_refreshed_token_is_read_again_after_190(loop: Loop) -> None:
    loop.say()
    secrets = boto3.client("secretsmanager", region_name=REGION)
    name = f"{loop.stack.function_environment('OnboardingFunction')['ACCOUNT_SECRET_PREFIX']}{ACCOUNT}"
    loop.enqueue(out.outbound("text", key="warm-up"))
    loop.run()  # the old token is now cached by the sender
    loop.sandbox.add_account(ACCOUNT, "renewed-token")
    secrets.put_secret_value(SecretId=name, SecretString=json.dumps({"access_token": "renewed-token"}))
    loop.sandbox.inject("error", status=401, code=190, message="Error validating access token")
    loop.enqueue(out.outbound("text", key="after-refresh"))
    loop.run()
    assert loop.status_names("after-refresh") == ["SENT", "DELIVERED"]


def test_a_dead_token_fails_and_marks_the_account(loop: Loop) -> None:
    loop.say()
    loop.sandbox.inject("error", count=2, status=401, code=190, subcode=463, message="Session has expired")
    loop.enqueue(out.outbound("text", key="dead-token"))
    loop.run()
    (failed,) = loop.statuses("dead-token")
    assert (failed["status"], failed["reason"]) == ("FAILED", "token_invalid")
    item = boto3.client("dynamodb", region_name=REGION).get_item(
        TableName=loop.stack.refs["GatewayTable"], Key={"pk": {"S": "ACCOUNTS"}, "sk": {"S": f"ACCOUNT#{ACCOUNT}"}}
    )["Item"]
    assert item["status"]["S"] == "needs_reauthorisation"
    loop.enqueue(out.outbound("text", key="while-dead"))
    loop.run()
    assert [s["reason"] for s in loop.statuses("while-dead")] == ["token_invalid"]
    assert len(loop.sandbox.requests) == 2  # nothing more went to Meta


def test_the_echo_of_an_early_part_does_not_settle_a_message_still_being_sent(
    loop: Loop, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop.say()
    original = GraphClient.send
    calls = []

    def second_part_after_the_first_ones_echo(
        self: GraphClient, token: str, body: dict[str, Any], endpoint: str = "messages"
    ) -> Any:
        calls.append(body)
        if len(calls) == 2:  # the echo of part 1 reaches the webhook before part 2 leaves
            loop.sandbox.drain_webhooks(timeout=10)
        return original(self, token, body, endpoint)

    monkeypatch.setattr(GraphClient, "send", second_part_after_the_first_ones_echo)
    loop.enqueue(out.outbound("text_with_media", key="two-parts"))
    loop.run(seconds=1)
    assert [b["message"].get("text") is not None for b in loop.sent_to_meta()] == [True, False]  # both parts
    assert loop.status_names("two-parts") == ["SENT", "DELIVERED"]
    (sent,) = [s for s in loop.statuses("two-parts") if s["status"] == "SENT"]
    assert len(sent["message_ids"]) == 2


def test_a_token_that_cannot_be_read_is_retried_not_taken_as_a_possible_send(
    loop: Loop, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop.say()
    original = AccountDirectory.token
    failures = [AccountLookupFailed("token secret unreadable: injected")]

    def flaky_token(self: AccountDirectory, account: Any, *, fresh: bool = False) -> str:
        if failures:
            raise failures.pop()
        return original(self, account, fresh=fresh)

    monkeypatch.setattr(AccountDirectory, "token", flaky_token)
    loop.enqueue(out.outbound("text", key="secret-hiccup"))
    loop.run(seconds=1)
    assert loop.status_names("secret-hiccup") == ["SENT", "DELIVERED"]  # not UNKNOWN: nothing had gone out
    assert len(loop.sent_to_meta()) == 1


def test_a_delivered_status_whose_publication_failed_is_published_when_meta_retries_the_echo(
    loop: Loop, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop.say()
    original = StatusPublisher.publish
    failures = [StatusNotPublished("injected: the events queue refused")]

    def fail_first_delivered(self: StatusPublisher, record: Any) -> Any:
        if record.status == "DELIVERED" and failures:
            raise failures.pop()
        return original(self, record)

    monkeypatch.setattr(StatusPublisher, "publish", fail_first_delivered)
    loop.enqueue(out.outbound("text", key="lost-publish"))
    loop.run(seconds=1)
    assert failures == []  # the webhook answered 503 once; the sandbox, like Meta, delivered the echo again
    assert loop.status_names("lost-publish") == ["SENT", "DELIVERED"]


def _pending_after_a_transient_refusal(loop: Loop, key: str) -> None:
    """A first message with ``key`` takes its record, and Meta refuses it for now (code 2): it waits."""
    loop.say()
    loop.sandbox.inject("http_5xx", count=2)
    loop.enqueue(out.outbound("text", key=key, message={"type": "text", "text": "the first"}))
    assert loop.poller.poll_once() == 1
    record = OutboundRecords(aws.client("dynamodb"), loop.stack.refs["GatewayTable"], 1).get(key)
    assert record is not None and record.status == "PENDING"


@pytest.mark.parametrize(
    "conflicting",
    [
        {"message": {"type": "text", "text": "x" * 20_001}},  # invalid
        {"account_id": "17841499999999999"},  # names an account this stack does not have
        {"message": {"type": "nope"}, "recipient": {"id": "7777"}},  # invalid, in another conversation
    ],
    ids=["invalid", "unknown-account", "invalid-elsewhere"],
)
def test_a_reused_key_on_a_refused_message_leaves_the_pending_message_alone(
    loop: Loop, conflicting: dict[str, Any]
) -> None:
    _pending_after_a_transient_refusal(loop, "reused")
    loop.enqueue({**out.outbound("text", key="reused", recipient={"id": "5555"}), **conflicting})
    loop.run(seconds=1)
    assert [b["message"]["text"] for b in loop.sent_to_meta()] == ["the first"]
    assert loop.status_names("reused") == ["SENT", "DELIVERED"]  # no FAILED: the refusal was not its own


def test_a_deeply_nested_body_ends_failed_at_once(loop: Loop) -> None:
    body = '{"idempotency_key": "deep", "x": ' + "[" * 20_000 + "]" * 20_000 + "}"
    loop.sqs.send_message(
        QueueUrl=loop.outbound_url, MessageBody=body, MessageGroupId="deep", MessageDeduplicationId="deep"
    )
    loop.run()
    (failed,) = [s for s in loop.statuses() if s["reason"] == "invalid_message"]
    assert failed["status"] == "FAILED" and "nested" in failed["detail"]
    assert loop._in_flight() == 0  # not retried


def _unknown_never_delivered(loop: Loop, key: str, text: str) -> None:
    """A send whose answer never comes, and that Meta never took: UNKNOWN, and no echo of it will come."""
    loop.say()
    loop.sandbox.inject("timeout", delay=loop.answer_timeout(1.0))
    loop.enqueue(out.outbound("text", key=key, message={"type": "text", "text": text}))
    loop.run()
    assert loop.status_names(key) == ["UNKNOWN"] and loop.sent_to_meta() == []
    loop.answer_timeout(10.0)  # the next messages: the usual patience


@pytest.mark.parametrize(
    "sender",
    [
        {},  # a person typing in the Instagram app: no app, no metadata
        {"app_id": "9999999999"},  # another tool on the same account
        {"app_id": "9999999999", "metadata": "igdm1:whatever:0"},  # another tool, even one copying the marker
    ],
    ids=["instagram-app", "other-app", "other-app-with-marker"],
)
def test_an_unknown_message_is_not_settled_by_an_echo_the_gateway_did_not_send(
    loop: Loop, sender: dict[str, Any]
) -> None:
    _unknown_never_delivered(loop, "lost-reply", "Your order ships tomorrow")
    echo = {
        "sender": {"id": ACCOUNT},
        "recipient": {"id": CUSTOMER},
        "timestamp": int(time.time() * 1000),
        "message": {"mid": "m_typed_in_app", "text": "Your order ships tomorrow", "is_echo": True, **sender},
    }
    loop.webhook(echo)
    assert loop.status_names("lost-reply") == ["UNKNOWN"]


def test_without_metadata_on_echoes_the_gateways_app_id_and_the_attempt_settle_an_unknown_message(loop: Loop) -> None:
    """Should Instagram's echoes not carry metadata, Meta's app_id and the time of the attempt decide."""
    loop.sandbox.echo_metadata = False
    loop.say()
    loop.sandbox.inject("timeout", delay=loop.answer_timeout(1.0), deliver=True)  # Meta sends it, answers too late
    loop.enqueue(out.outbound("text", key="late-answer"))
    loop.run()
    loop.sandbox.drain_webhooks(timeout=10)
    assert loop.status_names("late-answer") == ["UNKNOWN", "DELIVERED"]
    assert len(loop.sent_to_meta()) == 1


@pytest.mark.parametrize("echo_metadata", [True, False], ids=["marker", "app-id-only"])
def test_the_echo_of_the_next_message_does_not_settle_an_unknown_one(
    loop: Loop, monkeypatch: pytest.MonkeyPatch, echo_metadata: bool
) -> None:
    loop.sandbox.echo_metadata = echo_metadata
    _unknown_never_delivered(loop, "first", "Same words")
    original = GraphClient.send

    def echo_before_the_sender_records_the_mid(
        client: GraphClient, token: str, body: dict[str, Any], endpoint: str = "messages"
    ) -> Any:
        outcome = original(client, token, body, endpoint)
        loop.sandbox.drain_webhooks(timeout=10)
        return outcome

    monkeypatch.setattr(GraphClient, "send", echo_before_the_sender_records_the_mid)
    loop.enqueue(out.outbound("text", key="second", message={"type": "text", "text": "Same words"}))
    loop.run()
    assert loop.status_names("first") == ["UNKNOWN"]
    assert loop.status_names("second") == ["SENT", "DELIVERED"]


def test_a_read_in_another_accounts_entry_does_not_move_this_accounts_message(loop: Loop) -> None:
    loop.say()
    loop.enqueue(out.outbound("text", key="mine"))
    loop.run()
    (sent,) = loop.sandbox.sent
    assert sent.message_id
    other = "17841400000000999"
    read = {
        "sender": {"id": CUSTOMER},
        "recipient": {"id": other},
        "timestamp": int(time.time() * 1000),
        "read": {"mid": sent.message_id},
    }
    loop.webhook(read, account=other)
    assert loop.status_names("mine") == ["SENT", "DELIVERED"]
    loop.sandbox.send_read(ACCOUNT, CUSTOMER, sent.message_id)  # the real one still counts
    loop.sandbox.drain_webhooks(timeout=10)
    assert loop.status_names("mine") == ["SENT", "DELIVERED", "READ"]


def test_a_read_recorded_before_the_send_from_another_conversation_is_not_applied(
    loop: Loop, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop.say()
    original = GraphClient.send

    def foreign_read_first(client: GraphClient, token: str, body: dict[str, Any], endpoint: str = "messages") -> Any:
        outcome = original(client, token, body, endpoint)
        mid = getattr(outcome, "message_id", None)
        loop.webhook(
            {
                "sender": {"id": "4444"},
                "recipient": {"id": ACCOUNT},
                "timestamp": int(time.time() * 1000),
                "read": {"mid": mid},
            }
        )
        return outcome

    monkeypatch.setattr(GraphClient, "send", foreign_read_first)
    loop.enqueue(out.outbound("text", key="read-elsewhere"))
    loop.run()
    assert "READ" not in loop.status_names("read-elsewhere")


def test_if_meta_refuses_the_metadata_field_the_message_goes_without_it(loop: Loop) -> None:
    loop.say()
    loop.sandbox.inject("error", status=400, code=100, message="(#100) Param message[metadata] is not supported")
    loop.enqueue(out.outbound("text", key="no-metadata-1"))
    loop.enqueue(out.outbound("text", key="no-metadata-2"))
    loop.run()
    assert loop.status_names("no-metadata-1") == ["SENT", "DELIVERED"]
    assert loop.status_names("no-metadata-2") == ["SENT", "DELIVERED"]
    assert [r.status for r in loop.sandbox.requests] == [400, 200, 200]
    assert ["metadata" in b["message"] for b in loop.sent_to_meta()] == [False, False]


def test_a_private_reply_is_delivered_by_its_echo_to_the_commenter(loop: Loop) -> None:
    """A private reply names a comment, not a customer: its echo, to the commenter, still settles it. Meta
    allows one per comment: a second is refused before any call."""
    loop.comment()  # the customer's comment, which the private reply answers
    loop.enqueue(out.private_reply(key="private-1"))
    loop.run()
    assert loop.status_names("private-1") == ["SENT", "DELIVERED"]
    loop.enqueue(out.private_reply(key="private-2"))
    loop.enqueue(out.private_reply(key="to-a-comment-never-seen") | {"recipient": {"comment_id": "17999999999999998"}})
    loop.run()
    assert [s["reason"] for s in loop.statuses("private-2")] == ["private_reply_already_sent"]
    assert [s["reason"] for s in loop.statuses("to-a-comment-never-seen")] == ["comment_unknown"]
    assert len(loop.sent_to_meta()) == 1


def test_a_message_past_its_validity_ends_expired_through_the_real_sender_and_meta_hears_nothing(loop: Loop) -> None:
    loop.say()
    loop.enqueue(out.outbound("text", key="stale-offer", valid_until="2026-01-01T00:00:00+00:00"))
    loop.run()
    [status] = loop.statuses("stale-offer")
    assert (status["status"], status["reason"]) == ("FAILED", "expired")
    assert loop.sent_to_meta() == []


def test_a_conversation_passed_to_the_instagram_inbox_and_taken_back_through_the_real_sender(loop: Loop) -> None:
    loop.say()
    handover = {"type": "pass_thread_control", "metadata": "customer asked for a person"}
    loop.enqueue(out.outbound("text", key="to-inbox", message=handover))
    loop.enqueue(out.outbound("text", key="back", message={"type": "take_thread_control"}))
    loop.run()
    assert (loop.status_names("to-inbox"), loop.status_names("back")) == (["SENT"], ["SENT"])
    calls = [(s.endpoint, s.body) for s in loop.sandbox.sent]
    recipient = {"recipient": {"id": CUSTOMER}}
    assert calls == [
        ("pass_thread_control", {**recipient, "target_app_id": "1217981644879628", "metadata": handover["metadata"]}),
        ("take_thread_control", recipient),
    ]


def test_thread_control_meta_refuses_ends_failed_with_metas_error_through_the_real_sender(loop: Loop) -> None:
    loop.say()
    loop.sandbox.refuse_thread_control("request_thread_control", code=10)  # as a 2026 report has it for IG Login apps
    loop.enqueue(out.outbound("text", key="ask", message={"type": "request_thread_control"}))
    loop.run()
    [status] = loop.statuses("ask")
    assert status["status"] == "FAILED" and status["error"]["code"] == 10
    assert loop.sandbox.sent == []
