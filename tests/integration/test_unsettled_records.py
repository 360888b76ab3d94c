"""An UNKNOWN message's markers in moto's DynamoDB (igdm.store.outbound_records): written to its conversation and
its account, listed by account, removed from both, and what the reconciler's lookup reads and writes."""

from typing import Any

import pytest

from igdm.meta.echoes import Unsettled
from igdm.store.outbound_records import DELIVERED, UNKNOWN, OutboundRecords
from tests.integration.conftest import MOTO_TABLE

ACCOUNT = "17841400000000001"


@pytest.fixture
def records(dynamodb: Any) -> OutboundRecords:
    return OutboundRecords(dynamodb, MOTO_TABLE, retention_days=90)


def unknown(records: OutboundRecords, key: str, customer: str, ended_ms: int) -> Unsettled:
    record, _ = records.claim(
        idempotency_key=key,
        payload_hash="h",
        kind="text",
        account_id=ACCOUNT,
        customer_id=customer,
        parts_total=1,
        correlation_id=None,
        callback_url=None,
        callback_data=None,
    )
    records.begin_part(key, 0)
    records.settle(key, UNKNOWN, reason="ambiguous_outcome", detail="no answer")
    waiting = Unsettled(key, "text:abc", f"igdm1:{key}:0", ended_ms - 1000, ended_ms)
    records.add_unsettled(record, waiting)
    return waiting


def test_an_accounts_unknown_messages_are_listed_oldest_first_across_its_conversations(
    records: OutboundRecords,
) -> None:
    late = unknown(records, "late", "9000000000000001", 3_000_000)
    early = unknown(records, "early", "9000000000000002", 2_000_000)
    listed = records.account_unsettled(ACCOUNT)
    assert [(m.customer_id, m.unsettled) for m in listed] == [("9000000000000002", early), ("9000000000000001", late)]
    assert records.unsettled(ACCOUNT, "9000000000000001") == [late]  # and each in its conversation, for its echo
    assert records.account_unsettled("17841400000000099") == []

    records.remove_unsettled(ACCOUNT, "9000000000000002", "early")
    assert [m.unsettled for m in records.account_unsettled(ACCOUNT)] == [late]
    assert records.unsettled(ACCOUNT, "9000000000000002") == []


def test_a_lookup_that_cannot_tell_leaves_the_message_unknown_with_its_reason(records: OutboundRecords) -> None:
    unknown(records, "k", "9000000000000001", 1_000_000)
    left = records.still_unknown("k", "lookup_ambiguous", "2 messages sent during its attempt have its content")
    assert left is not None and (left.status, left.reason, left.detail) == (
        UNKNOWN,
        "lookup_ambiguous",
        "2 messages sent during its attempt have its content",
    )
    records.settle("k", DELIVERED)
    assert records.still_unknown("k", "lookup_ambiguous", "x") is None  # settled meanwhile: left as it is
    current = records.get("k")
    assert current is not None and (current.status, current.reason) == (DELIVERED, "lookup_ambiguous")


def test_the_owners_of_mids_are_those_recorded_sent_or_claimed(records: OutboundRecords) -> None:
    unknown(records, "k", "9000000000000001", 1_000_000)
    assert records.claim_echo("m_claimed", "k")
    records.receipt("m_echo_only", DELIVERED, 1, ACCOUNT, "9000000000000001")  # an echo of nothing we know
    mids = ["m_claimed", "m_echo_only", "m_never_seen", *(f"m_{n}" for n in range(150))]
    assert records.owners(mids) == {"m_claimed": "k"}  # 153 mids: two requests of at most 100 keys
