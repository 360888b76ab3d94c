"""The Graph API sandbox answers as Meta's Send API does, fails on demand and sends signed echo webhooks."""

import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from local.meta.answers import GraphError
from local.meta.graph_sandbox import GraphSandbox, igsid_for_comment
from local.meta.login import DEFAULT_APP_ID
from local.meta.send_validation import validate_send
from local.meta.webhooks import WebhookSender, echo_message
from tests.devkit.webhook_receiver import Received, WebhookReceiver, serve_webhooks

ACCOUNT = "17841400000000001"
TOKEN = "local-token"
OTHER_ACCOUNT = "17841400000000002"
OTHER_TOKEN = "other-token"
IGSID = "6543210987654321"
SECRET = "local-app-secret"
SEND_PATH = "/v21.0/me/messages"


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with serve_webhooks() as state:
        yield state


@pytest.fixture
def make_sandbox() -> Iterator[Callable[..., GraphSandbox]]:
    started: list[GraphSandbox] = []

    def make(**options: Any) -> GraphSandbox:
        sandbox = GraphSandbox(**options).start()
        sandbox.add_account(ACCOUNT, TOKEN)
        sandbox.add_account(OTHER_ACCOUNT, OTHER_TOKEN)
        started.append(sandbox)
        return sandbox

    yield make
    for sandbox in started:
        sandbox.stop()


@pytest.fixture
def echoing(make_sandbox: Callable[..., GraphSandbox], receiver: WebhookReceiver) -> GraphSandbox:
    return make_sandbox(webhook_url=receiver.url, app_secret=SECRET)


def loopback_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxy from the environment between the test and 127.0.0.1
    return session


def send(
    http: requests.Session,
    sandbox: GraphSandbox,
    body: Any,
    *,
    token: str | None = TOKEN,
    path: str = SEND_PATH,
    timeout: float = 5.0,
) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return http.post(sandbox.base_url + path, json=body, headers=headers, timeout=timeout)


def text(value: str = "Hi there", recipient: str = IGSID) -> dict[str, Any]:
    return {"recipient": {"id": recipient}, "message": {"text": value}}


def video(recipient: str = IGSID) -> dict[str, Any]:
    return {
        "recipient": {"id": recipient},
        "message": {"attachment": {"type": "video", "payload": {"url": "https://cdn.example.com/clip.mp4"}}},
    }


def error_of(response: requests.Response) -> dict[str, Any]:
    return cast(dict[str, Any], response.json()["error"])


def usage_of(response: requests.Response, account: str = ACCOUNT) -> dict[str, Any]:
    return cast(dict[str, Any], json.loads(response.headers["X-Business-Use-Case-Usage"])[account][0])


# --- accepted sends ---

ELEMENT: dict[str, Any] = {
    "title": "Blue hoodie",
    "subtitle": "€49",
    "image_url": "https://cdn.example.com/h.jpg",
    "default_action": {"type": "web_url", "url": "https://shop.example.com/h"},
    "buttons": [
        {"type": "web_url", "url": "https://shop.example.com/h", "title": "View"},
        {"type": "postback", "title": "Ask a human", "payload": "HUMAN"},
    ],
}
VALID_MESSAGES: dict[str, dict[str, Any]] = {
    "text": {"text": "Thanks! Your order ships tomorrow: https://example.com/t/123"},
    "text at 1000 bytes": {"text": "ä" * 500},
    "image": {"attachment": {"type": "image", "payload": {"url": "https://cdn.example.com/a.jpg"}}},
    "images": {
        "attachments": [
            {"type": "image", "payload": {"url": "https://cdn.example.com/a.jpg"}},
            {"type": "image", "payload": {"attachment_id": "1234567890"}},
        ]
    },
    "audio": {"attachment": {"type": "audio", "payload": {"url": "https://cdn.example.com/a.m4a"}}},
    "file": {"attachment": {"type": "file", "payload": {"attachment_id": "987"}}},
    "like_heart": {"attachment": {"type": "like_heart"}},
    "media share": {"attachment": {"type": "MEDIA_SHARE", "payload": {"id": "18000000000000000"}}},
    "generic template": {
        "attachment": {
            "type": "template",
            "payload": {
                "template_type": "generic",
                "elements": [ELEMENT, {"title": "Only a subtitle", "subtitle": "ok"}],
            },
        }
    },
    "button template": {
        "attachment": {
            "type": "template",
            "payload": {
                "template_type": "button",
                "text": "Need help?",
                "buttons": [
                    {"type": "postback", "title": "Yes", "payload": "HELP_YES"},
                    {"type": "web_url", "url": "https://example.com/faq", "title": "FAQ"},
                ],
            },
        }
    },
    "quick replies": {
        "text": "What do you need?",
        "quick_replies": [
            {"content_type": "text", "title": "Track order", "payload": "TRACK_ORDER"},
            {"content_type": "text", "title": "A person", "payload": "HUMAN_AGENT"},
        ],
    },
}


@pytest.mark.parametrize("message", VALID_MESSAGES.values(), ids=VALID_MESSAGES.keys())
def test_documented_message_shapes_are_accepted_and_recorded_exactly(
    sandbox: GraphSandbox, http: requests.Session, message: dict[str, Any]
) -> None:
    body = {"recipient": {"id": IGSID}, "messaging_type": "RESPONSE", "message": message}
    response = send(http, sandbox, body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["recipient_id"] == IGSID
    assert answer["message_id"].startswith("m_")
    [sent] = sandbox.sent
    assert (sent.account_id, sent.body, sent.message_id, sent.via_url_token) == (
        ACCOUNT,
        body,
        answer["message_id"],
        False,
    )
    assert abs(sent.at - time.time()) < 5
    usage = usage_of(response)
    assert (usage["type"], usage["estimated_time_to_regain_access"]) == ("instagram", 0)
    # One call of 100 a second for most sends; audio draws on the 10 a second media limit.
    assert usage["call_count"] == (10 if message.get("attachment", {}).get("type") == "audio" else 1)


@pytest.mark.parametrize(
    "extra",
    [
        {"reply_to": {"mid": "m_7"}},
        {"tag": "HUMAN_AGENT"},
        {"messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT"},
        {"messaging_type": "UPDATE"},
    ],
)
def test_reply_to_and_the_human_agent_tag_are_accepted(
    sandbox: GraphSandbox, http: requests.Session, extra: dict[str, Any]
) -> None:
    assert send(http, sandbox, text() | extra).status_code == 200
    assert sandbox.sent[0].body == text() | extra


def test_message_ids_are_unique(sandbox: GraphSandbox, http: requests.Session) -> None:
    ids = {send(http, sandbox, text()).json()["message_id"] for _ in range(20)}
    assert len(ids) == 20


@pytest.mark.parametrize(
    "action",
    [
        {"sender_action": "typing_on"},
        {"sender_action": "typing_off"},
        {"sender_action": "mark_seen"},
        {"sender_action": "react", "payload": {"message_id": "m_1", "reaction": "love"}},
        {"sender_action": "unreact", "payload": {"message_id": "m_1"}},
    ],
)
def test_sender_actions_answer_only_the_recipient(
    echoing: GraphSandbox, receiver: WebhookReceiver, http: requests.Session, action: dict[str, Any]
) -> None:
    body = {"recipient": {"id": IGSID}} | action
    response = send(http, echoing, body)
    assert (response.status_code, response.json()) == (200, {"recipient_id": IGSID})
    assert [(s.body, s.message_id) for s in echoing.sent] == [(body, None)]
    echoing.drain_webhooks()
    assert receiver.attempts == 0  # Meta echoes messages, not sender actions


def test_a_private_reply_reports_a_stable_igsid_for_the_comment(sandbox: GraphSandbox, http: requests.Session) -> None:
    first, second, other = (
        send(http, sandbox, {"recipient": {"comment_id": comment}, "message": {"text": "Sent you the details!"}})
        for comment in ("17999999999999999", "17999999999999999", "17999999999999998")
    )
    assert first.json()["recipient_id"] == second.json()["recipient_id"] == igsid_for_comment("17999999999999999")
    assert other.json()["recipient_id"] != first.json()["recipient_id"]
    assert first.json()["recipient_id"].isdigit()
    assert first.json()["message_id"] != second.json()["message_id"]


# --- auth and routing ---


def test_numeric_account_path_and_any_version_are_accepted(sandbox: GraphSandbox, http: requests.Session) -> None:
    assert send(http, sandbox, text(), path=f"/v19.0/{ACCOUNT}/messages").status_code == 200
    assert send(http, sandbox, text(), token=OTHER_TOKEN, path=f"/v23.0/{OTHER_ACCOUNT}/messages").status_code == 200
    assert [s.account_id for s in sandbox.sent] == [ACCOUNT, OTHER_ACCOUNT]


@pytest.mark.parametrize("token", [None, "not-a-token", ""])
def test_missing_or_unknown_token_is_oauth_error_190(
    sandbox: GraphSandbox, http: requests.Session, token: str | None
) -> None:
    response = send(http, sandbox, text(), token=token)
    assert response.status_code == 401
    error = error_of(response)
    assert (error["code"], error["type"]) == (190, "OAuthException")
    assert error["message"] == "Invalid OAuth access token - Cannot parse access token"
    assert error["fbtrace_id"]
    assert sandbox.sent == []
    assert [(r.status, r.error_code, r.account_id) for r in sandbox.requests] == [(401, 190, None)]


def test_a_non_bearer_authorization_header_is_refused(sandbox: GraphSandbox, http: requests.Session) -> None:
    response = http.post(sandbox.base_url + SEND_PATH, json=text(), headers={"Authorization": f"Basic {TOKEN}"})
    assert (response.status_code, error_of(response)["code"]) == (401, 190)


def test_token_in_the_url_works_but_is_flagged_and_never_stored(sandbox: GraphSandbox, http: requests.Session) -> None:
    response = http.post(sandbox.base_url + SEND_PATH, params={"access_token": TOKEN}, json=text())
    assert response.status_code == 200
    assert sandbox.sent[0].via_url_token is True
    [record] = sandbox.requests
    assert (record.via_url_token, record.path, record.status) == (True, SEND_PATH, 200)
    dumped = http.get(sandbox.base_url + "/__sandbox/sent").text
    assert TOKEN not in dumped and TOKEN not in repr(sandbox.requests)


def test_another_accounts_id_in_the_path_is_error_100(sandbox: GraphSandbox, http: requests.Session) -> None:
    response = send(http, sandbox, text(), path=f"/v21.0/{OTHER_ACCOUNT}/messages")
    assert (response.status_code, error_of(response)["code"]) == (400, 100)
    assert OTHER_ACCOUNT in error_of(response)["message"]
    assert sandbox.sent == []


@pytest.mark.parametrize(
    "path", ["/21.0/me/messages", "/v21/me/messages", "/v21.0/me/conversations", "/v21.0/me/messages/extra"]
)
def test_unknown_paths_are_refused(sandbox: GraphSandbox, http: requests.Session, path: str) -> None:
    assert send(http, sandbox, text(), path=path).status_code == 404
    assert sandbox.sent == []


def test_a_foreign_host_header_is_refused(sandbox: GraphSandbox, http: requests.Session) -> None:
    response = http.post(
        sandbox.base_url + SEND_PATH,
        json=text(),
        headers={"Authorization": f"Bearer {TOKEN}", "Host": "attacker.example"},
    )
    assert response.status_code == 403
    assert sandbox.sent == []


def test_listens_on_loopback_only(sandbox: GraphSandbox) -> None:
    assert sandbox.base_url == f"http://127.0.0.1:{sandbox.port}"
    assert sandbox._server is not None and sandbox._server.server_address[0] == "127.0.0.1"


# --- validation ---

IMG = {"type": "image", "payload": {"url": "https://cdn.example.com/a.jpg"}}
IMG_BODY = {"recipient": {"id": IGSID}, "message": {"attachment": IMG}}
QR = {"content_type": "text", "title": "Yes", "payload": "YES"}


def template(payload: dict[str, Any]) -> dict[str, Any]:
    return {"attachment": {"type": "template", "payload": payload}}


def generic(*elements: dict[str, Any]) -> dict[str, Any]:
    return template({"template_type": "generic", "elements": list(elements)})


INVALID: dict[str, tuple[Any, str]] = {
    "not an object": ([text()], "body must be a JSON object"),
    "email quick reply (disabled 2026-10-05)": (
        {"recipient": {"id": IGSID}, "message": {"text": "hi", "quick_replies": [{"content_type": "user_email"}]}},
        "user_email is no longer supported",
    ),
    "unknown top-level key": (text() | {"notification_type": "REGULAR"}, "notification_type"),
    "no recipient": ({"message": {"text": "hi"}}, "recipient"),
    "recipient with both ids": (
        {"recipient": {"id": IGSID, "comment_id": "1"}, "message": {"text": "hi"}},
        "exactly one of id or comment_id",
    ),
    "recipient with neither": ({"recipient": {}, "message": {"text": "hi"}}, "exactly one of id or comment_id"),
    "numeric recipient id": ({"recipient": {"id": 6543210987654321}, "message": {"text": "hi"}}, "recipient[id]"),
    "message and sender_action": (text() | {"sender_action": "typing_on"}, "exactly one of message or sender_action"),
    "neither message nor action": ({"recipient": {"id": IGSID}}, "exactly one of message or sender_action"),
    "unknown sender action": ({"recipient": {"id": IGSID}, "sender_action": "typing"}, "sender_action"),
    "react without reaction": (
        {"recipient": {"id": IGSID}, "sender_action": "react", "payload": {"message_id": "m_1"}},
        "payload[reaction]",
    ),
    "unreact without message_id": (
        {"recipient": {"id": IGSID}, "sender_action": "unreact", "payload": {}},
        "payload[message_id]",
    ),
    "payload with typing": (
        {"recipient": {"id": IGSID}, "sender_action": "typing_on", "payload": {"message_id": "m_1"}},
        "payload",
    ),
    "empty text": (text(""), "message[text]"),
    "text over 1000 bytes": (text("ä" * 500 + "a"), "1000 UTF-8 bytes"),
    "text not a string": ({"recipient": {"id": IGSID}, "message": {"text": 5}}, "message[text]"),
    "text and attachment": (
        {"recipient": {"id": IGSID}, "message": {"text": "hi", "attachment": IMG}},
        "exactly one of text, attachment or attachments",
    ),
    "empty message": ({"recipient": {"id": IGSID}, "message": {}}, "exactly one of text, attachment or attachments"),
    "unknown message key": ({"recipient": {"id": IGSID}, "message": {"text": "hi", "tags": "x"}}, "tags"),
    "empty metadata": ({"recipient": {"id": IGSID}, "message": {"text": "hi", "metadata": ""}}, "metadata"),
    "metadata over 1000 characters": (
        {"recipient": {"id": IGSID}, "message": {"text": "hi", "metadata": "m" * 1001}},
        "metadata",
    ),
    "no attachments": ({"recipient": {"id": IGSID}, "message": {"attachments": []}}, "message[attachments]"),
    "eleven attachments": (
        {"recipient": {"id": IGSID}, "message": {"attachments": [IMG] * 11}},
        "message[attachments]",
    ),
    "attachments as object": ({"recipient": {"id": IGSID}, "message": {"attachments": IMG}}, "must be an array"),
    "video in attachments": (
        {
            "recipient": {"id": IGSID},
            "message": {"attachments": [IMG, {"type": "video", "payload": {"url": "https://cdn.example.com/v.mp4"}}]},
        },
        "message[attachments][1]",
    ),
    "attachments item without payload": (
        {"recipient": {"id": IGSID}, "message": {"attachments": [{"type": "image"}]}},
        "payload",
    ),
    "unknown attachment type": (
        {
            "recipient": {"id": IGSID},
            "message": {"attachment": {"type": "sticker", "payload": {"url": "https://cdn.example.com/a.jpg"}}},
        },
        "message[attachment][type]",
    ),
    "http media url": (
        {
            "recipient": {"id": IGSID},
            "message": {"attachment": {"type": "image", "payload": {"url": "http://cdn.example.com/a.jpg"}}},
        },
        "https",
    ),
    "url and attachment_id": (
        {
            "recipient": {"id": IGSID},
            "message": {
                "attachment": {
                    "type": "audio",
                    "payload": {"url": "https://cdn.example.com/a.m4a", "attachment_id": "1"},
                }
            },
        },
        "exactly one of url or attachment_id",
    ),
    "media without payload": (
        {"recipient": {"id": IGSID}, "message": {"attachment": {"type": "file"}}},
        "message[attachment][payload]",
    ),
    "like_heart with payload": (
        {
            "recipient": {"id": IGSID},
            "message": {"attachment": {"type": "like_heart", "payload": {"url": "https://cdn.example.com/a.jpg"}}},
        },
        "like_heart",
    ),
    "media share without id": (
        {"recipient": {"id": IGSID}, "message": {"attachment": {"type": "MEDIA_SHARE", "payload": {}}}},
        "message[attachment][payload][id]",
    ),
    "unknown template type": (
        {"recipient": {"id": IGSID}, "message": template({"template_type": "media"})},
        "template_type",
    ),
    "generic without elements": ({"recipient": {"id": IGSID}, "message": generic()}, "[elements]"),
    "generic with 11 elements": ({"recipient": {"id": IGSID}, "message": generic(*[ELEMENT] * 11)}, "[elements]"),
    "element without title": ({"recipient": {"id": IGSID}, "message": generic({"subtitle": "x"})}, "[title]"),
    "element title over 80": (
        {"recipient": {"id": IGSID}, "message": generic({"title": "t" * 81, "subtitle": "x"})},
        "80 characters",
    ),
    "element subtitle over 80": (
        {"recipient": {"id": IGSID}, "message": generic({"title": "t", "subtitle": "s" * 81})},
        "80 characters",
    ),
    "element with title only": (
        {"recipient": {"id": IGSID}, "message": generic({"title": "t"})},
        "at least one property besides title",
    ),
    "element with four buttons": (
        {"recipient": {"id": IGSID}, "message": generic(ELEMENT | {"buttons": ELEMENT["buttons"] * 2})},
        "[buttons]",
    ),
    "call button in element": (
        {
            "recipient": {"id": IGSID},
            "message": generic(
                {"title": "t", "buttons": [{"type": "phone_number", "title": "Call", "payload": "+100"}]}
            ),
        },
        "[type]",
    ),
    "web_url button without title": (
        {
            "recipient": {"id": IGSID},
            "message": generic({"title": "t", "buttons": [{"type": "web_url", "url": "https://example.com"}]}),
        },
        "[title]",
    ),
    "postback button without payload": (
        {
            "recipient": {"id": IGSID},
            "message": generic({"title": "t", "buttons": [{"type": "postback", "title": "Go"}]}),
        },
        "[payload]",
    ),
    "default action with title": (
        {
            "recipient": {"id": IGSID},
            "message": generic(
                {"title": "t", "default_action": {"type": "web_url", "url": "https://example.com", "title": "x"}}
            ),
        },
        "must not have a title",
    ),
    "default action not web_url": (
        {
            "recipient": {"id": IGSID},
            "message": generic({"title": "t", "default_action": {"type": "postback", "url": "https://example.com"}}),
        },
        "[default_action]",
    ),
    "default action without url": (
        {"recipient": {"id": IGSID}, "message": generic({"title": "t", "default_action": {"type": "web_url"}})},
        "[default_action][url]",
    ),
    "button template without text": (
        {
            "recipient": {"id": IGSID},
            "message": template(
                {"template_type": "button", "buttons": [{"type": "postback", "title": "Y", "payload": "Y"}]}
            ),
        },
        "[text]",
    ),
    "button template without buttons": (
        {
            "recipient": {"id": IGSID},
            "message": template({"template_type": "button", "text": "Need help?", "buttons": []}),
        },
        "[buttons]",
    ),
    "quick replies with an attachment": (
        {"recipient": {"id": IGSID}, "message": {"attachment": IMG, "quick_replies": [QR]}},
        "quick_replies",
    ),
    "fourteen quick replies": (
        {"recipient": {"id": IGSID}, "message": {"text": "?", "quick_replies": [QR] * 14}},
        "message[quick_replies]",
    ),
    "quick reply title over 20": (
        {"recipient": {"id": IGSID}, "message": {"text": "?", "quick_replies": [QR | {"title": "t" * 21}]}},
        "20 characters",
    ),
    "quick reply without title": (
        {
            "recipient": {"id": IGSID},
            "message": {"text": "?", "quick_replies": [{"content_type": "text", "payload": "P"}]},
        },
        "[title]",
    ),
    "quick reply without payload": (
        {
            "recipient": {"id": IGSID},
            "message": {"text": "?", "quick_replies": [{"content_type": "text", "title": "T"}]},
        },
        "[payload]",
    ),
    "quick reply payload over 1000": (
        {"recipient": {"id": IGSID}, "message": {"text": "?", "quick_replies": [QR | {"payload": "p" * 1001}]}},
        "1000 characters",
    ),
    "quick reply location": (
        {"recipient": {"id": IGSID}, "message": {"text": "?", "quick_replies": [{"content_type": "location"}]}},
        "content_type",
    ),
    "unknown messaging type": (text() | {"messaging_type": "NON_PROMOTIONAL_SUBSCRIPTION"}, "messaging_type"),
    "messenger-only tag": (text() | {"messaging_type": "MESSAGE_TAG", "tag": "ACCOUNT_UPDATE"}, "HUMAN_AGENT"),
    "tag with RESPONSE": (text() | {"messaging_type": "RESPONSE", "tag": "HUMAN_AGENT"}, "MESSAGE_TAG"),
    "MESSAGE_TAG without tag": (text() | {"messaging_type": "MESSAGE_TAG"}, "tag"),
    "reply_to without mid": (text() | {"reply_to": {}}, "reply_to[mid]"),
    "reply_to with empty mid": (text() | {"reply_to": {"mid": ""}}, "reply_to[mid]"),
    "reply_to with a story": (text() | {"reply_to": {"mid": "m_1", "story": {}}}, "story"),
    "reply_to with an action": (
        {"recipient": {"id": IGSID}, "sender_action": "typing_on", "reply_to": {"mid": "m_1"}},
        "reply_to",
    ),
    "private reply with an image": (
        {"recipient": {"comment_id": "17999999999999999"}, "message": {"attachment": IMG}},
        "private reply",
    ),
    "private reply with quick replies": (
        {"recipient": {"comment_id": "1"}, "message": {"text": "?", "quick_replies": [QR]}},
        "private reply",
    ),
    "private reply action": ({"recipient": {"comment_id": "1"}, "sender_action": "typing_on"}, "private reply"),
}


@pytest.mark.parametrize(("body", "names"), INVALID.values(), ids=INVALID.keys())
def test_each_body_rule_answers_400_code_100_naming_the_problem(
    sandbox: GraphSandbox, http: requests.Session, body: Any, names: str
) -> None:
    response = send(http, sandbox, body)
    assert response.status_code == 400, body
    error = error_of(response)
    assert (error["code"], error["type"]) == (100, "IGApiException")
    assert names in error["message"]
    assert len(error["fbtrace_id"]) > 10
    assert sandbox.sent == []
    [record] = sandbox.requests
    assert (record.status, record.error_code, record.account_id, record.body) == (400, 100, ACCOUNT, body)


send_keys = st.sampled_from(
    [
        "recipient",
        "id",
        "comment_id",
        "message",
        "text",
        "attachment",
        "attachments",
        "type",
        "payload",
        "url",
        "attachment_id",
        "template_type",
        "elements",
        "title",
        "buttons",
        "default_action",
        "quick_replies",
        "content_type",
        "sender_action",
        "message_id",
        "reaction",
        "messaging_type",
        "tag",
        "reply_to",
        "mid",
    ]
)
send_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=5),
    st.sampled_from(
        [
            "image",
            "video",
            "like_heart",
            "MEDIA_SHARE",
            "template",
            "generic",
            "button",
            "web_url",
            "postback",
            "text",
            "react",
            "HUMAN_AGENT",
            "MESSAGE_TAG",
            "https://cdn.example.com/a.jpg",
            "\ud83d",
        ]
    ),
)
send_like = st.recursive(
    send_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(send_keys, inner, max_size=4)),
    max_leaves=14,
)


@settings(max_examples=150, deadline=None)
@given(send_like)
def test_validation_answers_error_100_or_accepts_never_crashes(body: Any) -> None:
    try:
        validate_send(body)
    except GraphError as error:
        assert (error.status, error.code) == (400, 100)
    else:
        # What passes must be echoable, or the webhook worker would die on it.
        if "message" in body:
            echo_message("m_1", body["message"])


def test_a_body_that_is_not_json_is_error_100(sandbox: GraphSandbox, http: requests.Session) -> None:
    response = http.post(
        sandbox.base_url + SEND_PATH,
        data=b"recipient=1",
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    assert (response.status_code, error_of(response)["code"]) == (400, 100)


# --- rate limits ---


def test_text_sends_are_limited_to_100_in_any_second(
    make_sandbox: Callable[..., GraphSandbox], http: requests.Session
) -> None:
    sandbox = make_sandbox()
    started = time.monotonic()
    responses = [send(http, sandbox, text(f"burst {i}")) for i in range(150)]
    elapsed = time.monotonic() - started
    accepted = [r for r in responses if r.status_code == 200]
    for rejected in (r for r in responses if r.status_code != 200):
        assert rejected.status_code == 400
        error = error_of(rejected)
        assert (error["code"], error["type"], error["is_transient"]) == (80002, "IGApiException", True)
        assert error["message"] == (
            "There have been too many calls to this Instagram account. Wait a bit and try again."
        )
        assert usage_of(rejected)["call_count"] == 100
        assert usage_of(rejected)["estimated_time_to_regain_access"] == 0
    assert len(sandbox.sent) == len(accepted)
    if elapsed < 1.0:
        assert [r.status_code for r in responses] == [200] * 100 + [400] * 50
        assert usage_of(accepted[49])["call_count"] == 50
        assert usage_of(accepted[-1])["call_count"] == 100
    else:  # a slow machine: the window slid during the burst, so only the bound itself can be checked
        assert len(accepted) >= 100
        times = [s.at for s in sandbox.sent]
        assert all(later - earlier >= 0.99 for earlier, later in zip(times, times[100:], strict=False))
    assert [r.error_code for r in sandbox.requests].count(80002) == 150 - len(accepted)


def test_refused_calls_do_not_count_against_the_limit(
    make_sandbox: Callable[..., GraphSandbox], http: requests.Session
) -> None:
    sandbox = make_sandbox(text_rate_per_second=3)
    assert [send(http, sandbox, text()).status_code for _ in range(3)] == [200] * 3
    last_accepted = time.monotonic()
    refused = 0
    while time.monotonic() - last_accepted < 0.5:  # keep knocking for half the window
        refused += send(http, sandbox, text()).status_code == 400
    assert refused > 0
    time.sleep(max(0.0, last_accepted + 1.05 - time.monotonic()))
    # Had the refusals counted, the window would still be full of them.
    assert [send(http, sandbox, text()).status_code for _ in range(3)] == [200] * 3
    assert len(sandbox.sent) == 6


def test_audio_and_video_are_limited_to_10_a_second_apart_from_text(
    make_sandbox: Callable[..., GraphSandbox], http: requests.Session
) -> None:
    sandbox = make_sandbox()
    audio = {
        "recipient": {"id": IGSID},
        "message": {"attachment": {"type": "audio", "payload": {"url": "https://cdn.example.com/a.m4a"}}},
    }
    started = time.monotonic()
    media = [send(http, sandbox, video() if i % 2 else audio).status_code for i in range(12)]
    after = [send(http, sandbox, body) for body in (text(), IMG_BODY)]
    other_account = send(http, sandbox, video(), token=OTHER_TOKEN)
    if time.monotonic() - started < 1.0:
        assert media == [200] * 10 + [400] * 2
    assert [r.status_code for r in after] == [200, 200]  # text and images draw on the text limit
    assert usage_of(after[0])["call_count"] == 1  # 1 of 100 text calls: media has its own window
    assert other_account.status_code == 200  # limits are per account
    assert sum(1 for r in sandbox.requests if r.error_code == 80002) == media.count(400)


# --- faults ---


def test_http_5xx_fault_fails_one_send_with_a_transient_error(sandbox: GraphSandbox, http: requests.Session) -> None:
    sandbox.inject("http_5xx")
    failed, then = send(http, sandbox, text("one")), send(http, sandbox, text("two"))
    assert failed.status_code == 500
    error = error_of(failed)
    assert (error["code"], error["is_transient"], error["type"]) == (2, True, "IGApiException")
    assert then.status_code == 200
    assert [s.body["message"]["text"] for s in sandbox.sent] == ["two"]
    assert [(r.status, r.error_code) for r in sandbox.requests] == [(500, 2), (200, None)]


def test_error_fault_answers_exactly_what_was_asked(sandbox: GraphSandbox, http: requests.Session) -> None:
    sandbox.inject(
        "error", status=403, code=10, subcode=2534022, message="This message is sent outside of allowed window."
    )
    response = send(http, sandbox, text())
    assert response.status_code == 403
    error = error_of(response)
    assert {k: error[k] for k in ("message", "type", "code", "error_subcode")} == {
        "message": "This message is sent outside of allowed window.",
        "type": "IGApiException",
        "code": 10,
        "error_subcode": 2534022,
    }
    assert sandbox.sent == []
    assert (sandbox.requests[0].error_code, sandbox.requests[0].error_subcode) == (10, 2534022)


def test_throttle_fault_defaults_to_code_4_over_http_400(sandbox: GraphSandbox, http: requests.Session) -> None:
    sandbox.inject("throttle")
    sandbox.inject("throttle", status=429, code=80002)
    default, custom = send(http, sandbox, text()), send(http, sandbox, text())
    assert (default.status_code, error_of(default)["code"], error_of(default)["is_transient"]) == (400, 4, True)
    assert json.loads(default.headers["X-App-Usage"])["call_count"] == 100
    assert (custom.status_code, error_of(custom)["code"]) == (429, 80002)
    assert usage_of(custom)["call_count"] == 100
    assert sandbox.sent == []


def test_faults_are_used_in_order_count_times_and_per_account(sandbox: GraphSandbox, http: requests.Session) -> None:
    sandbox.inject("error", code=551, account_id=OTHER_ACCOUNT)
    sandbox.inject("http_5xx", 2, status=503)
    sandbox.inject("error", code=368)
    statuses = [
        (r.status_code, r.json().get("error", {}).get("code")) for r in (send(http, sandbox, text()) for _ in range(4))
    ]
    assert statuses == [(503, 2), (503, 2), (400, 368), (200, None)]
    other = send(http, sandbox, text(), token=OTHER_TOKEN)
    assert error_of(other)["code"] == 551
    assert send(http, sandbox, text(), token=OTHER_TOKEN).status_code == 200


def test_invalid_requests_do_not_use_up_a_fault(sandbox: GraphSandbox, http: requests.Session) -> None:
    sandbox.inject("http_5xx")
    assert send(http, sandbox, text(""), token=TOKEN).status_code == 400
    assert send(http, sandbox, text(), token="wrong").status_code == 401
    assert send(http, sandbox, text()).status_code == 500


def test_timeout_fault_without_delivery_sends_nothing(sandbox: GraphSandbox, http: requests.Session) -> None:
    sandbox.inject("timeout", delay=0.5)
    with pytest.raises(requests.ReadTimeout):
        send(http, sandbox, text(), timeout=0.2)
    time.sleep(0.4)  # until the sandbox would have answered
    assert sandbox.sent == []
    assert send(http, sandbox, text()).status_code == 200


def test_a_late_answer_after_a_timeout_is_an_error(sandbox: GraphSandbox, http: requests.Session) -> None:
    sandbox.inject("timeout", delay=0.2)
    started = time.monotonic()
    response = send(http, sandbox, text())
    assert time.monotonic() - started >= 0.2
    assert (response.status_code, error_of(response)["is_transient"]) == (500, True)
    assert sandbox.sent == []


def test_timeout_fault_with_delivery_sends_and_echoes(
    echoing: GraphSandbox, receiver: WebhookReceiver, http: requests.Session
) -> None:
    echoing.inject("timeout", delay=0.5, deliver=True)
    with pytest.raises(requests.ReadTimeout):
        send(http, echoing, text("did it go?"), timeout=0.2)
    [sent] = echoing.wait_for_sent(1)
    assert sent.message_id is not None and sent.body == text("did it go?")
    [echo] = receiver.wait_for(1)
    assert echo.event["message"] == {
        "mid": sent.message_id,
        "is_echo": True,
        "app_id": DEFAULT_APP_ID,
        "text": "did it go?",
    }


def test_invalid_json_reply_with_delivery_reports_1_1357046_but_sent(
    echoing: GraphSandbox, receiver: WebhookReceiver, http: requests.Session
) -> None:
    echoing.inject("invalid_json_reply", deliver=True)
    echoing.inject("invalid_json_reply")
    delivered, lost = send(http, echoing, text("maybe")), send(http, echoing, text("no"))
    for response in (delivered, lost):
        assert response.status_code == 500
        assert (error_of(response)["code"], error_of(response)["error_subcode"]) == (1, 1357046)
    [sent] = echoing.sent
    assert sent.body == text("maybe") and sent.message_id
    echoing.drain_webhooks()
    assert [r.event["message"]["mid"] for r in receiver.received] == [sent.message_id]


def test_faults_over_http_and_reset(sandbox: GraphSandbox, http: requests.Session) -> None:
    url = sandbox.base_url + "/__sandbox/faults"
    added = http.post(
        url,
        json={
            "kind": "error",
            "count": 2,
            "status": 403,
            "code": 10,
            "subcode": 2534022,
            "message": "This message is sent outside of allowed window.",
        },
    )
    assert added.status_code == 200
    assert error_of(send(http, sandbox, text()))["error_subcode"] == 2534022
    assert http.post(url, json={"kind": "meteor"}).status_code == 400
    assert http.post(url, json={"kind": "error", "colour": "red"}).status_code == 400
    assert http.post(url, json={"kind": "http_5xx", "deliver": True}).status_code == 400
    assert http.post(url, data='{"kind": "http_5xx"}', headers={"Content-Type": "text/plain"}).status_code == 415
    assert http.post(sandbox.base_url + "/__sandbox/reset", json={}).status_code == 200
    assert sandbox.requests == [] and sandbox.sent == []
    assert send(http, sandbox, text()).status_code == 200  # the second fault was cleared


def test_reset_clears_the_rate_windows(make_sandbox: Callable[..., GraphSandbox], http: requests.Session) -> None:
    sandbox = make_sandbox(text_rate_per_second=2)
    assert [send(http, sandbox, text()).status_code for _ in range(3)] == [200, 200, 400]
    sandbox.reset()
    assert send(http, sandbox, text()).status_code == 200


def test_inject_refuses_nonsense() -> None:
    sandbox = GraphSandbox()
    for kwargs, names in (
        ({"kind": "nope"}, "kind"),
        ({"kind": "error", "count": 0}, "count"),
        ({"kind": "error", "status": 99}, "status"),
        ({"kind": "timeout", "delay": -1}, "delay"),
        ({"kind": "throttle", "deliver": True}, "deliver"),
    ):
        with pytest.raises(ValueError, match=names):
            sandbox.inject(**kwargs)


def test_sent_endpoint_lists_sends_and_requests(sandbox: GraphSandbox, http: requests.Session) -> None:
    send(http, sandbox, text("hello"))
    send(http, sandbox, text(""))
    listing = http.get(sandbox.base_url + "/__sandbox/sent").json()
    [sent] = listing["sent"]
    assert (sent["account_id"], sent["body"], sent["via_url_token"]) == (ACCOUNT, text("hello"), False)
    assert sent["message_id"] == sandbox.sent[0].message_id
    assert [(r["status"], r["error_code"]) for r in listing["requests"]] == [(200, None), (400, 100)]


def test_wait_for_sent_returns_the_sends_or_times_out(sandbox: GraphSandbox, http: requests.Session) -> None:
    threading.Timer(0.1, lambda: send(loopback_session(), sandbox, text())).start()
    assert len(sandbox.wait_for_sent(1, timeout=5)) == 1
    with pytest.raises(TimeoutError):
        sandbox.wait_for_sent(2, timeout=0.1)


# --- webhooks ---


def verify(received: Received) -> None:
    expected = "sha256=" + hmac.new(SECRET.encode(), received.raw, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(received.headers["X-Hub-Signature-256"], expected)


def test_echo_is_signed_compact_and_mirrors_the_text(
    echoing: GraphSandbox, receiver: WebhookReceiver, http: requests.Session
) -> None:
    before = int(time.time() * 1000)
    answer = send(http, echoing, text("Ja, Größe M ist da 👍")).json()
    [echo] = receiver.wait_for(1)
    verify(echo)
    assert echo.raw == json.dumps(json.loads(echo.raw), separators=(",", ":")).encode()  # compact, ASCII
    assert b"\\u00f6" in echo.raw and b"\\ud83d\\udc4d" in echo.raw
    body = json.loads(echo.raw)
    assert body["object"] == "instagram"
    [entry] = body["entry"]
    assert entry["id"] == ACCOUNT and entry["time"] >= before
    [event] = entry["messaging"]
    assert event["sender"] == {"id": ACCOUNT} and event["recipient"] == {"id": IGSID}
    assert event["timestamp"] >= before
    assert event["message"] == {
        "mid": answer["message_id"],
        "is_echo": True,
        "app_id": DEFAULT_APP_ID,
        "text": "Ja, Größe M ist da 👍",
    }


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, {"app_id": DEFAULT_APP_ID, "metadata": "igdm1:abc:0"}),
        ({"echo_metadata": False}, {"app_id": DEFAULT_APP_ID}),
        ({"echo_app_id": False, "echo_metadata": False}, {}),
    ],
    ids=["as-messenger", "no-metadata", "neither"],
)
def test_the_echo_carries_the_app_and_the_metadata_as_configured(
    make_sandbox: Callable[..., GraphSandbox],
    receiver: WebhookReceiver,
    http: requests.Session,
    options: dict[str, bool],
    expected: dict[str, str],
) -> None:
    sandbox = make_sandbox(webhook_url=receiver.url, app_secret=SECRET, **options)
    answer = send(http, sandbox, {"recipient": {"id": IGSID}, "message": {"text": "hi", "metadata": "igdm1:abc:0"}})
    [echo] = receiver.wait_for(1)
    assert echo.event["message"] == {"mid": answer.json()["message_id"], "is_echo": True, "text": "hi", **expected}


@pytest.mark.parametrize(
    ("message", "attachments"),
    [
        (VALID_MESSAGES["image"], [{"type": "image", "payload": {"url": "https://cdn.example.com/a.jpg"}}]),
        (
            {"attachment": {"type": "video", "payload": {"url": "https://cdn.example.com/clip.mp4"}}},
            [{"type": "video", "payload": {"url": "https://cdn.example.com/clip.mp4"}}],
        ),
        (VALID_MESSAGES["images"], None),
    ],
)
def test_echo_mirrors_attachments(
    echoing: GraphSandbox,
    receiver: WebhookReceiver,
    http: requests.Session,
    message: dict[str, Any],
    attachments: list[dict[str, Any]] | None,
) -> None:
    answer = send(http, echoing, {"recipient": {"id": IGSID}, "message": message}).json()
    [echo] = receiver.wait_for(1)
    verify(echo)
    echoed = echo.event["message"]
    assert echoed["mid"] == answer["message_id"] and echoed["is_echo"] is True and "text" not in echoed
    if attachments is not None:
        assert echoed["attachments"] == attachments
    else:
        first, second = echoed["attachments"]
        assert first == {"type": "image", "payload": {"url": "https://cdn.example.com/a.jpg"}}
        assert second["type"] == "image" and second["payload"]["url"].startswith("https://")


def test_private_reply_echo_goes_to_the_commenters_igsid(
    echoing: GraphSandbox, receiver: WebhookReceiver, http: requests.Session
) -> None:
    send(http, echoing, {"recipient": {"comment_id": "17999999999999999"}, "message": {"text": "DM'd you"}})
    [echo] = receiver.wait_for(1)
    assert echo.event["recipient"] == {"id": igsid_for_comment("17999999999999999")}


def test_echo_waits_for_the_configured_delay(
    make_sandbox: Callable[..., GraphSandbox], receiver: WebhookReceiver, http: requests.Session
) -> None:
    sandbox = make_sandbox(webhook_url=receiver.url, app_secret=SECRET, echo_delay_seconds=0.3)
    started = time.monotonic()
    send(http, sandbox, text())
    assert receiver.received == []
    receiver.wait_for(1)
    assert time.monotonic() - started >= 0.3


def test_a_failed_echo_is_retried_with_the_same_bytes(
    echoing: GraphSandbox, receiver: WebhookReceiver, http: requests.Session
) -> None:
    receiver.statuses = [500, 503]
    send(http, echoing, text())
    [echo] = receiver.wait_for(1)
    verify(echo)
    assert receiver.attempts == 3
    echoing.drain_webhooks()
    assert echoing.echo_failures == 0


def test_an_echo_failing_six_times_is_dropped_and_counted(
    echoing: GraphSandbox, receiver: WebhookReceiver, http: requests.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(WebhookSender, "RETRY_BACKOFF", (0.01,) * 5)
    receiver.statuses = [500] * 6
    send(http, echoing, text("lost"))
    echoing.drain_webhooks(timeout=5)
    assert (receiver.attempts, receiver.received, echoing.echo_failures) == (6, [], 1)
    send(http, echoing, text("next"))
    assert receiver.wait_for(1)[0].event["message"]["text"] == "next"


def test_an_unreachable_webhook_is_counted_as_a_failure(
    make_sandbox: Callable[..., GraphSandbox], http: requests.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(WebhookSender, "RETRY_BACKOFF", (0.01,) * 5)
    # A port nothing listens on: bound and never listening, held so that nothing else (the other pytest-xdist
    # worker's servers) can take it meanwhile.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        sandbox = make_sandbox(webhook_url=f"http://127.0.0.1:{port}/webhook", app_secret=SECRET)
        assert send(http, sandbox, text()).status_code == 200
        sandbox.drain_webhooks(timeout=5)
        assert sandbox.echo_failures == 1


def test_read_webhook_from_python_and_over_http(
    echoing: GraphSandbox, receiver: WebhookReceiver, http: requests.Session
) -> None:
    echoing.send_read(ACCOUNT, IGSID, "m_6")
    assert (
        http.post(
            echoing.base_url + "/__sandbox/read", json={"account_id": ACCOUNT, "igsid": IGSID, "mid": "m_7"}
        ).status_code
        == 200
    )
    assert http.post(echoing.base_url + "/__sandbox/read", json={"account_id": ACCOUNT}).status_code == 400
    first, second = receiver.wait_for(2)
    for received, mid in ((first, "m_6"), (second, "m_7")):
        verify(received)
        body = json.loads(received.raw)
        assert body["object"] == "instagram" and body["entry"][0]["id"] == ACCOUNT
        event = received.event
        assert set(event) == {"sender", "recipient", "timestamp", "read"}
        assert (event["sender"], event["recipient"], event["read"]) == ({"id": IGSID}, {"id": ACCOUNT}, {"mid": mid})
        assert isinstance(event["timestamp"], int) and event["timestamp"] > 1_700_000_000_000


def test_send_read_needs_a_webhook_url(sandbox: GraphSandbox) -> None:
    with pytest.raises(RuntimeError):
        sandbox.send_read(ACCOUNT, IGSID, "m_1")


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/webhook",
        "http://example.com/webhook",
        "http://10.0.0.1/x",
        "http://127.0.0.1.example.com/x",
        "http://user:pw@127.0.0.1/x",
        "ftp://localhost/",
        "http://[::1]:3000/webhook",
    ],
)
def test_webhook_url_must_be_loopback_http(url: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        GraphSandbox(webhook_url=url, app_secret=SECRET)


def test_loopback_webhook_urls_are_accepted_and_need_a_secret() -> None:
    GraphSandbox(webhook_url="http://localhost:3000/webhook", app_secret=SECRET)
    GraphSandbox(webhook_url="http://127.0.0.1:3000/webhook", app_secret=SECRET)
    with pytest.raises(ValueError, match="app_secret"):
        GraphSandbox(webhook_url="http://127.0.0.1:3000/webhook")


def test_context_manager_starts_and_stops(http: requests.Session) -> None:
    with GraphSandbox() as sandbox:
        sandbox.add_account(ACCOUNT, TOKEN)
        url = sandbox.base_url
        assert send(http, sandbox, text()).status_code == 200
    http.close()  # the keep-alive connection outlives the listener otherwise
    with pytest.raises(requests.ConnectionError):
        loopback_session().post(url + SEND_PATH, json=text(), timeout=1)
