"""The bench's DynamoDB billing units (bench.aws_ledger): an update or a delete is billed at the whole item's
size, the larger of before and after, as DynamoDB bills it, not at the size of what the request sets."""

from typing import Any

from bench.aws_ledger import ItemSizes, dynamodb_units

TABLE = "gateway"
KEY = {"pk": {"S": "OUT#17841400000000001#order-1"}, "sk": {"S": "MESSAGE"}}


def put(text_bytes: int) -> dict[str, Any]:
    return {"TableName": TABLE, "Item": {**KEY, "status": {"S": "SENDING"}, "text": {"S": "x" * text_bytes}}}


def update(expression: str, values: dict[str, Any], names: dict[str, str] | None = None) -> dict[str, Any]:
    request: dict[str, Any] = {"TableName": TABLE, "Key": KEY, "UpdateExpression": expression}
    request["ExpressionAttributeValues"] = values
    if names:
        request["ExpressionAttributeNames"] = names
    return request


def test_an_update_of_an_item_written_before_is_billed_at_the_whole_items_size() -> None:
    items = ItemSizes()
    assert dynamodb_units("PutItem", put(1500), items) == (0.0, 2.0)  # about 1.5 KB
    sent = update(
        "SET #status = :sent, mid = :mid", {":sent": {"S": "SENT"}, ":mid": {"S": "m_1"}}, {"#status": "status"}
    )
    assert dynamodb_units("UpdateItem", sent, items) == (0.0, 2.0)  # a few bytes set, the item is 1.5 KB
    in_transaction = {"TransactItems": [{"Update": sent}]}
    assert dynamodb_units("TransactWriteItems", in_transaction, items) == (0.0, 4.0)  # twice, in a transaction
    assert dynamodb_units("DeleteItem", {"TableName": TABLE, "Key": KEY}, items) == (0.0, 2.0)


def test_an_update_that_removes_the_bulk_is_billed_at_the_larger_size_before_it() -> None:
    items = ItemSizes()
    dynamodb_units("PutItem", put(3000), items)
    scrub = update(
        "SET #status = :gone REMOVE #text", {":gone": {"S": "ERASED"}}, {"#status": "status", "#text": "text"}
    )
    assert dynamodb_units("UpdateItem", scrub, items) == (0.0, 3.0)  # 3 KB before
    again = update("SET #status = :gone", {":gone": {"S": "ERASED"}}, {"#status": "status"})
    assert dynamodb_units("UpdateItem", again, items) == (0.0, 1.0)  # now a small item


def test_an_item_never_seen_written_counts_what_the_update_sets_and_functions_keep_their_commas() -> None:
    items = ItemSizes()
    window = update(
        "SET last_user_message_at = if_not_exists(last_user_message_at, :at), expires_at = :ttl",
        {":at": {"S": "2026-12-06T19:42:03Z"}, ":ttl": {"N": "1796586391"}},
    )
    assert dynamodb_units("UpdateItem", window, items) == (0.0, 1.0)
    big = update("SET body = :body", {":body": {"S": "y" * 2100}})
    assert dynamodb_units("UpdateItem", big, items) == (0.0, 3.0)  # the item grew past 2 KB
