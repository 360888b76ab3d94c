"""Erasure on the outbound loop (the real webhook, sender, onboarding and eraser handlers on moto, the Graph
sandbox as Meta): Meta's data-deletion callback, built as Meta builds it, deletes everything stored about a
customer or an account; the whole table is scanned afterwards (a test may scan, no role can) and no item holds the
id; the other customer's items are untouched; the status page answers; downstream systems are told."""

import hashlib
import json
import re
import time
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
import requests

from eraser import service as eraser_service
from eraser import wiring as eraser_wiring
from eraser.service import OutOfTime
from igdm.meta.signed_request import sign_request
from igdm.queues.erasure_queue import ErasureJob
from igdm.store.erasure import ErasureRequest, ErasureRequests
from local.harnesses.outbound import ACCOUNT, APP_SECRET, CUSTOMER, Loop
from local.samples import meta as m
from local.samples import outbound as out
from tools.accounts import Target, forget

OTHER = "7777777777777777"  # a second customer of the same account, who asked for nothing


def table_items(loop: Loop) -> list[dict[str, Any]]:
    dynamodb = loop.stack_clients["dynamodb"]
    items, request = [], {"TableName": loop.stack.refs["GatewayTable"]}
    while True:
        page = dynamodb.scan(**request)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def holding(items: list[dict[str, Any]], user_id: str) -> list[dict[str, Any]]:
    """Items whose keys or attributes hold the id anywhere (in a key, a conversation id, an event's JSON)."""
    pattern = re.compile(rf"(?<![0-9]){user_id}(?![0-9])")
    return [i for i in items if pattern.search(json.dumps(i))]


def families(items: list[dict[str, Any]]) -> set[str]:
    return {re.sub(r"#.*", "#", i["pk"]["S"]) + ("unknown" if i["pk"]["S"] == "CONV#unknown#-" else "") for i in items}


def populate(loop: Loop) -> None:
    """Both customers write and are answered; the first also comments, gets a private reply, is named by an
    invalid message with no account, and by an entry Meta sent without a usable account id."""
    loop.say("hi", customer=CUSTOMER)
    loop.say("hello", customer=OTHER)
    loop.comment()  # by CUSTOMER
    loop.enqueue(out.outbound("text", "to-customer"))
    loop.enqueue(out.outbound("text", "to-other", recipient={"id": OTHER}))
    loop.enqueue(out.private_reply("reply-to-comment"))
    loop.enqueue({"idempotency_key": "invalid-1", "recipient": {"id": CUSTOMER}, "message": {"type": "?"}})
    loop.run()
    now = int(time.time() * 1000)
    loop.post(
        {
            "object": "instagram",
            "entry": [{"time": now, "messaging": [m.inbound({"message": {"mid": "m_lost", "text": "x"}}, ts=now)]}],
        }
    )


def data_deletion(loop: Loop, user_id: str, secret: str = APP_SECRET) -> requests.Response:
    signed = sign_request({"algorithm": "HMAC-SHA256", "issued_at": int(time.time()), "user_id": user_id}, secret)
    return requests.post(
        f"{loop.api_url}/meta/data-deletion",
        data=urlencode({"signed_request": signed}),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=10,
    )


def status_page(loop: Loop, url: str) -> requests.Response:
    parts = urlsplit(url)
    return requests.get(f"{loop.api_url}{parts.path}?{parts.query}", timeout=10)


@pytest.fixture
def populated(loop: Loop) -> Loop:
    populate(loop)
    before = table_items(loop)
    assert {"CONV#", "OUT#", "MID#", "COMMENT#", "CONV#unknown"} <= families(holding(before, CUSTOMER))
    assert holding(before, OTHER)
    return loop


def test_a_customers_data_deletion_leaves_no_item_holding_their_id_and_the_other_customer_untouched(
    populated: Loop,
) -> None:
    loop = populated
    others_before = holding(table_items(loop), OTHER)
    answer = data_deletion(loop, CUSTOMER)
    assert answer.status_code == 200
    code = answer.json()["confirmation_code"]
    assert answer.json()["url"] == f"{loop.api_url}/meta/deletion-status?code={code}"
    pending = status_page(loop, answer.json()["url"])
    assert pending.status_code == 200 and 'data-outcome="deletion_pending"' in pending.text

    loop.erase()

    after = table_items(loop)
    assert holding(after, CUSTOMER) == []
    assert sorted(map(json.dumps, holding(after, OTHER))) == sorted(map(json.dumps, others_before))
    [audit] = [i for i in after if i["pk"]["S"].startswith("ERASURE#")]
    assert audit["subject_hash"]["S"] == hashlib.sha256(f"igdm-erasure|{CUSTOMER}".encode()).hexdigest()
    assert audit["status"]["S"] == "completed" and int(audit["deleted"]["M"]["events"]["N"]) >= 4
    page = status_page(loop, answer.json()["url"])
    assert page.status_code == 200 and 'data-outcome="deletion_completed"' in page.text
    assert "messages and other events" in page.text and CUSTOMER not in page.text
    [forgotten] = [e for e in loop.events() if e["kind"] == "customer_forgotten"]
    assert (forgotten["account_id"], forgotten["customer_id"]) == (ACCOUNT, CUSTOMER)
    assert forgotten["erasure"]["confirmation_code"] == code and forgotten["erasure"]["requested_by"] == "meta"
    assert forgotten["erasure"]["deleted"]["outbound_messages"] == 3  # the text, the private reply, the invalid one

    # SQS delivers the job again: the request is complete, nothing changes, nothing is published twice.
    loop.sqs.send_message(QueueUrl=loop.erasure_url, MessageBody=ErasureJob(code, CUSTOMER).to_json())
    loop.erase()
    assert table_items(loop) == after
    assert [e["kind"] for e in loop.events()].count("customer_forgotten") == 1


def test_the_tombstone_of_a_message_deleted_before_its_webhook_came_is_erased_with_the_customer(loop: Loop) -> None:
    loop.say("hello", customer=OTHER)
    loop.webhook({**m.deleted("m_unseen"), "timestamp": int(time.time() * 1000)})  # its message never came
    tombstones = [i for i in table_items(loop) if "tombstone" in i]
    assert [(t["pk"]["S"], t["customer_id"]["S"]) for t in tombstones] == [(f"CONV#{ACCOUNT}#{CUSTOMER}", CUSTOMER)]
    others_before = holding(table_items(loop), OTHER)
    assert data_deletion(loop, CUSTOMER).status_code == 200
    loop.erase()
    after = table_items(loop)
    assert holding(after, CUSTOMER) == [] and [i for i in after if "tombstone" in i] == []
    assert holding(after, OTHER) == others_before
    [forgotten] = [e for e in loop.events() if e["kind"] == "customer_forgotten"]
    assert forgotten["erasure"]["deleted"]["events"] == 2  # the deletion's event and the tombstone, at event keys


def test_an_accounts_data_deletion_removes_the_account_its_token_and_everything_it_stored(populated: Loop) -> None:
    loop = populated
    answer = data_deletion(loop, ACCOUNT)
    assert answer.status_code == 200
    loop.erase()
    after = table_items(loop)
    assert holding(after, ACCOUNT) == []
    # Every item was the account's, but the invalid message that named no account (only its customer).
    assert sorted(i["pk"]["S"].split("#")[0] + "#" for i in after) == ["ERASURE#", "OUT#"]
    assert [i["pk"]["S"] for i in after if i["pk"]["S"].startswith("OUT#")] == ["OUT#invalid-1"]
    secrets = loop.stack_clients["secretsmanager"].list_secrets()["SecretList"]
    assert not [s for s in secrets if s["Name"].endswith(f"/accounts/{ACCOUNT}")]
    [event] = [e for e in loop.events() if e["kind"] == "account_status"]
    assert (event["account"]["change"], event["account"]["status"]) == ("data_deleted", "disconnected")
    assert event["erasure"]["deleted"]["events"] > 0


def test_a_forged_request_is_refused_and_records_nothing(populated: Loop) -> None:
    loop = populated
    before = table_items(loop)
    answer = data_deletion(loop, CUSTOMER, secret="not-the-app-secret")
    assert answer.status_code == 400 and "not the app's" in answer.json()["error"]
    loop.erase()
    assert table_items(loop) == before
    unknown = requests.get(f"{loop.api_url}/meta/deletion-status?code=" + "A" * 24, timeout=10)
    assert unknown.status_code == 404 and 'data-outcome="unknown_code"' in unknown.text


def test_an_erasure_that_runs_out_of_time_goes_on_where_it_stopped(
    populated: Loop, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop = populated
    monkeypatch.setattr(eraser_service, "WRITE_BATCH", 5)
    requests_ = ErasureRequests(loop.stack_clients["dynamodb"], loop.stack.refs["GatewayTable"])
    request = ErasureRequest.new(CUSTOMER, "operator", now=time.time())
    requests_.add(request)
    job = ErasureJob(request.code, CUSTOMER)
    left = iter([900.0, 30.0])  # one batch of 5, then less than the safety margin
    with pytest.raises(OutOfTime):
        eraser_wiring.service().erase(job, lambda: next(left, 30.0))
    stopped = requests_.get(request.code)
    assert stopped is not None and stopped.status == "pending" and sum(stopped.deleted.values()) == 5
    assert holding(table_items(loop), CUSTOMER)  # what is left
    done = eraser_wiring.service().erase(job)
    assert done is not None and done.status == "completed" and done.attempts == 2
    assert holding(table_items(loop), CUSTOMER) == []


def test_forget_erases_a_customer_and_says_what_it_deleted_but_never_an_account(populated: Loop) -> None:
    loop = populated
    target = Target(
        loop.stack_clients,
        loop.stack.refs["GatewayTable"],
        loop.events_url,
        "gw-send/accounts/",
        "",
        "",
        "",
        "v24.0",
        [],
    )
    summary = forget(target, CUSTOMER)
    assert summary.startswith(f"forgot customer {CUSTOMER}: deleted ") and " events" in summary
    assert holding(table_items(loop), CUSTOMER) == []
    [forgotten] = [e for e in loop.events() if e["kind"] == "customer_forgotten"]
    assert forgotten["erasure"]["requested_by"] == "operator"
    with pytest.raises(SystemExit, match="is an account of this stack"):
        forget(target, ACCOUNT)
    assert holding(table_items(loop), ACCOUNT)  # nothing of the account's was touched
