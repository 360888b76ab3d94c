"""The outbound loop in one process: the real sender, callback and webhook handlers against moto with the
template's resources, the local SQS poller as Lambda's event source mapping, the Graph sandbox on 127.0.0.1
as Meta, the sandbox's signed echo and read webhooks going back through the real webhook handler (behind the
local API server), and a callback inbox on 127.0.0.1 as the producer's system."""

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest

from api import wiring as api_wiring
from authorizer import wiring as authorizer_wiring
from callback import handler as callback_handler
from callback import wiring as callback_wiring
from eraser import handler as eraser_handler
from eraser import wiring as eraser_wiring
from fanout import handler as fanout_handler
from fanout import wiring as fanout_wiring
from local.aws.apigw import LambdaContext, http_api_event
from local.aws.runtime import FunctionRuntime
from local.aws.sqs_poller import SqsPoller, queue_subscriptions
from local.aws.stream_poller import StreamPoller, stream_subscriptions
from local.aws.template import REGION, Stack
from local.callback_inbox import CallbackInbox
from local.harnesses.aws import in_process_aws
from local.meta.graph_sandbox import GraphSandbox
from local.samples import meta as m
from local.samples import outbound as out
from local.stack import ApiServer
from reconciler import handler as reconciler_handler
from reconciler import wiring as reconciler_wiring
from sender import handler as sender_handler
from sender import service as sender_service
from sender import wiring as sender_wiring
from tools.accounts import register_account
from webhook import handler as webhook_handler
from webhook import wiring as webhook_wiring
from webhook.signature import sign

APP_SECRET = "sender-test-app-secret"
TOKEN = "sender-test-token"
SIGNING_SECRET = "callback-test-signing-secret-0123456789abcdef"
GATEWAY_APP_ID = "1122334455667788"  # the gateway's Instagram app: the sandbox's echoes name it
ACCOUNT = out.ACCOUNT
CUSTOMER = out.CUSTOMER


def reset_function_state() -> None:
    for wiring in (
        webhook_wiring,
        sender_wiring,
        callback_wiring,
        reconciler_wiring,
        eraser_wiring,
        authorizer_wiring,
        api_wiring,
        fanout_wiring,
    ):
        wiring.reset()


class Loop:
    """Outbound queue -> sender -> sandbox -> echo webhook -> webhook -> statuses on the events queue."""

    def __init__(
        self,
        stack: Stack,
        sandbox: GraphSandbox,
        clients: dict[str, Any],
        inbox: CallbackInbox,
        monkeypatch: pytest.MonkeyPatch,
        api_url: str,
    ) -> None:
        self._monkeypatch = monkeypatch
        self.stack = stack
        self.sandbox = sandbox
        self.stack_clients = clients  # moto's dynamodb, sqs and secretsmanager, as the functions see them
        sqs = self.sqs = clients["sqs"]
        self.inbox = inbox
        self.outbound_url = stack.refs["OutboundQueue"]
        self.events_url = stack.refs["EventsQueue"]
        self.callback_url = stack.refs["CallbackQueue"]
        self.callback_dlq_url = stack.refs["CallbackDeadLetterQueue"]
        subscriptions = {s.function_id: s for s in queue_subscriptions(stack)}

        def poller(queue: str, function: str, handler: Any, timeout_seconds: float) -> SqsPoller:
            """The function's event source mapping on its queue, invoking its real handler (a context per
            invocation: its deadline starts with it)."""
            return SqsPoller(
                sqs,
                stack.refs[queue],
                stack.attributes[(queue, "Arn")],
                lambda event: handler.lambda_handler(event, LambdaContext(function, timeout_seconds=timeout_seconds)),
                subscriptions[function],
                wait_seconds=0,
            )

        self.poller = poller("OutboundQueue", "SenderFunction", sender_handler, 30)
        self.callback_poller = poller("CallbackQueue", "CallbackFunction", callback_handler, 60)
        self.erasure_url = stack.refs["ErasureQueue"]
        self.eraser_poller = poller("ErasureQueue", "EraserFunction", eraser_handler, 900)
        self.api_url = api_url  # the local API server: the webhook, the onboarding pages, Meta's callbacks
        self._events: list[dict[str, Any]] = []
        # The table's stream to the fan-out (event webhooks), read from now on. moto in this process answers the
        # stream API at its regional name: botocore would otherwise send it to an account-specific host.
        streams = boto3.client(
            "dynamodbstreams", region_name=REGION, endpoint_url=f"https://streams.dynamodb.{REGION}.amazonaws.com"
        )
        [fanout] = stream_subscriptions(stack)
        self.fanout_poller = StreamPoller(
            streams,
            stack.attributes[(fanout.table_logical_id, "StreamArn")],
            lambda event: fanout_handler.lambda_handler(event, LambdaContext("FanoutFunction", timeout_seconds=60)),
            fanout,
        )

    def answer_timeout(self, seconds: float) -> float:
        """The sender gives up on Meta's answer after ``seconds`` (from its next message on); returns how long
        the sandbox should hold an answer for the sender to surely time out, however loaded the machine."""
        self._monkeypatch.setenv("GRAPH_TIMEOUT_SECONDS", str(seconds))
        sender_wiring.reset()
        return seconds + 2.0

    def say(
        self, text: str = "hi", *, customer: str = CUSTOMER, hours_ago: float = 0.0, mid: str | None = None
    ) -> None:
        """The customer writes (a signed webhook through the real handler): opens the window."""
        timestamp = int((time.time() - hours_ago * 3600) * 1000)
        self.webhook(m.text(mid=mid or f"m_in_{customer}_{timestamp}", words=text, customer=customer, ts=timestamp))

    def webhook(self, *items: dict[str, Any], account: str = ACCOUNT) -> None:
        """Meta delivers ``items`` (signed, through the real webhook handler)."""
        self.post(m.envelope(*items, account=account))

    def comment(self, comment_id: str = "17999999999999999", account: str = ACCOUNT) -> None:
        """A customer comments on one of the account's posts: Meta's `comments` webhook, now."""
        entry = {"id": account, "time": int(time.time()), "changes": [m.comment_change(comment_id)]}
        self.post({"object": "instagram", "entry": [entry]})

    def post(self, document: dict[str, Any]) -> None:
        """Meta delivers ``document`` (signed, through the real webhook handler)."""
        body = m.body(document)
        event = http_api_event("POST", "/webhook", headers={"x-hub-signature-256": sign(body, APP_SECRET)}, body=body)
        assert webhook_handler.lambda_handler(event, LambdaContext("WebhookFunction"))["statusCode"] == 200

    def enqueue(self, message: dict[str, Any]) -> None:
        recipient = message.get("recipient", {})
        self.sqs.send_message(
            QueueUrl=self.outbound_url,
            MessageBody=json.dumps(message),
            MessageGroupId=f"{message.get('account_id', '-')}:{recipient.get('id') or recipient.get('comment_id')}",
            MessageDeduplicationId=f"{message.get('idempotency_key', 'x')}-{time.monotonic_ns()}",
        )

    def run(self, *, seconds: float = 0.0) -> None:
        """Poll until the queue has nothing visible (and, with ``seconds``, until that long has passed
        without anything in flight), like the event source mapping."""
        self._drain(self.poller, self.outbound_url, seconds)
        self.sandbox.drain_webhooks(timeout=10)

    def reconcile(self) -> dict[str, Any]:
        """One scheduled run of the reconciler's real handler; its summary. Then the webhooks it caused
        (none, normally) and the sandbox's pending ones are given time to land."""
        summary: dict[str, Any] = reconciler_handler.lambda_handler(
            {}, LambdaContext("ReconcilerFunction", timeout_seconds=840)
        )
        self.sandbox.drain_webhooks(timeout=10)
        return summary

    def erase(self) -> None:
        """Carry out the erasure queue's requests with the real eraser handler, as its event source mapping."""
        self._drain(self.eraser_poller, self.erasure_url, 0.0)

    def fan_out(self) -> int:
        """The table's stream so far through the real fan-out handler (event webhooks' deliveries onto the
        callback queue); the records it was handed."""
        return self.fanout_poller.poll_once()

    def deliver_webhooks(self, *, seconds: float = 0.0) -> None:
        """Fan out, then deliver the callback queue's jobs (status callbacks and event webhooks alike)."""
        self.fan_out()
        self.run_callbacks(seconds=seconds)

    def run_callbacks(self, *, seconds: float = 0.0) -> None:
        """Deliver the callback queue's jobs the same way (after `run`, which queued them)."""
        self._drain(self.callback_poller, self.callback_url, seconds)

    def _drain(self, poller: SqsPoller, queue_url: str, seconds: float) -> None:
        deadline = time.monotonic() + max(seconds, 0.0) + 30
        quiet_until = time.monotonic() + seconds
        while time.monotonic() < deadline:
            delivered = poller.poll_once()
            if delivered == 0:
                if self._in_flight(queue_url) == 0 and time.monotonic() >= quiet_until:
                    break
                time.sleep(0.2)

    def _in_flight(self, queue_url: str | None = None) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=queue_url or self.outbound_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def dead_callbacks(self) -> list[dict[str, Any]]:
        got = self.sqs.receive_message(
            QueueUrl=self.callback_dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        ).get("Messages", [])
        return [
            {"job": json.loads(g["Body"]), **{k: v["StringValue"] for k, v in g.get("MessageAttributes", {}).items()}}
            for g in got
        ]

    def statuses(self, key: str | None = None) -> list[dict[str, Any]]:
        found = [e["status"] for e in self.events() if e["kind"] == "message_status"]
        return [s for s in found if key is None or s["idempotency_key"] == key]

    def events(self) -> list[dict[str, Any]]:
        """Every event published on the events queue so far (the queue is drained as it is read)."""
        while True:
            got = self.sqs.receive_message(QueueUrl=self.events_url, MaxNumberOfMessages=10).get("Messages", [])
            if not got:
                break
            self._events.extend(json.loads(g["Body"]) for g in got)
            self.sqs.delete_message_batch(
                QueueUrl=self.events_url,
                Entries=[{"Id": str(i), "ReceiptHandle": g["ReceiptHandle"]} for i, g in enumerate(got)],
            )
        return list(self._events)

    def status_names(self, key: str) -> list[str]:
        return [s["status"] for s in self.statuses(key)]

    def sent_to_meta(self) -> list[dict[str, Any]]:
        return [s.body for s in self.sandbox.sent]


@contextmanager
def outbound_loop(
    patch: pytest.MonkeyPatch,
    *,
    name: str = "gw-send",
    graph_timeout_seconds: float = 10.0,
    echo_delay_seconds: float = 0.2,
    max_receive_count: int | None = None,
    gateway_app_id: str | None = GATEWAY_APP_ID,
    callback_retry_base_seconds: float | None = 0.5,
    one_request_at_a_time: bool = False,
    conversations_rate_per_second: int = 2,
) -> Iterator[Loop]:
    """The loop, with the account ACCOUNT connected (token TOKEN) and retries after about a second rather
    than minutes.

    ``graph_timeout_seconds``: as deployed by default, so a loaded machine does not turn a slow answer into an
    UNKNOWN (tests of timeouts shorten it with Loop.answer_timeout). ``echo_delay_seconds``: the echo follows
    the answer by a moment, as Meta's does (at once, it would race the sender's own update of the same mid
    item, and moto, unlike DynamoDB, can lose one of two concurrent updates). ``max_receive_count`` overrides
    the template's OutboundMaxReceiveCount (the queue's redrive policy and the sender's last attempt alike).
    ``gateway_app_id``: the gateway's Instagram app, named by the sandbox's echoes and known to the gateway;
    None leaves both at the sandbox's default app and the gateway without one (echoes matched by marker).
    ``callback_retry_base_seconds``: None keeps the template's. ``conversations_rate_per_second``: the
    sandbox's Conversations API limit (Meta's is 2)."""
    patch.setattr(sender_service, "BACKOFF_BASE_SECONDS", 0.5)
    patch.setattr(sender_service, "THROTTLE_PAUSE_SECONDS", 1.0)
    app_secret: dict[str, Any] = {"app_secrets": [APP_SECRET], "verify_token": "t"}
    if gateway_app_id is not None:
        app_secret["instagram_app_id"] = gateway_app_id
    secrets = {
        "AppSecret": json.dumps(app_secret),
        "CallbackSigningSecret": json.dumps({"signing_secret": SIGNING_SECRET}),
    }
    parameters = {"OutboundMaxReceiveCount": max_receive_count} if max_receive_count else None
    with in_process_aws(
        patch, name, secrets, parameters=parameters, one_request_at_a_time=one_request_at_a_time, streams=True
    ) as (
        stack,
        clients,
    ):
        for function in (
            "WebhookFunction",
            "SenderFunction",
            "CallbackFunction",
            "ReconcilerFunction",
            "EraserFunction",
            "FanoutFunction",
        ):
            for key, value in stack.function_environment(function).items():
                patch.setenv(key, value)
        patch.setenv("ALLOW_LOCAL_CALLBACKS", "true")  # the inbox is on 127.0.0.1, as in make run
        if callback_retry_base_seconds is not None:
            patch.setenv("CALLBACK_RETRY_BASE_SECONDS", str(callback_retry_base_seconds))
        # Each server's stop is registered once it runs: a server that never served would block shutdown().
        with contextlib.ExitStack() as running:
            running.callback(reset_function_state)
            api = ApiServer(0, stack.routes(), FunctionRuntime(stack, {}))
            running.callback(api.server_close)
            api_thread = threading.Thread(target=api.serve_forever, daemon=True)
            api_thread.start()
            running.callback(api_thread.join, 5)
            running.callback(api.shutdown)
            sandbox_options: dict[str, Any] = {"app_id": gateway_app_id} if gateway_app_id is not None else {}
            sandbox = GraphSandbox(
                webhook_url=f"http://127.0.0.1:{api.server_address[1]}/webhook",
                app_secret=APP_SECRET,
                echo_delay_seconds=echo_delay_seconds,
                conversations_rate_per_second=conversations_rate_per_second,
                **sandbox_options,
            )
            running.callback(sandbox.stop)  # safe before start(): the sandbox checks what it started
            sandbox.start()
            inbox = CallbackInbox(SIGNING_SECRET)
            running.callback(inbox.server_close)
            inbox.start()
            running.callback(inbox.shutdown)
            sandbox.add_account(ACCOUNT, TOKEN)
            patch.setenv("LOCAL_STACK", "true")  # the sandbox is http on 127.0.0.1, as in make run
            patch.setenv("GRAPH_API_BASE_URL", sandbox.base_url)
            patch.setenv("GRAPH_TIMEOUT_SECONDS", str(graph_timeout_seconds))
            register_account(
                clients["dynamodb"],
                clients["secretsmanager"],
                table=stack.refs["GatewayTable"],
                secret_prefix=stack.function_environment("OnboardingFunction")["ACCOUNT_SECRET_PREFIX"],
                account_id=ACCOUNT,
                access_token=TOKEN,
            )
            reset_function_state()
            yield Loop(stack, sandbox, clients, inbox, patch, f"http://127.0.0.1:{api.server_address[1]}")
