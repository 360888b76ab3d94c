"""The seed vendors' formats (igdm.contracts.dialects): what each translation makes of the vendor's fields that the
seeds' own examples (tests/integration/test_compat.py) do not show, and each vendor's status report."""

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from igdm.contracts.dialects import DialectError, dialect, media_kind
from igdm.contracts.outbound import OutboundMessage

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
ACCOUNT, CUSTOMER, OTHER = "17841400000000001", "7947908538583264", "7947908538583265"


def translate(name: str, body: Any) -> list[dict[str, Any]]:
    messages = dialect(name).messages(body, "k")
    for message in messages:  # every translation is a valid outbound message
        OutboundMessage.model_validate(message)
    return messages


def cm(*msgs: dict[str, Any]) -> dict[str, Any]:
    return {"messages": {"authentication": {"producttoken": "t"}, "msg": list(msgs)}}


def test_cm_sends_each_item_to_each_recipient_in_order_with_keys_of_their_own() -> None:
    body = cm(
        {
            "from": ACCOUNT,
            "to": [{"number": CUSTOMER}, {"number": OTHER}],
            "reference": "order-1",
            "validityPeriod": "2h",
            "richContent": {"conversation": [{"text": "one"}, {"media": {"mediaUri": "https://x.test/a.pdf"}}]},
        }
    )
    messages = translate("cm", body)
    assert [(m["idempotency_key"], m["recipient"]["id"], m["message"]) for m in messages] == [
        ("k.1", CUSTOMER, {"type": "text", "text": "one"}),
        ("k.2", CUSTOMER, {"type": "file", "url": "https://x.test/a.pdf"}),
        ("k.3", OTHER, {"type": "text", "text": "one"}),
        ("k.4", OTHER, {"type": "file", "url": "https://x.test/a.pdf"}),
    ]
    first = messages[0]
    assert (first["account_id"], first["correlation_id"], first["dialect"], first["take_control"]) == (
        ACCOUNT,
        "order-1",
        "cm",
        True,  # as with CM.com, a message sent after a handover takes the conversation back
    )
    assert datetime.fromisoformat(first["valid_until"]) - datetime.now(UTC) > datetime.min.resolution


@pytest.mark.parametrize(
    ("msg", "reason"),
    [
        ({"to": [{"number": CUSTOMER}], "body": {"content": "x"}, "allowedChannels": ["SMS"]}, "allowedChannels"),
        ({"to": [{"number": CUSTOMER}], "body": {"content": "x"}, "dcs": 8}, "messages.msg[0].dcs: not a field"),
        ({"to": [{"number": CUSTOMER}], "body": {"content": "x"}, "validityPeriod": "soon"}, "validityPeriod"),
        ({"to": [{}], "body": {"content": "x"}}, "messages.msg[0].to[0].number: required"),
        (
            {
                "to": [{"number": CUSTOMER}],
                "richContent": {"conversation": [{"media": {"mediaUri": "https://x.test/a"}}]},
            },
            "mimeType",
        ),
        (
            {
                "to": [{"number": CUSTOMER}],
                "richContent": {"conversation": [{"text": "t", "suggestions": [{"action": "OpenUrl", "label": "l"}]}]},
            },
            "Reply only",
        ),
    ],
)
def test_cm_refuses_what_instagram_cannot_send_naming_cms_field(msg: dict[str, Any], reason: str) -> None:
    with pytest.raises(DialectError, match=re.escape(reason)):
        translate("cm", cm(msg))


def test_sinch_identifies_the_customer_by_channel_identity_and_maps_its_properties() -> None:
    body = {
        "app_id": "01F6T8M717SPW0186EC5A90Z0E",  # a Sinch app's id names no account: the key's or the only one
        "recipient": {
            "identified_by": {
                "channel_identities": [
                    {"channel": "MESSENGER", "identity": "1"},
                    {"channel": "INSTAGRAM", "identity": CUSTOMER},
                ]
            }
        },
        "message": {"media_message": {"url": "https://x.test/talk.mp4"}},
        "channel_properties": {"INSTAGRAM_MESSAGE_TAG": "HUMAN_AGENT", "WHATSAPP_HEADER": "ignored elsewhere"},
        "message_metadata": "meta",
        "correlation_id": "c-1",
        "ttl": "600s",
    }
    [message] = translate("sinch", body)
    assert "account_id" not in message or message["account_id"] is None
    assert message["recipient"] == {"id": CUSTOMER}
    assert message["message"] == {"type": "video", "url": "https://x.test/talk.mp4"}
    assert (message["tag"], message["callback_data"], message["correlation_id"]) == ("HUMAN_AGENT", "meta", "c-1")
    assert OutboundMessage.model_validate(message).human_agent is True


def test_sinch_sends_a_file_instagram_cannot_show_as_a_text_with_its_url_as_sinch_does() -> None:
    body = {"recipient": {"contact_id": CUSTOMER}, "message": {"media_message": {"url": "https://x.test/notes.docx"}}}
    assert translate("sinch", body)[0]["message"] == {"type": "text", "text": "https://x.test/notes.docx"}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (
            {"recipient": {"contact_id": CUSTOMER}, "message": {"text_message": {"text": "x"}, "media_message": {}}},
            "message: exactly one of",
        ),
        (
            {"recipient": {"identified_by": {"channel_identities": []}}, "message": {"text_message": {"text": "x"}}},
            "recipient.identified_by.channel_identities",
        ),
        (
            {
                "recipient": {"contact_id": CUSTOMER},
                "message": {"text_message": {"text": "x"}},
                "channel_priority_order": ["SMS"],
            },
            "channel_priority_order",
        ),
        (
            {"recipient": {"contact_id": CUSTOMER}, "message": {"carousel_message": {"cards": [], "choices": [{}]}}},
            "no choices outside",
        ),
        (
            {
                "recipient": {"contact_id": CUSTOMER},
                "message": {"choice_message": {"text_message": {"text": "?"}, "choices": [{"url_message": {}}]}},
            },
            "choices\\[0\\].url_message: Instagram's quick replies are text only",
        ),
        ({"recipient": {"contact_id": CUSTOMER}, "message": {"text_message": {"text": "x"}}, "ttl": "tomorrow"}, "ttl"),
        (
            {
                "recipient": {"contact_id": CUSTOMER},
                "message": {"text_message": {"text": "x"}},
                "channel_properties": {"INSTAGRAM_X": 1},
            },
            "INSTAGRAM_X",
        ),
    ],
)
def test_sinch_refuses_by_its_own_field_names(body: dict[str, Any], reason: str) -> None:
    with pytest.raises(DialectError, match=reason):
        translate("sinch", body)


def test_webex_connect_takes_a_link_without_scheme_as_https_and_a_media_caption_as_text_first() -> None:
    [media] = translate(
        "webex-connect",
        {"contentType": "MEDIA", "to": CUSTOMER, "url": "cdn.example.com/a.png", "content": "look", "from": ACCOUNT},
    )
    assert media["message"] == {
        "type": "text_with_media",
        "text": "look",
        "media_type": "image",
        "url": "https://cdn.example.com/a.png",
    }
    assert media["account_id"] == ACCOUNT  # a from of digits is the account


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"contentType": "TEXT", "to": CUSTOMER}, "content: required"),
        ({"contentType": "STICKER", "to": CUSTOMER, "type": "thumbs_up"}, "like_heart"),
        ({"contentType": "MEDIA", "to": CUSTOMER, "url": "https://x/a.png", "quickReplies": []}, "quickReplies"),
        ({"contentType": "TEXT", "to": CUSTOMER, "content": "x", "messagingType": "MESSAGE_TAG"}, "tag"),
        ({"contentType": "TEXT", "to": CUSTOMER, "content": "x", "appid": "1"}, "appid: not a field"),
    ],
)
def test_webex_connect_refuses_by_its_own_field_names(body: dict[str, Any], reason: str) -> None:
    with pytest.raises(DialectError, match=reason):
        translate("webex-connect", body)


def test_media_kind_reads_the_mime_type_before_the_extension() -> None:
    assert media_kind("https://x/a", "image/png") == "image"
    assert media_kind("https://x/a.PDF?sig=1") == "file"
    assert media_kind("https://x/a.wav") == "audio"
    assert media_kind("https://x/a.bin") is None


def status_event(status: str, reason: str | None = None) -> dict[str, Any]:
    return {
        "account_id": ACCOUNT,
        "customer_id": CUSTOMER,
        "conversation_id": f"{ACCOUNT}:{CUSTOMER}",
        "occurred_at": "2026-12-06T12:00:00Z",
        "status": {
            "idempotency_key": "sinch-1",
            "status": status,
            "correlation_id": "c-1",
            "callback_data": "data",
            "message_ids": ["mid.1"],
            "reason": reason,
            "detail": "the detail" if reason else None,
        },
    }


@pytest.mark.parametrize(
    ("status", "reason", "sinch", "cm_code", "webex"),
    [
        ("SENT", None, "QUEUED_ON_CHANNEL", "0", "sent"),
        ("DELIVERED", None, "DELIVERED", "2", "delivered"),
        ("READ", None, "READ", "4", "read"),
        ("FAILED", "expired", "FAILED", "3", "failed"),
        ("UNKNOWN", "ambiguous_outcome", "QUEUED_ON_CHANNEL", "0", "unknown"),
    ],
)
def test_each_status_in_each_vendors_report(
    status: str, reason: str | None, sinch: str, cm_code: str, webex: str
) -> None:
    event = status_event(status, reason)
    report = dialect("sinch").status_report(event)["message_delivery_report"]
    assert (report["status"], report["message_id"], report["metadata"]) == (sinch, "sinch-1", "data")
    if reason:
        assert report["reason"]["channel_code"] == reason and report["reason"]["description"] == "the detail"
    assert reason != "expired" or report["reason"]["code"] == "DELIVERY_TIMED_OUT"
    msg = dialect("cm").status_report(event)["messages"]["msg"]
    assert (msg["status"]["code"], msg["reference"], msg["to"]) == (cm_code, "c-1", CUSTOMER)
    assert msg["status"]["errorCode"] == reason
    wxc = dialect("webex-connect").status_report(event)
    assert (wxc["status"], wxc["callbackData"], wxc["correlationId"], wxc["reason"]) == (webex, "data", "c-1", reason)


def test_a_refusal_carries_its_http_status_in_each_vendors_shape() -> None:
    assert dialect("sinch").refused("no", 403)["error"] == {
        "code": 403,
        "message": "no",
        "status": "PERMISSION_DENIED",
        "details": [],
    }
    assert dialect("sinch").refused("slow", 429)["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert dialect("webex-connect").refused("who", 401) == {"code": "401", "description": "who"}
    assert dialect("cm").refused("bad", 400) == {"details": "bad", "errorCode": 999, "messages": []}


def test_what_the_translation_cannot_honour_is_refused_by_name_not_dropped() -> None:
    explicit = {
        "recipient": {"contact_id": CUSTOMER},
        "message": {"text_message": {"text": "x"}, "explicit_channel_message": {"INSTAGRAM": "{}"}},
    }
    with pytest.raises(DialectError, match=r"message\.explicit_channel_message"):
        translate("sinch", explicit)
    strategy = {
        "recipient": {"contact_id": CUSTOMER},
        "message": {"text_message": {"text": "x"}},
        "processing_strategy": "DISPATCH_ONLY",
    }
    with pytest.raises(DialectError, match="processing_strategy"):
        translate("sinch", strategy)
    open_url = {
        "to": [{"number": CUSTOMER}],
        "richContent": {
            "conversation": [
                {"text": "t", "suggestions": [{"action": "OpenUrl", "label": "l", "url": "https://cm.com"}]}
            ]
        },
    }
    with pytest.raises(DialectError, match="an OpenUrl goes in a card"):
        translate("cm", cm(open_url))


def test_a_location_choice_links_to_the_map_as_a_location_message_does() -> None:
    card = {
        "recipient": {"contact_id": CUSTOMER},
        "message": {
            "card_message": {
                "title": "Shop",
                "choices": [
                    {
                        "location_message": {
                            "title": "Here",
                            "coordinates": {"latitude": 55.610479, "longitude": 13.002873},
                        }
                    }
                ],
            }
        },
    }
    [message] = translate("sinch", card)
    assert message["message"]["choices"][0]["url"].endswith("query=55.610479%2C13.002873")
