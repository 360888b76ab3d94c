"""What the table's readers list of a conversation (igdm.store.history: the HTTP API's events route, `make
events`) when the customer deleted a message before its webhook came: the deletion left a tombstone where the
message's event goes, and a tombstone is no event."""

import json
import time

import requests

from igdm.store.api_keys import ApiKey, ApiKeys
from igdm.store.history import ConversationHistory
from local.harnesses.outbound import ACCOUNT, CUSTOMER, Loop
from local.samples import meta as m
from tests.unit.project.test_openapi import answers

EVENTS = f"/v1/conversations/{ACCOUNT}:{CUSTOMER}/events"


def listed(loop: Loop) -> list[dict[str, object]]:
    api_key, presented = ApiKey.new("history", ("read",), None, now=time.time())
    ApiKeys(loop.stack_clients["dynamodb"], loop.stack.refs["GatewayTable"]).add(api_key)
    answer = requests.get(f"{loop.api_url}{EVENTS}", headers={"Authorization": f"Bearer {presented}"}, timeout=10)
    assert answer.status_code == 200, answer.text
    answers("GET", "/v1/conversations/{conversation_id}/events", 200, answer.json())
    return list(answer.json()["events"])


def test_a_tombstone_is_never_listed_and_the_message_in_its_place_is_listed_without_its_content(loop: Loop) -> None:
    now = int(time.time() * 1000)
    loop.webhook({**m.deleted("m_late"), "timestamp": now})  # the message's own POST failed: Meta retries it later
    table = loop.stack_clients["dynamodb"].scan(TableName=loop.stack.refs["GatewayTable"])["Items"]
    assert [i["sk"]["S"][:4] for i in table if "tombstone" in i] == ["EVT#"]  # the tombstone is there
    assert [(e["kind"], e["message_id"]) for e in listed(loop)] == [("message_deleted", "m_late")]
    history = ConversationHistory(loop.stack_clients["dynamodb"], loop.stack.refs["GatewayTable"])
    events, cursor = history.events(ACCOUNT, CUSTOMER, 100, None)  # as `make events` reads them
    assert [e["kind"] for e in events] == ["message_deleted"] and cursor is None

    loop.webhook(m.text(mid="m_late", words="my address is 1 Main St", ts=now - 1000))  # Meta's retry
    shown = listed(loop)
    assert [(e["kind"], e["message_id"]) for e in shown] == [("message_deleted", "m_late"), ("text", "m_late")]
    assert shown[1]["content_deleted"] is True and "1 Main St" not in json.dumps(shown)
