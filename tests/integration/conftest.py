"""The integration tests' fixtures: the harnesses of local/harnesses, each set up and stopped per test."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.harnesses.accounts import AccountsHarness, accounts_harness
from local.harnesses.outbound import Loop, outbound_loop
from local.harnesses.webhook import Harness, webhook_harness
from tests.integration.table_access import table_access  # noqa: F401 - autouse: each request vs its role


@pytest.fixture
def harness(monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    """The webhook handler against moto."""
    with webhook_harness(monkeypatch) as running:
        yield running


@pytest.fixture
def loop(monkeypatch: pytest.MonkeyPatch) -> Iterator[Loop]:
    """The outbound loop: sender, callback and webhook handlers, the Graph sandbox, a callback inbox. One AWS
    request at a time, as DynamoDB applies each atomically: the sender's transaction (a part sent and its mid's
    link) runs while the echo webhooks write from the API server's thread, and moto's copy of the table for a
    transaction fails when another thread writes meanwhile."""
    with outbound_loop(monkeypatch, one_request_at_a_time=True) as running:
        yield running


@pytest.fixture
def accounts(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[AccountsHarness]:
    """Onboarding and the refresher on a clock the test moves; the sandbox's options from indirect parameters."""
    options: dict[str, Any] = getattr(request, "param", {})
    with accounts_harness(monkeypatch, **options) as running:
        yield running


MOTO_REGION = "us-east-1"
MOTO_TABLE = "gateway"


@contextmanager
def in_process_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto in this process: no server, no endpoint (an AWS_ENDPOINT_URL left set would send the clients
    elsewhere), dummy credentials, the region the tests use."""
    for name, value in {
        "AWS_DEFAULT_REGION": MOTO_REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto's DynamoDB in this process, with one empty table MOTO_TABLE keyed as GatewayTable is; the client."""
    with in_process_aws(monkeypatch):
        client = boto3.client("dynamodb", region_name=MOTO_REGION)
        client.create_table(
            TableName=MOTO_TABLE,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        )
        yield client


@pytest.fixture
def transactions_at_aws_cost() -> Iterator[None]:
    """moto's TransactWriteItems copies the whole table once per item (local/aws/emulator_fixes.py, defect 1):
    a 1000-event POST's ten 100-item transactions on a growing table took 50 s of the suite. The local stack's fix,
    for the tests that write thousands of items."""
    from local.aws import emulator_fixes

    emulator_fixes.apply()
    try:
        yield
    finally:
        emulator_fixes.revert()
