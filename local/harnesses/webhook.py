"""The webhook function's harness: the real handler, in this process, against moto with the template's
resources; Meta's deliveries are signed and posted as API Gateway events."""

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from igdm.runtime import aws
from local.aws.apigw import LambdaContext, http_api_event
from local.aws.template import REGION, Stack
from local.harnesses.aws import in_process_aws
from local.samples.meta import RECEIVED_MS
from webhook import handler, wiring
from webhook.signature import sign

APP_SECRET = "integration-app-secret"
INSTAGRAM_APP_SECRET = "integration-instagram-secret"
VERIFY_TOKEN = "integration-verify-token"


def reset_function_state() -> None:
    wiring.reset()


class Harness:
    def __init__(self, stack: Stack, clients: dict[str, Any]) -> None:
        self.stack = stack
        self.clients = clients
        self.table = stack.refs["GatewayTable"]
        self.queue_url = stack.refs["EventsQueue"]

    def post(
        self,
        document: Any = None,
        *,
        raw: bytes | None = None,
        signature: str | None = "sign",
        secret: str = APP_SECRET,
        base64_body: bool = False,
        now_ms: int = RECEIVED_MS,
    ) -> dict[str, Any]:
        """Meta delivers: by default at the sample payloads' own time (local.samples.meta)."""
        body = raw if raw is not None else json.dumps(document, separators=(",", ":")).encode()
        headers = {"content-type": "application/octet-stream" if base64_body else "application/json"}
        if signature == "sign":
            headers["X-Hub-Signature-256"] = sign(body, secret)
        elif signature is not None:
            headers["X-Hub-Signature-256"] = signature
        return self.invoke(http_api_event("POST", "/webhook", headers=headers, body=body, now_ms=now_ms))

    def get(self, query: str) -> dict[str, Any]:
        return self.invoke(http_api_event("GET", "/webhook", query=query))

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = handler.lambda_handler(event, LambdaContext("WebhookFunction"))
        return result

    def items(self) -> list[dict[str, Any]]:
        table = boto3.resource("dynamodb", region_name=REGION).Table(self.table)
        page = table.scan(ConsistentRead=True)
        items: list[dict[str, Any]] = page["Items"]
        while "LastEvaluatedKey" in page:
            page = table.scan(ConsistentRead=True, ExclusiveStartKey=page["LastEvaluatedKey"])
            items.extend(page["Items"])
        return items

    def count_event_items(self) -> int:
        paginator = self.clients["dynamodb"].get_paginator("scan")
        return sum(
            page["Count"]
            for page in paginator.paginate(
                TableName=self.table,
                Select="COUNT",
                FilterExpression="begins_with(sk, :e)",
                ExpressionAttributeValues={":e": {"S": "EVT#"}},
            )
        )

    def queue_depth(self) -> int:
        attributes = self.clients["sqs"].get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"])

    def event_items(self) -> list[dict[str, Any]]:
        return [i for i in self.items() if i["sk"].startswith("EVT#")]

    def drain(self) -> list[dict[str, Any]]:
        """Receive and delete everything on the events queue, in delivery order."""
        messages: list[dict[str, Any]] = []
        sqs = self.clients["sqs"]
        while True:
            got = sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"], MessageAttributeNames=["All"]
            ).get("Messages", [])
            if not got:
                return messages
            messages.extend(got)
            sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)],
            )

    def fail(
        self, service: str, operation: str, times: int = 1, code: str = "InternalServerError", after: int = 0
    ) -> None:
        """Make the handler's calls of ``operation`` fail as AWS would: ``times`` of them, once ``after``
        have gone through."""
        remaining = {"n": times, "skip": after}

        def explode(**_: Any) -> None:
            if remaining["skip"] > 0:
                remaining["skip"] -= 1
            elif remaining["n"] > 0:
                remaining["n"] -= 1
                raise ClientError({"Error": {"Code": code, "Message": "injected"}}, operation)

        aws.client(service).meta.events.register(f"before-call.{service}.{operation}", explode)

    def count_requests(self) -> Callable[[], int]:
        counter = {"n": 0}

        def count(**_: Any) -> None:
            counter["n"] += 1

        for service in ("dynamodb", "sqs", "secretsmanager"):
            aws.client(service).meta.events.register("before-send", count)
        return lambda: counter["n"]


@contextmanager
def webhook_harness(patch: pytest.MonkeyPatch, *, one_request_at_a_time: bool = False) -> Iterator[Harness]:
    """The webhook handler with the template's environment, its app secret holding both app secrets."""
    app_secret = json.dumps({"app_secrets": [APP_SECRET, INSTAGRAM_APP_SECRET], "verify_token": VERIFY_TOKEN})
    with in_process_aws(patch, "gw-test", {"AppSecret": app_secret}, one_request_at_a_time=one_request_at_a_time) as (
        stack,
        clients,
    ):
        for key, value in stack.function_environment("WebhookFunction").items():
            patch.setenv(key, value)
        reset_function_state()
        try:
            yield Harness(stack, clients)
        finally:
            reset_function_state()
