"""The local console's JSON and page (local/console), against moto in this process with the template's
resources: what it reads comes from the gateway's own writes, and a reply is looked for on the outbound queue."""

import json
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from igdm.contracts.outbound import MAX_SPLIT_TEXT_BYTES
from igdm.store.accounts import AccountTable
from local.aws.template import Stack
from local.callback_inbox import Received
from local.console import console
from local.console.pages import Console
from local.harnesses.aws import in_process_aws
from local.harnesses.outbound import Loop, outbound_loop
from tools.accounts import register_account

STACK = "console-test"
ACCOUNT = "17841400000000001"
CUSTOMER = "6543210987654321"
CONVERSATION = f"{ACCOUNT}:{CUSTOMER}"
TOKEN = "console-test-access-token"
INBOX = "http://127.0.0.1:8082/callbacks"
NOW = 1_796_000_000.0  # a fixed clock: token expiries in days are exact
UNTRUSTED = '<img src=x onerror="alert(1)"> & <b>bold</b> "quoted" ünïcode 🧥'


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Stack, dict[str, Any]]]:
    with in_process_aws(monkeypatch, STACK, {}) as provisioned:
        yield provisioned


@pytest.fixture
def loop(monkeypatch: pytest.MonkeyPatch) -> Iterator[Loop]:
    """The outbound loop in this process: the real sender, webhook and callback handlers, the Graph sandbox and
    a callback inbox on 127.0.0.1 (local/harnesses/outbound.py)."""
    with outbound_loop(monkeypatch, name=STACK) as running:
        yield running


def console_of(
    stack: Stack,
    clients: dict[str, Any],
    received: list[Received] | None = None,
    *,
    callback_url: str = INBOX,
    clock: Callable[[], float] = lambda: NOW,
) -> Console:
    return console(
        stack,
        clients["dynamodb"],
        clients["sqs"],
        callback_url=callback_url,
        callbacks=lambda: received or [],
        clock=clock,
    )


def loop_console(loop: Loop) -> Console:
    """The console of the loop's stack, with its callback inbox, on the real clock."""
    return console_of(loop.stack, loop.stack_clients, loop.inbox.received, callback_url=loop.inbox.url, clock=time.time)


def connect(stack: Stack, clients: dict[str, Any], *, expires_in_days: int = 60) -> None:
    """The account, as `make run` or tools.accounts register stores it."""
    register_account(
        clients["dynamodb"],
        clients["secretsmanager"],
        table=stack.refs["GatewayTable"],
        secret_prefix=f"{STACK}/accounts/",
        account_id=ACCOUNT,
        access_token=TOKEN,
        username="local_account",
        expires_at=int(NOW) + expires_in_days * 86_400,
        now=NOW,
    )


def call(page: Console, method: str, path: str, body: Any = b"", query: str = "") -> tuple[int, dict[str, Any]]:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    status, headers, answer = page(method, path, query, payload)
    assert headers["Content-Type"].startswith("application/json")
    document: dict[str, Any] = json.loads(answer)
    return status, document


def reply(page: Console, text: Any, conversation: str = CONVERSATION, **fields: Any) -> tuple[int, dict[str, Any]]:
    body = {"text": text, "form_token": page.form_token, **fields}
    return call(page, "POST", f"/console/api/conversations/{conversation}/replies", body)


def queued(clients: dict[str, Any], stack: Stack) -> list[dict[str, Any]]:
    got = (
        clients["sqs"]
        .receive_message(QueueUrl=stack.refs["OutboundQueue"], MaxNumberOfMessages=10, AttributeNames=["All"])
        .get("Messages", [])
    )
    return [{"body": json.loads(m["Body"]), **m["Attributes"]} for m in got]


# ---------------------------------------------------------------------- the page


def test_the_page_carries_its_form_token_and_loads_nothing_from_elsewhere(aws: tuple[Stack, dict[str, Any]]) -> None:
    page = console_of(*aws)
    status, headers, html = page("GET", "/console", "", b"")
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert f'<meta name="console-form-token" content="{page.form_token}">' in html.decode()
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert re.findall(r'(?:src|href)="([^"]+)"', html.decode()) == [
        "/console/favicon.svg",
        "/console/console.css",
        "/console/console.js",
    ]
    for asset, kind in (("console.js", "text/javascript"), ("console.css", "text/css"), ("favicon.svg", "image/svg")):
        status, headers, content = page("GET", f"/console/{asset}", "", b"")
        assert status == 200 and headers["Content-Type"].startswith(kind) and content
        fetched_from_elsewhere = content.replace(b'xmlns="http://www.w3.org/2000/svg"', b"")  # a name, not a fetch
        assert b"http:" not in fetched_from_elsewhere and b"https:" not in fetched_from_elsewhere
    _, _, script = page("GET", "/console/console.js", "", b"")
    # Untrusted text goes in as text: nothing in the script hands a string to the HTML parser.
    assert re.findall(rb"innerHTML|outerHTML|insertAdjacentHTML|document\.write|DOMParser", script) == []
    assert b"textContent" in script


def test_unknown_paths_are_404_and_other_methods_405(aws: tuple[Stack, dict[str, Any]]) -> None:
    page = console_of(*aws)
    for path in (
        "/console/nope",
        "/console/api",
        "/console/api/nope",
        f"/console/api/conversations/{CONVERSATION}/x/y",
    ):
        assert call(page, "GET", path) == (404, {"message": "Not Found"})
    status, headers, answer = page("DELETE", "/console/api/accounts", "", b"")
    assert (status, headers["Allow"], json.loads(answer)) == (
        405,
        "GET",
        {"message": "DELETE is not allowed here: GET only"},
    )
    assert call(page, "GET", f"/console/api/conversations/{CONVERSATION}/replies")[0] == 405


def test_an_error_inside_is_a_500_that_says_what_broke_never_an_exception(
    aws: tuple[Stack, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    stack, clients = aws
    page = console_of(stack, {**clients, "dynamodb": None})  # every read fails
    assert call(page, "GET", "/console/api/accounts") == (
        500,
        {"message": "the console could not answer: AttributeError"},
    )
    assert "console: GET /console/api/accounts failed: AttributeError" in capsys.readouterr().err


# ---------------------------------------------------------------------- accounts


def test_accounts_show_status_token_expiry_and_subscription_health_and_no_secret(
    aws: tuple[Stack, dict[str, Any]],
) -> None:
    stack, clients = aws
    connect(stack, clients, expires_in_days=5)
    fields = stack.function_environment("RefresherFunction")["WEBHOOK_FIELDS"].split(",")
    accounts = AccountTable(clients["dynamodb"], stack.refs["GatewayTable"])
    accounts.record_check(ACCOUNT, now=NOW + 60, subscribed_fields=fields[1:], error="(#100) subscribe: try again")
    accounts.set_status(ACCOUNT, "expiring", "the token expires in 5 days", now=NOW + 60)
    status, document = call(console_of(stack, clients), "GET", "/console/api/accounts")
    assert status == 200
    [account] = document["accounts"]
    assert account == {
        "account_id": ACCOUNT,
        "username": "local_account",
        "status": "expiring",
        "status_detail": "the token expires in 5 days",
        "paused_at": None,
        "connected_at": datetime.fromtimestamp(NOW, UTC).isoformat(timespec="seconds"),
        "last_webhook_at": None,
        "token_expires_at": datetime.fromtimestamp(NOW + 5 * 86_400, UTC).isoformat(timespec="seconds"),
        "token_expires_in_days": 5.0,
        "subscription": {
            "healthy": False,
            "fields": sorted(fields[1:]),
            "missing": [fields[0]],
            "last_checked_at": datetime.fromtimestamp(NOW + 60, UTC).isoformat(timespec="seconds"),
            "last_error": "(#100) subscribe: try again",
        },
    }
    everything = json.dumps(call(console_of(stack, clients), "GET", "/console/api/snapshot")[1])
    assert TOKEN not in everything and "token_secret_id" not in everything and f"{STACK}/accounts/" not in everything


# ---------------------------------------------------------------------- the reply box


def test_a_reply_goes_on_the_outbound_queue_as_make_send_puts_a_message_there(
    aws: tuple[Stack, dict[str, Any]],
) -> None:
    stack, clients = aws
    connect(stack, clients)
    page = console_of(stack, clients)
    status, answer = reply(page, UNTRUSTED)
    assert status == 202
    key = answer["idempotency_key"]
    assert re.fullmatch(r"console-[0-9a-f]{12}", key)
    assert answer == {
        "idempotency_key": key,
        "status": "QUEUED",
        "queued_at": datetime.fromtimestamp(NOW, UTC).isoformat(timespec="milliseconds"),
    }
    [message] = queued(clients, stack)
    assert message["body"] == {
        "schema_version": "1",
        "idempotency_key": key,
        "account_id": ACCOUNT,
        "recipient": {"id": CUSTOMER},
        "message": {"type": "text", "text": UNTRUSTED},
        "human_agent": False,
        "correlation_id": "local-console",
        "callback_url": INBOX,
        "take_control": False,
    }
    assert (message["MessageGroupId"], message["MessageDeduplicationId"]) == (CONVERSATION, key)
    # Before the sender takes it, the table knows nothing of it: the console shows it QUEUED, its text verbatim.
    status, conversation = call(page, "GET", f"/console/api/conversations/{CONVERSATION}")
    assert status == 200 and conversation["events"] == []
    assert [(m["idempotency_key"], m["status"], m["text"], m["statuses"]) for m in conversation["outbound"]] == [
        (key, "QUEUED", UNTRUSTED, [{"status": "QUEUED", "at": answer["queued_at"]}])
    ]


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        ({"text": ""}, 400, "text: the reply is empty; write something to send"),
        ({"text": " \n\t "}, 400, "text: the reply is empty; write something to send"),
        ({}, 400, "text: the reply's text, a string"),
        ({"text": 42}, 400, "text: the reply's text, a string"),
        ({"text": "x" * (MAX_SPLIT_TEXT_BYTES + 1)}, 400, "message.text: text is 20001 UTF-8 bytes"),  # the contract's
        ({"text": "hi", "form_token": "forged"}, 403, "form_token: missing or not this console's"),
        ({"text": "hi", "form_token": None}, 403, "form_token: missing or not this console's"),
    ],
)
def test_a_bad_reply_is_refused_with_its_reason_and_queues_nothing(
    aws: tuple[Stack, dict[str, Any]], body: dict[str, Any], status: int, reason: str
) -> None:
    stack, clients = aws
    connect(stack, clients)
    page = console_of(stack, clients)
    request = {"form_token": page.form_token, **body}
    answered, document = call(page, "POST", f"/console/api/conversations/{CONVERSATION}/replies", request)
    assert answered == status and document["message"].startswith(reason), document
    assert queued(clients, stack) == []


def test_a_reply_to_no_conversation_or_with_no_json_is_refused(aws: tuple[Stack, dict[str, Any]]) -> None:
    stack, clients = aws
    connect(stack, clients)
    page = console_of(stack, clients)
    assert reply(page, "hi", conversation="17841400000000009:1") == (
        404,
        {"message": "no account 17841400000000009 in this stack"},
    )
    for conversation in (ACCOUNT, f"{ACCOUNT}:", f"{ACCOUNT}:abc", f":{CUSTOMER}", "a#b:1"):
        status, document = reply(page, "hi", conversation=conversation)
        assert (status, document["message"]) == (
            400,
            "conversation: <account id>:<customer id>, both digits, as events name it",
        )
    for body in (b"", b"not json", b'["hi"]'):
        status, document = call(page, "POST", f"/console/api/conversations/{CONVERSATION}/replies", body)
        assert status == 400 and document["message"].startswith("body: a JSON object")
    assert queued(clients, stack) == []


def test_the_callbacks_show_each_shape_the_inbox_receives_newest_first(aws: tuple[Stack, dict[str, Any]]) -> None:
    failed = {
        "kind": "message_status",
        "message_id": None,
        "status": {"idempotency_key": "order-1", "status": "FAILED", "message_ids": [], "reason": "window_closed"},
    }
    report = {"message_delivery_report": {"status": "DELIVERED", "message_id": "01J0"}}  # Sinch's shape
    headers = {"x-gateway-event-id": "e-1", "x-gateway-timestamp": str(int(NOW))}
    received = [
        Received("/callbacks", headers, json.dumps(failed).encode(), True),
        Received("/callbacks", {}, json.dumps(report).encode(), True),
        Received("/callbacks", {}, b"\xff not json", True),
    ]
    status, document = call(console_of(*aws, received=received), "GET", "/console/api/callbacks")
    assert status == 200
    assert [(c["status"], c["idempotency_key"], c["reason"], c["what"]) for c in document["callbacks"]] == [
        (None, None, None, "a body that is not a JSON object"),
        (None, None, None, "sinch DELIVERED 01J0"),
        ("FAILED", "order-1", "window_closed", None),
    ]
    assert document["callbacks"][2]["signed_at"] == datetime.fromtimestamp(NOW, UTC).isoformat(timespec="seconds")
    assert document["callbacks"][2]["event_id"] == "e-1"


# ---------------------------------------------------------------------- the snapshot the page polls


def test_the_snapshot_says_unchanged_until_something_changes(aws: tuple[Stack, dict[str, Any]]) -> None:
    stack, clients = aws
    connect(stack, clients)
    page = console_of(stack, clients)
    status, first = call(page, "GET", "/console/api/snapshot", query=f"conversation={CONVERSATION}")
    assert status == 200 and first["unchanged"] is False
    assert [a["account_id"] for a in first["accounts"]] == [ACCOUNT]
    assert (first["conversations"], first["callbacks"], first["conversation_problem"]) == ([], [], None)
    assert first["conversation"]["events"] == first["conversation"]["outbound"] == []
    again = call(page, "GET", "/console/api/snapshot", query=f"conversation={CONVERSATION}&after={first['tag']}")
    assert again == (200, {"tag": first["tag"], "unchanged": True})
    reply(page, "a change")
    _, changed = call(page, "GET", "/console/api/snapshot", query=f"conversation={CONVERSATION}&after={first['tag']}")
    assert changed["unchanged"] is False and changed["tag"] != first["tag"]
    assert [m["text"] for m in changed["conversation"]["outbound"]] == ["a change"]
    _, unknown = call(page, "GET", "/console/api/snapshot", query="conversation=1:2")
    assert (unknown["conversation"], unknown["conversation_problem"]) == (None, "no account 1 in this stack")


# ---------------------------------------------------------------------- a whole exchange


def test_a_conversation_shows_its_events_and_each_status_of_its_outbound_messages(loop: Loop) -> None:
    page = loop_console(loop)
    conversation = CONVERSATION
    loop.say(UNTRUSTED, customer=CUSTOMER)
    status, answer = reply(page, "Yes, in M & L <3", conversation=conversation)
    assert status == 202
    key = answer["idempotency_key"]
    loop.run()
    loop.run_callbacks()
    loop.inbox.wait_for(2)

    status, shown = call(page, "GET", f"/console/api/conversations/{conversation}")
    assert status == 200
    assert [(e["kind"], e["direction"], e["text"]) for e in shown["events"]] == [
        ("text", "inbound", UNTRUSTED),
        ("echo", "outbound", "Yes, in M & L <3"),
    ]
    [message] = shown["outbound"]
    assert shown["events"][1]["outbound_key"] == key and shown["events"][1]["message_id"] in message["message_ids"]
    assert (message["idempotency_key"], message["status"], message["text"], message["queued_by_console"]) == (
        key,
        "DELIVERED",
        "Yes, in M & L <3",
        True,
    )
    assert [s["status"] for s in message["statuses"]] == ["QUEUED", "PENDING", "SENT", "DELIVERED"]
    assert message["statuses"][0]["at"] == answer["queued_at"] and all(s["at"] for s in message["statuses"])

    _, listed = call(page, "GET", "/console/api/conversations")
    [row] = listed["conversations"]
    assert (row["conversation_id"], row["events"], row["outbound"], row["last_customer_message_kind"]) == (
        conversation,
        2,
        1,
        "text",
    )
    assert row["last_activity_at"] is not None

    _, callbacks = call(page, "GET", "/console/api/callbacks")
    assert [
        (c["status"], c["idempotency_key"], c["message_id"], c["signature_ok"]) for c in callbacks["callbacks"]
    ] == [
        ("DELIVERED", key, message["message_ids"][-1], True),
        ("SENT", key, message["message_ids"][-1], True),
    ]


def test_a_failed_message_shows_its_reason(loop: Loop) -> None:
    page = loop_console(loop)
    stranger = "5550001112223334"  # never wrote: no window is open
    assert reply(page, "hello?", conversation=f"{ACCOUNT}:{stranger}")[0] == 202
    loop.run()
    _, shown = call(page, "GET", f"/console/api/conversations/{ACCOUNT}:{stranger}")
    [message] = shown["outbound"]
    assert (message["status"], message["reason"]) == ("FAILED", "window_closed")
    assert [s["status"] for s in message["statuses"]] == ["QUEUED", "PENDING", "FAILED"]
    _, listed = call(page, "GET", "/console/api/conversations")
    assert [(c["customer_id"], c["events"], c["outbound"]) for c in listed["conversations"]] == [(stranger, 0, 1)]
