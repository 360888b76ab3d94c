"""igdm.runtime.aws.PlainJSONSerializer sends, byte for byte, what botocore's own JSON serializer sends, for the
DynamoDB and SQS requests the gateway makes; and leaves to botocore what it would change."""

import json
from functools import cache
from typing import Any

import boto3
import pytest
from botocore.serialize import JSONSerializer
from hypothesis import given, settings
from hypothesis import strategies as st

from igdm.runtime import aws
from igdm.store.attributes import to_attribute, to_attributes

plain_values = st.recursive(
    st.none() | st.booleans() | st.text(max_size=20) | st.integers(min_value=-(10**30), max_value=10**30),
    lambda members: st.lists(members, max_size=3) | st.dictionaries(st.text(max_size=6), members, max_size=3),
    max_leaves=12,
)
items = st.dictionaries(st.text(min_size=1, max_size=8), plain_values, min_size=1, max_size=6).map(
    lambda item: {"pk": {"S": "CONV#1#2"}, "sk": {"S": "EVT#1"}, **to_attributes(item)}
)


@cache
def botocore_client_of(service: str) -> Any:
    return boto3.client(service, region_name="us-east-1", config=aws.CLIENT_CONFIG)  # type: ignore[call-overload]


def both(service: str, operation: str, parameters: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    botocore_client = botocore_client_of(service)
    model = botocore_client.meta.service_model.operation_model(operation)
    theirs = botocore_client._serializer.serialize_to_request(parameters, model)
    ours = aws.PlainJSONSerializer(botocore_client._serializer).serialize_to_request(parameters, model)
    return dict(theirs), ours


def assert_same(service: str, operation: str, parameters: dict[str, Any]) -> None:
    theirs, ours = both(service, operation, parameters)
    assert ours == theirs  # method, url path, query string, headers, body bytes, host prefix


@settings(max_examples=60, deadline=None)
@given(st.lists(items, min_size=1, max_size=5))
def test_a_transaction_and_a_batch_read_are_sent_as_botocore_sends_them(written: list[dict[str, Any]]) -> None:
    assert_same(
        "dynamodb",
        "TransactWriteItems",
        {
            "TransactItems": [
                {"Put": {"TableName": "t", "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}}
                for item in written
            ]
        },
    )
    keys = [{"pk": item["pk"], "sk": item["sk"]} for item in written]
    assert_same("dynamodb", "BatchGetItem", {"RequestItems": {"t": {"Keys": keys, "ProjectionExpression": "sk"}}})
    assert_same("dynamodb", "PutItem", {"TableName": "t", "Item": written[0], "ReturnValues": "NONE"})


@pytest.mark.parametrize(
    ("service", "operation", "parameters"),
    [
        (
            "dynamodb",
            "UpdateItem",
            {
                "TableName": "t",
                "Key": to_attributes({"pk": "RATE#1", "sk": "TEXT"}),
                "UpdateExpression": "SET #t = :t",
                "ConditionExpression": "attribute_not_exists(#t) OR #t < :t",
                "ExpressionAttributeNames": {"#t": "tat"},
                "ExpressionAttributeValues": {":t": to_attribute(17)},
                "ReturnValues": "ALL_NEW",
            },
        ),
        (
            "dynamodb",
            "GetItem",
            {"TableName": "t", "Key": to_attributes({"pk": "a", "sk": "b"}), "ConsistentRead": True},
        ),
        (
            "dynamodb",
            "Query",
            {
                "TableName": "t",
                "IndexName": "AccountCustomer",
                "KeyConditionExpression": "account_id = :a",
                "ExpressionAttributeValues": {":a": {"S": "1"}},
                "Limit": 25,
                "ExclusiveStartKey": to_attributes({"pk": "a", "sk": "b"}),
            },
        ),
        (
            "sqs",
            "SendMessageBatch",
            {
                "QueueUrl": "https://sqs.us-east-1.amazonaws.com/1/q.fifo",
                "Entries": [
                    {
                        "Id": "0",
                        "MessageBody": json.dumps({"text": "héllo 👋"}),
                        "MessageGroupId": "1:2",
                        "MessageDeduplicationId": "abc",
                        "MessageAttributes": {"dialect": {"DataType": "String", "StringValue": "cm"}},
                    }
                ],
            },
        ),
        ("sqs", "SendMessage", {"QueueUrl": "u", "MessageBody": "{}", "DelaySeconds": 3}),
        (
            "sqs",
            "DeleteMessageBatch",
            {"QueueUrl": "u", "Entries": [{"Id": "0", "ReceiptHandle": "r"}]},
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_each_kind_of_request_is_sent_as_botocore_sends_it(
    service: str, operation: str, parameters: dict[str, Any]
) -> None:
    assert_same(service, operation, parameters)


def test_what_botocore_would_convert_goes_through_botocore() -> None:
    # Bytes are base64-encoded by botocore: json.dumps refuses them, so botocore serializes that request.
    binary = {"TableName": "t", "Item": {"pk": {"S": "a"}, "blob": to_attribute(b"\x00\xff")}}
    theirs, ours = both("dynamodb", "PutItem", binary)
    assert ours == theirs and b'"B": "AP8="' in ours["body"]
    # An operation with a timestamp member is botocore's whatever its parameters.
    client = boto3.client("dynamodb", region_name="us-east-1", config=aws.CLIENT_CONFIG)
    restore = client.meta.service_model.operation_model("RestoreTableToPointInTime")
    assert not aws.plain_operation(restore)
    assert aws.plain_operation(client.meta.service_model.operation_model("TransactWriteItems"))


def test_the_gateways_clients_use_it_and_botocore_still_has_what_it_relies_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    aws.clear_clients()
    try:
        for service in aws.PLAIN_JSON_SERVICES:
            made = aws.client(service)
            assert isinstance(made._serializer, aws.PlainJSONSerializer)
            wrapped: Any = made._serializer._botocore
            assert isinstance(wrapped, JSONSerializer) and callable(getattr(wrapped, "_expand_host_prefix", None))
        assert not isinstance(aws.client("secretsmanager")._serializer, aws.PlainJSONSerializer)
    finally:
        aws.clear_clients()
