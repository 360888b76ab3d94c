"""The environments the scenarios run in: the harnesses of local/harnesses (the ones the integration tests
use), as context managers of their own because `python -m chaos` runs outside pytest.

Chaos runs handlers in several threads at once, so moto serves one request at a time; the outbound loop's
echoes are matched by their marker alone (the gateway is not told its app id), and the refresher runs on the
real clock, as the deployed handler does. Everything started here is stopped on exit.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from local.aws.apigw import LambdaContext
from local.aws.sqs_poller import SqsPoller, queue_subscriptions
from local.harnesses.accounts import AccountsHarness, accounts_harness
from local.harnesses.outbound import Loop, outbound_loop
from local.harnesses.webhook import Harness, webhook_harness
from sender import handler as sender_handler


@contextmanager
def webhook_stack() -> Iterator[Harness]:
    """The webhook handler against moto."""
    with pytest.MonkeyPatch.context() as patch, webhook_harness(patch, one_request_at_a_time=True) as harness:
        yield harness


@contextmanager
def outbound_stack(
    *,
    graph_timeout_seconds: float = 10.0,
    echo_delay_seconds: float = 0.2,
    max_receive_count: int | None = None,
    conversations_rate_per_second: int = 2,
) -> Iterator[Loop]:
    """Sender, webhook (for echoes) and callback handlers, the SQS poller, the Graph sandbox.
    ``max_receive_count`` overrides the template's OutboundMaxReceiveCount (the queue's redrive policy and the
    sender's last attempt alike)."""
    with (
        pytest.MonkeyPatch.context() as patch,
        outbound_loop(
            patch,
            name="gw-chaos-send",
            graph_timeout_seconds=graph_timeout_seconds,
            echo_delay_seconds=echo_delay_seconds,
            max_receive_count=max_receive_count,
            gateway_app_id=None,
            callback_retry_base_seconds=None,
            one_request_at_a_time=True,
            conversations_rate_per_second=conversations_rate_per_second,
        ) as loop,
    ):
        yield loop


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
    """The refresher's environment from the template, the sandbox as Instagram on the real clock (the deployed
    handler reads time.time()); no onboarding API server."""
    with (
        pytest.MonkeyPatch.context() as patch,
        accounts_harness(patch, real_clock=True, serve_onboarding=False, **sandbox_options) as harness,
    ):
        yield harness
