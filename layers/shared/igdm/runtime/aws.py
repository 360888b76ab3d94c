"""boto3 clients with the gateway's timeouts and retry policy, created once per execution environment.

Endpoints follow the standard AWS_ENDPOINT_URL variable, which is how the local stack points the real
handlers at its emulator without any special casing here.
"""

import time
from functools import cache
from typing import Any

import boto3
from botocore.config import Config

# Meta waits a few seconds for the webhook's answer: fail fast and let Meta retry rather than hang.
CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3},
    connect_timeout=2,
    read_timeout=5,
    tcp_keepalive=True,
    # The requests are built by our own tested code and AWS validates them again anyway; botocore's
    # client-side check was 38 % of the webhook's CPU per event in a 1000-event POST (docs/performance.md).
    parameter_validation=False,
)


@cache
def client(service: str) -> Any:
    return boto3.client(service, config=CLIENT_CONFIG)  # type: ignore[call-overload]


def backoff(attempt: int) -> None:
    """The pause before our own retry number ``attempt`` (0-based) of a partly failed batch call:
    50 ms doubling, at most 400 ms, so a few retries still fit in the webhook's time budget."""
    time.sleep(min(0.05 * 2**attempt, 0.4))


def error_code(exc: Exception) -> str:
    """The AWS error code of a ClientError (ConditionalCheckFailedException ...), else the exception's type."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", "ClientError"))
    return type(exc).__name__


def clear_clients() -> None:
    """For tests and the local stack, which switch endpoints between runs."""
    client.cache_clear()
