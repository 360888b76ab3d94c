"""An UNKNOWN message's markers in moto's DynamoDB (igdm.store.outbound_records): written to its conversation and
its account, listed by account, removed from both, and what the reconciler's lookup reads and writes."""

from typing import Any

import pytest

from igdm.meta.echoes import Unsettled
from igdm.store.outbound_records import DELIVERED, UNKNOWN, OutboundRecord, OutboundRecords
from tests.integration.conftest import MOTO_TABLE

ACCOUNT = "17841400000000001"


@pytest.fixture
def records(dynamodb: Any) -> OutboundRecords:
    return OutboundRecords(dynamodb, MOTO_TABLE, retention_days=90)


def claimed(records: OutboundRecords, key: str, customer: str, kind: str = "text", parts: int = 1) -> OutboundRecord:
    record, _ = records.claim(
        idempotency_key=key,
        payload_hash="h",
        kind=kind,
        account_id=ACCOUNT,
        customer_id=customer,
        parts_total=parts,
        correlation_id=None,
        callback_url=None,
        callback_data=None,
    )
    return record


def unknown(records: OutboundRecords, key: str, customer: str, ended_ms: int) -> Unsettled:
    record = claimed(records, key, customer)
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


def test_a_late_echo_of_an_answered_part_leaves_an_unknown_message_unknown_and_the_uncertain_parts_settles_it(
    records: OutboundRecords,
) -> None:
    """A 2-part message: part 1 answered (its mid linked), part 2 without an answer. Part 1's echo, however late,
    says nothing of part 2 (chaos found it DELIVERED with part 2 never seen by Meta); part 2's echo, delivered
    again after its mid was linked but before the message was settled, settles it."""
    from igdm.contracts.events import EventKind
    from igdm.inbound.meta_payload import Envelope
    from igdm.inbound.normalize import normalize
    from igdm.inbound.receipts import OutboundReceipts
    from local.samples import meta as m

    claimed(records, "two", m.CUSTOMER, kind="text_with_media", parts=2)
    records.begin_part("two", 0)
    sent = records.part_sent("two", 0, "m_part_one", last=False)
    assert sent is not None
    records.link_message_id("m_part_one", sent)
    records.begin_part("two", 1)
    records.settle("two", UNKNOWN, reason="ambiguous_outcome", detail="no answer")
    published: list[str] = []

    class Statuses:
        def publish(self, record: Any) -> None:
            published.append(record.status)

    receipts = OutboundReceipts(records, Statuses())  # type: ignore[arg-type]

    def echo(mid: str) -> Any:
        (event,) = normalize(Envelope.model_validate(m.envelope(m.echo(mid=mid))), m.RECEIVED_MS)
        assert event.kind == EventKind.ECHO and event.account_id == ACCOUNT
        return event.model_copy(update={"sent_by_gateway": True})

    assert receipts.apply([echo("m_part_one")]) == 0
    assert records.get("two").status == UNKNOWN  # type: ignore[union-attr]
    # Part 2's echo, whose first delivery linked its mid and stopped there.
    assert records.claim_echo("m_part_two", "two")
    assert receipts.apply([echo("m_part_two")]) == 1
    assert records.get("two").status == DELIVERED and published == [DELIVERED]  # type: ignore[union-attr]
