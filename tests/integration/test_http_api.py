"""The HTTP API's /v1 routes through the local API server as API Gateway plays them: the real authorizer behind
the template's Lambda authorizer (its identity source, its cache), the real API function, moto, and the outbound
loop behind them (sender, Graph sandbox). The auth table, and a message posted twice that is sent once."""

import json
import time
from typing import Any

import pytest
import requests

from api import wiring as api_wiring
from igdm.store.api_keys import ApiKey, ApiKeys
from local.harnesses.outbound import ACCOUNT, CUSTOMER, Loop
from local.samples import meta as m
from local.samples import outbound as out
from tests.unit.project.test_openapi import answers
from tools.accounts import Target
from tools.keys import create, listing, revoke

OTHER_ACCOUNT = "17841499999999999"


def new_key(loop: Loop, scopes: tuple[str, ...] = ("send", "read"), account: str | None = None) -> str:
    api_key, presented = ApiKey.new("test", scopes, account, now=time.time())
    ApiKeys(loop.stack_clients["dynamodb"], loop.stack.refs["GatewayTable"]).add(api_key)
    return presented


def post(loop: Loop, message: Any, key: str | None) -> requests.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return requests.post(f"{loop.api_url}/v1/messages", json=message, headers=headers, timeout=10)


def get(loop: Loop, idempotency_key: str, key: str) -> requests.Response:
    return requests.get(
        f"{loop.api_url}/v1/messages/{idempotency_key}", headers={"Authorization": f"Bearer {key}"}, timeout=10
    )


def test_a_message_posted_twice_with_one_key_is_sent_once_and_its_status_read_back(loop: Loop) -> None:
    key = new_key(loop)
    loop.say("hi")
    message = out.outbound("text", "api-once")
    first, again = post(loop, message, key), post(loop, message, key)
    assert (first.status_code, first.json()) == (202, {"idempotency_key": "api-once", "status": "QUEUED"})
    assert (again.status_code, again.json()) == (202, first.json())
    answers("POST", "/v1/messages", 202, first.json())
    loop.run()
    assert [b["message"]["text"] for b in loop.sent_to_meta()] == [message["message"]["text"]]
    assert loop.status_names("api-once")[-1] == "DELIVERED"
    shown = get(loop, "api-once", key)
    assert shown.status_code == 200
    document = shown.json()
    assert (document["status"], document["account_id"], document["customer_id"]) == ("DELIVERED", ACCOUNT, CUSTOMER)
    assert [h["status"] for h in document["history"]] == ["PENDING", "SENT", "DELIVERED"]
    answers("GET", "/v1/messages/{idempotency_key}", 200, document)
    assert get(loop, "never-sent", key).status_code == 404


def test_an_invalid_message_is_refused_naming_the_field_and_nothing_is_queued(loop: Loop) -> None:
    key = new_key(loop)
    bad = post(loop, {"idempotency_key": "bad-1", "recipient": {"id": CUSTOMER}, "message": {"type": "text"}}, key)
    assert bad.status_code == 400 and "message.text" in bad.json()["error"]
    answers("POST", "/v1/messages", 400, bad.json())
    assert post(loop, ["not", "an", "object"], key).status_code == 400
    loop.run()
    assert loop.sent_to_meta() == [] and loop.statuses() == []


def test_the_auth_table(loop: Loop, monkeypatch: pytest.MonkeyPatch) -> None:
    message = out.outbound("text", "auth-1")
    nobody = requests.post(f"{loop.api_url}/v1/messages", json=message, timeout=10)
    assert (nobody.status_code, nobody.json()) == (401, {"message": "Unauthorized"})  # API Gateway's own
    assert post(loop, message, "igw_0123456789ab_" + "x" * 43).json() == {"error": "unknown API key"}
    assert post(loop, message, "not-a-key").status_code == 401
    basic = requests.post(f"{loop.api_url}/v1/messages", json=message, headers={"Authorization": "Basic a"}, timeout=10)
    assert basic.status_code == 401 and "Bearer" in basic.json()["error"]

    revoked = new_key(loop)
    ApiKeys(loop.stack_clients["dynamodb"], loop.stack.refs["GatewayTable"]).revoke(
        revoked.split("_")[1], now=time.time()
    )
    answer = post(loop, message, revoked)
    assert answer.status_code == 401 and "revoked" in answer.json()["error"]

    reader = new_key(loop, ("read",))
    assert post(loop, message, reader).status_code == 403 and "send scope" in post(loop, message, reader).text
    sender = new_key(loop, ("send",))
    assert get(loop, "auth-1", sender).status_code == 403

    elsewhere = new_key(loop, account=OTHER_ACCOUNT)
    refused = post(loop, message, elsewhere)
    assert refused.status_code == 403 and "its own account" in refused.json()["error"]
    loop.say("hi")
    assert post(loop, message, new_key(loop)).status_code == 202
    loop.run()
    assert get(loop, "auth-1", elsewhere).status_code == 404  # another account's message is not shown
    assert get(loop, "auth-1", new_key(loop, account=ACCOUNT)).status_code == 200

    monkeypatch.setenv("API_KEY_RATE_PER_SECOND", "0.01")
    monkeypatch.setenv("API_KEY_BURST", "2")
    api_wiring.reset()
    busy = new_key(loop)
    answers = [get(loop, "auth-1", busy) for _ in range(4)]
    assert [a.status_code for a in answers][:2] == [200, 200] and answers[-1].status_code == 429
    assert int(answers[-1].headers["Retry-After"]) >= 1


def test_tools_keys_prints_a_key_once_lists_it_by_id_and_revokes_it(loop: Loop) -> None:
    target = Target(loop.stack_clients, loop.stack.refs["GatewayTable"], loop.events_url, "", "", "", "", "v24.0", [])
    printed = create(target, "crm", ("send",), None)
    presented = printed.splitlines()[-1]  # alone on the last line
    key_id = presented.split("_")[1]
    assert post(loop, {"idempotency_key": "x"}, presented).status_code == 400  # authenticated; the body is invalid
    assert f"{key_id}  crm  scopes send  account any" in listing(target) and presented not in listing(target)
    assert revoke(target, key_id).startswith(f"revoked {key_id}")
    assert "REVOKED" in listing(target)
    with pytest.raises(SystemExit, match="no key"):
        revoke(target, "000000000000")
    with pytest.raises(SystemExit, match="scopes"):
        create(target, "x", ("admin",), None)


def test_a_customer_is_erased_through_the_api_by_a_key_allowed_to(loop: Loop) -> None:
    loop.say("hi")
    loop.enqueue(out.outbound("text", "before-erasure"))
    loop.run()

    def erase(customer: str, key: str) -> requests.Response:
        return requests.delete(
            f"{loop.api_url}/v1/customers/{customer}", headers={"Authorization": f"Bearer {key}"}, timeout=10
        )

    assert erase(CUSTOMER, new_key(loop)).status_code == 403  # send and read only
    restricted = erase(CUSTOMER, new_key(loop, ("erase",), account=ACCOUNT))
    assert restricted.status_code == 403 and "every account" in restricted.json()["error"]
    eraser = new_key(loop, ("erase",))
    assert erase(ACCOUNT, eraser).status_code == 400  # an account is not erased as a customer
    assert erase("not-digits", eraser).status_code == 400
    answer = erase(CUSTOMER, eraser)
    assert answer.status_code == 202 and answer.json()["status"] == "pending"
    assert answer.json()["status_url"].endswith(f"/meta/deletion-status?code={answer.json()['confirmation_code']}")
    loop.erase()
    table = loop.stack_clients["dynamodb"].scan(TableName=loop.stack.refs["GatewayTable"])["Items"]
    assert [i for i in table if CUSTOMER in str(i)] == []
    forgotten = [e for e in loop.events() if e["kind"] == "customer_forgotten"]
    assert [(e["customer_id"], e["erasure"]["requested_by"]) for e in forgotten] == [(CUSTOMER, "operator")]


def read_json(loop: Loop, path: str, key: str) -> requests.Response:
    return requests.get(f"{loop.api_url}{path}", headers={"Authorization": f"Bearer {key}"}, timeout=10)


def test_conversations_and_their_events_are_listed_newest_first_by_cursor_without_deleted_content(
    loop: Loop,
) -> None:
    other_customer = "7947908538583299"
    now = int(time.time() * 1000)
    loop.webhook(m.text(mid="m_first", words="first", ts=now - 3000))
    loop.webhook(m.text(mid="m_secret", words="my address is 1 Main St", ts=now - 2000))
    loop.webhook(m.text(mid="m_other", words="hello", customer=other_customer, ts=now - 1000))
    loop.webhook({**m.deleted("m_secret"), "timestamp": now})
    key = new_key(loop, ("read",))

    first = read_json(loop, f"/v1/accounts/{ACCOUNT}/conversations?limit=1", key)
    assert first.status_code == 200, first.text
    [newest] = first.json()["conversations"]
    assert (newest["customer_id"], newest["conversation_id"]) == (other_customer, f"{ACCOUNT}:{other_customer}")
    cursor = first.json()["next_cursor"]
    second = read_json(loop, f"/v1/accounts/{ACCOUNT}/conversations?limit=1&cursor={cursor}", key).json()
    assert [c["customer_id"] for c in second["conversations"]] == [CUSTOMER] and second["next_cursor"] is None
    answers("GET", "/v1/accounts/{account_id}/conversations", 200, first.json())

    events = read_json(loop, f"/v1/conversations/{ACCOUNT}:{CUSTOMER}/events?limit=2", key).json()
    assert [e["message_id"] for e in events["events"]] == ["m_secret", "m_secret"]  # the deletion, the message
    assert "1 Main St" not in json.dumps(events)  # the deleted message's text is not kept
    answers("GET", "/v1/conversations/{conversation_id}/events", 200, events)
    rest = read_json(loop, f"/v1/conversations/{ACCOUNT}:{CUSTOMER}/events?cursor={events['next_cursor']}", key)
    assert [e["text"] for e in rest.json()["events"]] == ["first"] and rest.json()["next_cursor"] is None

    assert read_json(loop, f"/v1/accounts/{ACCOUNT}/conversations?cursor=bogus", key).status_code == 400
    assert read_json(loop, f"/v1/accounts/{ACCOUNT}/conversations?limit=500", key).status_code == 400
    assert read_json(loop, f"/v1/conversations/{ACCOUNT}/events", key).status_code == 400
    elsewhere = new_key(loop, ("read",), account=OTHER_ACCOUNT)
    assert read_json(loop, f"/v1/accounts/{ACCOUNT}/conversations", elsewhere).status_code == 403
    assert read_json(loop, f"/v1/accounts/{ACCOUNT}/conversations", new_key(loop, ("send",))).status_code == 403
