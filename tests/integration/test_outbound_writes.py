"""The outbound record's merged writes in moto's DynamoDB (igdm.store.outbound_records): the claim that also
marks the first part in flight, and the transaction that records a part Meta accepted with its mid's link.
Each must leave the items exactly as the two steps it replaces did, or write nothing."""

from typing import Any

import pytest

from igdm.store.keys import MESSAGE_ID_SK, key, message_id_pk
from igdm.store.outbound_records import DELIVERED, PENDING, SENT, OutboundRecord, OutboundRecords
from tests.integration.conftest import MOTO_TABLE

ACCOUNT, CUSTOMER = "17841400000000001", "6543210987654321"
IN_FLIGHT_SINCE = "2026-01-01T00:00:00.250000+00:00"


@pytest.fixture
def records(dynamodb: Any) -> OutboundRecords:
    return OutboundRecords(dynamodb, MOTO_TABLE, retention_days=90)


def claim(records: OutboundRecords, key: str, *, parts: int = 1, inflight_at: str | None = None) -> OutboundRecord:
    record, created = records.claim(
        idempotency_key=key,
        payload_hash="h",
        kind="text",
        account_id=ACCOUNT,
        customer_id=CUSTOMER,
        parts_total=parts,
        correlation_id="c-1",
        callback_url=None,
        callback_data=None,
        inflight_at=inflight_at,
    )
    assert created
    return record


def item(dynamodb: Any, pk: str, sk: str) -> dict[str, Any]:
    found: dict[str, Any] = dynamodb.get_item(TableName=MOTO_TABLE, Key=key(pk, sk), ConsistentRead=True).get(
        "Item", {}
    )
    return found


def test_a_claim_in_flight_is_the_claim_and_begin_part_in_one_write(records: OutboundRecords, dynamodb: Any) -> None:
    merged = claim(records, "merged", inflight_at=IN_FLIGHT_SINCE)
    assert records.get("merged") == merged
    assert (merged.status, merged.inflight_part, merged.inflight_at) == (PENDING, 0, IN_FLIGHT_SINCE)

    claim(records, "stepwise")
    assert records.begin_part("stepwise", 0)
    one, two = item(dynamodb, "OUT#merged", "MESSAGE"), item(dynamodb, "OUT#stepwise", "MESSAGE")
    assert set(one) == set(two)  # the same attributes, attempts among them
    assert (
        (one["inflight_part"], one["attempts"]) == (two["inflight_part"], two["attempts"]) == ({"N": "0"}, {"N": "1"})
    )
    assert not records.begin_part("merged", 0)  # already in flight: nobody marks it again


def test_a_part_sent_with_its_mid_linked_in_one_transaction(records: OutboundRecords, dynamodb: Any) -> None:
    record = claim(records, "k", inflight_at=IN_FLIGHT_SINCE)
    sent = records.part_sent_linked(record, 0, "m_1", last=True)
    assert sent is not None and sent == records.get("k")  # what it returns is what is stored
    assert (sent.status, sent.parts_sent, sent.message_ids, sent.inflight_part) == (SENT, 1, ["m_1"], None)
    assert sent.sent_at is not None
    mid = item(dynamodb, message_id_pk("m_1"), MESSAGE_ID_SK)
    assert (mid["idempotency_key"], mid["conversation_id"]) == ({"S": "k"}, {"S": f"{ACCOUNT}:{CUSTOMER}"})
    # A receipt that comes after finds the message, which may now move on.
    assert records.receipt("m_1", DELIVERED, 1, ACCOUNT, CUSTOMER) == "k"


def test_each_part_of_a_message_is_recorded_in_order_and_only_the_last_makes_it_sent(
    records: OutboundRecords,
) -> None:
    record = claim(records, "two", parts=2, inflight_at=IN_FLIGHT_SINCE)
    first = records.part_sent_linked(record, 0, "m_1", last=False)
    assert first is not None and (first.status, first.parts_sent, first.sent_at) == (PENDING, 1, None)
    assert records.part_sent_linked(first, 1, "m_2", last=True) is None  # part 2 is not in flight yet
    assert records.begin_part("two", 1)
    second = records.part_sent_linked(first, 1, "m_2", last=True)
    assert second is not None and second == records.get("two")
    assert (second.status, second.message_ids) == (SENT, ["m_1", "m_2"])


def test_a_receipt_recorded_before_the_link_leaves_both_writes_to_the_two_steps(
    records: OutboundRecords, dynamodb: Any
) -> None:
    record = claim(records, "k", inflight_at=IN_FLIGHT_SINCE)
    assert records.receipt("m_fast", DELIVERED, 5, ACCOUNT, CUSTOMER) is None  # the echo outran Meta's answer
    before = item(dynamodb, message_id_pk("m_fast"), MESSAGE_ID_SK)
    assert records.part_sent_linked(record, 0, "m_fast", last=True) is None
    assert records.get("k") == record  # nothing written: still in flight
    assert item(dynamodb, message_id_pk("m_fast"), MESSAGE_ID_SK) == before
    # The two steps, as the sender then takes them: the receipt comes back with the link.
    sent = records.part_sent("k", 0, "m_fast", last=True)
    assert sent is not None and sent.status == SENT
    assert records.link_message_id("m_fast", sent)["delivered_at"] == 5


def test_a_record_no_longer_waiting_for_the_part_takes_neither_write(records: OutboundRecords, dynamodb: Any) -> None:
    record = claim(records, "k", inflight_at=IN_FLIGHT_SINCE)
    assert records.settle("k", "UNKNOWN", reason="ambiguous_outcome", detail="a concurrent attempt") is not None
    assert records.part_sent_linked(record, 0, "m_1", last=True) is None
    assert item(dynamodb, message_id_pk("m_1"), MESSAGE_ID_SK) == {}
    stored = records.get("k")
    assert stored is not None and (stored.status, stored.message_ids) == ("UNKNOWN", [])


def test_a_part_released_is_no_longer_in_flight_nor_an_attempt(records: OutboundRecords, dynamodb: Any) -> None:
    claim(records, "late", inflight_at=IN_FLIGHT_SINCE)  # marked in flight, then it missed its rate slot
    records.part_released("late", 0)
    released = records.get("late")
    assert released is not None and (released.status, released.inflight_part, released.refusals) == (PENDING, None, 0)
    assert item(dynamodb, "OUT#late", "MESSAGE")["attempts"] == {"N": "0"}
    assert records.begin_part("late", 0)  # the next receive marks it and sends it, as a first try
    records.part_released("late", 1)  # another part than the one in flight: nothing changes
    assert records.get("late").inflight_part == 0  # type: ignore[union-attr]
