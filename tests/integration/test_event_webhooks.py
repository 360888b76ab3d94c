"""Event webhooks through the whole loop: registered through the HTTP API (the real authorizer and API function),
fed by the table's stream (the real fan-out handler, the template's filters), delivered by the real callback
function to a receiver on 127.0.0.1 with both signatures, logged, and redelivered from the log."""

import json
import time
from typing import Any

import requests
from standardwebhooks.webhooks import Webhook as StandardWebhook

from igdm.contracts.callbacks import standard_webhooks_secret
from igdm.store.api_keys import ApiKey, ApiKeys
from local.harnesses.outbound import ACCOUNT, CUSTOMER, SIGNING_SECRET, Loop
from local.samples import meta as m
from local.samples import outbound as out
from tests.unit.project.test_openapi import answers


def hooks_key(loop: Loop, account: str | None = None) -> str:
    api_key, presented = ApiKey.new("hooks", ("webhooks", "send"), account, now=time.time())
    ApiKeys(loop.stack_clients["dynamodb"], loop.stack.refs["GatewayTable"]).add(api_key)
    return presented


def call(loop: Loop, method: str, path: str, key: str, body: Any = None) -> requests.Response:
    return requests.request(
        method, f"{loop.api_url}{path}", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=10
    )


def register(loop: Loop, key: str, **fields: Any) -> dict[str, Any]:
    answer = call(loop, "POST", "/v1/webhooks", key, {"url": loop.inbox.url, **fields})
    assert answer.status_code == 201, answer.text
    answers("POST", "/v1/webhooks", 201, answer.json())
    return dict(answer.json())


def test_every_inbound_kind_reaches_the_webhook_in_order_with_valid_standard_webhooks_signatures(loop: Loop) -> None:
    key = hooks_key(loop)
    hook = register(loop, key)
    now = int(time.time() * 1000)
    items = [
        m.text(mid="m_1", words="first", ts=now - 9000),
        {**m.attachment("image", mid="m_2"), "timestamp": now - 8000},
        {**m.story_reply("m_3"), "timestamp": now - 7000},
        {**m.reply("m_4", to="m_1"), "timestamp": now - 6000},
        {**m.quick_reply("m_5"), "timestamp": now - 5000},
        {**m.postback("m_6"), "timestamp": now - 4000},
        {**m.reaction("m_1"), "timestamp": now - 3000},
        {**m.read("m_1"), "timestamp": now - 2000},
        {**m.edited("m_1"), "timestamp": now - 1500},
        {**m.unsupported("m_7"), "timestamp": now - 1000},
        {**m.deleted("m_2"), "timestamp": now - 500},
    ]
    for item in items:  # one POST each: Meta's order, as the conversation's stored order
        loop.webhook(item)
    loop.deliver_webhooks()
    received = loop.inbox.wait_for(len(items))
    kinds = [r.document["kind"] for r in received]
    assert kinds == [
        "text",
        "attachments",
        "story_reply",
        "reply",
        "quick_reply",
        "postback",
        "reaction",
        "read",
        "message_edited",
        "unsupported",
        "message_deleted",
    ]
    verifier = StandardWebhook(standard_webhooks_secret(SIGNING_SECRET))
    for r in received:
        assert r.signature_ok  # the gateway's own X-Gateway-Signature-256
        verifier.verify(r.body, r.headers)  # and Standard Webhooks', with its own library
        assert r.document["account_id"] == ACCOUNT and r.document["customer_id"] == CUSTOMER
    log = call(loop, "GET", f"/v1/webhooks/{hook['webhook_id']}/deliveries?limit=100", key)
    answers("GET", "/v1/webhooks/{webhook_id}/deliveries", 200, log.json())
    deliveries = log.json()["deliveries"]
    assert [d["kind"] for d in reversed(deliveries)] == kinds  # newest first
    assert {(d["state"], d["attempts"], d["last_http_status"]) for d in deliveries} == {("delivered", 1, 200)}


def test_a_failed_delivery_is_retried_logged_and_redelivered_from_the_log(loop: Loop) -> None:
    key = hooks_key(loop)
    hook = register(loop, key, kinds=["text"])
    loop.inbox.fail_next(1, status=410)  # Gone: never retried, the delivery fails at once
    loop.say("hello there")
    loop.deliver_webhooks()
    assert (loop.inbox.attempts, loop.inbox.received) == (1, [])
    [failed] = call(loop, "GET", f"/v1/webhooks/{hook['webhook_id']}/deliveries", key).json()["deliveries"]
    assert (failed["state"], failed["attempts"], failed["kind"]) == ("failed", 1, "text")
    assert "gone" in failed["last_detail"]
    again = call(loop, "POST", f"/v1/webhooks/{hook['webhook_id']}/deliveries/{failed['delivery_id']}/redeliver", key)
    assert again.status_code == 202
    assert again.json() == {"delivery_id": failed["delivery_id"], "state": "pending", "redelivery": 1}
    loop.run_callbacks()
    [delivered] = loop.inbox.wait_for(1)
    assert delivered.document["text"] == "hello there" and delivered.signature_ok
    [logged] = call(loop, "GET", f"/v1/webhooks/{hook['webhook_id']}/deliveries", key).json()["deliveries"]
    assert (logged["state"], logged["attempts"], logged["redeliveries"]) == ("delivered", 2, 1)
    missing = call(loop, "POST", f"/v1/webhooks/{hook['webhook_id']}/deliveries/0000000000000-nope/redeliver", key)
    assert missing.status_code == 404


def test_statuses_reach_a_sinch_webhook_as_message_delivery_and_inbound_as_message_inbound(loop: Loop) -> None:
    key = hooks_key(loop)
    register(loop, key, dialect="sinch", kinds=["MESSAGE_INBOUND", "MESSAGE_DELIVERY"])
    loop.say("hi")
    loop.enqueue(out.outbound("text", "hook-status"))
    loop.run()
    loop.deliver_webhooks()
    documents = [r.document for r in loop.inbox.wait_for(3)]
    assert documents[0]["message"]["contact_message"] == {"text_message": {"text": "hi"}}
    assert documents[0]["message"]["channel_identity"] == {
        "channel": "INSTAGRAM",
        "identity": CUSTOMER,
        "app_id": ACCOUNT,
    }
    reports = [d["message_delivery_report"] for d in documents[1:]]
    assert [(r["message_id"], r["status"]) for r in reports] == [
        ("hook-status", "QUEUED_ON_CHANNEL"),
        ("hook-status", "DELIVERED"),
    ]


def test_registration_refuses_what_it_cannot_honour_and_keys_see_their_own_account_only(loop: Loop) -> None:
    key = hooks_key(loop)
    assert call(loop, "POST", "/v1/webhooks", key, {"url": "ftp://example.com/x"}).status_code == 400
    for body, reason in (
        ({"url": loop.inbox.url, "kinds": ["account_status"]}, "events queue only"),
        ({"url": loop.inbox.url, "kinds": ["texts"]}, "not one of the gateway's event kinds"),
        ({"url": loop.inbox.url, "dialect": "cm", "kinds": ["text"]}, "status reports only"),
        ({"url": loop.inbox.url, "dialect": "whatsapp"}, "dialect"),
        ({"url": loop.inbox.url, "secret": "x"}, "secret: not a field"),
    ):
        answer = call(loop, "POST", "/v1/webhooks", key, body)
        assert answer.status_code == 400 and reason in answer.json()["error"], answer.text
    mine = register(loop, hooks_key(loop, account=ACCOUNT))
    assert mine["account_id"] == ACCOUNT
    other = hooks_key(loop, account="17841499999999999")
    assert call(loop, "GET", f"/v1/webhooks/{mine['webhook_id']}", other).status_code == 404
    assert call(loop, "GET", "/v1/webhooks", other).json() == {"webhooks": []}
    assert call(loop, "GET", f"/v1/webhooks/{mine['webhook_id']}", key).status_code == 200
    deleted = call(loop, "DELETE", f"/v1/webhooks/{mine['webhook_id']}", key)
    assert deleted.json() == {"webhook_id": mine["webhook_id"], "deleted": True}
    assert call(loop, "GET", f"/v1/webhooks/{mine['webhook_id']}", key).status_code == 404
    sender_only = ApiKey.new("s", ("send",), None, now=time.time())
    ApiKeys(loop.stack_clients["dynamodb"], loop.stack.refs["GatewayTable"]).add(sender_only[0])
    assert call(loop, "GET", "/v1/webhooks", sender_only[1]).status_code == 403


def test_an_erasure_deletes_the_deliveries_that_name_the_customer(loop: Loop) -> None:
    key = hooks_key(loop)
    hook = register(loop, key)
    loop.say("my address is 1 Main St")
    loop.deliver_webhooks()
    assert len(call(loop, "GET", f"/v1/webhooks/{hook['webhook_id']}/deliveries", key).json()["deliveries"]) == 1
    eraser = ApiKey.new("privacy", ("erase",), None, now=time.time())
    ApiKeys(loop.stack_clients["dynamodb"], loop.stack.refs["GatewayTable"]).add(eraser[0])
    assert call(loop, "DELETE", f"/v1/customers/{CUSTOMER}", eraser[1]).status_code == 202
    loop.erase()
    table = loop.stack_clients["dynamodb"].scan(TableName=loop.stack.refs["GatewayTable"])["Items"]
    assert [i for i in table if CUSTOMER in str(i)] == []
    assert call(loop, "GET", f"/v1/webhooks/{hook['webhook_id']}/deliveries", key).json()["deliveries"] == []
    assert call(loop, "GET", f"/v1/webhooks/{hook['webhook_id']}", key).status_code == 200  # the registration stays


def test_a_stack_holds_at_most_its_number_of_webhooks(loop: Loop, monkeypatch: Any) -> None:
    from api import service

    monkeypatch.setattr(service, "MAX_WEBHOOKS", 2)
    key = hooks_key(loop)
    register(loop, key)
    register(loop, key)
    third = call(loop, "POST", "/v1/webhooks", key, {"url": loop.inbox.url})
    assert third.status_code == 409 and "delete one first" in third.json()["error"]


def test_a_message_the_customer_deletes_leaves_the_delivery_log_and_is_never_sent_again(loop: Loop) -> None:
    key = hooks_key(loop)
    hook = register(loop, key)
    sinch = register(loop, key, dialect="sinch", kinds=["MESSAGE_INBOUND"])
    now = int(time.time() * 1000)
    loop.webhook(m.text(mid="m_secret", words="my address is 1 Main St", ts=now - 1000))
    loop.deliver_webhooks()
    loop.webhook({**m.deleted("m_secret"), "timestamp": now})
    loop.deliver_webhooks()
    for registration in (hook, sinch):
        log = call(loop, "GET", f"/v1/webhooks/{registration['webhook_id']}/deliveries", key).json()["deliveries"]
        assert "1 Main St" not in json.dumps(log)
        [message] = [d for d in log if d["kind"] == "text"]
        assert message["content_deleted"] is True
        again = f"/v1/webhooks/{registration['webhook_id']}/deliveries/{message['delivery_id']}/redeliver"
        assert call(loop, "POST", again, key).status_code == 409
    kept = [d for d in call(loop, "GET", f"/v1/webhooks/{hook['webhook_id']}/deliveries", key).json()["deliveries"]]
    assert json.loads(next(d for d in kept if d["kind"] == "text")["body"])["message_id"] == "m_secret"


def test_a_message_deleted_before_its_webhook_came_is_delivered_once_without_content_never_its_tombstone(
    loop: Loop,
) -> None:
    key = hooks_key(loop)
    hook = register(loop, key)
    now = int(time.time() * 1000)
    loop.webhook({**m.deleted("m_late"), "timestamp": now})  # the message's own POST failed: a tombstone waits
    loop.deliver_webhooks()
    loop.webhook(m.text(mid="m_late", words="my address is 1 Main St", ts=now - 1000))  # Meta's retry of it
    loop.deliver_webhooks()
    received = loop.inbox.wait_for(2)
    assert [r.document["kind"] for r in received] == ["message_deleted", "text"]
    message = received[1].document
    assert (message["message_id"], message["text"], message["content_deleted"]) == ("m_late", None, True)
    assert "1 Main St" not in json.dumps(message)
    log = call(loop, "GET", f"/v1/webhooks/{hook['webhook_id']}/deliveries", key).json()["deliveries"]
    assert [d["kind"] for d in reversed(log)] == ["message_deleted", "text"]  # the tombstone was never one


def test_cm_status_reports_reach_a_webhook_registered_in_cms_dialect(loop: Loop) -> None:
    """CM.com sends status reports to a webhook configured once, not per message: here an event webhook with the
    cm dialect, for the messages sent through CM.com's route."""
    from tests.vendor import seed_examples

    key = hooks_key(loop)
    register(loop, key, dialect="cm", kinds=["message_status"])
    loop.say("hi")
    body = seed_examples.cm(ACCOUNT, CUSTOMER, key)["text"]
    body["messages"]["msg"][0]["reference"] = "order-9"
    sent = requests.post(f"{loop.api_url}/compat/cm/v1.0/message", json=body, timeout=10)
    assert sent.status_code == 200, sent.text
    loop.run()
    loop.deliver_webhooks()
    reports = [r.document["messages"]["msg"] for r in loop.inbox.wait_for(2)]
    assert [(r["status"]["code"], r["reference"], r["to"], r["channel"]) for r in reports] == [
        ("0", "order-9", CUSTOMER, "Instagram"),
        ("2", "order-9", CUSTOMER, "Instagram"),
    ]
    assert {r["messageId"] for r in reports} == {sent.json()["messages"][0]["messageId"]}
