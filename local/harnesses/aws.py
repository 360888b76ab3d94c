"""AWS for a harness: moto in this process, with the template's resources provisioned."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core.botocore_stubber import BotocoreStubber

from local.aws.template import REGION, Stack, load, provision


@contextmanager
def in_process_aws(
    patch: pytest.MonkeyPatch,
    name: str,
    secrets: dict[str, str],
    *,
    parameters: dict[str, int] | None = None,
    one_request_at_a_time: bool = False,
    streams: bool = False,
) -> Iterator[tuple[Stack, dict[str, Any]]]:
    """The stack ``name`` provisioned from the template in moto, and a client per service.

    ``parameters`` override the template's defaults, as ``sam deploy --parameter-overrides`` would.
    ``one_request_at_a_time``: DynamoDB and SQS apply each request atomically; moto's in-process backends do
    not (a transaction copies the table while another thread writes to it, and fails). When handlers run in
    several threads at once (chaos), they are served one request at a time, as a service would. ``streams``:
    the tables' streams, for a harness that reads them (local.aws.template.provision says why not always)."""
    dummy = "testing"  # moto accepts any credentials; these never leave this process
    for key, value in {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": dummy,
        "AWS_SECRET_ACCESS_KEY": dummy,
    }.items():
        patch.setenv(key, value)
    patch.delenv("AWS_ENDPOINT_URL", raising=False)  # moto in this process, never a real endpoint
    if one_request_at_a_time:
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
        for parameter, default in (parameters or {}).items():
            template["Parameters"][parameter]["Default"] = default
        yield provision(clients, name, secrets, template, streams=streams), clients
