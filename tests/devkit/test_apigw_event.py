"""The local stack's API Gateway events have the shape AWS sends (as `sam local generate-event` prints)."""

import base64
import json
from pathlib import Path
from typing import Any

from local.aws.apigw import http_api_event

SAM_EVENT = json.loads(
    (Path(__file__).parent.parent / "fixtures" / "sam_generate_event_http_api_proxy.json").read_text(encoding="utf-8")
)
# Present in sam's sample only with path parameters, mTLS, a JWT authorizer or stage variables.
OPTIONAL = {"pathParameters", "stageVariables", "requestContext.authentication", "requestContext.authorizer"}


def paths(document: dict[str, Any], prefix: str = "") -> set[str]:
    found = set()
    for key, value in document.items():
        found.add(prefix + key)
        if isinstance(value, dict) and key not in ("headers", "queryStringParameters"):
            found |= paths(value, f"{prefix}{key}.")
    return found


def test_same_keys_as_sams_sample_event() -> None:
    ours = http_api_event(
        "POST",
        "/webhook",
        query="a=1",
        body=b'{"x":1}',
        headers={"Content-Type": "application/json", "Cookie": "s=1; t=2"},
    )
    expected = {p for p in paths(SAM_EVENT) if not any(p == o or p.startswith(o + ".") for o in OPTIONAL)}
    assert paths(ours) == expected
    assert ours["cookies"] == ["s=1", "t=2"] and "cookie" not in ours["headers"]


def test_text_bodies_pass_as_text_and_binary_bodies_as_base64() -> None:
    text = http_api_event("POST", "/webhook", headers={"content-type": "application/json"}, body=b'{"a":1}')
    binary = http_api_event("POST", "/webhook", headers={"content-type": "application/octet-stream"}, body=b"\x00\xff")
    assert (text["body"], text["isBase64Encoded"]) == ('{"a":1}', False)
    assert (base64.b64decode(binary["body"]), binary["isBase64Encoded"]) == (b"\x00\xff", True)


def test_repeated_query_parameters_are_joined_with_commas() -> None:
    event = http_api_event("GET", "/webhook", query="a=1&a=2&hub.mode=subscribe")
    assert event["queryStringParameters"] == {"a": "1,2", "hub.mode": "subscribe"}
    assert event["rawQueryString"] == "a=1&a=2&hub.mode=subscribe"
