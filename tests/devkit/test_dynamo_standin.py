"""bench.dynamo_standin keeps DynamoDB's semantics where the sender relies on them: figure 3 of `make bench` measures
the sender against it, through the sender's own adapters, botocore and HTTP. Outcomes only, no timings. The same
requests go to moto served the same way (bench.moto_standin), which tests/integration holds to AWS's behaviour, so
the two must agree."""

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from bench.dynamo_standin import AwsError, DynamoStandIn, State
from bench.moto_standin import MotoStandIn, StandInProcess
from igdm.store.outbound_records import OutboundRecords
from igdm.store.rate_limits import RateLimiter

TABLE = "bench-standin-test"
STAND_INS: dict[str, type[StandInProcess]] = {"dynamo": DynamoStandIn, "moto": MotoStandIn}
TABLE_DEFINITION: dict[str, Any] = {
    "TableName": TABLE,
    "AttributeDefinitions": [
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "sk", "AttributeType": "S"},
    ],
    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    "BillingMode": "PAY_PER_REQUEST",
}


@pytest.fixture(scope="module", params=sorted(STAND_INS))
def dynamodb(request: pytest.FixtureRequest) -> Iterator[Any]:
    with STAND_INS[request.param](latency_ms=0, time_limit=120) as stand_in:
        client = stand_in.clients()["dynamodb"]
        client.create_table(**TABLE_DEFINITION)
        yield client


def _claim(records: OutboundRecords, payload_hash: str) -> tuple[str, bool]:
    record, created = records.claim(
        idempotency_key="order-1",
        payload_hash=payload_hash,
        kind="text",
        account_id="17841400000000001",
        customer_id="9000000000000001",
        parts_total=1,
        correlation_id=None,
        callback_url=None,
        callback_data=None,
        inflight_at="2026-01-01T00:00:00+00:00",
    )
    return record.payload_hash, created


def test_a_conditional_put_is_refused_twice_and_returns_the_item_it_found(dynamodb: Any) -> None:
    records = OutboundRecords(dynamodb, TABLE, retention_days=7)

    assert _claim(records, "first") == ("first", True)
    assert _claim(records, "second") == ("first", False)  # the record the refusal returned, not the one asked
    assert _claim(records, "third") == ("first", False)
    stored = records.get("order-1")
    assert stored is not None and stored.payload_hash == "first" and stored.inflight_part == 0


def test_a_transaction_with_one_failed_condition_is_cancelled_whole(dynamodb: Any) -> None:
    def item(pk: str, status: str) -> dict[str, Any]:
        return {"pk": {"S": pk}, "sk": {"S": "R"}, "status": {"S": status}}

    dynamodb.put_item(TableName=TABLE, Item=item("record", "PENDING"))
    dynamodb.put_item(TableName=TABLE, Item=item("link", "TAKEN"))
    sent = {
        "Update": {
            "TableName": TABLE,
            "Key": {"pk": {"S": "record"}, "sk": {"S": "R"}},
            "UpdateExpression": "SET #status = :sent ADD parts_sent :one",
            "ConditionExpression": "#status = :pending",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": {":sent": {"S": "SENT"}, ":pending": {"S": "PENDING"}, ":one": {"N": "1"}},
        }
    }
    linked = {
        "Put": {"TableName": TABLE, "Item": item("link", "NEW"), "ConditionExpression": "attribute_not_exists(pk)"}
    }

    with pytest.raises(ClientError) as cancelled:
        dynamodb.transact_write_items(TransactItems=[sent, linked])

    assert cancelled.value.response["Error"]["Code"] == "TransactionCanceledException"
    reasons: Any = cancelled.value.response.get("CancellationReasons")
    assert [r["Code"] for r in reasons] == ["None", "ConditionalCheckFailed"]
    record = dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "record"}, "sk": {"S": "R"}})["Item"]
    assert record["status"] == {"S": "PENDING"} and "parts_sent" not in record  # the first action was not written

    dynamodb.delete_item(TableName=TABLE, Key={"pk": {"S": "link"}, "sk": {"S": "R"}})
    dynamodb.transact_write_items(TransactItems=[sent, linked])
    record = dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "record"}, "sk": {"S": "R"}})["Item"]
    assert record["status"] == {"S": "SENT"} and record["parts_sent"] == {"N": "1"}


def test_the_rate_limiters_conditional_updates_reserve_slots_in_order(dynamodb: Any) -> None:
    limiter = RateLimiter(dynamodb, TABLE, {"text": (1.0, 0.0)}, clock=lambda: 1000.0)  # one call a second

    first = limiter.acquire("17841400000000002", "text")
    refused = limiter.acquire("17841400000000002", "text")  # the next slot is a second off: not within 0 s
    reserved = limiter.acquire("17841400000000002", "text", max_wait=5.0)

    assert (first.reserved, first.wait) == (True, 0.0)
    assert (refused.reserved, refused.wait) == (False, 1.0)
    assert (reserved.reserved, reserved.wait) == (True, 1.0)


def test_the_store_answers_what_it_does_not_serve_with_an_error_that_names_it() -> None:
    state = State()
    state.answer("dynamodb", "CreateTable", TABLE_DEFINITION)

    with pytest.raises(AwsError, match=r"does not serve dynamodb\.RestoreTableFromBackup"):
        state.answer("dynamodb", "RestoreTableFromBackup", {})
    with pytest.raises(AwsError, match="Transaction request cannot include multiple operations on one item"):
        key = {"pk": {"S": "a"}, "sk": {"S": "b"}}
        update = {"TableName": TABLE, "Key": key, "UpdateExpression": "REMOVE x"}
        state.answer("dynamodb", "TransactWriteItems", {"TransactItems": [{"Update": update}, {"Update": update}]})


def test_the_stores_conditions_read_as_dynamodbs() -> None:
    state = State()
    state.answer("dynamodb", "CreateTable", TABLE_DEFINITION)
    key = {"pk": {"S": "a"}, "sk": {"S": "b"}}
    state.answer(
        "dynamodb",
        "PutItem",
        {"TableName": TABLE, "Item": {**key, "n": {"N": "5"}, "tags": {"SS": ["x"]}, "m": {"M": {"k": {"S": "v"}}}}},
    )
    values = {":lo": {"N": "1"}, ":hi": {"N": "9"}, ":x": {"S": "x"}, ":v": {"S": "v"}, ":no": {"S": "no"}}

    def holds(expression: str) -> bool:
        try:
            state.answer(
                "dynamodb",
                "UpdateItem",
                {
                    "TableName": TABLE,
                    "Key": key,
                    "UpdateExpression": "SET touched = :x",
                    "ConditionExpression": expression,
                    "ExpressionAttributeValues": values,
                },
            )
        except AwsError as refused:
            assert refused.kind == "ConditionalCheckFailedException"
            return False
        return True

    assert holds("n BETWEEN :lo AND :hi AND contains(tags, :x) AND m.k = :v")
    assert holds("NOT (n < :lo) AND m.k IN (:no, :v) AND size(tags) = :lo")
    assert not holds("attribute_not_exists(n) OR n > :hi OR missing = :x")
    assert not holds("missing <> :x")  # a missing attribute compares with nothing
