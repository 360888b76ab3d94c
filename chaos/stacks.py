"""The environments the scenarios run in: moto (in-process) with the template's resources, the real
handlers, and for the outbound and token paths the Graph sandbox on 127.0.0.1.

They are the fixtures of tests/integration (conftest.harness, outbound_loop.loop, accounts_harness.accounts)
as context managers, because `python -m chaos` runs outside pytest; the harness classes themselves
(Harness, Loop, AccountsHarness) are imported, not copied. Everything started here is stopped on exit.
"""

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core.botocore_stubber import BotocoreStubber

from chaos import reuse
from chaos.reuse import AccountsHarness, Clock, Harness, Loop
from local.apigw import LambdaContext
from local.callback_inbox import CallbackInbox
from local.graph_sandbox import GraphSandbox
from local.runtime import FunctionRuntime
from local.sqs_poller import SqsPoller, queue_subscriptions
from local.stack import ApiServer
from local.template import REGION, Stack, load, provision
from sender import handler as sender_handler
from sender import service as sender_service
from tools.accounts import register_account


@contextmanager
def _aws(
    patch: pytest.MonkeyPatch, name: str, secrets: dict[str, str], parameters: dict[str, int] | None = None
) -> Iterator[tuple[Stack, dict[str, Any]]]:
    dummy = "testing"  # moto accepts any credentials; these never leave this process
    for key, value in {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": dummy,
        "AWS_SECRET_ACCESS_KEY": dummy,
    }.items():
        patch.setenv(key, value)
    patch.delenv("AWS_ENDPOINT_URL", raising=False)  # moto in this process, never a real endpoint
    # DynamoDB and SQS apply each request atomically; moto's in-process backends do not (a transaction
    # copies the table while another thread writes to it, and fails). The webhook runs in the local API
    # server's thread while the sender runs in this one: one request at a time, as a service would.
    serial = threading.RLock()
    process = BotocoreStubber.process_request

    def one_at_a_time(self: BotocoreStubber, request: Any) -> Any:
        with serial:
            return process(self, request)

    patch.setattr(BotocoreStubber, "process_request", one_at_a_time)
    with mock_aws():
        clients = {
            "dynamodb": boto3.client("dynamodb", region_name=REGION),
            "sqs": boto3.client("sqs", region_name=REGION),
            "secretsmanager": boto3.client("secretsmanager", region_name=REGION),
        }
        template = load()
        for parameter, default in (parameters or {}).items():  # as `sam deploy --parameter-overrides` would
            template["Parameters"][parameter]["Default"] = default
        yield provision(clients, name, secrets, template), clients


@contextmanager
def webhook_stack() -> Iterator[Harness]:
    """tests/integration/conftest.py's ``harness``: the webhook handler against moto."""
    with pytest.MonkeyPatch.context() as patch:
        app_secret = json.dumps(
            {"app_secrets": [reuse.APP_SECRET, reuse.INSTAGRAM_APP_SECRET], "verify_token": reuse.VERIFY_TOKEN}
        )
        with _aws(patch, "gw-chaos", {"AppSecret": app_secret}) as (stack, clients):
            for key, value in stack.function_environment("WebhookFunction").items():
                patch.setenv(key, value)
            reuse.reset_webhook_state()
            try:
                yield Harness(stack, clients)
            finally:
                reuse.reset_webhook_state()


@contextmanager
def outbound_stack(
    *, graph_timeout_seconds: float = 10.0, echo_delay_seconds: float = 0.2, max_receive_count: int | None = None
) -> Iterator[Loop]:
    """tests/integration/outbound_loop.py's ``loop``: sender, webhook (for echoes) and callback handlers,
    the SQS poller, the Graph sandbox. ``max_receive_count`` overrides the template's OutboundMaxReceiveCount
    (the queue's redrive policy and the sender's last attempt alike)."""
    with pytest.MonkeyPatch.context() as patch:
        # Retries after about a second rather than minutes, as in the integration tests.
        patch.setattr(sender_service, "BACKOFF_BASE_SECONDS", 0.5)
        patch.setattr(sender_service, "THROTTLE_PAUSE_SECONDS", 1.0)
        secrets = {
            "AppSecret": json.dumps({"app_secrets": [reuse.OUTBOUND_APP_SECRET], "verify_token": reuse.VERIFY_TOKEN}),
            "CallbackSigningSecret": json.dumps({"signing_secret": reuse.SIGNING_SECRET}),
        }
        parameters = {"OutboundMaxReceiveCount": max_receive_count} if max_receive_count else None
        with _aws(patch, "gw-chaos-send", secrets, parameters) as (stack, clients):
            for function in ("WebhookFunction", "SenderFunction", "CallbackFunction"):
                for key, value in stack.function_environment(function).items():
                    patch.setenv(key, value)
            patch.setenv("ALLOW_LOCAL_CALLBACKS", "true")
            # Each server's stop is registered once it runs: a server that never served would block shutdown().
            with contextlib.ExitStack() as running:
                running.callback(reuse.reset_outbound_state)
                api = ApiServer(0, stack.routes(), FunctionRuntime(stack, {}))
                running.callback(api.server_close)
                api_thread = threading.Thread(target=api.serve_forever, daemon=True)
                api_thread.start()
                running.callback(api_thread.join, 5)
                running.callback(api.shutdown)
                sandbox = GraphSandbox(
                    webhook_url=f"http://127.0.0.1:{api.server_address[1]}/webhook",
                    app_secret=reuse.OUTBOUND_APP_SECRET,
                    echo_delay_seconds=echo_delay_seconds,
                )
                running.callback(sandbox.stop)  # safe before start(): the sandbox checks what it started
                sandbox.start()
                inbox = CallbackInbox(reuse.SIGNING_SECRET)
                running.callback(inbox.server_close)
                inbox.start()
                running.callback(inbox.shutdown)
                sandbox.add_account(reuse.ACCOUNT, reuse.TOKEN)
                patch.setenv("LOCAL_STACK", "true")  # the sandbox is http on 127.0.0.1, as in make run
                patch.setenv("GRAPH_API_BASE_URL", sandbox.base_url)
                patch.setenv("GRAPH_TIMEOUT_SECONDS", str(graph_timeout_seconds))
                register_account(
                    clients["dynamodb"],
                    clients["secretsmanager"],
                    table=stack.refs["GatewayTable"],
                    secret_prefix=stack.function_environment("OnboardingFunction")["ACCOUNT_SECRET_PREFIX"],
                    account_id=reuse.ACCOUNT,
                    access_token=reuse.TOKEN,
                )
                reuse.reset_outbound_state()
                yield Loop(stack, sandbox, clients["sqs"], inbox, patch)


def sender_poller(loop: Loop, batches: list[list[str]]) -> SqsPoller:
    """The outbound queue's event source mapping, as the Loop's, noting each batch's receipt handles in
    ``batches``: what an invocation was handed can be released or deleted afterwards."""

    def invoke(event: dict[str, Any]) -> Any:
        batches.append([record["receiptHandle"] for record in event["Records"]])
        return sender_handler.lambda_handler(event, LambdaContext("SenderFunction"))

    subscription = next(s for s in queue_subscriptions(loop.stack) if s.function_id == "SenderFunction")
    return SqsPoller(
        loop.sqs,
        loop.outbound_url,
        loop.stack.attributes[("OutboundQueue", "Arn")],
        invoke,
        subscription,
        wait_seconds=0,
    )


@contextmanager
def accounts_stack(**sandbox_options: Any) -> Iterator[AccountsHarness]:
    """tests/integration/accounts_harness.py's ``accounts``, without the onboarding API server: the
    refresher's environment from the template, the sandbox as Instagram on the real clock (the deployed
    handler reads time.time())."""
    with pytest.MonkeyPatch.context() as patch:
        secrets = {
            "AppSecret": json.dumps(
                {
                    "app_secrets": ["a" * 32],
                    "verify_token": reuse.VERIFY_TOKEN,
                    "instagram_app_id": reuse.LOGIN_APP_ID,
                    "instagram_app_secret": reuse.LOGIN_APP_SECRET,
                }
            )
        }
        with _aws(patch, "gw-chaos-accounts", secrets) as (stack, clients):
            clock = Clock(now=time.time())
            sandbox = GraphSandbox(
                app_id=reuse.LOGIN_APP_ID, instagram_app_secret=reuse.LOGIN_APP_SECRET, **sandbox_options
            )
            try:
                sandbox.start()
                overrides = {"LOCAL_STACK": "true", "GRAPH_API_BASE_URL": sandbox.base_url}
                for key, value in {**stack.function_environment("RefresherFunction"), **overrides}.items():
                    patch.setenv(key, value)
                reuse.reset_accounts_state()
                fields = stack.function_environment("RefresherFunction")["WEBHOOK_FIELDS"].split(",")
                yield AccountsHarness(stack, clients, sandbox, clock, api_url="", fields=fields)
            finally:
                sandbox.stop()
                reuse.reset_accounts_state()
