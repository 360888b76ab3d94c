"""The table's items as typed values: each item family's to_item/from_item round trip, the exact attributes
each writes (a change of wire format fails here, not in a deployed table), and items in the shape the
previous, hand-mapped version wrote still read back the same."""

import json
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ClientError

from igdm.meta.echoes import Unsettled
from igdm.store import outbound_records
from igdm.store.accounts import ACTIVE, EXPIRING, Account, AccountTable, RescuedToken, TokenRescue
from igdm.store.attributes import from_attribute, from_attributes, to_attribute, to_attributes
from igdm.store.conversation_state import ConversationStateItem
from igdm.store.event_items import EventItem, Tombstone, is_tombstone
from igdm.store.keys import conversation_of, conversation_pk, key
from igdm.store.oauth_states import OAuthStateItem, OAuthStates
from igdm.store.outbound_records import (
    LEGACY_ATTEMPT_MS,
    PENDING,
    SENT,
    MessageIdItem,
    OutboundRecord,
    OutboundRecords,
    UnsettledMarker,
)
from igdm.store.rate_limits import RateState
from igdm.store.tokens import TokenDocument

ACCOUNT = "17841400000000001"
CUSTOMER = "6543210987654321"
WRITTEN = datetime(2025, 1, 1, 0, 0, 1, 123456, tzinfo=UTC)


class Recorder:
    """A DynamoDB client that records each call and answers with nothing."""

    def __init__(self, fail: dict[str, str] | None = None) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._fail = fail or {}

    def __getattr__(self, operation: str) -> Any:
        def call(**request: Any) -> dict[str, Any]:
            self.calls.append((operation, request))
            if operation in self._fail:
                raise ClientError({"Error": {"Code": self._fail[operation], "Message": "no"}}, operation)
            return {}

        return call


# ---------------------------------------------------------------------------------------------- the codec


def test_plain_values_become_typed_attributes_and_none_is_left_out() -> None:
    assert to_attributes(
        {
            "s": "x",
            "n": 12,
            "d": Decimal("0.500000"),
            "b": True,
            "l": ["a", 1],
            "t": ("a",),
            "m": {"k": "v"},
            "no": None,
        }
    ) == {
        "s": {"S": "x"},
        "n": {"N": "12"},
        "d": {"N": "0.500000"},
        "b": {"BOOL": True},
        "l": {"L": [{"S": "a"}, {"N": "1"}]},
        "t": {"L": [{"S": "a"}]},
        "m": {"M": {"k": {"S": "v"}}},
    }
    assert to_attribute(None) == {"NULL": True}
    assert to_attributes({"empty": []}) == {"empty": {"L": []}}


def test_a_float_is_refused_so_the_digits_written_never_depend_on_float_formatting() -> None:
    with pytest.raises(TypeError):
        to_attributes({"tat": 0.1})


def test_numbers_read_back_as_int_when_integral_else_as_exact_decimals() -> None:
    read = from_attributes(
        {
            "n": {"N": "1735689599876"},
            "zeros": {"N": "5.000000"},
            "d": {"N": "1735689600.500000"},
            "l": {"L": [{"N": "1"}, {"S": "a"}, {"NULL": True}]},
            "m": {"M": {"n": {"N": "2.5"}}},
        }
    )
    assert read == {"n": 1735689599876, "zeros": 5, "d": Decimal("1735689600.5"), "l": [1, "a", None], "m": {"n": 2.5}}
    assert type(read["n"]) is int and type(read["zeros"]) is int and type(read["d"]) is Decimal
    assert from_attribute({"S": "x"}) == "x"


def test_keys() -> None:
    assert key("OUT#k", "MESSAGE") == {"pk": {"S": "OUT#k"}, "sk": {"S": "MESSAGE"}}
    assert conversation_of(conversation_pk(ACCOUNT, CUSTOMER)) == (ACCOUNT, CUSTOMER)
    assert conversation_of(conversation_pk(ACCOUNT, None)) == (ACCOUNT, None)
    assert conversation_of(conversation_pk("unknown", None)) == ("unknown", None)


# ---------------------------------------------------------------------------------------------- event items

EVENT_BODY = '{"schema_version":"1","event_id":"e517133ab8a98972ad6e88de1da08f90","kind":"text"}'
EVENT = EventItem(
    event_id="e517133ab8a98972ad6e88de1da08f90",
    kind="text",
    account_id=ACCOUNT,
    customer_id=CUSTOMER,
    message_id="m_text",
    occurred_at=1735689599876,
    received_at="2025-01-01T00:00:01+00:00",
    event=EVENT_BODY,
    expires_at=1743465601,
)
# docs/data-model.md's example, as the webhook wrote it by hand
EVENT_ATTRIBUTES = {
    "pk": {"S": "CONV#17841400000000001#6543210987654321"},
    "sk": {"S": "EVT#e517133ab8a98972ad6e88de1da08f90"},
    "event_id": {"S": "e517133ab8a98972ad6e88de1da08f90"},
    "kind": {"S": "text"},
    "account_id": {"S": "17841400000000001"},
    "customer_id": {"S": "6543210987654321"},
    "message_id": {"S": "m_text"},
    "occurred_at": {"N": "1735689599876"},
    "received_at": {"S": "2025-01-01T00:00:01+00:00"},
    "event": {"S": EVENT_BODY},
    "expires_at": {"N": "1743465601"},
}


def test_an_event_item() -> None:
    assert EVENT.to_item() == EVENT_ATTRIBUTES
    assert EventItem.from_item(EVENT_ATTRIBUTES) == EVENT
    assert EVENT.put_new("T") == {
        "Put": {
            "TableName": "T",
            "Item": EVENT_ATTRIBUTES,
            "ConditionExpression": "attribute_not_exists(pk) OR attribute_exists(tombstone)",
        }
    }
    assert not is_tombstone(from_attributes(EVENT_ATTRIBUTES))


def test_a_tombstone_holds_the_message_events_key_and_no_content() -> None:
    tombstone = Tombstone(
        event_id="e517133ab8a98972ad6e88de1da08f90",
        account_id=ACCOUNT,
        customer_id=CUSTOMER,
        received_at="2025-01-01T00:00:01+00:00",
        expires_at=1743465601,
    )
    attributes = {
        "pk": {"S": "CONV#17841400000000001#6543210987654321"},
        "sk": {"S": "EVT#e517133ab8a98972ad6e88de1da08f90"},
        "event_id": {"S": "e517133ab8a98972ad6e88de1da08f90"},
        "account_id": {"S": "17841400000000001"},
        "customer_id": {"S": "6543210987654321"},
        "tombstone": {"BOOL": True},
        "received_at": {"S": "2025-01-01T00:00:01+00:00"},
        "expires_at": {"N": "1743465601"},
    }
    assert tombstone.to_item() == attributes
    assert tombstone.key() == EVENT.key()  # where the message's event goes
    assert Tombstone.from_item(attributes) == tombstone
    assert is_tombstone(from_attributes(attributes))
    assert tombstone.put_new("T") == {
        "TableName": "T",
        "Item": attributes,
        "ConditionExpression": "attribute_not_exists(pk)",
    }
    nobody = tombstone._replace(customer_id=None)
    assert nobody.to_item()["pk"] == {"S": "CONV#17841400000000001#-"} and "customer_id" not in nobody.to_item()


def test_an_event_of_no_customer_and_no_message_has_neither_attribute() -> None:
    event = EventItem("e1", "mention", ACCOUNT, None, None, 1, "2025-01-01T00:00:01+00:00", "{}", 2)
    item = event.to_item()
    assert item["pk"] == {"S": "CONV#17841400000000001#-"}
    assert "customer_id" not in item and "message_id" not in item
    assert EventItem.from_item(item) == event


# ---------------------------------------------------------------------------------------------- conversation state

STATE = ConversationStateItem(
    account_id=ACCOUNT,
    customer_id=CUSTOMER,
    last_user_message_at=1735689599876,
    last_user_message_time="2024-12-31T23:59:59.876000+00:00",
    last_user_message_id="m_1",
    last_user_message_kind="text",
    updated_at="2025-01-01T00:00:01.123456+00:00",
    expires_at=1743465599,
)


def test_a_conversation_state_item() -> None:
    assert STATE.to_item() == {
        "pk": {"S": "CONV#17841400000000001#6543210987654321"},
        "sk": {"S": "STATE"},
        "account_id": {"S": ACCOUNT},
        "customer_id": {"S": CUSTOMER},
        "last_user_message_at": {"N": "1735689599876"},
        "last_user_message_time": {"S": "2024-12-31T23:59:59.876000+00:00"},
        "last_user_message_id": {"S": "m_1"},
        "last_user_message_kind": {"S": "text"},
        "updated_at": {"S": "2025-01-01T00:00:01.123456+00:00"},
        "expires_at": {"N": "1743465599"},
    }
    assert ConversationStateItem.from_item(STATE.to_item()) == STATE


def test_the_webhooks_update_of_a_conversation_state_moves_it_forward_only() -> None:
    assert STATE.advance("T") == {
        "Update": {
            "TableName": "T",
            "Key": {"pk": {"S": "CONV#17841400000000001#6543210987654321"}, "sk": {"S": "STATE"}},
            "UpdateExpression": (
                "SET account_id = :account, customer_id = :customer, last_user_message_at = :at, "
                "last_user_message_time = :time, last_user_message_id = :mid, "
                "last_user_message_kind = :kind, updated_at = :now, #ttl = :expires"
            ),
            "ConditionExpression": "attribute_not_exists(last_user_message_at) OR last_user_message_at < :at",
            "ExpressionAttributeNames": {"#ttl": "expires_at"},
            "ExpressionAttributeValues": {
                ":expires": {"N": "1743465599"},
                ":account": {"S": ACCOUNT},
                ":customer": {"S": CUSTOMER},
                ":at": {"N": "1735689599876"},
                ":time": {"S": "2024-12-31T23:59:59.876000+00:00"},
                ":mid": {"S": "m_1"},
                ":kind": {"S": "text"},
                ":now": {"S": "2025-01-01T00:00:01.123456+00:00"},
            },
        }
    }


def test_a_message_without_a_mid_is_stored_as_null_not_left_out() -> None:
    state = ConversationStateItem(ACCOUNT, CUSTOMER, 1, "t", None, "reaction", "u", 2)
    assert state.advance("T")["Update"]["ExpressionAttributeValues"][":mid"] == {"NULL": True}
    assert state.to_item()["last_user_message_id"] == {"NULL": True}
    assert ConversationStateItem.from_item(state.to_item()) == state


# ---------------------------------------------------------------------------------------------- outbound records

CLAIMED = OutboundRecord(
    idempotency_key="order-42",
    status=PENDING,
    account_id=ACCOUNT,
    customer_id=None,
    kind="text",
    payload_hash="abc",
    parts_total=2,
    parts_sent=0,
    inflight_part=None,
    correlation_id="c-1",
    callback_data="",
)
# As OutboundRecords.claim wrote it by hand: a None is left out, an empty string kept.
CLAIMED_ATTRIBUTES = {
    "pk": {"S": "OUT#order-42"},
    "sk": {"S": "MESSAGE"},
    "idempotency_key": {"S": "order-42"},
    "status": {"S": "PENDING"},
    "kind": {"S": "text"},
    "payload_hash": {"S": "abc"},
    "parts_total": {"N": "2"},
    "parts_sent": {"N": "0"},
    "message_ids": {"L": []},
    "created_at": {"S": "2025-01-01T00:00:01.123456+00:00"},
    "updated_at": {"S": "2025-01-01T00:00:01.123456+00:00"},
    "expires_at": {"N": "1743465601"},
    "account_id": {"S": ACCOUNT},
    "customer_id": {"S": "-"},  # a private reply names no customer: NO_PARTY, so the index holds it too
    "correlation_id": {"S": "c-1"},
    "callback_data": {"S": ""},
}


def test_a_claimed_record() -> None:
    assert CLAIMED.to_item(created_at=WRITTEN, expires_at=1743465601) == CLAIMED_ATTRIBUTES
    assert OutboundRecord.from_item(CLAIMED_ATTRIBUTES) == CLAIMED


def test_a_record_without_account_or_customer_is_indexed_under_no_party_and_reads_back_as_none() -> None:
    nobody = replace(CLAIMED, account_id=None, customer_id=None)
    item = nobody.to_item(created_at=WRITTEN, expires_at=1)
    assert (item["account_id"], item["customer_id"]) == ({"S": "-"}, {"S": "-"})
    assert OutboundRecord.from_item(item) == nobody
    # A record written before NO_PARTY, with the attributes absent, reads the same.
    older = {k: v for k, v in item.items() if k not in ("account_id", "customer_id")}
    assert OutboundRecord.from_item(older) == nobody


def test_a_record_further_on_round_trips() -> None:
    record = OutboundRecord(
        idempotency_key="order-43",
        status=SENT,
        account_id=ACCOUNT,
        customer_id=CUSTOMER,
        kind="media",
        payload_hash="def",
        parts_total=3,
        parts_sent=1,
        inflight_part=1,
        refusals=2,
        inflight_at="2025-01-01T00:00:02+00:00",
        message_ids=["m_1"],
        callback_url="https://hooks.example.org/status",
        reason="r",
        detail="d",
        error={"code": 613, "message": "Calls to this api have exceeded the rate limit."},
    )
    item = record.to_item(created_at=WRITTEN, expires_at=1)
    assert item["refusals"] == {"N": "2"} and item["inflight_part"] == {"N": "1"}
    assert item["message_ids"] == {"L": [{"S": "m_1"}]}
    assert json.loads(item["error"]["S"]) == record.error
    assert OutboundRecord.from_item(item) == record


def test_a_record_updated_over_time_reads_as_before() -> None:
    """The attributes the updates add (attempts, sent_at, ...) are not the record's; an inflight_at left
    behind once its part was answered (only inflight_part is removed) is not in flight."""
    item = {
        **CLAIMED_ATTRIBUTES,
        "status": {"S": "SENT"},
        "parts_sent": {"N": "2"},
        "message_ids": {"L": [{"S": "m_1"}, {"S": "m_2"}]},
        "inflight_at": {"S": "2025-01-01T00:00:02+00:00"},
        "attempts": {"N": "2"},
        "sent_at": {"S": "2025-01-01T00:00:03+00:00"},
        "error": {"S": "not json"},
    }
    record = OutboundRecord.from_item(item)
    assert (record.status, record.parts_sent, record.message_ids) == (SENT, 2, ["m_1", "m_2"])
    assert record.inflight_part is None and record.inflight_at is None
    assert record.refusals == 0 and record.error is None


def test_claim_writes_the_claimed_item_once(monkeypatch: pytest.MonkeyPatch) -> None:
    class Frozen(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> "Frozen":
            return cls.fromisoformat(WRITTEN.isoformat())

    monkeypatch.setattr(outbound_records, "datetime", Frozen)
    client = Recorder()
    record, created = OutboundRecords(client, "T", retention_days=90).claim(
        idempotency_key="order-42",
        payload_hash="abc",
        kind="text",
        account_id=ACCOUNT,
        customer_id=None,
        parts_total=2,
        correlation_id="c-1",
        callback_url=None,
        callback_data="",
    )
    assert (record, created) == (CLAIMED, True)
    assert client.calls == [
        (
            "put_item",
            {
                "TableName": "T",
                "Item": {**CLAIMED_ATTRIBUTES, "expires_at": {"N": str(int(WRITTEN.timestamp()) + 90 * 86_400)}},
                "ConditionExpression": "attribute_not_exists(pk)",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            },
        )
    ]


def test_a_message_id_item() -> None:
    mid = MessageIdItem(
        message_id="aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlE",
        idempotency_key="order-42",
        conversation_id=f"{ACCOUNT}:{CUSTOMER}",
        delivered_at=1735689600000,
        read_at=1735689601000,
        updated_at="2025-01-01T00:00:01.123456+00:00",
        expires_at=1743465601,
    )
    attributes = {
        "pk": {"S": "MID#aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlE"},
        "sk": {"S": "MID"},
        "idempotency_key": {"S": "order-42"},
        "conversation_id": {"S": f"{ACCOUNT}:{CUSTOMER}"},
        "delivered_at": {"N": "1735689600000"},
        "read_at": {"N": "1735689601000"},
        "updated_at": {"S": "2025-01-01T00:00:01.123456+00:00"},
        "expires_at": {"N": "1743465601"},
    }
    assert mid.to_item() == attributes
    assert MessageIdItem.from_item(attributes) == mid
    # a receipt recorded before the send: no message yet
    early = MessageIdItem("m_1", conversation_id="1:2", read_at=5)
    assert early.to_item() == {
        "pk": {"S": "MID#m_1"},
        "sk": {"S": "MID"},
        "conversation_id": {"S": "1:2"},
        "read_at": {"N": "5"},
    }
    assert MessageIdItem.from_item(early.to_item()) == early


MARKER = UnsettledMarker(
    account_id=ACCOUNT,
    customer_id=CUSTOMER,
    unsettled=Unsettled("order-42", "text:0123", "igdm1:abcd:0", 1735689590000, 1735689600000),
    attempted_at="2025-01-01T00:00:01.123456+00:00",
    expires_at=1736294401,
)
MARKER_ATTRIBUTES = {
    "pk": {"S": "CONV#17841400000000001#6543210987654321"},
    "sk": {"S": "UNSETTLED#order-42"},
    "idempotency_key": {"S": "order-42"},
    "fingerprint": {"S": "text:0123"},
    "started_ms": {"N": "1735689590000"},
    "ended_ms": {"N": "1735689600000"},
    "attempted_at": {"S": "2025-01-01T00:00:01.123456+00:00"},
    "expires_at": {"N": "1736294401"},
    "marker": {"S": "igdm1:abcd:0"},
}


def test_an_unsettled_marker() -> None:
    assert MARKER.to_item() == MARKER_ATTRIBUTES
    assert UnsettledMarker.from_item(MARKER_ATTRIBUTES) == MARKER
    in_account = {**MARKER_ATTRIBUTES, "pk": {"S": "UNSETTLED#17841400000000001"}, "customer_id": {"S": CUSTOMER}}
    assert MARKER.to_item(in_account=True) == in_account  # the account's copy names the customer
    assert UnsettledMarker.from_item(in_account) == MARKER
    unmarked = UnsettledMarker(ACCOUNT, CUSTOMER, Unsettled("k", "attachment:image", None, 1, 2), "t", 3)
    assert "marker" not in unmarked.to_item()
    assert UnsettledMarker.from_item(unmarked.to_item()) == unmarked


def test_an_unsettled_marker_written_before_attempts_were_recorded() -> None:
    legacy = {key: MARKER_ATTRIBUTES[key] for key in ("pk", "sk", "idempotency_key", "fingerprint", "expires_at")}
    legacy["attempted_at"] = {"S": "2025-01-01T00:00:00+00:00"}
    ended = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp() * 1000)
    assert UnsettledMarker.from_item(legacy).unsettled == Unsettled(
        "order-42", "text:0123", None, ended - LEGACY_ATTEMPT_MS, ended
    )


# ---------------------------------------------------------------------------------------------- accounts

ACCOUNT_ITEM = Account(
    account_id=ACCOUNT,
    status=EXPIRING,
    token_secret_id="instagram-gateway/accounts/17841400000000001",
    username="local_shop",
    token_expires_at=1740787200,
    subscribed_fields=("comments", "messages"),
    status_detail="expires in 6 days",
    last_webhook_at="2025-01-01T00:00:01+00:00",
)


def test_an_account_item() -> None:
    attributes = {
        "pk": {"S": "ACCOUNTS"},
        "sk": {"S": "ACCOUNT#17841400000000001"},
        "account_id": {"S": ACCOUNT},
        "status": {"S": "expiring"},
        "token_secret_id": {"S": "instagram-gateway/accounts/17841400000000001"},
        "username": {"S": "local_shop"},
        "token_expires_at": {"S": "2025-03-01T00:00:00+00:00"},
        "subscribed_fields": {"L": [{"S": "comments"}, {"S": "messages"}]},
        "status_detail": {"S": "expires in 6 days"},
        "last_webhook_at": {"S": "2025-01-01T00:00:01+00:00"},
    }
    assert ACCOUNT_ITEM.to_item() == attributes
    assert Account.from_item(attributes) == ACCOUNT_ITEM
    bare = Account(ACCOUNT, ACTIVE, "s")
    assert Account.from_item(bare.to_item()) == bare


def test_an_account_item_as_the_updates_left_it_reads() -> None:
    """AccountTable.save's and record_check's attributes; an item from before status was kept is active."""
    item = {
        "pk": {"S": "ACCOUNTS"},
        "sk": {"S": "ACCOUNT#17841400000000001"},
        "account_id": {"S": ACCOUNT},
        "token_secret_id": {"S": "s"},
        "registered_at": {"S": "2025-01-01T00:00:00+00:00"},
        "connected_at": {"S": "2025-01-01T00:00:00+00:00"},
        "scopes": {"L": [{"S": "instagram_business_basic"}]},
        "token_refreshed_at": {"S": "2025-01-01T00:00:00+00:00"},
        "last_checked_at": {"S": "2025-01-01T00:00:00+00:00"},
        "subscribed_fields": {"L": [{"S": "messages"}, {"NULL": True}]},
        "last_error": {"S": "boom"},
    }
    assert Account.from_item(item) == Account(
        ACCOUNT,
        ACTIVE,
        "s",
        subscribed_fields=("messages",),
        connected_at="2025-01-01T00:00:00+00:00",
        last_checked_at="2025-01-01T00:00:00+00:00",
    )


DOCUMENT = TokenDocument("IGAA-token", ACCOUNT, "local_shop", ("instagram_business_basic",), 1740787200, 1735689600)


def test_a_rescued_token() -> None:
    rescued = RescuedToken(DOCUMENT, "2025-01-01T00:00:01+00:00")
    assert rescued.to_item() == {
        "pk": {"S": "TOKEN_RESCUE#17841400000000001"},
        "sk": {"S": "TOKEN"},
        "token": {"S": DOCUMENT.to_json()},
        "rescued_at": {"S": "2025-01-01T00:00:01+00:00"},
        "expires_at": {"N": "1740787200"},
    }
    assert RescuedToken.from_item(rescued.to_item()) == rescued
    undated = RescuedToken(TokenDocument("IGAA-token", ACCOUNT), "2025-01-01T00:00:01+00:00")
    assert "expires_at" not in undated.to_item()
    assert RescuedToken.from_item(undated.to_item()) == undated


def test_token_rescue_keeps_and_reads_the_item() -> None:
    class Table(Recorder):
        def get_item(self, **request: Any) -> dict[str, Any]:
            return {"Item": RescuedToken(DOCUMENT, "t").to_item()}

    table = Table()
    TokenRescue(table, "T").keep(DOCUMENT, now=1735689601.5)
    assert table.calls == [
        ("put_item", {"TableName": "T", "Item": RescuedToken(DOCUMENT, "2025-01-01T00:00:01+00:00").to_item()})
    ]
    assert TokenRescue(table, "T").get(ACCOUNT) == DOCUMENT


# ---------------------------------------------------------------------------------------------- OAuth states


def test_an_oauth_state_item() -> None:
    state = OAuthStateItem("n0nce", 1735694100)
    attributes = {"pk": {"S": "OAUTH_STATE#n0nce"}, "sk": {"S": "STATE"}, "expires_at": {"N": "1735694100"}}
    assert state.to_item() == attributes
    assert OAuthStateItem.from_item(attributes) == state


def test_an_oauth_state_is_added_once_and_taken_once() -> None:
    table = Recorder()
    OAuthStates(table, "T").add("n0nce", state_expires_at=1735690500)
    assert OAuthStates(table, "T").take("n0nce") is True
    assert table.calls == [
        (
            "put_item",
            {
                "TableName": "T",
                # TTL an hour after the state expired, as onboarding.state wrote it
                "Item": {"pk": {"S": "OAUTH_STATE#n0nce"}, "sk": {"S": "STATE"}, "expires_at": {"N": "1735694100"}},
                "ConditionExpression": "attribute_not_exists(pk)",
            },
        ),
        (
            "delete_item",
            {
                "TableName": "T",
                "Key": {"pk": {"S": "OAUTH_STATE#n0nce"}, "sk": {"S": "STATE"}},
                "ConditionExpression": "attribute_exists(pk)",
            },
        ),
    ]
    assert OAuthStates(Recorder(fail={"delete_item": "ConditionalCheckFailedException"}), "T").take("n0nce") is False
    with pytest.raises(ClientError):
        OAuthStates(Recorder(fail={"delete_item": "ProvisionedThroughputExceededException"}), "T").take("n0nce")


# ---------------------------------------------------------------------------------------------- rate items


def test_a_rate_item_carries_its_times_to_the_microsecond() -> None:
    state = RateState(tat=1735689600.5, expires_at=1735776000)
    assert state.to_item(ACCOUNT, "text") == {
        "pk": {"S": "RATE#17841400000000001#text"},
        "sk": {"S": "RATE"},
        "tat": {"N": "1735689600.500000"},
        "expires_at": {"N": "1735776000"},
    }
    assert RateState.from_item(state.to_item(ACCOUNT, "text")) == state


def test_a_rate_item_reads_from_what_an_update_returned() -> None:
    assert RateState.from_item({"tat": {"N": "1735689600.123457"}}) == RateState(1735689600.123457, None)
    assert RateState.from_item({"tat": {"N": "1735689600.000000"}, "expires_at": {"N": "1"}}) == RateState(
        1735689600.0, 1
    )
    assert RateState.from_item({}) == RateState()


def test_the_reconcilers_watermark_is_set_on_an_existing_account_and_read_back() -> None:
    table = Recorder()
    AccountTable(table, "t").record_reconciled(ACCOUNT, 1_767_323_045)
    assert table.calls == [
        (
            "update_item",
            {
                "TableName": "t",
                "Key": {"pk": {"S": "ACCOUNTS"}, "sk": {"S": "ACCOUNT#17841400000000001"}},
                "UpdateExpression": "SET reconciled_until = :until",
                "ConditionExpression": "attribute_exists(pk)",
                "ExpressionAttributeValues": {":until": {"S": "2026-01-02T03:04:05+00:00"}},
            },
        )
    ]
    account = Account(ACCOUNT, ACTIVE, "s", reconciled_until="2026-01-02T03:04:05+00:00")
    assert account.to_item()["reconciled_until"] == {"S": "2026-01-02T03:04:05+00:00"}
    assert Account.from_item(account.to_item()) == account
