"""The seed vendors' own requests (../shared/seeds/000-002) through the local API server as API Gateway plays it
(the real authorizer, the real API function), the outbound queue, the real sender and the Graph sandbox: each
example reaches Meta as the Send API body written out below, and its statuses come back in the vendor's shape."""

import json
import time
from typing import Any

import pytest
import requests

from igdm.store.api_keys import ApiKey, ApiKeys
from local.harnesses.outbound import ACCOUNT, CUSTOMER, Loop
from tests.vendor import seed_examples

SINCH_ROUTE = "/compat/sinch/v1/projects/5b7c830f-4183-4275-a028-13e40c98e29e/messages:send"
WEBEX_ROUTE = "/compat/webex-connect/v1/messages"
CM_ROUTE = "/compat/cm/v1.0/message"
CM_TABLET = seed_examples.CM_TABLET


def new_key(loop: Loop, scopes: tuple[str, ...] = ("send", "read"), account: str | None = None) -> str:
    api_key, presented = ApiKey.new("compat", scopes, account, now=time.time())
    ApiKeys(loop.stack_clients["dynamodb"], loop.stack.refs["GatewayTable"]).add(api_key)
    return presented


def post(loop: Loop, route: str, body: Any, key: str | None, **headers: str) -> requests.Response:
    sent = {"Authorization": f"Bearer {key}", **headers} if key else headers
    return requests.post(f"{loop.api_url}{route}", json=body, headers=sent, timeout=10)


def meta_messages(loop: Loop) -> list[dict[str, Any]]:
    """What the sandbox received, as each Send API body's message (without the gateway's echo marker)."""
    found = []
    for body in loop.sent_to_meta():
        assert body["recipient"] == {"id": CUSTOMER}
        found.append({k: v for k, v in body["message"].items() if k != "metadata"})
    return found


def template(*elements: dict[str, Any]) -> dict[str, Any]:
    return {"attachment": {"type": "template", "payload": {"template_type": "generic", "elements": list(elements)}}}


def image(url: str) -> dict[str, Any]:
    return {"attachment": {"type": "image", "payload": {"url": url}}}


def replies(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"content_type": "text", "title": title, "payload": payload} for title, payload in pairs]


WEBEX_EXPECTED = {
    "text": [{"text": seed_examples.webex_connect(CUSTOMER, "")["text"]["content"]}],
    "template": [
        template(
            {
                "title": "Welcome!",
                "subtitle": "We have the right hat for everyone.",
                "image_url": "https://sample-videos.com/img/Sample-jpg-image-2mb.jpg",
                "default_action": {"type": "web_url", "url": "https://www.originalcoastclothing.com"},
                "buttons": [
                    {"type": "web_url", "title": "View Website", "url": "https://www.google.com"},
                    {"type": "postback", "title": "Start Chatting", "payload": "DEVELOPER_DEFINED_PAYLOAD"},
                    {"type": "postback", "title": "Start Chatting", "payload": "DEVELOPER_DEFINED_PAYLOAD"},
                ],
            }
        )
    ],
    "media": [image("https://www.learningcontainer.com/wp-content/uploads/2020/08/Sample-Image-file-Download.png")],
    "sticker": [{"attachment": {"type": "like_heart"}}],
    "quick_replies": [
        {"text": "Please confirm to proceed.", "quick_replies": replies(("Confirm", "confirm"), ("Cancel", "cancel"))}
    ],
}


@pytest.mark.parametrize("name", sorted(WEBEX_EXPECTED))
def test_each_webex_connect_example_reaches_meta_and_reports_back_in_its_shape(loop: Loop, name: str) -> None:
    body = seed_examples.webex_connect(CUSTOMER, loop.inbox.url)[name]
    loop.say("hi")
    answer = post(loop, WEBEX_ROUTE, body, new_key(loop))
    assert answer.status_code == 202, answer.text
    accepted = answer.json()
    assert accepted["status"] == "queued" and accepted["correlationId"] == body["correlationId"]
    loop.run()
    assert meta_messages(loop) == WEBEX_EXPECTED[name]
    loop.run_callbacks()
    reports = [r.document for r in loop.inbox.wait_for(2)]
    assert [r["status"] for r in reports] == ["sent", "delivered"]
    for report in reports:
        assert report["messageId"] == accepted["messageId"]
        assert (report["callbackData"], report["correlationId"]) == (body["callbackData"], body["correlationId"])
        assert (report["channel"], report["from"], report["to"]) == ("instagram", ACCOUNT, CUSTOMER)
    assert [r.signature_ok for r in loop.inbox.received] == [True, True]


SINCH_LOGO, SINCH_ANTHEM = seed_examples.SINCH_LOGO, seed_examples.SINCH_ANTHEM
SINCH_EXPECTED: dict[str, list[dict[str, Any]] | str] = {
    "reply_with_tag": [{"text": "Text message from Sinch Conversation API."}],
    "text": [{"text": "Greetings from Sinch Conversation API!"}],
    "media": [image(SINCH_ANTHEM)],
    "choice": [{"text": "Yes or No?", "quick_replies": replies(("Yes", "choice_y"), ("No", "choice_n"))}],
    "location": [{"text": "Location Message\nhttps://www.google.com/maps/search/?api=1&query=55.610479%2C13.002873"}],
    # Instagram has no call button: Sinch's card and carousel examples carry one, refused by name.
    "card": "message.card_message.choices[1].call_message: Instagram has no call button",
    "carousel": "message.carousel_message.cards[1].choices[1].call_message: Instagram has no call button",
}


@pytest.mark.parametrize("name", sorted(SINCH_EXPECTED))
def test_each_sinch_example_reaches_meta_or_is_refused_by_name(loop: Loop, name: str) -> None:
    body = {**seed_examples.sinch(ACCOUNT, CUSTOMER)[name], "callback_url": loop.inbox.url, "message_metadata": "m-1"}
    loop.say("hi")
    answer = post(loop, SINCH_ROUTE, body, new_key(loop))
    expected = SINCH_EXPECTED[name]
    if isinstance(expected, str):
        assert answer.status_code == 400
        error = answer.json()["error"]
        assert error["status"] == "INVALID_ARGUMENT" and error["message"].startswith(expected)
        loop.run()
        assert loop.sent_to_meta() == [] and loop.statuses() == []
        return
    assert answer.status_code == 200, answer.text
    message_id = answer.json()["message_id"]
    assert message_id.startswith("sinch-") and answer.json()["accepted_time"].endswith("Z")
    loop.run()
    assert meta_messages(loop) == expected
    loop.run_callbacks()
    reports = [r.document for r in loop.inbox.wait_for(2)]
    assert [r["message_delivery_report"]["status"] for r in reports] == ["QUEUED_ON_CHANNEL", "DELIVERED"]
    for report in reports:
        delivery = report["message_delivery_report"]
        assert (report["app_id"], delivery["message_id"], delivery["metadata"]) == (ACCOUNT, message_id, "m-1")
        assert delivery["channel_identity"] == {"channel": "INSTAGRAM", "identity": CUSTOMER, "app_id": ACCOUNT}


def test_a_sinch_message_outside_the_window_fails_with_sinchs_reason(loop: Loop) -> None:
    loop.say("hi", hours_ago=30)
    body = {**seed_examples.sinch(ACCOUNT, CUSTOMER)["text"], "callback_url": loop.inbox.url}
    assert post(loop, SINCH_ROUTE, body, new_key(loop)).status_code == 200
    loop.run()
    loop.run_callbacks()
    [report] = [r.document["message_delivery_report"] for r in loop.inbox.wait_for(1)]
    assert report["status"] == "FAILED"
    assert (report["reason"]["code"], report["reason"]["channel_code"]) == (
        "OUTSIDE_ALLOWED_SENDING_WINDOW",
        "window_closed",
    )
    assert loop.sent_to_meta() == []


CM_EXPECTED = {
    "text": [{"text": "CM.com - Be part of it."}],
    "text_and_image": [{"text": "CM.com - Be part of it."}, image(CM_TABLET)],
    "suggestions": [
        {
            "text": "Hi, what can I do for you?",
            "quick_replies": replies(("Call me", "CALL"), ("Email me", "EMAIL"), ("Send me an sms", "SMS")),
        }
    ],
    "handover_suggestion": [
        {
            "text": "Hi, what can I do for you?",
            "quick_replies": replies(("Ask a question", "QUESTION"), ("Talk to live agent", "HUMAN_AGENT")),
        }
    ],
    "rich_card": [
        template(
            {
                "title": "We are CM.com!",
                "subtitle": "Visit our website or start a chat with one of our employee's!",
                "image_url": CM_TABLET,
                "buttons": [
                    {"type": "web_url", "title": "Visit our website!", "url": "https://cm.com"},
                    {"type": "postback", "title": "I want to chat!", "payload": "HUMAN_AGENT"},
                ],
            }
        )
    ],
    "carousel": [
        template(
            {
                "title": "We are CM.com!",
                "subtitle": "Visit our website or start a chat with one of our employee's!",
                "image_url": CM_TABLET,
                "buttons": [
                    {"type": "web_url", "title": "Visit our website!", "url": "https://cm.com"},
                    {"type": "postback", "title": "I want to chat!", "payload": "HUMAN_AGENT"},
                ],
            },
            {"title": "Our logo!", "image_url": CM_TABLET},
            {
                "title": "Conversational Channels",
                "subtitle": "Here's a selection of some of the channels we support!",
                "buttons": [
                    {"type": "web_url", "title": "WhatsApp!", "url": "https://www.cm.com/whatsapp/"},
                    {
                        "type": "web_url",
                        "title": "Instagram Messaging!",
                        "url": "https://www.cm.com/instagram-messaging",
                    },
                    {"type": "web_url", "title": "RCS!", "url": "https://www.cm.com/rcs/"},
                ],
            },
        )
    ],
}


@pytest.mark.parametrize("name", sorted(CM_EXPECTED))
def test_each_cm_example_with_its_product_token_reaches_meta(loop: Loop, name: str) -> None:
    """The key is CM.com's producttoken, in the body as the seed has it: no Authorization header."""
    body = seed_examples.cm(ACCOUNT, CUSTOMER, new_key(loop))[name]
    loop.say("hi")
    answer = post(loop, CM_ROUTE, body, None)
    assert answer.status_code == 200, answer.text
    accepted = answer.json()  # one message each: CM.com's text and image is one message sent in two parts
    assert (accepted["details"], accepted["errorCode"]) == ("Created 1 message(s)", 0)
    assert [(m["to"], m["status"]) for m in accepted["messages"]] == [(CUSTOMER, "Accepted")]
    loop.run()
    assert meta_messages(loop) == CM_EXPECTED[name]
    keys = [m["messageId"] for m in accepted["messages"]]
    assert [loop.status_names(k)[-1] for k in keys] == ["DELIVERED"]


def test_cm_refuses_a_missing_or_wrong_product_token_in_its_own_shape(loop: Loop) -> None:
    body = seed_examples.cm(ACCOUNT, CUSTOMER, "")["text"]
    missing = post(loop, CM_ROUTE, body, None)
    assert (
        missing.status_code == 401
        and missing.json()["errorCode"] == 999
        and "producttoken" in missing.json()["details"]
    )
    wrong = seed_examples.cm(ACCOUNT, CUSTOMER, "igw_0123456789ab_" + "x" * 43)["text"]
    assert post(loop, CM_ROUTE, wrong, None).json()["details"] == "unknown API key"
    header = post(loop, CM_ROUTE, body, None, **{"X-CM-PRODUCTTOKEN": new_key(loop)})
    assert header.status_code == 200
    reader = post(loop, CM_ROUTE, seed_examples.cm(ACCOUNT, CUSTOMER, new_key(loop, ("read",)))["text"], None)
    assert reader.status_code == 403


def test_a_vendor_request_repeated_with_one_idempotency_key_is_sent_once(loop: Loop) -> None:
    loop.say("hi")
    key = new_key(loop)
    body = seed_examples.sinch(ACCOUNT, CUSTOMER)["text"]
    first = post(loop, SINCH_ROUTE, body, key, **{"Idempotency-Key": "order-77"})
    again = post(loop, SINCH_ROUTE, body, key, **{"Idempotency-Key": "order-77"})
    assert first.json()["message_id"] == again.json()["message_id"] == "sinch-order-77"
    loop.run()
    assert len(loop.sent_to_meta()) == 1


def test_a_request_the_vendor_would_refuse_is_refused_with_the_vendors_field_and_nothing_queued(loop: Loop) -> None:
    key = new_key(loop)
    webex = {**seed_examples.webex_connect(CUSTOMER, loop.inbox.url)["text"], "contentType": "LOCATION"}
    assert post(loop, WEBEX_ROUTE, webex, key).json()["description"].startswith("contentType:")
    sinch = {"app_id": ACCOUNT, "recipient": {"contact_id": CUSTOMER}, "message": {"list_message": {}}}
    assert "message.list_message" in post(loop, SINCH_ROUTE, sinch, key).json()["error"]["message"]
    too_long = {**seed_examples.sinch(ACCOUNT, CUSTOMER)["choice"]}
    too_long["message"] = json.loads(json.dumps(too_long["message"]).replace('"Yes"', '"' + "Y" * 30 + '"'))
    refused = post(loop, SINCH_ROUTE, too_long, key)
    assert refused.status_code == 400 and "as an Instagram message: message.choices.0.title" in refused.text
    elsewhere = post(
        loop, SINCH_ROUTE, seed_examples.sinch("17841499999999999", CUSTOMER)["text"], new_key(loop, account=ACCOUNT)
    )
    assert elsewhere.status_code == 403
    loop.run()
    assert loop.sent_to_meta() == [] and loop.statuses() == []


def test_a_vendor_body_on_the_outbound_queue_with_a_dialect_attribute_is_sent(loop: Loop) -> None:
    """SQS producers keep their vendor's body too: the dialect message attribute says which."""
    loop.say("hi")
    body = seed_examples.cm(ACCOUNT, CUSTOMER, "unused")["text_and_image"]
    loop.sqs.send_message(
        QueueUrl=loop.stack.refs["OutboundQueue"],
        MessageBody=json.dumps(body),
        MessageGroupId=f"{ACCOUNT}:{CUSTOMER}",
        MessageDeduplicationId="cm-body-1",
        MessageAttributes={"dialect": {"DataType": "String", "StringValue": "cm"}},
    )
    loop.sqs.send_message(
        QueueUrl=loop.stack.refs["OutboundQueue"],
        MessageBody=json.dumps({"messages": {"msg": []}}),
        MessageGroupId=f"{ACCOUNT}:{CUSTOMER}",
        MessageDeduplicationId="cm-body-2",
        MessageAttributes={"dialect": {"DataType": "String", "StringValue": "cm"}},
    )
    loop.run()
    assert meta_messages(loop) == CM_EXPECTED["text_and_image"]
    failed = [s for s in loop.statuses() if s["status"] == "FAILED"]
    assert [(s["reason"], s["idempotency_key"].startswith("cm-")) for s in failed] == [("invalid_message", True)]
    assert failed[0]["detail"] == "cm body: messages.msg: required"


def test_sinchs_route_answers_messages_send_only(loop: Loop) -> None:
    body = seed_examples.sinch(ACCOUNT, CUSTOMER)["text"]
    other = post(loop, SINCH_ROUTE.replace("messages:send", "messages:list"), body, new_key(loop))
    assert other.status_code == 404 and other.json()["error"]["status"] == "NOT_FOUND"
