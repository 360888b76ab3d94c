"""The Graph API sandbox serves Instagram's Conversations API as Meta documents it, originates the customer's and the
business's own messages with their webhooks, and can hold webhooks back and deliver them late."""

import json
from collections.abc import Callable, Iterator
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from local.meta.conversations import conversation_id, parse_conversation_id
from local.meta.graph_sandbox import GraphSandbox, igsid_for_comment
from tests.devkit.webhook_receiver import WebhookReceiver, serve_webhooks

T0 = 1_767_323_045.0  # 2026-01-02T03:04:05+0000
DAY = 86_400
ACCOUNT = "17841400000000001"
ACCOUNT_USERNAME = "local_account"
TOKEN = "local-token"
OTHER_ACCOUNT = "17841400000000002"
OTHER_TOKEN = "other-token"
IGSID = "6543210987654321"
SECRET = "local-app-secret"
VERSION = "v24.0"
PLENTY = 10_000  # a rate no test reaches, for tests that are not about the rate


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with serve_webhooks() as state:
        yield state


@pytest.fixture
def make_sandbox(receiver: WebhookReceiver) -> Iterator[Callable[..., GraphSandbox]]:
    """A sandbox on a fixed clock (moved only by advance()), posting its webhooks to `receiver` unless told not to."""
    started: list[GraphSandbox] = []

    def make(**options: Any) -> GraphSandbox:
        options.setdefault("webhook_url", receiver.url)
        options.setdefault("app_secret", SECRET if options["webhook_url"] else None)
        options.setdefault("conversations_rate_per_second", PLENTY)
        sandbox = GraphSandbox(clock=lambda: T0, **options).start()
        sandbox.add_account(ACCOUNT, TOKEN, username=ACCOUNT_USERNAME)
        sandbox.add_account(OTHER_ACCOUNT, OTHER_TOKEN)
        started.append(sandbox)
        return sandbox

    yield make
    for sandbox in started:
        sandbox.stop()


def get(
    http: requests.Session, url: str, *, token: str | None = TOKEN, params: dict[str, Any] | None = None
) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return http.get(url, params=params, headers=headers, timeout=5)


def list_conversations(
    http: requests.Session, sandbox: GraphSandbox, *, token: str | None = TOKEN, node: str = "me", **params: Any
) -> requests.Response:
    query = {"platform": "instagram", **params}
    return get(http, f"{sandbox.base_url}/{VERSION}/{node}/conversations", token=token, params=query)


def conversation(
    http: requests.Session, sandbox: GraphSandbox, node: str, *, token: str | None = TOKEN, **params: Any
) -> requests.Response:
    return get(http, f"{sandbox.base_url}/{VERSION}/{node}", token=token, params={"fields": "messages", **params})


def message(
    http: requests.Session, sandbox: GraphSandbox, mid: str, *, token: str | None = TOKEN, **params: Any
) -> requests.Response:
    return get(http, f"{sandbox.base_url}/{VERSION}/{mid}", token=token, params=params)


def follow(http: requests.Session, first: dict[str, Any], *, token: str = TOKEN) -> list[dict[str, Any]]:
    """Every page from the first on, following paging.next verbatim."""
    pages = [first]
    while "next" in pages[-1].get("paging", {}):
        response = get(http, pages[-1]["paging"]["next"], token=token)
        assert response.status_code == 200, response.text
        pages.append(response.json())
    return pages


def error_of(response: requests.Response) -> dict[str, Any]:
    return cast(dict[str, Any], response.json()["error"])


def codes(response: requests.Response) -> tuple[int, int, int | None]:
    error = error_of(response)
    return response.status_code, error["code"], error.get("error_subcode")


def send(http: requests.Session, sandbox: GraphSandbox, body: dict[str, Any]) -> dict[str, Any]:
    response = http.post(
        f"{sandbox.base_url}/{VERSION}/me/messages", json=body, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert response.status_code == 200, response.text
    return cast(dict[str, Any], response.json())


def control(http: requests.Session, sandbox: GraphSandbox, name: str, body: Any = None) -> requests.Response:
    return http.post(f"{sandbox.base_url}/__sandbox/{name}", json=body if body is not None else {}, timeout=5)


def customers(sandbox: GraphSandbox, count: int, *, seconds_apart: float = 60) -> list[str]:
    """`count` customers write once each, `seconds_apart` on the sandbox clock; their IGSIDs, oldest first."""
    igsids = [f"70000000000{n:05d}" for n in range(count)]
    for igsid in igsids:
        sandbox.customer_says(ACCOUNT, igsid, f"hello from {igsid}")
        sandbox.advance(seconds_apart)
    return igsids


# --- conversations ---


def test_conversations_come_newest_first_across_pages_by_following_paging_next(
    sandbox: GraphSandbox, http: requests.Session
) -> None:
    igsids = customers(sandbox, 30)
    sandbox.customer_says(ACCOUNT, igsids[0], "me again")  # the oldest conversation becomes the newest
    response = list_conversations(http, sandbox, limit=7, access_token=TOKEN)
    pages = follow(http, response.json())
    assert [len(page["data"]) for page in pages] == [7, 7, 7, 7, 2]
    listed = [item["id"] for page in pages for item in page["data"]]
    expected = [igsids[0], *reversed(igsids[1:])]
    assert listed == [conversation_id(ACCOUNT, igsid) for igsid in expected]
    next_url = urlsplit(pages[0]["paging"]["next"])
    assert f"{next_url.scheme}://{next_url.netloc}" == sandbox.base_url
    assert next_url.path == f"/{VERSION}/me/conversations"
    query = parse_qs(next_url.query)
    assert query["platform"] == ["instagram"] and query["limit"] == ["7"] and query["access_token"] == [TOKEN]
    assert query["after"] == [pages[0]["paging"]["cursors"]["after"]]
    assert "next" not in pages[-1]["paging"] and set(pages[-1]["paging"]["cursors"]) == {"before", "after"}


def test_the_default_page_is_25_and_a_limit_is_honoured_up_to_100(
    sandbox: GraphSandbox, http: requests.Session
) -> None:
    customers(sandbox, 101, seconds_apart=1)
    first = list_conversations(http, sandbox).json()
    assert len(first["data"]) == 25 and "next" in first["paging"]
    assert len(list_conversations(http, sandbox, limit=100).json()["data"]) == 100
    capped = list_conversations(http, sandbox, limit=500).json()
    assert len(capped["data"]) == 100
    [last_page] = follow(http, capped)[1:]
    assert len(last_page["data"]) == 1


def test_times_are_iso_by_default_and_unix_seconds_with_date_format_u(
    sandbox: GraphSandbox, http: requests.Session
) -> None:
    sandbox.advance(0.75)
    mid = sandbox.customer_says(ACCOUNT, IGSID, "Hi")
    thread = conversation_id(ACCOUNT, IGSID)
    assert list_conversations(http, sandbox).json()["data"] == [
        {"id": thread, "updated_time": "2026-01-02T03:04:05+0000"}
    ]
    assert list_conversations(http, sandbox, date_format="U").json()["data"] == [
        {"id": thread, "updated_time": 1_767_323_045}
    ]
    iso = conversation(http, sandbox, thread).json()["messages"]["data"]
    unix = conversation(http, sandbox, thread, date_format="U").json()["messages"]["data"]
    assert iso == [{"id": mid, "created_time": "2026-01-02T03:04:05+0000"}]
    assert unix == [{"id": mid, "created_time": 1_767_323_045}]
    assert message(http, sandbox, mid).json() == {"id": mid, "created_time": "2026-01-02T03:04:05+0000"}
    assert message(http, sandbox, mid, date_format="U").json() == {"id": mid, "created_time": 1_767_323_045}


def test_user_id_finds_the_conversation_with_that_person_only(sandbox: GraphSandbox, http: requests.Session) -> None:
    igsids = customers(sandbox, 3)
    sandbox.customer_says(OTHER_ACCOUNT, "7999999999999999", "to the other account")
    found = list_conversations(http, sandbox, user_id=igsids[1])
    assert found.status_code == 200
    assert found.json() == {"data": [{"id": conversation_id(ACCOUNT, igsids[1])}]}
    assert list_conversations(http, sandbox, user_id="7999999999999999").json() == {"data": []}
    assert list_conversations(http, sandbox, node=ACCOUNT, user_id=igsids[2]).json()["data"] == [
        {"id": conversation_id(ACCOUNT, igsids[2])}
    ]


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"platform": None}, "platform"),
        ({"platform": "messenger"}, "platform"),
        ({"limit": "0"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"after": "not-a-cursor"}, "after"),
        ({"date_format": "Y-m-d"}, "date_format"),
    ],
)
def test_a_bad_parameter_is_error_100_naming_it(
    sandbox: GraphSandbox, http: requests.Session, params: dict[str, Any], words: str
) -> None:
    customers(sandbox, 1)
    response = list_conversations(http, sandbox, **params)
    assert codes(response) == (400, 100, None)
    assert words in error_of(response)["message"]


def test_another_accounts_conversations_are_an_unknown_object(sandbox: GraphSandbox, http: requests.Session) -> None:
    response = list_conversations(http, sandbox, node=OTHER_ACCOUNT)
    assert codes(response) == (400, 100, 33)
    assert error_of(response)["type"] == "GraphMethodException"


# --- a conversation's messages ---


def test_a_conversation_lists_every_message_id_newest_first_across_pages(
    sandbox: GraphSandbox, http: requests.Session
) -> None:
    mids = []
    for n in range(45):
        say = sandbox.customer_says if n % 2 == 0 else sandbox.business_says
        mids.append(say(ACCOUNT, IGSID, f"message {n}"))
        sandbox.advance(1)
    thread = conversation_id(ACCOUNT, IGSID)
    first = conversation(http, sandbox, thread)
    assert first.status_code == 200
    body = first.json()
    assert list(body) == ["messages", "id"] and body["id"] == thread
    assert len(body["messages"]["data"]) == 25
    # Graph's nested paging.next leads to the messages edge, which answers a plain page.
    next_url = urlsplit(body["messages"]["paging"]["next"])
    assert next_url.path == f"/{VERSION}/{thread}/messages"
    pages = follow(http, body["messages"])
    assert set(pages[1]) == {"data", "paging"} and "next" not in pages[1]["paging"]
    assert [item["id"] for page in pages for item in page["data"]] == mids[::-1]


def test_a_limit_pages_the_messages_too(sandbox: GraphSandbox, http: requests.Session) -> None:
    mids = [sandbox.customer_says(ACCOUNT, IGSID, f"m{n}") for n in range(5)]  # one instant: arrival order decides
    first = conversation(http, sandbox, conversation_id(ACCOUNT, IGSID), limit=2, date_format="U").json()["messages"]
    pages = follow(http, first)
    assert [len(page["data"]) for page in pages] == [2, 2, 1]
    assert [item["id"] for page in pages for item in page["data"]] == mids[::-1]
    assert all(isinstance(item["created_time"], int) for page in pages for item in page["data"])


def test_a_conversation_node_answers_the_fields_asked_for(sandbox: GraphSandbox, http: requests.Session) -> None:
    sandbox.customer_says(ACCOUNT, IGSID, "Hi", username="jane.doe")
    thread = conversation_id(ACCOUNT, IGSID)
    assert get(http, f"{sandbox.base_url}/{VERSION}/{thread}").json() == {"id": thread}
    body = conversation(http, sandbox, thread, fields="updated_time,participants").json()
    assert body == {
        "updated_time": "2026-01-02T03:04:05+0000",
        "participants": {
            "data": [{"username": "jane.doe", "id": IGSID}, {"username": ACCOUNT_USERNAME, "id": ACCOUNT}]
        },
        "id": thread,
    }
    unknown = conversation(http, sandbox, thread, fields="messages,colour")
    assert codes(unknown) == (400, 100, None) and "colour" in error_of(unknown)["message"]


def test_unknown_and_other_accounts_conversations_and_messages_are_error_100_33(
    sandbox: GraphSandbox, http: requests.Session
) -> None:
    mine = sandbox.customer_says(ACCOUNT, IGSID, "mine")
    theirs = sandbox.customer_says(OTHER_ACCOUNT, IGSID, "theirs")
    for node in (conversation_id(OTHER_ACCOUNT, IGSID), conversation_id(ACCOUNT, "1111111111111111")):
        response = conversation(http, sandbox, node)
        assert codes(response) == (400, 100, 33), response.text
        assert error_of(response)["type"] == "GraphMethodException" and node in error_of(response)["message"]
    for mid in (theirs, "m_unknown"):
        assert codes(message(http, sandbox, mid)) == (400, 100, 33)
    assert message(http, sandbox, mine).status_code == 200
    assert message(http, sandbox, theirs, token=OTHER_TOKEN).status_code == 200


# --- a message's details ---


def test_a_message_answers_only_the_fields_asked_for(sandbox: GraphSandbox, http: requests.Session) -> None:
    mid = sandbox.customer_says(ACCOUNT, IGSID, "Is the blue one in stock?", username="jane.doe")
    fields = "id,created_time,from,to,message,attachments"
    assert message(http, sandbox, mid, fields=fields).json() == {
        "id": mid,
        "created_time": "2026-01-02T03:04:05+0000",
        "from": {"username": "jane.doe", "id": IGSID},
        "to": {"data": [{"username": ACCOUNT_USERNAME, "id": ACCOUNT}]},
        "message": "Is the blue one in stock?",
    }
    assert message(http, sandbox, mid).json() == {"id": mid, "created_time": "2026-01-02T03:04:05+0000"}
    assert message(http, sandbox, mid, fields="message").json() == {"message": "Is the blue one in stock?", "id": mid}
    assert message(http, sandbox, mid, fields="id,reply_to,is_unsupported").json() == {
        "is_unsupported": False,
        "id": mid,
    }
    unknown = message(http, sandbox, mid, fields="id,mood")
    assert codes(unknown) == (400, 100, None) and "mood" in error_of(unknown)["message"]


def test_an_image_message_has_an_empty_text_and_its_url(sandbox: GraphSandbox, http: requests.Session) -> None:
    url = "https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=1&signature=x"
    mid = sandbox.customer_says(ACCOUNT, IGSID, attachment_url=url)
    assert message(http, sandbox, mid, fields="message,attachments").json() == {
        "message": "",
        "attachments": {"data": [{"image_data": {"url": url}}]},
        "id": mid,
    }


def test_details_are_given_for_the_20_most_recent_messages_only(sandbox: GraphSandbox, http: requests.Session) -> None:
    mids = []
    for n in range(21):
        mids.append(sandbox.customer_says(ACCOUNT, IGSID, f"message {n}"))
        sandbox.advance(1)
    for mid in mids[1:]:
        assert message(http, sandbox, mid, fields="message").status_code == 200
    too_old = message(http, sandbox, mids[0], fields="message")
    assert codes(too_old) == (400, 100, None)
    error = error_of(too_old)
    assert "deleted" in error["message"] and error["is_transient"] is False
    listed = conversation(http, sandbox, conversation_id(ACCOUNT, IGSID), limit=100).json()["messages"]["data"]
    assert mids[0] in [item["id"] for item in listed]  # its id is still listed
    sandbox.business_says(ACCOUNT, IGSID, "one more")
    assert codes(message(http, sandbox, mids[1])) == (400, 100, None)
    assert message(http, sandbox, mids[2]).status_code == 200


# --- the Requests folder ---


def test_a_requests_folder_conversation_inactive_for_30_days_is_not_returned(
    sandbox: GraphSandbox, http: requests.Session
) -> None:
    request_mid = sandbox.customer_says(ACCOUNT, "7000000000000001", "a stranger writes", requests_folder=True)
    sandbox.customer_says(ACCOUNT, "7000000000000002", "a follower writes")
    sandbox.customer_says(ACCOUNT, "7000000000000003", "another stranger", requests_folder=True)
    sandbox.business_says(ACCOUNT, "7000000000000003", "we answered: the thread leaves the Requests folder")
    stranger = conversation_id(ACCOUNT, "7000000000000001")

    def listed() -> set[str]:
        return {item["id"] for item in list_conversations(http, sandbox).json()["data"]}

    sandbox.advance(29 * DAY)
    assert stranger in listed() and len(listed()) == 3
    sandbox.advance(2 * DAY)
    assert listed() == {conversation_id(ACCOUNT, "7000000000000002"), conversation_id(ACCOUNT, "7000000000000003")}
    assert list_conversations(http, sandbox, user_id="7000000000000001").json() == {"data": []}
    assert codes(conversation(http, sandbox, stranger)) == (400, 100, 33)
    assert codes(message(http, sandbox, request_mid)) == (400, 100, 33)
    sandbox.customer_says(ACCOUNT, "7000000000000001", "still there?")  # active again
    assert stranger in listed()


# --- the rate limit ---


def test_a_third_call_within_a_second_is_throttled_across_the_three_calls(
    make_sandbox: Callable[..., GraphSandbox], http: requests.Session
) -> None:
    # The sandbox clock is fixed: every call falls in the same second, however long the calls take.
    sandbox = make_sandbox(conversations_rate_per_second=2)
    mid = sandbox.customer_says(ACCOUNT, IGSID, "Hi")
    first = list_conversations(http, sandbox)
    assert first.status_code == 200
    assert json.loads(first.headers["X-Business-Use-Case-Usage"])[ACCOUNT][0]["call_count"] == 50
    assert conversation(http, sandbox, conversation_id(ACCOUNT, IGSID)).status_code == 200
    throttled = message(http, sandbox, mid)
    assert codes(throttled) == (400, 80002, None)
    assert error_of(throttled)["is_transient"] is True
    assert json.loads(throttled.headers["X-Business-Use-Case-Usage"])[ACCOUNT][0]["call_count"] == 100
    assert list_conversations(http, sandbox, token=OTHER_TOKEN).status_code == 200  # per account
    sandbox.advance(1)
    assert message(http, sandbox, mid).status_code == 200


def test_the_rate_must_be_a_positive_integer() -> None:
    for rate in (0, 1.5, True):
        with pytest.raises(ValueError, match="conversations_rate_per_second"):
            GraphSandbox(conversations_rate_per_second=rate)  # type: ignore[arg-type]


# --- authentication, faults and the request log ---


def test_tokens_are_checked_as_the_send_api_checks_them(sandbox: GraphSandbox, http: requests.Session) -> None:
    mid = sandbox.customer_says(ACCOUNT, IGSID, "Hi")
    thread = conversation_id(ACCOUNT, IGSID)
    assert codes(list_conversations(http, sandbox, token=None)) == (401, 190, None)
    assert codes(conversation(http, sandbox, thread, token="not-a-token")) == (401, 190, None)
    in_query = get(http, f"{sandbox.base_url}/{VERSION}/{mid}", token=None, params={"access_token": TOKEN})
    assert in_query.status_code == 200
    sandbox.revoke(OTHER_ACCOUNT)
    assert codes(list_conversations(http, sandbox, token=OTHER_TOKEN)) == (400, 190, 460)
    sandbox.advance(61 * DAY)
    assert codes(message(http, sandbox, mid)) == (400, 190, 463)
    logged = [(r.method, r.path, r.account_id, r.status, r.error_code, r.via_url_token) for r in sandbox.requests]
    assert logged == [
        ("GET", f"/{VERSION}/me/conversations", None, 401, 190, False),
        ("GET", f"/{VERSION}/{thread}", None, 401, 190, False),
        ("GET", f"/{VERSION}/{mid}", ACCOUNT, 200, None, True),
        ("GET", f"/{VERSION}/me/conversations", None, 400, 190, False),
        ("GET", f"/{VERSION}/{mid}", None, 400, 190, False),
    ]
    assert TOKEN not in repr(sandbox.requests)


def test_faults_hit_the_conversations_calls_only(sandbox: GraphSandbox, http: requests.Session) -> None:
    mid = sandbox.customer_says(ACCOUNT, IGSID, "Hi")
    sandbox.inject("http_5xx", endpoint="conversations")
    assert control(http, sandbox, "faults", {"kind": "throttle", "endpoint": "conversations", "code": 4}).ok
    sandbox.inject("error", endpoint="conversations", code=190, subcode=460, status=400, account_id=OTHER_ACCOUNT)
    sandbox.inject("timeout", endpoint="conversations", delay=0.01)
    assert codes(list_conversations(http, sandbox, token=OTHER_TOKEN)) == (500, 2, None)
    throttled = conversation(http, sandbox, conversation_id(ACCOUNT, IGSID))
    assert codes(throttled) == (400, 4, None) and "X-App-Usage" in throttled.headers
    assert message(http, sandbox, mid).status_code == 500  # the timeout, after its delay
    assert codes(list_conversations(http, sandbox, token=OTHER_TOKEN)) == (400, 190, 460)
    assert send(http, sandbox, {"recipient": {"id": IGSID}, "message": {"text": "unaffected"}})["message_id"]
    assert list_conversations(http, sandbox).status_code == 200


def test_a_send_api_fault_leaves_the_conversations_calls_alone(sandbox: GraphSandbox, http: requests.Session) -> None:
    sandbox.inject("http_5xx")
    assert list_conversations(http, sandbox).status_code == 200
    failed = http.post(
        f"{sandbox.base_url}/{VERSION}/me/messages",
        json={"recipient": {"id": IGSID}, "message": {"text": "Hi"}},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert codes(failed) == (500, 2, None)  # the fault waited for the Send API


def test_inject_refuses_what_a_conversations_fault_cannot_be() -> None:
    with pytest.raises(ValueError, match="kind"):
        GraphSandbox().inject("invalid_json_reply", endpoint="conversations")


# --- messages the sandbox originates ---


def test_customer_says_records_the_message_and_delivers_metas_webhook(
    sandbox: GraphSandbox, receiver: WebhookReceiver, http: requests.Session
) -> None:
    sandbox.advance(0.25)
    mid = sandbox.customer_says(ACCOUNT, IGSID, "Hi, is this in stock?")
    url = "https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=7&signature=x"
    answer = control(http, sandbox, "customer_message", {"account_id": ACCOUNT, "igsid": IGSID, "attachment_url": url})
    assert answer.status_code == 200
    assert answer.json() == {"mid": answer.json()["mid"], "conversation_id": conversation_id(ACCOUNT, IGSID)}
    first, second = receiver.wait_for(2)
    assert first.signed_with(SECRET) and second.signed_with(SECRET)
    envelope = json.loads(first.raw)
    assert envelope["object"] == "instagram" and envelope["entry"][0]["id"] == ACCOUNT
    assert first.event == {
        "sender": {"id": IGSID},
        "recipient": {"id": ACCOUNT},
        "timestamp": 1_767_323_045_250,  # created_time, in ms
        "message": {"mid": mid, "text": "Hi, is this in stock?"},
    }
    assert second.event["message"] == {
        "mid": answer.json()["mid"],
        "attachments": [{"type": "image", "payload": {"url": url}}],
    }
    stored = sandbox.conversation_messages(ACCOUNT, IGSID)
    assert [m.mid for m in stored] == [mid, answer.json()["mid"]]
    assert (stored[0].sender.id, stored[0].recipient.id, stored[0].created_time) == (IGSID, ACCOUNT, T0 + 0.25)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"account_id": ACCOUNT, "igsid": IGSID}, "text"),
        ({"account_id": ACCOUNT, "igsid": IGSID, "text": ""}, "text"),
        ({"account_id": ACCOUNT, "igsid": IGSID, "attachment_url": "ftp://x/y"}, "attachment_url"),
        ({"account_id": ACCOUNT, "igsid": "", "text": "hi"}, "igsid"),
        ({"account_id": "17841499999999999", "igsid": IGSID, "text": "hi"}, "unknown account"),
        ({"account_id": ACCOUNT, "igsid": IGSID, "text": "hi", "username": 7}, "username"),
        ({"account_id": ACCOUNT, "igsid": IGSID, "text": "hi", "requests_folder": "yes"}, "requests_folder"),
        ({"account_id": ACCOUNT, "igsid": IGSID, "text": "hi", "colour": "blue"}, "colour"),
    ],
)
def test_a_bad_customer_message_is_refused_with_a_reason(
    sandbox: GraphSandbox, http: requests.Session, body: dict[str, Any], words: str
) -> None:
    response = control(http, sandbox, "customer_message", body)
    assert response.status_code == 400 and words in response.json()["error"]
    assert control(http, sandbox, "business_message", {"account_id": ACCOUNT, "igsid": IGSID}).status_code == 400
    assert sandbox.conversation_messages(ACCOUNT, IGSID) == []


def test_without_a_webhook_url_only_a_dropped_webhook_can_be_originated(
    make_sandbox: Callable[..., GraphSandbox],
) -> None:
    sandbox = make_sandbox(webhook_url=None)
    with pytest.raises(RuntimeError, match="webhook_url"):
        sandbox.customer_says(ACCOUNT, IGSID, "Hi")
    with pytest.raises(RuntimeError, match="webhook_url"):
        sandbox.business_says(ACCOUNT, IGSID, "Hi")
    sandbox.drop_webhooks(1)
    mid = sandbox.customer_says(ACCOUNT, IGSID, "Hi")
    assert [held.event["message"]["mid"] for held in sandbox.dropped] == [mid]
    with pytest.raises(RuntimeError, match="webhook_url"):
        sandbox.redeliver_dropped()


def test_business_says_records_the_apps_message_and_echoes_it_without_app_id(
    sandbox: GraphSandbox, receiver: WebhookReceiver, http: requests.Session
) -> None:
    mid = sandbox.business_says(ACCOUNT, IGSID, "Sent from the Instagram app")
    answer = control(http, sandbox, "business_message", {"account_id": ACCOUNT, "igsid": IGSID, "text": "And this"})
    assert answer.status_code == 200 and answer.json()["conversation_id"] == conversation_id(ACCOUNT, IGSID)
    first, second = receiver.wait_for(2)
    assert first.signed_with(SECRET)
    assert first.event == {
        "sender": {"id": ACCOUNT},
        "recipient": {"id": IGSID},
        "timestamp": 1_767_323_045_000,
        "message": {"mid": mid, "is_echo": True, "text": "Sent from the Instagram app"},
    }
    assert second.event["message"] == {"mid": answer.json()["mid"], "is_echo": True, "text": "And this"}
    details = message(http, sandbox, mid, fields="from,to,message").json()
    assert details["from"] == {"username": ACCOUNT_USERNAME, "id": ACCOUNT}
    assert details["to"] == {"data": [{"username": f"customer_{IGSID[-4:]}", "id": IGSID}]}


def test_send_api_messages_appear_in_their_conversation(sandbox: GraphSandbox, http: requests.Session) -> None:
    text = send(http, sandbox, {"recipient": {"id": IGSID}, "message": {"text": "Your order ships today"}})
    image_url = "https://cdn.example.com/a.jpg"
    image = send(
        http,
        sandbox,
        {"recipient": {"id": IGSID}, "message": {"attachment": {"type": "image", "payload": {"url": image_url}}}},
    )
    send(http, sandbox, {"recipient": {"id": IGSID}, "sender_action": "typing_on"})  # not a message
    reply = send(http, sandbox, {"recipient": {"comment_id": "17999999999999999"}, "message": {"text": "DM'd you"}})
    thread = conversation(http, sandbox, conversation_id(ACCOUNT, IGSID)).json()
    assert [item["id"] for item in thread["messages"]["data"]] == [image["message_id"], text["message_id"]]
    assert message(http, sandbox, text["message_id"], fields="from,to,message").json() == {
        "from": {"username": ACCOUNT_USERNAME, "id": ACCOUNT},
        "to": {"data": [{"username": f"customer_{IGSID[-4:]}", "id": IGSID}]},
        "message": "Your order ships today",
        "id": text["message_id"],
    }
    assert message(http, sandbox, image["message_id"], fields="message,attachments").json() == {
        "message": "",
        "attachments": {"data": [{"image_data": {"url": image_url}}]},
        "id": image["message_id"],
    }
    commenter = igsid_for_comment("17999999999999999")
    assert [m.mid for m in sandbox.conversation_messages(ACCOUNT, commenter)] == [reply["message_id"]]
    found = list_conversations(http, sandbox, user_id=commenter).json()
    assert found == {"data": [{"id": conversation_id(ACCOUNT, commenter)}]}


# --- webhooks Meta never sends, and late ones ---


def test_dropped_webhooks_are_redelivered_late_in_order_with_their_bodies(
    sandbox: GraphSandbox, receiver: WebhookReceiver, http: requests.Session
) -> None:
    assert control(http, sandbox, "drop_webhooks", {"count": 4}).json() == {"dropping": 4}
    first = sandbox.customer_says(ACCOUNT, IGSID, "one")
    sent = send(http, sandbox, {"recipient": {"id": IGSID}, "message": {"text": "two"}})
    sandbox.send_read(ACCOUNT, IGSID, sent["message_id"])
    app = sandbox.business_says(ACCOUNT, IGSID, "three")
    delivered = sandbox.customer_says(ACCOUNT, IGSID, "four")
    [only] = receiver.wait_for(1)
    assert only.event["message"]["mid"] == delivered

    inspection = http.get(f"{sandbox.base_url}/__sandbox/conversations").json()
    assert inspection["dropping"] == 0
    assert [held["event"]["timestamp"] for held in inspection["dropped"]] == [1_767_323_045_000] * 4
    [listed] = inspection["conversations"]
    assert listed["id"] == conversation_id(ACCOUNT, IGSID)
    assert [m["mid"] for m in listed["messages"]] == [first, sent["message_id"], app, delivered]
    # The messages are all there for a reconciler to find.
    ids = [item["id"] for item in conversation(http, sandbox, listed["id"]).json()["messages"]["data"]]
    assert ids == [delivered, app, sent["message_id"], first]

    held = [webhook.raw for webhook in sandbox.dropped]
    assert control(http, sandbox, "redeliver_dropped").json() == {"redelivered": 4}
    late = receiver.wait_for(5)[1:]
    assert [received.raw for received in late] == held
    assert all(received.signed_with(SECRET) for received in late)
    kinds = [next(k for k in ("read", "message") if k in received.event) for received in late]
    assert kinds == ["message", "message", "read", "message"]
    assert late[1].event["message"]["is_echo"] is True and late[3].event["message"]["mid"] == app
    assert sandbox.dropped == [] and sandbox.redeliver_dropped() == 0


def test_drop_webhooks_refuses_nonsense_and_zero_stops_dropping(
    sandbox: GraphSandbox, receiver: WebhookReceiver, http: requests.Session
) -> None:
    for count in (-1, "3", True, None):
        response = control(http, sandbox, "drop_webhooks", {"count": count})
        assert response.status_code == 400 and "count" in response.json()["error"]
    sandbox.drop_webhooks(5)
    sandbox.drop_webhooks(0)
    mid = sandbox.customer_says(ACCOUNT, IGSID, "heard")
    assert receiver.wait_for(1)[0].event["message"]["mid"] == mid


def test_reset_forgets_conversations_and_dropped_webhooks(sandbox: GraphSandbox, http: requests.Session) -> None:
    sandbox.drop_webhooks(2)
    sandbox.customer_says(ACCOUNT, IGSID, "Hi")
    assert control(http, sandbox, "reset").status_code == 200
    assert http.get(f"{sandbox.base_url}/__sandbox/conversations").json() == {
        "conversations": [],
        "dropped": [],
        "dropping": 0,
    }
    assert list_conversations(http, sandbox).json() == {"data": []}


def test_conversation_ids_are_deterministic_opaque_and_url_safe() -> None:
    thread = conversation_id(ACCOUNT, IGSID)
    assert thread == conversation_id(ACCOUNT, IGSID) != conversation_id(ACCOUNT, "6543210987654322")
    assert ACCOUNT not in thread and IGSID not in thread and "=" not in thread
    assert set(thread) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert parse_conversation_id(thread) == (ACCOUNT, IGSID)
    for other in ("me", ACCOUNT, "m_abc", thread[:-1], thread + ".", "aGVsbG8"):
        assert parse_conversation_id(other) is None
