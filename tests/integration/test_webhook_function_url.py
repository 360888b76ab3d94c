"""The webhook behind its Lambda function URL: payload 2.0 like the HTTP API's, but every request comes with the
route key "$default", and the method and path are the request's own (requestContext.http.method, rawPath)."""

import json
from typing import Any

import pytest

from local.aws.apigw import http_api_event
from local.harnesses.webhook import APP_SECRET, VERIFY_TOKEN, Harness
from local.samples import meta as p
from webhook.signature import sign


def function_url_event(method: str, path: str, *, query: str = "", body: bytes = b"", signed: bool = True) -> Any:
    headers = {"content-type": "application/json"}
    if signed and body:
        headers["x-hub-signature-256"] = sign(body, APP_SECRET)
    return http_api_event(
        method, path, query=query, headers=headers, body=body, route_key="$default", now_ms=p.RECEIVED_MS
    )


def test_the_handshake_through_the_function_url(harness: Harness) -> None:
    query = f"hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1158201444"
    response = harness.invoke(function_url_event("GET", "/webhook", query=query))
    assert (response["statusCode"], response["body"]) == (200, "1158201444")
    response = harness.invoke(function_url_event("GET", "/webhook", query="hub.mode=subscribe&hub.verify_token=no"))
    assert response["statusCode"] == 403


def test_a_signed_post_through_the_function_url_is_stored_and_published(harness: Harness) -> None:
    body = p.body(p.envelope(p.text(), p.reaction()))
    response = harness.invoke(function_url_event("POST", "/webhook", body=body))
    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == {"received": 2, "published": 2, "duplicates": 0, "stale": 0}
    assert [json.loads(m["Body"])["kind"] for m in harness.drain()] == ["text", "reaction"]


def test_an_unsigned_post_through_the_function_url_is_refused_as_through_the_api(harness: Harness) -> None:
    response = harness.invoke(function_url_event("POST", "/webhook", body=p.body(p.envelope(p.text())), signed=False))
    assert response["statusCode"] == 401
    assert json.loads(response["body"]) == {"error": "missing X-Hub-Signature-256 header"}


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/"), ("GET", "/webhook/"), ("POST", "/Webhook"), ("PUT", "/webhook"), ("DELETE", "/webhook")],
)
def test_any_other_method_or_path_of_the_function_url_is_a_404(harness: Harness, method: str, path: str) -> None:
    response = harness.invoke(function_url_event(method, path, body=p.body(p.envelope(p.text()))))
    assert response["statusCode"] == 404
    assert json.loads(response["body"]) == {"error": f"no route {method} {path}"}
    assert harness.event_items() == []


def test_a_default_route_without_a_method_or_path_is_a_404_naming_it(harness: Harness) -> None:
    event = function_url_event("POST", "/webhook", body=p.body(p.envelope(p.text())))
    del event["rawPath"]
    response = harness.invoke(event)
    assert response["statusCode"] == 404
    assert json.loads(response["body"]) == {"error": "no route $default"}
