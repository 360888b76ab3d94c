"""igdm.store.erasure without a table: what counts as an item naming an id, the family each key counts under, the
audit item's attributes, and batch requests DynamoDB leaves partly unprocessed."""

from typing import Any

import pytest

from igdm.store.erasure import ErasureRequest, StoredData, family, names, subject_hash

ID = "6543210987654321"


@pytest.mark.parametrize(
    ("value", "named"),
    [
        (ID, True),
        (int(ID), True),
        ("16543210987654321", False),  # a longer id that contains it
        (f"{ID}:x", False),  # a compound string: the keys that hold one are found by the partition, not here
        ('{"raw": {"sender": {"id": "6543210987654321"}}}', True),  # an event's JSON
        ('{"raw": {"sender": {"id": 6543210987654321}}}', True),
        ("{not json", False),
        ({"list": [1, {"deep": ID}]}, True),
        ({ID: "as a key"}, True),
        (True, False),
        (None, False),
        (1.5, False),
    ],
)
def test_an_item_names_an_id_only_where_it_holds_it_whole(value: Any, named: bool) -> None:
    assert names(value, ID) is named


def test_each_key_counts_under_its_family() -> None:
    assert family("CONV#1#2", "EVT#e") == "events"
    assert family("CONV#1#2", "STATE") == "conversation_states"
    assert family("CONV#1#2", "UNSETTLED#k") == "unsettled_markers"
    assert family("UNSETTLED#1", "UNSETTLED#k") == "unsettled_markers"
    assert family("OUT#k", "MESSAGE") == "outbound_messages"
    assert family("TOKEN_RESCUE#1", "TOKEN") == "rescued_tokens"
    assert family("ACCOUNTS", "ACCOUNT#1") == "accounts"
    assert family("SOMETHING#1", "X") == "other"


def test_the_audit_item_holds_a_hash_never_the_id_and_reads_back() -> None:
    request = ErasureRequest.new(ID, "operator", now=1_800_000_000.0)
    item = request.to_item()
    assert ID not in str(item) and item["subject_hash"] == {"S": subject_hash(ID)}
    assert item["deleted"]["M"]["events"] == {"N": "0"} and "completed_at" not in item
    assert ErasureRequest.from_item(item) == request
    assert len(request.code) >= 24 and request.code != ErasureRequest.new(ID, "operator", now=0).code


class Throttled:
    """BatchWriteItem that leaves the first ``left`` answers' items unprocessed."""

    def __init__(self, left: int) -> None:
        self.left = left
        self.calls: list[Any] = []

    def batch_write_item(self, RequestItems: Any) -> dict[str, Any]:
        self.calls.append(RequestItems)
        if self.left:
            self.left -= 1
            return {"UnprocessedItems": RequestItems}
        return {"UnprocessedItems": {}}


def test_what_dynamodb_leaves_unprocessed_is_sent_again_with_backoff_and_then_given_up() -> None:
    slept: list[float] = []
    client = Throttled(left=2)
    StoredData(client, "t", sleep=slept.append).delete([("CONV#1#2", "EVT#a"), ("CONV#1#2", "EVT#a")])
    assert len(client.calls) == 3 and len(client.calls[0]["t"]) == 1  # each key once per request
    assert slept == [0.1, 0.2]
    with pytest.raises(RuntimeError, match="UnprocessedItems"):
        StoredData(Throttled(left=99), "t", sleep=slept.append).delete([("CONV#1#2", "EVT#a")])
