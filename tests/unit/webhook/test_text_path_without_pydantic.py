"""The path a signed text message takes, from the cold import of the handler through its first POST (secret read,
settings, request, signature, parsing, normalising, serialising, storing, publishing), never imports pydantic:
pydantic was a third of the webhook's cold start. Run in a fresh interpreter, with the AWS clients stubbed."""

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from local.aws.template import ROOT  # the checkout, whose functions and layer the child imports

PROBE = """
import json, sys
from igdm.runtime import aws

SECRET = "0123456789abcdef0123456789abcdef"
calls = []


class StubClient:
    # Answers what the webhook asks of Secrets Manager, DynamoDB and SQS as an empty account would.
    def __init__(self, service):
        self.service = service

    def __getattr__(self, operation):
        def call(**request):
            calls.append(f"{self.service}.{operation}")
            if operation == "get_secret_value":
                return {"SecretString": json.dumps({"app_secrets": [SECRET], "verify_token": "t"})}
            if operation == "batch_get_item":
                return {"Responses": {}}
            if operation == "send_message_batch":
                return {"Successful": [{"Id": e["Id"]} for e in request["Entries"]], "Failed": []}
            return {}
        return call


aws.client = StubClient  # before the first request builds the ports

from webhook import handler
from local.aws.apigw import LambdaContext, http_api_event
from local.samples import meta as m
from webhook.signature import sign

imported_on_import = "pydantic" in sys.modules
answers = []
for route_key, words in ((None, "Hi \\U0001f600, is this in stock?"), ("$default", "and in blue?")):
    body = m.body(m.envelope(m.text(mid=f"m_{len(answers)}", words=words)))
    headers = {"content-type": "application/json", "x-hub-signature-256": sign(body, SECRET)}
    event = http_api_event("POST", "/webhook", headers=headers, body=body, route_key=route_key, now_ms=m.RECEIVED_MS)
    answers.append(handler.lambda_handler(event, LambdaContext("WebhookFunction")))
print(json.dumps({
    "pydantic_on_import": imported_on_import,
    "pydantic_after_posts": "pydantic" in sys.modules,
    "statuses": [a["statusCode"] for a in answers],
    "bodies": [json.loads(a["body"]) for a in answers],
    "calls": sorted(set(calls)),
}))
"""


def run_probe() -> dict[str, Any]:
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": os.pathsep.join(str(ROOT / p) for p in ("functions/webhook", "layers/shared", ".")),
        "POWERTOOLS_SERVICE_NAME": "instagram-gateway",
        "POWERTOOLS_METRICS_NAMESPACE": "InstagramGateway",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "TABLE_NAME": "t",
        "EVENTS_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/events.fifo",
        "APP_SECRET_NAME": "app",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    result = subprocess.run(  # noqa: S603 - our own interpreter and probe, fixed arguments
        [sys.executable, "-c", PROBE], env=environment, capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode != 0:
        pytest.fail(result.stderr[-3000:])
    found: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return found


def test_a_signed_text_message_is_answered_without_importing_pydantic() -> None:
    found = run_probe()
    assert found["statuses"] == [200, 200]  # through the HTTP API, then through the function URL
    assert found["bodies"] == [{"received": 1, "published": 1, "duplicates": 0, "stale": 0}] * 2
    assert {"sqs.send_message_batch", "secretsmanager.get_secret_value", "dynamodb.batch_get_item"} <= set(
        found["calls"]
    )
    assert found["pydantic_on_import"] is False
    assert found["pydantic_after_posts"] is False
