"""CM.com's Business Messaging request (../shared/seeds/002): {"messages": {"authentication": {"producttoken"},
"msg": [...]}}, each msg sent to each of its `to[].number` (IGSIDs) from `from` (the Instagram account id).

- `body.content` alone -> text. With `richContent.conversation`, each of its items is one message, in order
  (`body.content` is then CM.com's fallback text for other channels, and is not sent):
  text -> text; text with media -> the text, then the file (as Instagram shows them); text with suggestions
  (Reply) -> text with quick replies; header with text, media and/or suggestions -> a one-card generic template
  (OpenUrl a link button, Reply a postback button); carousel.cards -> a generic template of up to 10 cards;
  media alone -> the file. A quick reply or postback whose data is HUMAN_AGENT passes the conversation to the
  Instagram Inbox when the customer taps it (igdm.inbound.handovers), as CM.com does; and as with CM.com, a
  message sent afterwards takes the conversation back (take_control).
- `allowedChannels`, when given, must name Instagram; `reference` -> correlation_id (CM.com repeats it in each
  status report); `validityPeriod` ("10m", "1h", "1d" ...) -> valid_until.
- `producttoken` may carry the gateway's API key instead of the Authorization header.

`customGrouping` (CM.com's reporting tag) and `body.type` (its SMS encoding) have no Instagram meaning: accepted,
not sent.

The answer is 200 {"details": "Created N message(s)", "errorCode": 0, "messages": [{"to", "status": "Accepted",
"reference", "parts": 1, "messageDetails": null, "messageErrorCode": 0, "messageId" (the idempotency key)}]};
a refusal {"details": reason, "errorCode": 999, "messages": []} (999: the gateway's, not one of CM.com's codes).
Status reports have CM.com's shape: {"messages": {"msg": {"received", "to", "reference", "status": {"code",
"errorCode", "errorDescription"}, "channel": "Instagram", "messageId"}}}, code 0 accepted (SENT), 2 delivered,
3 failed, 4 read; UNKNOWN (Meta's answer never came: it may yet be delivered) is 0 with the reason filled in.
"""

import re
from datetime import datetime, timedelta
from typing import Any

from igdm.contracts.dialects import (
    DialectError,
    account_of,
    keyed,
    list_at,
    media_kind,
    object_at,
    only_known,
    require,
    with_scheme,
)

CHANNEL = "Instagram"
_MSG = frozenset(
    {"from", "to", "body", "allowedChannels", "richContent", "reference", "validityPeriod", "customGrouping"}
)
_VALIDITY = re.compile(r"^(\d{1,6})([mhd])$")
_UNITS = {"m": 60, "h": 3600, "d": 86_400}
STATUS_CODES = {"SENT": "0", "DELIVERED": "2", "FAILED": "3", "READ": "4", "UNKNOWN": "0"}


def product_token(body: Any) -> str | None:
    """The producttoken of a request, if it carries one (it may hold the gateway's API key)."""
    try:
        token = body["messages"]["authentication"]["producttoken"]
    except (KeyError, TypeError):
        return None
    return token if isinstance(token, str) and token else None


def messages(body: Any, key: str, *, now: datetime | None = None) -> list[dict[str, Any]]:
    envelope = object_at(require(object_at(body, "body"), "messages", ""), "messages")
    only_known(envelope, frozenset({"authentication", "msg"}), "messages.")
    found: list[dict[str, Any]] = []
    for n, msg in enumerate(list_at(require(envelope, "msg", "messages."), "messages.msg")):
        found.extend(
            _msg(object_at(msg, f"messages.msg[{n}]"), f"messages.msg[{n}].", now or datetime.now().astimezone())
        )
    return keyed(found, key)


def _msg(msg: dict[str, Any], where: str, now: datetime) -> list[dict[str, Any]]:
    only_known(msg, _MSG, where)
    channels = msg.get("allowedChannels")
    if channels is not None and CHANNEL.lower() not in {
        str(c).lower() for c in list_at(channels, f"{where}allowedChannels")
    }:
        raise DialectError(
            f"{where}allowedChannels: this gateway sends on Instagram only, and the list does not name it"
        )
    contents = _contents(msg, where)
    common: dict[str, Any] = {"account_id": account_of(msg.get("from")), "dialect": "cm", "take_control": True}
    if msg.get("reference"):
        common["correlation_id"] = msg["reference"]
    if msg.get("validityPeriod") is not None:
        common["valid_until"] = _valid_until(msg["validityPeriod"], now, where)
    out = []
    for m, recipient in enumerate(list_at(require(msg, "to", where), f"{where}to")):
        number = require(object_at(recipient, f"{where}to[{m}]"), "number", f"{where}to[{m}].")
        for content in contents:
            out.append({**common, "recipient": {"id": str(number)}, "message": content})
    return [{k: v for k, v in message.items() if v is not None} for message in out]


def _contents(msg: dict[str, Any], where: str) -> list[dict[str, Any]]:
    rich = msg.get("richContent")
    if rich is not None:
        rich = object_at(rich, f"{where}richContent")
        only_known(rich, frozenset({"conversation"}), f"{where}richContent.")
        items = list_at(require(rich, "conversation", f"{where}richContent."), f"{where}richContent.conversation")
        return [
            _item(object_at(item, f"{where}richContent.conversation[{n}]"), f"{where}richContent.conversation[{n}].")
            for n, item in enumerate(items)
        ]
    body = object_at(require(msg, "body", where), f"{where}body")
    only_known(body, frozenset({"type", "content"}), f"{where}body.")
    return [{"type": "text", "text": require(body, "content", f"{where}body.")}]


def _item(item: dict[str, Any], where: str) -> dict[str, Any]:
    only_known(item, frozenset({"text", "media", "suggestions", "header", "carousel"}), where)
    if item.get("carousel") is not None:
        carousel = object_at(item["carousel"], f"{where}carousel")
        only_known(carousel, frozenset({"cards"}), f"{where}carousel.")
        cards = list_at(require(carousel, "cards", f"{where}carousel."), f"{where}carousel.cards")
        return {
            "type": "carousel",
            "cards": [
                _card(object_at(c, f"{where}carousel.cards[{n}]"), f"{where}carousel.cards[{n}].")
                for n, c in enumerate(cards)
            ],
        }
    if item.get("header") is not None:
        return {"type": "card", **_card(item, where)}
    text, media, suggestions = item.get("text"), item.get("media"), item.get("suggestions")
    if suggestions:
        if media is not None:
            raise DialectError(f"{where}media: Instagram shows suggestions with a text only; give the card a header")
        choices = [
            _reply(s, f"{where}suggestions[{n}].") for n, s in enumerate(list_at(suggestions, f"{where}suggestions"))
        ]
        return {"type": "choice", "text": require(item, "text", where), "choices": choices}
    if media is not None:
        url, kind = _media(media, f"{where}media")
        if text:
            return {"type": "text_with_media", "text": text, "media_type": kind, "url": url}
        return {"type": kind, "url": url}
    return {"type": "text", "text": require(item, "text", where)}


def _media(media: Any, where: str) -> tuple[str, str]:
    media = object_at(media, where)
    only_known(media, frozenset({"mediaName", "mediaUri", "mimeType"}), f"{where}.")
    url = with_scheme(require(media, "mediaUri", f"{where}."))
    kind = media_kind(str(media.get("mediaName") or url), media.get("mimeType"))
    if kind is None:
        raise DialectError(f"{where}.mimeType: an image, video, audio or PDF file (Instagram sends no other)")
    return url, kind


def _card(card: dict[str, Any], where: str) -> dict[str, Any]:
    only_known(card, frozenset({"header", "text", "media", "suggestions"}), where)
    ours: dict[str, Any] = {"title": require(card, "header", where)}
    if card.get("text"):
        ours["description"] = card["text"]
    if card.get("media") is not None:
        url, kind = _media(card["media"], f"{where}media")
        if kind != "image":
            raise DialectError(f"{where}media: Instagram cards show images only")
        ours["media_url"] = url
    ours["choices"] = [
        _button(s, f"{where}suggestions[{n}].")
        for n, s in enumerate(list_at(card.get("suggestions") or [], f"{where}suggestions"))
    ]
    return ours


def _reply(suggestion: Any, where: str) -> dict[str, Any]:
    suggestion = object_at(suggestion, where[:-1])
    only_known(suggestion, frozenset({"action", "label", "postbackdata", "url"}), where)
    if suggestion.get("action", "Reply") != "Reply" or "url" in suggestion:
        raise DialectError(f"{where}action: Instagram's quick replies are Reply only; an OpenUrl goes in a card")
    label = require(suggestion, "label", where)
    return {"title": label, "payload": suggestion.get("postbackdata") or label}


def _button(suggestion: Any, where: str) -> dict[str, Any]:
    suggestion = object_at(suggestion, where[:-1])
    only_known(suggestion, frozenset({"action", "label", "postbackdata", "url"}), where)
    action, label = suggestion.get("action", "Reply"), require(suggestion, "label", where)
    if action == "OpenUrl":
        return {"title": label, "url": with_scheme(require(suggestion, "url", where))}
    if action == "Reply":
        return {"title": label, "payload": suggestion.get("postbackdata") or label}
    raise DialectError(f"{where}action: Reply or OpenUrl on Instagram, not {action!r}")


def _valid_until(period: Any, now: datetime, where: str) -> str:
    match = _VALIDITY.match(str(period).strip())
    if match is None:
        raise DialectError(f'{where}validityPeriod: minutes, hours or days, such as "10m", "1h" or "2d"')
    return (now + timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])).isoformat()


def accepted(messages: list[dict[str, Any]], now: datetime) -> tuple[int, dict[str, Any]]:
    return 200, {
        "details": f"Created {len(messages)} message(s)",
        "errorCode": 0,
        "messages": [
            {
                "to": m["recipient"]["id"],
                "status": "Accepted",
                "reference": m.get("correlation_id"),
                "parts": 1,
                "messageDetails": None,
                "messageErrorCode": 0,
                "messageId": m["idempotency_key"],
            }
            for m in messages
        ],
    }


def refused(reason: str, status: int = 400) -> dict[str, Any]:
    return {"details": reason, "errorCode": 999, "messages": []}


def status_report(event: dict[str, Any]) -> dict[str, Any]:
    status = event["status"]
    failed = status["status"] in ("FAILED", "UNKNOWN")
    return {
        "messages": {
            "msg": {
                "received": event.get("occurred_at"),
                "to": event.get("customer_id"),
                "reference": status.get("correlation_id"),
                "status": {
                    "code": STATUS_CODES[status["status"]],
                    "errorCode": status.get("reason") if failed else None,
                    "errorDescription": status.get("detail") if failed else None,
                },
                "channel": CHANNEL,
                "messageId": status["idempotency_key"],
            }
        }
    }
