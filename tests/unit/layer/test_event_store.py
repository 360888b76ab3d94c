"""The webhook's DynamoDB adapter (igdm.inbound.event_store) against a client that records each request: a lone
conditional write goes as the plain PutItem or UpdateItem it is, never a one-action transaction (which bills
twice the write units), and each answer is handled as the transaction's answer for that action would be.
Against moto, with real conditions: tests/integration/test_webhook_handler.py."""

from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from igdm.contracts.events import InboundEvent
from igdm.contracts.serialized import SerializedEvent
from igdm.inbound import event_store
from igdm.inbound.event_store import DynamoEventStore
from igdm.inbound.ingest import EventKey, Found, StorageUnavailable, WindowUpdate
from igdm.inbound.meta_payload import Envelope
from igdm.inbound.normalize import message_event_id, normalize
from local.samples import meta as p

RETENTION_DAYS = 90


class Client:
    """Records each request; answers each operation's next scripted error (a ClientError code, or an exception),
    then ``answers`` (or nothing)."""

    def __init__(self, errors: dict[str, list[Any]] | None = None, answers: dict[str, Any] | None = None) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._errors = {operation: list(each) for operation, each in (errors or {}).items()}
        self._answers = answers or {}

    def __getattr__(self, operation: str) -> Any:
        def call(**request: Any) -> Any:
            self.calls.append((operation, request))
            scripted = self._errors.get(operation)
            if scripted:
                error = scripted.pop(0)
                if isinstance(error, Exception):
                    raise error
                raise ClientError({"Error": {"Code": error, "Message": "no"}}, operation)
            return self._answers.get(operation, {})

        return call

    def operations(self) -> list[str]:
        return [operation for operation, _ in self.calls]


def cancelled(*reasons: str) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
            "CancellationReasons": [{"Code": reason} for reason in reasons],
        },
        "TransactWriteItems",
    )


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(event_store, "backoff", lambda attempt: None)


def texts(count: int) -> list[InboundEvent]:
    document = p.envelope(*(p.text(mid=f"m{i}", ts=p.T0 + i) for i in range(count)))
    return normalize(Envelope.model_validate(document), p.RECEIVED_MS)


def window(event: InboundEvent) -> WindowUpdate:
    assert event.customer_id is not None
    return WindowUpdate(event.account_id, event.customer_id, event.occurred_at, event.message_id, event.kind.value)


def store(client: Client) -> DynamoEventStore:
    return DynamoEventStore(client, "T", RETENTION_DAYS)


def test_one_event_is_stored_with_a_plain_conditional_put_of_the_transactions_action() -> None:
    [event] = texts(1)
    client = Client()
    store(client).save([SerializedEvent.of(event)])
    two = Client()
    store(two).save([SerializedEvent.of(e) for e in [event, *texts(2)[1:]]])
    [(operation, actions)] = two.calls
    assert operation == "transact_write_items" and len(actions["TransactItems"]) == 2
    assert client.calls == [("put_item", actions["TransactItems"][0]["Put"])]
    put = client.calls[0][1]
    assert put["ConditionExpression"] == "attribute_not_exists(pk) OR attribute_exists(tombstone)"
    assert put["Item"]["event_id"] == {"S": event.event_id} and put["Item"]["kind"] == {"S": "text"}


def test_one_window_is_moved_with_a_plain_conditional_update_of_the_transactions_action() -> None:
    first, second = texts(2)
    one, two = Client(), Client()
    store(one).advance_windows([window(first)])
    store(two).advance_windows([window(first), window(second.model_copy(update={"customer_id": "7777777777777777"}))])
    [(operation, actions)] = two.calls
    assert operation == "transact_write_items"
    [(update, request)] = one.calls
    expected = actions["TransactItems"][0]["Update"]
    # Same item, same condition; only updated_at, the moment of the write, differs.
    assert update == "update_item" and request["ConditionExpression"] == expected["ConditionExpression"]
    assert {k: v for k, v in request.items() if k != "ExpressionAttributeValues"} == {
        k: v for k, v in expected.items() if k != "ExpressionAttributeValues"
    }
    values, expected_values = request["ExpressionAttributeValues"], expected["ExpressionAttributeValues"]
    assert {k: v for k, v in values.items() if k != ":now"} == {k: v for k, v in expected_values.items() if k != ":now"}


def test_a_lone_write_whose_condition_fails_is_dropped_as_a_transaction_drops_its_action() -> None:
    [event] = texts(1)
    client = Client(errors={"put_item": ["ConditionalCheckFailedException"]})
    store(client).save([SerializedEvent.of(event)])  # stored by a concurrent delivery: nothing to do
    assert client.operations() == ["put_item"]
    windows = Client(errors={"update_item": ["ConditionalCheckFailedException"]})
    store(windows).advance_windows([window(event)])  # a later message moved the window already
    assert windows.operations() == ["update_item"]


@pytest.mark.parametrize(
    "code", ["TransactionConflictException", "ThrottlingException", "ProvisionedThroughputExceededException"]
)
def test_a_lone_write_is_tried_again_where_a_transaction_would_try_its_action_again(code: str) -> None:
    [event] = texts(1)
    client = Client(errors={"put_item": [code, code]})
    store(client).save([SerializedEvent.of(event)])
    assert client.operations() == ["put_item"] * 3


@pytest.mark.parametrize(
    "error",
    ["ValidationException", "InternalServerError", "AccessDeniedException", EndpointConnectionError(endpoint_url="x")],
)
def test_any_other_failure_of_a_lone_write_is_storage_unavailable(error: Any) -> None:
    [event] = texts(1)
    with pytest.raises(StorageUnavailable):
        store(Client(errors={"put_item": [error]})).save([SerializedEvent.of(event)])
    with pytest.raises(StorageUnavailable):
        store(Client(errors={"update_item": [error]})).advance_windows([window(event)])


def test_a_lone_write_that_keeps_conflicting_is_storage_unavailable() -> None:
    [event] = texts(1)
    client = Client(errors={"put_item": ["TransactionConflictException"] * 10})
    with pytest.raises(StorageUnavailable):
        store(client).save([SerializedEvent.of(event)])
    assert client.operations() == ["put_item"] * 5


def test_what_a_cancelled_transaction_leaves_to_write_alone_is_sent_plain() -> None:
    events = texts(3)
    client = Client(errors={"transact_write_items": [cancelled("ConditionalCheckFailed", "None", "None")]})
    store(client).save([SerializedEvent.of(e) for e in events])
    assert client.operations() == ["transact_write_items", "transact_write_items"]
    alone = Client(errors={"transact_write_items": [cancelled("ConditionalCheckFailed", "TransactionConflict")]})
    store(alone).save([SerializedEvent.of(e) for e in events[:2]])
    assert alone.operations() == ["transact_write_items", "put_item"]
    assert alone.calls[1][1]["Item"]["event_id"] == {"S": events[1].event_id}


def test_the_lookup_tells_stored_events_from_tombstones() -> None:
    first, second, third = texts(3)
    answer = {
        "Responses": {
            "T": [
                {"event_id": {"S": first.event_id}},
                {"event_id": {"S": second.event_id}, "tombstone": {"BOOL": True}},
            ]
        }
    }
    client = Client(answers={"batch_get_item": answer})
    found = store(client).find([EventKey.of(e) for e in (first, second, third)])
    assert found == Found(stored=frozenset({first.event_id}), tombstoned=frozenset({second.event_id}))
    [(_, request)] = client.calls
    assert request["RequestItems"]["T"]["ProjectionExpression"] == "event_id, tombstone"
    assert request["RequestItems"]["T"]["ConsistentRead"] is True


def test_a_tombstone_is_put_only_where_nothing_is_stored_and_expires_as_an_event_would() -> None:
    [event] = texts(1)
    key = EventKey(p.ACCOUNT, p.CUSTOMER, message_event_id(p.ACCOUNT, "m0"))
    client = Client()
    store(client).tombstone(key, event.received_at)
    [(operation, request)] = client.calls
    assert operation == "put_item" and request["ConditionExpression"] == "attribute_not_exists(pk)"
    assert request["Item"]["sk"] == {"S": f"EVT#{event.event_id}"} and request["Item"]["tombstone"] == {"BOOL": True}
    stored_until = event.received_at + timedelta(days=RETENTION_DAYS)
    assert request["Item"]["expires_at"] == {"N": str(int(stored_until.timestamp()))}
    assert "event" not in request["Item"] and "kind" not in request["Item"]
    # The event, or this tombstone, is there already: nothing to do.
    store(Client(errors={"put_item": ["ConditionalCheckFailedException"]})).tombstone(key, event.received_at)
    with pytest.raises(StorageUnavailable):
        store(Client(errors={"put_item": ["InternalServerError"]})).tombstone(key, event.received_at)
