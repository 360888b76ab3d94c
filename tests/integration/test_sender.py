"""The sender end to end in one process: the real handlers against moto with the template's resources,
the local SQS poller as Lambda's event source mapping, the Graph sandbox on 127.0.0.1 as Meta, and the
sandbox's signed echo and read webhooks going back through the real webhook handler."""

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from botocore.exceptions import ClientError
from moto import mock_aws

from igdm import aws
from igdm.accounts import register_account
from igdm.config import clear_settings_cache
from local import meta_samples as m
from local import outbound_samples as out
from local.apigw import LambdaContext, http_api_event
from local.graph_sandbox import GraphSandbox
from local.runtime import FunctionRuntime
from local.sqs_poller import SqsPoller, queue_subscriptions
from local.stack import ApiServer
from local.template import REGION, Stack, provision
from sender import handler as sender_handler
from sender import service as sender_service
from tests.unit.test_graph_requests import EXPECTED
from webhook import handler as webhook_handler
from webhook.signature import sign

APP_SECRET = "sender-test-app-secret"
TOKEN = "sender-test-token"
ACCOUNT = out.ACCOUNT
CUSTOMER = out.CUSTOMER


def reset_function_state() -> None:
    for cached in (webhook_handler._secret_source, webhook_handler._store, webhook_handler._publisher,
                   webhook_handler._receipts, sender_handler._sender):
        cached.cache_clear()
    aws.clear_clients()
    clear_settings_cache()
    parameters.clear_caches()


class Loop:
    """Outbound queue -> sender -> sandbox -> echo webhook -> webhook -> statuses on the events queue."""

    def __init__(self, stack: Stack, sandbox: GraphSandbox, sqs: Any) -> None:
        self.stack = stack
        self.sandbox = sandbox
        self.sqs = sqs
        self.outbound_url = stack.refs["OutboundQueue"]
        self.events_url = stack.refs["EventsQueue"]
        (subscription,) = [s for s in queue_subscriptions(stack) if s.function_id == "SenderFunction"]
        self.poller = SqsPoller(sqs, self.outbound_url, stack.attributes[("OutboundQueue", "Arn")],
                                lambda event: sender_handler.lambda_handler(event, LambdaContext("SenderFunction")),
                                subscription, wait_seconds=0)
        self._events: list[dict[str, Any]] = []

    def say(self, text: str = "hi", *, customer: str = CUSTOMER, hours_ago: float = 0.0,
            mid: str | None = None) -> None:
        """The customer writes (a signed webhook through the real handler): opens the window."""
        timestamp = int((time.time() - hours_ago * 3600) * 1000)
        item = m.text(mid=mid or f"m_in_{customer}_{timestamp}", words=text, customer=customer, ts=timestamp)
        body = m.body(m.envelope(item))
        event = http_api_event("POST", "/webhook", headers={"x-hub-signature-256": sign(body, APP_SECRET)}, body=body)
        assert webhook_handler.lambda_handler(event, LambdaContext("WebhookFunction"))["statusCode"] == 200

    def enqueue(self, message: dict[str, Any]) -> None:
        recipient = message.get("recipient", {})
        self.sqs.send_message(
            QueueUrl=self.outbound_url, MessageBody=json.dumps(message),
            MessageGroupId=f"{message.get('account_id', '-')}:{recipient.get('id') or recipient.get('comment_id')}",
            MessageDeduplicationId=f"{message.get('idempotency_key', 'x')}-{time.monotonic_ns()}")

    def run(self, *, seconds: float = 0.0) -> None:
        """Poll until the queue has nothing visible (and, with ``seconds``, until that long has passed
        without anything in flight), like the event source mapping."""
        deadline = time.monotonic() + max(seconds, 0.0) + 30
        quiet_until = time.monotonic() + seconds
        while time.monotonic() < deadline:
            delivered = self.poller.poll_once()
            if delivered == 0:
                if self._in_flight() == 0 and time.monotonic() >= quiet_until:
                    break
                time.sleep(0.2)
        self.sandbox.drain_webhooks(timeout=10)

    def _in_flight(self) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.outbound_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def statuses(self, key: str | None = None) -> list[dict[str, Any]]:
        while True:
            got = self.sqs.receive_message(QueueUrl=self.events_url, MaxNumberOfMessages=10).get("Messages", [])
            if not got:
                break
            self._events.extend(json.loads(g["Body"]) for g in got)
            self.sqs.delete_message_batch(QueueUrl=self.events_url, Entries=[
                {"Id": str(i), "ReceiptHandle": g["ReceiptHandle"]} for i, g in enumerate(got)])
        found = [e["status"] for e in self._events if e["kind"] == "message_status"]
        return [s for s in found if key is None or s["idempotency_key"] == key]

    def status_names(self, key: str) -> list[str]:
        return [s["status"] for s in self.statuses(key)]

    def sent_to_meta(self) -> list[dict[str, Any]]:
        return [s.body for s in self.sandbox.sent]


@pytest.fixture
def loop(monkeypatch: pytest.MonkeyPatch) -> Iterator[Loop]:
    for key, value in {"AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setattr(sender_service, "BACKOFF_BASE_SECONDS", 0.5)  # retries after ~1 s, not minutes
    monkeypatch.setattr(sender_service, "THROTTLE_PAUSE_SECONDS", 1.0)
    with mock_aws():
        clients = {s: boto3.client(s, region_name=REGION) for s in ("dynamodb", "sqs", "secretsmanager")}
        stack = provision(clients, "gw-send", {"AppSecret": json.dumps({"app_secrets": [APP_SECRET],
                                                                          "verify_token": "t"})})
        for function in ("WebhookFunction", "SenderFunction"):
            for key, value in stack.function_environment(function).items():
                monkeypatch.setenv(key, value)
        api = ApiServer(0, stack.routes(), FunctionRuntime(stack, {}))
        threading.Thread(target=api.serve_forever, daemon=True).start()
        # The echo follows the answer by a moment, as Meta's does. (At once, it would race the sender's
        # own update of the same mid item, and moto, unlike DynamoDB, can lose one of two concurrent updates.)
        sandbox = GraphSandbox(webhook_url=f"http://127.0.0.1:{api.server_address[1]}/webhook",
                               app_secret=APP_SECRET, echo_delay_seconds=0.2).start()
        sandbox.add_account(ACCOUNT, TOKEN)
        monkeypatch.setenv("GRAPH_API_BASE_URL", sandbox.base_url)
        monkeypatch.setenv("GRAPH_TIMEOUT_SECONDS", "1")
        register_account(clients["dynamodb"], clients["secretsmanager"], table=stack.refs["GatewayTable"],
                         secret_prefix=stack.function_environment("SenderFunction")["ACCOUNT_SECRET_PREFIX"],
                         account_id=ACCOUNT, access_token=TOKEN)
        reset_function_state()
        try:
            yield Loop(stack, sandbox, clients["sqs"])
        finally:
            sandbox.stop()
            api.shutdown()
            reset_function_state()


MESSAGE_KINDS = [k for k in out.KINDS if k not in ("react", "unreact", "typing_on", "typing_off", "mark_seen")]


def test_every_kind_reaches_meta_as_the_documented_body_and_ends_delivered(loop: Loop) -> None:
    loop.say()
    for kind in out.KINDS:
        loop.enqueue(out.outbound(kind))
    loop.run()
    expected = [body for kind in out.KINDS for body in EXPECTED[kind]]
    assert sorted(map(json.dumps, loop.sent_to_meta())) == sorted(map(json.dumps, expected))
    for kind in MESSAGE_KINDS:
        assert loop.status_names(f"example-{kind}-0001") == ["SENT", "DELIVERED"], kind
    for kind in ("react", "unreact", "typing_on", "typing_off", "mark_seen"):  # no mid, no echo
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
    loop.sandbox.inject("error", status=403, code=10, subcode=2534022,
                        message="This message is sent outside of allowed window.")
    loop.sandbox.inject("error", status=400, code=100, message="(#100) Invalid parameter")
    loop.enqueue(out.outbound("text", key="outside"))
    loop.enqueue(out.outbound("text", key="invalid-param"))
    loop.run()
    (outside,) = loop.statuses("outside")
    assert (outside["status"], outside["reason"], outside["error"]["code"], outside["error"]["subcode"]) == (
        "FAILED", "window_closed", 10, 2534022)
    assert outside["error"]["fbtrace_id"]
    (invalid,) = loop.statuses("invalid-param")
    assert (invalid["reason"], invalid["error"]["code"]) == ("meta_rejected", 100)
    assert len(loop.sandbox.requests) == 2  # neither was retried


def test_an_ambiguous_timeout_becomes_unknown_and_the_echo_settles_it_without_a_resend(loop: Loop) -> None:
    loop.say()
    loop.sandbox.inject("timeout", delay=2.0, deliver=True)  # Meta sends it, but answers too late
    loop.enqueue(out.outbound("text", key="ambiguous"))
    loop.run()
    time.sleep(2.2)
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

    def die_recording_the_send(params: dict[str, Any], **_: Any) -> None:
        if state["armed"] and "parts_sent = :next" in str(params.get("UpdateExpression", "")):
            state["armed"] = False
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "injected"}}, "UpdateItem")

    dynamodb.meta.events.register("before-parameter-build.dynamodb.UpdateItem", die_recording_the_send)
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
    name = f"{loop.stack.function_environment('SenderFunction')['ACCOUNT_SECRET_PREFIX']}{ACCOUNT}"
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
        TableName=loop.stack.refs["GatewayTable"],
        Key={"pk": {"S": "ACCOUNTS"}, "sk": {"S": f"ACCOUNT#{ACCOUNT}"}})["Item"]
    assert item["status"]["S"] == "needs_reauthorisation"
    loop.enqueue(out.outbound("text", key="while-dead"))
    loop.run()
    assert [s["reason"] for s in loop.statuses("while-dead")] == ["token_invalid"]
    assert len(loop.sandbox.requests) == 2  # nothing more went to Meta
