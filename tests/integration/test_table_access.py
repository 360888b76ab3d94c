"""The recorder of tests/integration/table_access.py works: it sees the handlers' requests, attributes
them to the right function, and would fail a test on a request its role is not granted."""

from collections.abc import Sequence

import pytest

from igdm.contracts.serialized import SerializedEvent
from igdm.inbound.event_store import DynamoEventStore
from local.harnesses.outbound import Loop
from local.harnesses.webhook import Harness
from local.samples import meta as p
from local.samples import outbound as out
from tests.integration.table_access import TableAccessLog


def test_the_webhooks_requests_are_recorded_as_the_webhooks(harness: Harness, table_access: TableAccessLog) -> None:
    assert harness.post(p.envelope(p.text(), p.echo()))["statusCode"] == 200
    assert {"BatchGetItem", "PutItem", "UpdateItem"} <= table_access.actions("WebhookFunction")
    assert {a.function for a in table_access.accesses} == {"WebhookFunction"}
    assert table_access.refused() == []


def test_the_senders_requests_made_on_the_pollers_threads_are_recorded_as_the_senders(
    loop: Loop, table_access: TableAccessLog
) -> None:
    loop.say()
    loop.enqueue(out.outbound("text"))
    loop.run()
    assert loop.status_names("example-text-0001") == ["SENT", "DELIVERED"]
    assert {"PutItem", "UpdateItem", "GetItem", "Query"} <= table_access.actions("SenderFunction")
    assert table_access.actions("WebhookFunction")  # the echo, through the local API
    assert table_access.refused() == []


def test_a_request_outside_the_role_is_caught(
    harness: Harness, table_access: TableAccessLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The webhook deleting an outbound record as it stores events: its role may delete only conversation items.
    # (The store is the layer's; the request is the webhook's because the webhook's handler made it.)
    def save_and_delete(store: DynamoEventStore, events: Sequence[SerializedEvent]) -> None:
        store._call("delete_item", TableName=harness.table, Key={"pk": {"S": "OUT#k"}, "sk": {"S": "MESSAGE"}})

    monkeypatch.setattr(DynamoEventStore, "save", save_and_delete)
    harness.post(p.envelope(p.text()))
    [refused] = table_access.refused()
    assert refused.describe() == "WebhookFunction DeleteItem: DeleteItem on OUT#k"
    table_access.clear()  # or this test's own teardown would fail
