"""boto3 clients with the gateway's timeouts and retry policy, created once per execution environment.

Endpoints follow the standard AWS_ENDPOINT_URL variable, which is how the local stack points the real
handlers at its emulator without any special casing here.
"""

import json
import time
from functools import cache
from typing import Any

import boto3
from botocore.config import Config
from botocore.serialize import JSONSerializer

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


# Services whose requests go through PlainJSONSerializer (their JSON protocol adds nothing to plain values).
PLAIN_JSON_SERVICES = frozenset({"dynamodb", "sqs"})


@cache
def client(service: str) -> Any:
    made = boto3.client(service, config=CLIENT_CONFIG)  # type: ignore[call-overload]
    if service in PLAIN_JSON_SERVICES:
        made._serializer = PlainJSONSerializer(made._serializer)
    return made


# Shapes botocore converts even when given plain values (a timestamp as a string, a float's special values).
_CONVERTED_TYPES = frozenset({"timestamp", "float", "double"})


@cache
def plain_operation(operation_model: Any) -> bool:
    """Whether botocore's JSON serializer copies this operation's plain parameters unchanged: no member renamed
    and none of a converted type. Blobs are copied unless given as bytes, which json.dumps refuses; the gateway
    gives blobs as bytes only (boto3's TypeSerializer's {"B": bytes})."""
    seen: set[str] = set()
    pending = [operation_model.input_shape] if operation_model.input_shape is not None else []
    while pending:
        shape = pending.pop()
        if shape.name in seen:
            continue  # AttributeValue holds maps and lists of itself (botocore builds a new object at each look)
        seen.add(shape.name)
        if shape.type_name in _CONVERTED_TYPES:
            return False
        if shape.type_name == "structure":
            for name, member in shape.members.items():
                if member.serialization.get("name", name) != name:
                    return False
                pending.append(member)
        elif shape.type_name == "list":
            pending.append(shape.member)
        elif shape.type_name == "map":
            pending.append(shape.value)
    return True


class _NotPlainJSON(Exception):
    pass


def _not_plain(value: Any) -> Any:
    raise _NotPlainJSON(type(value).__name__)


class PlainJSONSerializer:
    """botocore's JSON protocol serializer, without its walk over the request's shape where that walk changes
    nothing.

    For DynamoDB and SQS, botocore's JSONSerializer copies each parameter as it is, except bytes (base64) and
    timestamps and floats (converted): for a request made of str, int, bool, None, dicts and lists, its body is
    exactly json.dumps of the parameters, in their order. It finds that out by walking every value against the
    operation's shape: about a third of the webhook's CPU per event in a 1000-event POST (16,000 attribute values,
    docs/performance.md). Here json.dumps writes the body directly and refuses anything else (_not_plain), in
    which case botocore's own serializer does the whole request; the request's method, headers and host prefix
    are always botocore's. tests/unit/layer/test_plain_json.py compares the bytes with botocore's for every
    request the gateway makes; botocore is pinned (layers/shared/requirements.txt) because this relies on the
    client's `_serializer` and on JSONSerializer's behaviour.
    """

    def __init__(self, botocore_serializer: Any) -> None:
        if not isinstance(botocore_serializer, JSONSerializer):
            raise TypeError(f"expected botocore's JSONSerializer, got {type(botocore_serializer).__name__}")
        self._botocore: Any = botocore_serializer  # its private _expand_host_prefix is not in the stubs

    def serialize_to_request(self, parameters: dict[str, Any], operation_model: Any) -> dict[str, Any]:
        try:
            if not plain_operation(operation_model):
                raise _NotPlainJSON(operation_model.name)
            body = json.dumps(parameters, default=_not_plain).encode("utf-8")
        except _NotPlainJSON:
            return dict(self._botocore.serialize_to_request(parameters, operation_model))
        # Everything but the body, as botocore builds it: from no parameters, then the host prefix from ours.
        serialized = dict(self._botocore.serialize_to_request({}, operation_model))
        serialized["body"] = body
        host_prefix = self._botocore._expand_host_prefix(parameters, operation_model)
        if host_prefix is not None:
            serialized["host_prefix"] = host_prefix
        return serialized


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
