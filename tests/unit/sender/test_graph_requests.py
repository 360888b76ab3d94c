"""Every outbound kind becomes the exact Send API body Meta documents (instagram-platform.md §5.2-5.3),
and every documented limit refuses the message with a reason before anything is sent."""

from typing import Any

import pytest
from pydantic import ValidationError

from igdm.contracts.outbound import OutboundMessage, validation_reason
from igdm.meta.echoes import marker
from local.samples import outbound as out
from sender.graph_requests import build_requests, split_text

R = {"recipient": {"id": out.CUSTOMER}}
CDN = out.HTTPS


def bodies(kind: str, *, tag: bool = False, markers: bool = True, **fields: Any) -> list[dict[str, Any]]:
    message = OutboundMessage.model_validate(out.outbound(kind, **fields))
    return [s.body for s in build_requests(message, human_agent_tag=tag, markers=markers)]


def marked(documented: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """Meta's documented bodies with the gateway's echo marker in each message's metadata field."""
    return [
        {**b, "message": {**b["message"], "metadata": marker(key, part)}} if "message" in b else b
        for part, b in enumerate(documented)
    ]


def sent(kind: str) -> list[dict[str, Any]]:
    """What the sender sends for the sample message of ``kind``."""
    return marked(EXPECTED[kind], f"example-{kind}-0001")


EXPECTED: dict[str, list[dict[str, Any]]] = {
    "text": [{**R, "message": {"text": "Thanks! Your order ships tomorrow: https://example.com/t/123"}}],
    "quick_replies": [
        {
            **R,
            "message": {
                "text": "What do you need?",
                "quick_replies": [
                    {"content_type": "text", "title": "Track order", "payload": "TRACK_ORDER"},
                    {"content_type": "text", "title": "Talk to a person", "payload": "HUMAN_AGENT"},
                ],
            },
        }
    ],
    "image": [{**R, "message": {"attachment": {"type": "image", "payload": {"url": f"{CDN}/a.jpg"}}}}],
    "images": [
        {
            **R,
            "message": {
                "attachments": [
                    {"type": "image", "payload": {"url": f"{CDN}/a.jpg"}},
                    {"type": "image", "payload": {"attachment_id": "1234567890"}},
                ]
            },
        }
    ],
    "audio": [{**R, "message": {"attachment": {"type": "audio", "payload": {"url": f"{CDN}/note.m4a"}}}}],
    "video": [{**R, "message": {"attachment": {"type": "video", "payload": {"url": f"{CDN}/clip.mp4"}}}}],
    "file": [{**R, "message": {"attachment": {"type": "file", "payload": {"attachment_id": "9876543210"}}}}],
    "sticker": [{**R, "message": {"attachment": {"type": "like_heart"}}}],
    "media_share": [{**R, "message": {"attachment": {"type": "MEDIA_SHARE", "payload": {"id": "18000000000000000"}}}}],
    "generic_template": [
        {
            **R,
            "message": {
                "attachment": {
                    "type": "template",
                    "payload": {
                        "template_type": "generic",
                        "elements": [
                            {
                                "title": "Blue hoodie",
                                "subtitle": "€49",
                                "image_url": f"{CDN}/h.jpg",
                                "default_action": {"type": "web_url", "url": "https://shop.example.com/h"},
                                "buttons": [
                                    {"type": "web_url", "url": "https://shop.example.com/h", "title": "View"},
                                    {"type": "postback", "title": "Ask a human", "payload": "HUMAN"},
                                ],
                            }
                        ],
                    },
                }
            },
        }
    ],
    "button_template": [
        {
            **R,
            "message": {
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
        }
    ],
    "react": [{**R, "sender_action": "react", "payload": {"message_id": "m_1", "reaction": "love"}}],
    "unreact": [{**R, "sender_action": "unreact", "payload": {"message_id": "m_1"}}],
    "typing_on": [{**R, "sender_action": "typing_on"}],
    "typing_off": [{**R, "sender_action": "typing_off"}],
    "mark_seen": [{**R, "sender_action": "mark_seen"}],
    "choice": [
        {
            **R,
            "message": {
                "text": "Yes or No?",
                "quick_replies": [
                    {"content_type": "text", "title": "Yes", "payload": "choice_y"},
                    {"content_type": "text", "title": "No", "payload": "choice_n"},
                ],
            },
        }
    ],
    "card": [
        {
            **R,
            "message": {
                "attachment": {
                    "type": "template",
                    "payload": {
                        "template_type": "generic",
                        "elements": [
                            {
                                "title": "This is the card title",
                                "subtitle": "This is the card description",
                                "image_url": f"{CDN}/card.png",
                                "buttons": [
                                    {"type": "postback", "title": "Suggested reply", "payload": "SUGGESTED"},
                                    {"type": "web_url", "url": "https://shop.example.com", "title": "Open the shop"},
                                ],
                            }
                        ],
                    },
                }
            },
        }
    ],
    "carousel": [
        {
            **R,
            "message": {
                "attachment": {
                    "type": "template",
                    "payload": {
                        "template_type": "generic",
                        "elements": [
                            {
                                "title": "Card 1",
                                "subtitle": "First",
                                "image_url": f"{CDN}/1.png",
                                "buttons": [{"type": "postback", "title": "Pick 1", "payload": "PICK_1"}],
                            },
                            {"title": "Card 2", "image_url": f"{CDN}/2.png"},
                        ],
                    },
                }
            },
        }
    ],
    "location": [
        {
            **R,
            "message": {
                "text": "Our store\nOpen 9-18\nhttps://www.google.com/maps/search/?api=1&query=55.610479%2C13.002873"
            },
        }
    ],
    "pass_thread_control": [{**R, "target_app_id": "1217981644879628", "metadata": "the customer asked for a person"}],
    "take_thread_control": [R],
    "release_thread_control": [R],
    "request_thread_control": [{**R, "metadata": "a customer wrote to the bot"}],
    "text_with_media": [
        {**R, "message": {"text": "Here is your invoice"}},
        {**R, "message": {"attachment": {"type": "file", "payload": {"url": f"{CDN}/invoice.pdf"}}}},
    ],
}


def test_every_sample_kind_has_an_expected_body() -> None:
    assert set(EXPECTED) == set(out.KINDS)


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_exact_body_per_kind(kind: str) -> None:
    assert bodies(kind) == sent(kind)


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_without_markers_the_body_is_exactly_metas_documented_one(kind: str) -> None:
    assert bodies(kind, markers=False) == EXPECTED[kind]


def test_the_marker_names_the_message_by_a_digest_of_its_key_and_the_part() -> None:
    assert [b["message"]["metadata"] for b in bodies("text_with_media", key="order-123-ack")] == [
        "igdm1:c77473561f2059bfb4799623b08b02f5:0",
        "igdm1:c77473561f2059bfb4799623b08b02f5:1",
    ]


def test_private_reply_addresses_the_comment() -> None:
    message = OutboundMessage.model_validate(out.private_reply())
    sends = build_requests(message, human_agent_tag=False)
    assert [s.body for s in sends] == marked(
        [{"recipient": {"comment_id": "17999999999999999"}, "message": {"text": "Sent you the details in DM!"}}],
        "example-private-reply-0001",
    )
    assert sends[0].rate_class == "private_reply"


def test_human_agent_tag_and_reply_to() -> None:
    assert bodies("text", tag=True, reply_to_message_id="m_7") == marked(
        [
            {
                "recipient": {"id": out.CUSTOMER},
                "messaging_type": "MESSAGE_TAG",
                "tag": "HUMAN_AGENT",
                "message": {"text": "Thanks! Your order ships tomorrow: https://example.com/t/123"},
                "reply_to": {"mid": "m_7"},
            }
        ],
        "example-text-0001",
    )


def test_rate_classes_follow_metas_split() -> None:
    for kind, rate_class in (
        ("audio", "media"),
        ("video", "media"),
        ("image", "text"),
        ("react", "text"),
        ("sticker", "text"),
        ("file", "text"),
    ):
        message = OutboundMessage.model_validate(out.outbound(kind))
        assert [s.rate_class for s in build_requests(message, human_agent_tag=False)] == [rate_class]


def test_long_text_is_split_at_words_into_ordered_parts_of_at_most_1000_bytes() -> None:
    words = [f"wörd{i}" for i in range(400)]  # non-ASCII: bytes, not characters, are what count
    text = " ".join(words)
    parts = split_text(text)
    assert len(parts) > 1
    assert all(len(p.encode()) <= 1000 for p in parts)
    assert " ".join(parts) == text  # nothing lost, nothing reordered, cuts only at spaces


def test_a_word_longer_than_a_part_is_cut_between_characters() -> None:
    text = "😀" * 600  # 2400 bytes, no space; 4-byte characters must never be cut in half
    parts = split_text(text)
    assert "".join(parts) == text and all(len(p.encode()) <= 1000 for p in parts)


def test_quick_replies_go_on_the_last_part_of_a_long_text() -> None:
    message = OutboundMessage.model_validate(
        out.outbound(
            "quick_replies",
            message={"type": "text", "text": "word " * 500, "quick_replies": [{"title": "OK", "payload": "OK"}]},
        )
    )
    sends = [s.body["message"] for s in build_requests(message, human_agent_tag=False)]
    assert len(sends) == 3 and [("quick_replies" in s) for s in sends] == [False, False, True]


def reason(message: dict[str, Any], **top: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        OutboundMessage.model_validate({**out.outbound("text"), "message": message, **top})
    return validation_reason(caught.value.errors(include_url=False, include_input=False))


element = {"title": "t", "subtitle": "s"}
LIMITS: list[tuple[dict[str, Any], dict[str, Any], str]] = [
    ({"type": "text", "text": "x" * 20_001}, {}, "at most 20000"),
    ({"type": "text", "text": "   "}, {}, "blank"),
    (
        {"type": "text", "text": "hi", "quick_replies": [{"title": f"q{i}", "payload": "p"} for i in range(14)]},
        {},
        "at most 13",
    ),
    ({"type": "text", "text": "hi", "quick_replies": [{"title": "x" * 21, "payload": "p"}]}, {}, "at most 20"),
    ({"type": "text", "text": "hi", "quick_replies": [{"title": "t", "payload": "p" * 1001}]}, {}, "at most 1000"),
    ({"type": "text", "text": "hi", "quick_replies": [{"content_type": "text"}]}, {}, "needs a title and a payload"),
    ({"type": "image", "items": [{"url": f"{CDN}/{i}.jpg"} for i in range(11)]}, {}, "at most 10"),
    ({"type": "image", "url": "http://cdn.example.com/a.jpg"}, {}, "https"),
    ({"type": "image", "url": f"{CDN}/a.jpg", "attachment_id": "1"}, {}, "exactly one of url, attachment_id or items"),
    ({"type": "video", "url": "ftp://x/y.mp4"}, {}, "http(s) URL"),
    ({"type": "generic_template", "elements": [element] * 11}, {}, "at most 10"),
    ({"type": "generic_template", "elements": [{"title": "t" * 81, "subtitle": "s"}]}, {}, "at most 80"),
    ({"type": "generic_template", "elements": [{"title": "t", "subtitle": "s" * 81}]}, {}, "at most 80"),
    ({"type": "generic_template", "elements": [{"title": "t"}]}, {}, "besides its title"),
    (
        {
            "type": "generic_template",
            "elements": [{**element, "buttons": [{"type": "postback", "title": "b", "payload": "p"}] * 4}],
        },
        {},
        "at most 3",
    ),
    (
        {"type": "generic_template", "elements": [{**element, "buttons": [{"type": "phone_number", "title": "b"}]}]},
        {},
        "does not match any of the expected tags",
    ),
    (
        {"type": "button_template", "text": "t" * 641, "buttons": [{"type": "postback", "title": "b", "payload": "p"}]},
        {},
        "at most 640",
    ),
    ({"type": "button_template", "text": "t", "buttons": []}, {}, "at least 1"),
    ({"type": "sticker", "sticker": "thumbs_up"}, {}, "like_heart"),
    ({"type": "location", "latitude": 91, "longitude": 0}, {}, "less than or equal to 90"),
    ({"type": "card", "title": "t", "choices": [{"title": "call", "phone_number": "+46"}]}, {}, "Extra inputs"),
    ({"type": "react", "message_id": "m 1", "reaction": "love"}, {}, "message_id"),
    ({"type": "fax"}, {}, "does not match any of the expected tags"),
    ({"type": "image", "url": f"{CDN}/a.jpg"}, {"recipient": {"comment_id": "1"}}, "can only be text"),
    ({"type": "typing_on"}, {"reply_to_message_id": "m_1"}, "does not apply"),
    ({"type": "text", "text": "hi"}, {"recipient": {"id": "1", "comment_id": "2"}}, "exactly one of id or comment_id"),
    ({"type": "text", "text": "hi"}, {"idempotency_key": "has space"}, "idempotency_key"),
    ({"type": "text", "text": "hi"}, {"callback_url": "not a url"}, "callback_url"),
    ({"type": "text", "text": "hi"}, {"human": True}, "Extra inputs are not permitted"),
]


@pytest.mark.parametrize(("message", "top", "expected"), LIMITS)
def test_each_limit_refuses_with_its_reason(message: dict[str, Any], top: dict[str, Any], expected: str) -> None:
    assert expected in reason(message, **top)


def test_reasons_name_the_field_without_the_union_tag() -> None:
    assert reason({"type": "generic_template", "elements": [{"title": "t" * 81, "subtitle": "s"}]}).startswith(
        "message.elements.0.title: "
    )


def test_thread_control_never_carries_the_human_agent_tag() -> None:
    assert bodies("pass_thread_control", tag=True) == EXPECTED["pass_thread_control"]
