"""One outbound message of every kind: the examples in docs/messages.md, the SQS events under events/,
and the messages the tests send through the sender (so all three agree)."""

from typing import Any

ACCOUNT = "17841400000000001"
CUSTOMER = "6543210987654321"
HTTPS = "https://cdn.example.com"

KINDS: dict[str, dict[str, Any]] = {
    "text": {"type": "text", "text": "Thanks! Your order ships tomorrow: https://example.com/t/123"},
    "quick_replies": {
        "type": "text",
        "text": "What do you need?",
        "quick_replies": [
            {"content_type": "text", "title": "Track order", "payload": "TRACK_ORDER"},
            {"content_type": "text", "title": "Talk to a person", "payload": "HUMAN_AGENT"},
        ],
    },
    "image": {"type": "image", "url": f"{HTTPS}/a.jpg"},
    "images": {"type": "image", "items": [{"url": f"{HTTPS}/a.jpg"}, {"attachment_id": "1234567890"}]},
    "audio": {"type": "audio", "url": f"{HTTPS}/note.m4a"},
    "video": {"type": "video", "url": f"{HTTPS}/clip.mp4"},
    "file": {"type": "file", "attachment_id": "9876543210"},
    "sticker": {"type": "sticker", "sticker": "like_heart"},
    "media_share": {"type": "media_share", "media_id": "18000000000000000"},
    "generic_template": {
        "type": "generic_template",
        "elements": [
            {
                "title": "Blue hoodie",
                "subtitle": "€49",
                "image_url": f"{HTTPS}/h.jpg",
                "default_action": {"url": "https://shop.example.com/h"},
                "buttons": [
                    {"type": "web_url", "url": "https://shop.example.com/h", "title": "View"},
                    {"type": "postback", "title": "Ask a human", "payload": "HUMAN"},
                ],
            }
        ],
    },
    "button_template": {
        "type": "button_template",
        "text": "Need help?",
        "buttons": [
            {"type": "postback", "title": "Yes", "payload": "HELP_YES"},
            {"type": "web_url", "url": "https://example.com/faq", "title": "FAQ"},
        ],
    },
    "react": {"type": "react", "message_id": "m_1", "reaction": "love"},
    "unreact": {"type": "unreact", "message_id": "m_1"},
    "typing_on": {"type": "typing_on"},
    "typing_off": {"type": "typing_off"},
    "mark_seen": {"type": "mark_seen"},
    "pass_thread_control": {"type": "pass_thread_control", "metadata": "the customer asked for a person"},
    "take_thread_control": {"type": "take_thread_control"},
    "release_thread_control": {"type": "release_thread_control"},
    "request_thread_control": {"type": "request_thread_control", "metadata": "a customer wrote to the bot"},
    "choice": {
        "type": "choice",
        "text": "Yes or No?",
        "choices": [{"title": "Yes", "payload": "choice_y"}, {"title": "No", "payload": "choice_n"}],
    },
    "card": {
        "type": "card",
        "title": "This is the card title",
        "description": "This is the card description",
        "media_url": f"{HTTPS}/card.png",
        "choices": [
            {"title": "Suggested reply", "payload": "SUGGESTED"},
            {"title": "Open the shop", "url": "https://shop.example.com"},
        ],
    },
    "carousel": {
        "type": "carousel",
        "cards": [
            {
                "title": "Card 1",
                "description": "First",
                "media_url": f"{HTTPS}/1.png",
                "choices": [{"title": "Pick 1", "payload": "PICK_1"}],
            },
            {"title": "Card 2", "media_url": f"{HTTPS}/2.png"},
        ],
    },
    "location": {
        "type": "location",
        "title": "Our store",
        "label": "Open 9-18",
        "latitude": 55.610479,
        "longitude": 13.002873,
    },
    "text_with_media": {
        "type": "text_with_media",
        "text": "Here is your invoice",
        "media_type": "file",
        "url": f"{HTTPS}/invoice.pdf",
    },
}


def outbound(kind: str, key: str | None = None, **fields: Any) -> dict[str, Any]:
    """A complete outbound message of ``kind`` to the sample customer."""
    message: dict[str, Any] = {
        "idempotency_key": key or f"example-{kind}-0001",
        "account_id": ACCOUNT,
        "recipient": {"id": CUSTOMER},
        "message": KINDS[kind],
        "correlation_id": f"order-123-{kind}",
    }
    message.update(fields)
    return message


def local_reply(
    kind: str, key: str, account_id: str, callback_url: str, *, text: str | None = None, **fields: Any
) -> dict[str, Any]:
    """What `make send` and the local console's reply box queue: a message of ``kind`` from the account (a text's
    text replaced by ``text``), its status callbacks asked for to the local callback inbox."""
    message = outbound(kind, key=key, account_id=account_id, callback_url=callback_url, **fields)
    if text and kind == "text":
        message["message"] = {"type": "text", "text": text}
    return message


def private_reply(key: str = "example-private-reply-0001") -> dict[str, Any]:
    return {
        "idempotency_key": key,
        "account_id": ACCOUNT,
        "recipient": {"comment_id": "17999999999999999"},
        "message": {"type": "text", "text": "Sent you the details in DM!"},
    }
