"""Webex Connect's Instagram message (../shared/seeds/000): contentType TEXT, TEMPLATE, MEDIA or STICKER, `from`
the sender, `to` the customer's IGSID, with callbackUrl, callbackData and correlationId.

- TEXT: `content`, optional quickReplies ({type or content_type TEXT, title, payload}) -> text with quick replies.
- TEMPLATE: `template`, up to 10 elements (title, subtitle, imageUrl, defaultAction, buttons web_url/postback)
  -> a generic template. Its `content` is Webex Connect's required fallback text: Instagram shows the cards only.
- MEDIA: `url`, an image (Webex Connect's channel sends images only) -> image; with a `content` caption, the
  text then the image. Quick replies on it are refused: Instagram shows quick replies with text only.
- STICKER: `type` like_heart -> the like_heart sticker.
- messagingType RESPONSE or UPDATE, or MESSAGE_TAG with `tag` HUMAN_AGENT; notificationType is accepted and
  has no Instagram meaning.

The answer is 202 {"messageId", "correlationId", "status": "queued"}; a refusal {"code" (the HTTP status),
"description"}.
Status reports go to callbackUrl: {"messageId", "correlationId", "callbackData", "channel": "instagram",
"from", "to", "status" (sent, delivered, read, failed, unknown), "reason", "description", "messageIds",
"timestamp"}.
"""

from datetime import datetime
from typing import Any

from igdm.contracts.dialects import (
    DialectError,
    account_of,
    keyed,
    list_at,
    object_at,
    only_known,
    require,
    with_scheme,
)

CONTENT_TYPES = ("TEXT", "TEMPLATE", "MEDIA", "STICKER")
_COMMON = frozenset(
    {
        "contentType",
        "from",
        "to",
        "callbackUrl",
        "callbackData",
        "correlationId",
        "notificationType",
        "messagingType",
        "tag",
        "quickReplies",
    }
)
_KNOWN = {
    "TEXT": _COMMON | {"content"},
    "TEMPLATE": _COMMON | {"content", "template"},
    "MEDIA": _COMMON | {"url", "content"},
    "STICKER": _COMMON | {"type"},
}
NOTIFICATION_TYPES = ("REGULAR", "SILENT_PUSH", "NO_PUSH")
MESSAGING_TYPES = ("RESPONSE", "UPDATE", "MESSAGE_TAG")


def messages(body: Any, key: str) -> list[dict[str, Any]]:
    body = object_at(body, "body")
    content_type = require(body, "contentType", "")
    if content_type not in CONTENT_TYPES:
        raise DialectError(f"contentType: {content_type!r} is not one of {', '.join(CONTENT_TYPES)}")
    only_known(body, _KNOWN[content_type], "")
    customer = require(body, "to", "")
    if not isinstance(customer, str):
        raise DialectError("to: the customer's Instagram-scoped id (IGSID) as a string")
    message: dict[str, Any] = {
        "account_id": account_of(body.get("from")),
        "recipient": {"id": customer},
        "message": _content(body, content_type),
        "dialect": "webex-connect",
    }
    for theirs, ours in (
        ("callbackUrl", "callback_url"),
        ("callbackData", "callback_data"),
        ("correlationId", "correlation_id"),
    ):
        if body.get(theirs) is not None:
            message[ours] = body[theirs]
    _policy(body, message)
    return keyed([{k: v for k, v in message.items() if v is not None}], key)


def _content(body: dict[str, Any], content_type: str) -> dict[str, Any]:
    replies = body.get("quickReplies")
    if content_type == "TEXT":
        text: dict[str, Any] = {"type": "text", "text": require(body, "content", "")}
        if replies is not None:
            text["quick_replies"] = [_quick_reply(r, n) for n, r in enumerate(list_at(replies, "quickReplies"))]
        return text
    if replies is not None:
        raise DialectError(f"quickReplies: Instagram shows quick replies with a TEXT message only, not {content_type}")
    if content_type == "MEDIA":
        url = with_scheme(require(body, "url", ""))
        if body.get("content"):  # a caption: Instagram shows it as its own message, before the image
            return {"type": "text_with_media", "text": body["content"], "media_type": "image", "url": url}
        return {"type": "image", "url": url}
    if content_type == "STICKER":
        sticker = require(body, "type", "")
        if sticker != "like_heart":
            raise DialectError(f"type: Instagram has the like_heart sticker only, not {sticker!r}")
        return {"type": "sticker", "sticker": "like_heart"}
    elements = list_at(require(body, "template", ""), "template")
    return {"type": "generic_template", "elements": [_element(e, n) for n, e in enumerate(elements)]}


def _quick_reply(reply: Any, n: int) -> dict[str, Any]:
    where = f"quickReplies[{n}]."
    reply = object_at(reply, where[:-1])
    only_known(reply, frozenset({"type", "content_type", "title", "payload"}), where)
    kind = str(reply.get("type") or reply.get("content_type") or "TEXT")
    if kind.upper() != "TEXT":
        raise DialectError(f"{where}type: Instagram quick replies are TEXT only, not {kind!r}")
    return {"content_type": "text", "title": reply.get("title"), "payload": reply.get("payload")}


def _element(element: Any, n: int) -> dict[str, Any]:
    where = f"template[{n}]."
    element = object_at(element, where[:-1])
    only_known(element, frozenset({"title", "subtitle", "imageUrl", "image_url", "defaultAction", "buttons"}), where)
    ours: dict[str, Any] = {"title": require(element, "title", where)}
    if element.get("subtitle") is not None:
        ours["subtitle"] = element["subtitle"]
    image = element.get("imageUrl", element.get("image_url"))
    if image is not None:
        ours["image_url"] = with_scheme(image)
    if element.get("defaultAction") is not None:
        action = object_at(element["defaultAction"], f"{where}defaultAction")
        if str(action.get("type", "WEB_URL")).upper() != "WEB_URL":
            raise DialectError(f"{where}defaultAction.type: WEB_URL only")
        ours["default_action"] = {"url": with_scheme(require(action, "url", f"{where}defaultAction."))}
    buttons = element.get("buttons")
    if buttons is not None:
        ours["buttons"] = [
            _button(b, f"{where}buttons[{i}].") for i, b in enumerate(list_at(buttons, f"{where}buttons"))
        ]
    return ours


def _button(button: Any, where: str) -> dict[str, Any]:
    button = object_at(button, where[:-1])
    only_known(button, frozenset({"type", "title", "url", "payload"}), where)
    kind = str(require(button, "type", where)).lower()
    if kind == "web_url":
        return {"type": "web_url", "title": button.get("title"), "url": with_scheme(require(button, "url", where))}
    if kind == "postback":
        return {"type": "postback", "title": button.get("title"), "payload": require(button, "payload", where)}
    raise DialectError(f"{where}type: web_url or postback, not {kind!r} (Instagram has no other button)")


def _policy(body: dict[str, Any], message: dict[str, Any]) -> None:
    notification = body.get("notificationType")
    if notification is not None and notification not in NOTIFICATION_TYPES:
        raise DialectError(f"notificationType: one of {', '.join(NOTIFICATION_TYPES)}")
    messaging = body.get("messagingType")
    if messaging is not None and messaging not in MESSAGING_TYPES:
        raise DialectError(f"messagingType: one of {', '.join(MESSAGING_TYPES)}")
    tag = body.get("tag")
    if (messaging == "MESSAGE_TAG") != (tag is not None):
        raise DialectError("tag: goes with messagingType MESSAGE_TAG, and only with it")
    if tag is not None:
        message["tag"] = tag  # HUMAN_AGENT, or refused by the contract with Meta's reason


def accepted(messages: list[dict[str, Any]], now: datetime) -> tuple[int, dict[str, Any]]:
    first = messages[0]
    return 202, {
        "messageId": first["idempotency_key"],
        "correlationId": first.get("correlation_id"),
        "status": "queued",
    }


def refused(reason: str, status: int = 400) -> dict[str, Any]:
    return {"code": str(status), "description": reason}


def status_report(event: dict[str, Any]) -> dict[str, Any]:
    status = event["status"]
    return {
        "messageId": status["idempotency_key"],
        "correlationId": status.get("correlation_id"),
        "callbackData": status.get("callback_data"),
        "channel": "instagram",
        "from": event.get("account_id"),
        "to": event.get("customer_id"),
        "status": status["status"].lower(),
        "reason": status.get("reason") if status["status"] in ("FAILED", "UNKNOWN") else None,
        "description": status.get("detail") if status["status"] in ("FAILED", "UNKNOWN") else None,
        "messageIds": status.get("message_ids", []),
        "timestamp": event.get("occurred_at"),
    }
