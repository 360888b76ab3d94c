"""Sinch Conversation API's messages:send (../shared/seeds/001), for the INSTAGRAM channel.

- `app_id` names the sending account when it holds its id; `recipient` is `contact_id` (here the customer's IGSID:
  the gateway keeps no contact book) or `identified_by.channel_identities` with channel INSTAGRAM.
- `message` holds exactly one of:
  text_message -> text; media_message -> image, video, audio or file by its URL's extension, or, as Sinch does
  for what Instagram cannot show, a text with the URL; choice_message -> text with quick replies (text choices
  only: Instagram's quick replies cannot call, open a link or share a place); card_message -> a one-card generic
  template; carousel_message -> a generic template of up to 10 cards (outer choices refused: Instagram has none);
  location_message -> a text with a maps link, as Sinch transcodes it.
  In a card, a text choice is a postback button (its postback_data, else its text), a url choice a link button,
  a location choice a link button to the map; a call choice is refused by name: Instagram has no call button.
- `channel_properties` INSTAGRAM_MESSAGE_TAG HUMAN_AGENT -> the HUMAN_AGENT tag; `channel_priority_order`, when
  given, must name INSTAGRAM; `message_metadata` -> callback_data, `correlation_id` -> correlation_id,
  `callback_url` -> callback_url (Sinch's per-message override of the app's delivery webhook), `ttl` ("600s" or
  seconds) -> valid_until.

A card's `height` and a media message's `thumbnail_url` are display hints Instagram has no use for: accepted,
not sent. `explicit_channel_message` and Sinch's other message kinds are refused by name.

The answer is 200 {"message_id", "accepted_time"}; a refusal {"error": {"code" (the HTTP status), "message",
"status" (INVALID_ARGUMENT, UNAUTHENTICATED, PERMISSION_DENIED, RESOURCE_EXHAUSTED, UNAVAILABLE), "details"}}.
Status reports are Sinch's MESSAGE_DELIVERY: {"app_id", "accepted_time", "event_time", "project_id" (null: the
gateway has no Sinch project), "message_delivery_report": {"message_id", "conversation_id", "status"
(QUEUED_ON_CHANNEL for SENT and UNKNOWN, DELIVERED, READ, FAILED), "channel_identity", "contact_id", "metadata",
"reason" (FAILED and UNKNOWN)}, "correlation_id"}.
"""

import json
import re
from datetime import datetime, timedelta
from typing import Any

from igdm.contracts.dialects import (
    DialectError,
    account_of,
    keyed,
    list_at,
    maps_url,
    media_kind,
    object_at,
    only_known,
    require,
    with_scheme,
)

CHANNEL = "INSTAGRAM"
KINDS = (
    "text_message",
    "media_message",
    "choice_message",
    "card_message",
    "carousel_message",
    "location_message",
)
OTHER_KINDS = ("template_message", "list_message", "contact_info_message")
_KNOWN = frozenset(
    {
        "app_id",
        "recipient",
        "message",
        "channel_properties",
        "channel_priority_order",
        "message_metadata",
        "correlation_id",
        "callback_url",
        "ttl",
    }
)
_TTL = re.compile(r"^(\d{1,7})(?:\.\d+)?s?$")
STATUSES = {"SENT": "QUEUED_ON_CHANNEL", "DELIVERED": "DELIVERED", "READ": "READ", "FAILED": "FAILED"}
# The gateway's reasons as Sinch's reason codes; channel_code keeps the gateway's own.
REASON_CODES = {
    "window_closed": "OUTSIDE_ALLOWED_SENDING_WINDOW",
    "invalid_message": "BAD_REQUEST",
    "expired": "DELIVERY_TIMED_OUT",
    "token_invalid": "CHANNEL_BAD_CONFIGURATION",  # nosec B105 # a reason code, not a secret
    "account_disconnected": "CHANNEL_BAD_CONFIGURATION",
    "no_account": "CHANNEL_CONFIGURATION_MISSING",
    "meta_rejected": "CHANNEL_REJECT",
    "retries_exhausted": "CHANNEL_FAILURE",
    "thread_owned_by_inbox": "DELIVERY_REJECTED_DUE_TO_POLICY",
    "ambiguous_outcome": "UNKNOWN",
}


def messages(body: Any, key: str, *, now: datetime | None = None) -> list[dict[str, Any]]:
    body = object_at(body, "body")
    only_known(body, _KNOWN, "")
    message: dict[str, Any] = {
        "account_id": account_of(body.get("app_id")),
        "recipient": {"id": _customer(require(body, "recipient", ""))},
        "message": _content(require(body, "message", "")),
        "dialect": "sinch",
    }
    order = body.get("channel_priority_order")
    if order is not None and CHANNEL not in list_at(order, "channel_priority_order"):
        raise DialectError(
            "channel_priority_order: this gateway sends on INSTAGRAM only, and the list does not name it"
        )
    _channel_properties(body.get("channel_properties"), message)
    for theirs, ours in (
        ("message_metadata", "callback_data"),
        ("correlation_id", "correlation_id"),
        ("callback_url", "callback_url"),
    ):
        if body.get(theirs) not in (None, ""):
            message[ours] = body[theirs]
    if body.get("ttl") is not None:
        message["valid_until"] = _valid_until(body["ttl"], now or datetime.now().astimezone())
    return keyed([message], key)


def _customer(recipient: Any) -> str:
    recipient = object_at(recipient, "recipient")
    only_known(recipient, frozenset({"contact_id", "identified_by"}), "recipient.")
    if recipient.get("contact_id"):
        return str(recipient["contact_id"])
    identified = object_at(require(recipient, "identified_by", "recipient."), "recipient.identified_by")
    identities = list_at(
        require(identified, "channel_identities", "recipient.identified_by."),
        "recipient.identified_by.channel_identities",
    )
    for identity in identities:
        if isinstance(identity, dict) and identity.get("channel") == CHANNEL and identity.get("identity"):
            return str(identity["identity"])
    raise DialectError("recipient.identified_by.channel_identities: none has channel INSTAGRAM and an identity")


def _content(message: Any) -> dict[str, Any]:
    message = object_at(message, "message")
    given = [k for k in message if k in KINDS or k in OTHER_KINDS]
    unknown = sorted(set(message) - set(KINDS) - set(OTHER_KINDS))
    if unknown:
        raise DialectError(f"message.{unknown[0]}: not a Conversation API message kind")
    if len(given) != 1:
        raise DialectError(f"message: exactly one of {', '.join(KINDS)}")
    kind = given[0]
    if kind in OTHER_KINDS:
        raise DialectError(f"message.{kind}: the Instagram channel has no {kind}; send one of {', '.join(KINDS)}")
    where = f"message.{kind}"
    content = object_at(message[kind], where)
    if kind == "text_message":
        return {"type": "text", "text": require(content, "text", f"{where}.")}
    if kind == "media_message":
        return _media(content, where)
    if kind == "location_message":
        return _location(content, where)
    if kind == "choice_message":
        return _choice(content, where)
    if kind == "card_message":
        return {"type": "card", **_card(content, where)}
    only_known(content, frozenset({"cards", "choices"}), f"{where}.")
    if content.get("choices"):
        raise DialectError(f"{where}.choices: Instagram has no choices outside a carousel's cards; put them in a card")
    cards = list_at(require(content, "cards", f"{where}."), f"{where}.cards")
    return {
        "type": "carousel",
        "cards": [_card(object_at(c, f"{where}.cards[{n}]"), f"{where}.cards[{n}]") for n, c in enumerate(cards)],
    }


def _media(content: dict[str, Any], where: str) -> dict[str, Any]:
    only_known(content, frozenset({"url", "thumbnail_url", "filename_override"}), f"{where}.")
    url = with_scheme(require(content, "url", f"{where}."))
    kind = media_kind(str(content.get("filename_override") or url))
    if kind is None:  # as Sinch does: what Instagram cannot show goes as a text with its URL
        return {"type": "text", "text": url}
    return {"type": kind, "url": url}


def _location(content: dict[str, Any], where: str) -> dict[str, Any]:
    only_known(content, frozenset({"title", "label", "coordinates"}), f"{where}.")
    coordinates = object_at(require(content, "coordinates", f"{where}."), f"{where}.coordinates")
    location: dict[str, Any] = {
        "type": "location",
        "latitude": require(coordinates, "latitude", f"{where}.coordinates."),
        "longitude": require(coordinates, "longitude", f"{where}.coordinates."),
    }
    for name in ("title", "label"):
        if content.get(name):
            location[name] = content[name]
    return location


def _choice(content: dict[str, Any], where: str) -> dict[str, Any]:
    only_known(content, frozenset({"text_message", "choices"}), f"{where}.")
    text = require(
        object_at(require(content, "text_message", f"{where}."), f"{where}.text_message"),
        "text",
        f"{where}.text_message.",
    )
    options = []
    for n, choice in enumerate(list_at(require(content, "choices", f"{where}."), f"{where}.choices")):
        at = f"{where}.choices[{n}]"
        choice = object_at(choice, at)
        if "text_message" not in choice:
            other = next((k for k in choice if k.endswith("_message")), "that choice")
            raise DialectError(
                f"{at}.{other}: Instagram's quick replies are text only; send a card_message for links, places or calls"
            )
        title = require(object_at(choice["text_message"], f"{at}.text_message"), "text", f"{at}.text_message.")
        options.append({"title": title, "payload": choice.get("postback_data") or title})
    return {"type": "choice", "text": text, "choices": options}


def _card(content: dict[str, Any], where: str) -> dict[str, Any]:
    only_known(content, frozenset({"title", "description", "media_message", "choices", "height"}), f"{where}.")
    card: dict[str, Any] = {"title": require(content, "title", f"{where}.")}
    if content.get("description"):
        card["description"] = content["description"]
    if content.get("media_message") is not None:
        media = object_at(content["media_message"], f"{where}.media_message")
        url = with_scheme(require(media, "url", f"{where}.media_message."))
        if media_kind(url) not in (None, "image"):
            raise DialectError(f"{where}.media_message.url: Instagram cards show images only")
        card["media_url"] = url
    choices = content.get("choices") or []
    card["choices"] = [
        _card_choice(c, f"{where}.choices[{n}]") for n, c in enumerate(list_at(choices, f"{where}.choices"))
    ]
    return card


def _card_choice(choice: Any, at: str) -> dict[str, Any]:
    choice = object_at(choice, at)
    if "text_message" in choice:
        title = require(object_at(choice["text_message"], f"{at}.text_message"), "text", f"{at}.text_message.")
        return {"title": title, "payload": choice.get("postback_data") or title}
    if "url_message" in choice:
        link = object_at(choice["url_message"], f"{at}.url_message")
        return {
            "title": require(link, "title", f"{at}.url_message."),
            "url": with_scheme(require(link, "url", f"{at}.url_message.")),
        }
    if "location_message" in choice:
        place = object_at(choice["location_message"], f"{at}.location_message")
        coordinates = object_at(
            require(place, "coordinates", f"{at}.location_message."), f"{at}.location_message.coordinates"
        )
        latitude: Any = coordinates.get("latitude")
        longitude: Any = coordinates.get("longitude")
        if not (_degrees(latitude, 90) and _degrees(longitude, 180)):
            raise DialectError(
                f"{at}.location_message.coordinates: latitude within ±90 and longitude within ±180, as numbers"
            )
        title = place.get("title") or place.get("label") or "Location"
        return {"title": title, "url": maps_url(float(latitude), float(longitude))}
    if "call_message" in choice:
        raise DialectError(
            f"{at}.call_message: Instagram has no call button; put the number in the card's description or send a "
            "url_message"
        )
    raise DialectError(f"{at}: one of text_message, url_message or location_message")


def _degrees(value: Any, limit: float) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and -limit <= value <= limit


def _channel_properties(properties: Any, message: dict[str, Any]) -> None:
    if properties is None:
        return
    properties = object_at(properties, "channel_properties")
    for name, value in properties.items():
        if name == "INSTAGRAM_MESSAGE_TAG":
            message["tag"] = value  # HUMAN_AGENT, or refused by the contract with Meta's reason
        elif name.startswith("INSTAGRAM"):
            raise DialectError(f"channel_properties.{name}: not an Instagram property this gateway knows")
        # another channel's property: that channel is not this gateway's, it has nothing to change here


def _valid_until(ttl: Any, now: datetime) -> str:
    match = _TTL.match(str(ttl).strip())
    if match is None:
        raise DialectError(f'ttl: seconds, such as "600s", not {ttl!r}')
    return (now + timedelta(seconds=int(match.group(1)))).isoformat()


def accepted(messages: list[dict[str, Any]], now: datetime) -> tuple[int, dict[str, Any]]:
    return 200, {"message_id": messages[0]["idempotency_key"], "accepted_time": _time(now)}


# Google's canonical error statuses, as Sinch's errors carry them.
ERROR_STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    503: "UNAVAILABLE",
}


def refused(reason: str, status: int = 400) -> dict[str, Any]:
    return {
        "error": {"code": status, "message": reason, "status": ERROR_STATUSES.get(status, "UNKNOWN"), "details": []}
    }


def status_report(event: dict[str, Any]) -> dict[str, Any]:
    status = event["status"]
    report: dict[str, Any] = {
        "message_id": status["idempotency_key"],
        "conversation_id": event.get("conversation_id"),
        "status": STATUSES.get(status["status"], "QUEUED_ON_CHANNEL"),
        "channel_identity": {
            "channel": CHANNEL,
            "identity": event.get("customer_id"),
            "app_id": event.get("account_id"),
        },
        "contact_id": event.get("customer_id"),
        "metadata": status.get("callback_data") or "",
    }
    if status.get("reason") and status["status"] in ("FAILED", "UNKNOWN"):  # UNKNOWN may yet be DELIVERED
        report["reason"] = {
            "code": REASON_CODES.get(status["reason"], "UNKNOWN"),
            "description": status.get("detail") or status["reason"],
            "channel_code": status["reason"],
        }
    when = event.get("occurred_at")
    return {
        "app_id": event.get("account_id"),
        "accepted_time": when,
        "event_time": when,
        "project_id": None,
        "message_delivery_report": report,
        "correlation_id": status.get("correlation_id"),
    }


def _time(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# ------------------------------------------------------------------ event webhooks in Sinch's shapes
# Sinch's webhook triggers and the gateway's event kinds each carries (igdm.contracts.event_webhooks).
TRIGGERS = {
    "MESSAGE_INBOUND": ("text", "attachments", "story_reply", "reply", "quick_reply", "postback"),
    "MESSAGE_DELIVERY": ("message_status",),
    "UNSUPPORTED": ("unsupported", "unknown"),
    "EVENT_INBOUND": (
        "reaction",
        "reaction_removed",
        "read",
        "message_deleted",
        "message_edited",
        "echo",
        "referral",
        "optin",
        "handover",
        "comment",
        "mention",
        "gap",
    ),
}


def event_bodies(event: dict[str, Any]) -> list[dict[str, Any]]:
    """A gateway event in Sinch's webhook shape for its trigger: MESSAGE_INBOUND (one per attachment, as each is
    its own message to Sinch), MESSAGE_DELIVERY, UNSUPPORTED, or EVENT_INBOUND, whose `contact_event` holds the
    gateway's own event under its kind (Sinch has no Instagram events of these kinds). [] for a kind Sinch's
    triggers do not carry (account_status, customer_forgotten)."""
    kind = event.get("kind")
    common = {
        "app_id": event.get("account_id"),
        "accepted_time": event.get("received_at"),
        "event_time": event.get("occurred_at"),
        "project_id": None,
    }
    identity = {"channel": CHANNEL, "identity": event.get("customer_id"), "app_id": event.get("account_id")}
    around = {
        "channel_identity": identity,
        "conversation_id": event.get("conversation_id"),
        "contact_id": event.get("customer_id"),
        "metadata": "",
        "accept_time": event.get("received_at"),
    }
    if kind == "message_status":
        return [{**status_report(event), "accepted_time": event.get("received_at")}]
    if kind in TRIGGERS["UNSUPPORTED"]:
        return [{**common, "unsupported_callback": {"channel": CHANNEL, "payload": json.dumps(event.get("raw") or {})}}]
    if kind in TRIGGERS["MESSAGE_INBOUND"]:
        return [
            {
                **common,
                "message": {
                    "id": event.get("message_id") or event["event_id"],
                    "direction": "TO_APP",
                    "contact_message": message,
                    **around,
                },
            }
            for message in _contact_messages(event)
        ]
    if kind in TRIGGERS["EVENT_INBOUND"]:
        inner = {k: v for k, v in event.items() if k not in ("raw", "schema_version") and v not in (None, [], {})}
        return [
            {
                **common,
                "event": {
                    "id": event["event_id"],
                    "direction": "TO_APP",
                    "contact_event": {f"{kind}_event": inner},
                    **around,
                },
            }
        ]
    return []


def _contact_messages(event: dict[str, Any]) -> list[dict[str, Any]]:
    kind, text = event.get("kind"), event.get("text")
    reply_to = event.get("reply_to") or {}
    if kind == "story_reply":
        story = reply_to.get("story") or {}
        return [{"media_card_message": {"url": story.get("url") or "", "caption": text or ""}}]
    if kind == "quick_reply":
        return [
            {
                "choice_response_message": {
                    "message_id": event.get("message_id"),
                    "postback_data": event.get("quick_reply_payload"),
                }
            }
        ]
    if kind == "postback":
        postback = event.get("postback") or {}
        return [
            {
                "choice_response_message": {
                    "message_id": event.get("message_id"),
                    "postback_data": postback.get("payload"),
                }
            }
        ]
    messages: list[dict[str, Any]] = []
    if text:
        messages.append({"text_message": {"text": text}})
    for attachment in event.get("attachments") or []:
        if attachment.get("url"):
            messages.append({"media_message": {"url": attachment["url"]}})
        else:  # a post or reel Meta names by id only: as Sinch hands on what it cannot render
            messages.append(
                {"fallback_message": {"raw_message": json.dumps(attachment), "reason": {"code": "UNKNOWN"}}}
            )
    if kind == "reply" and messages and reply_to.get("message_id"):
        messages[0]["reply_to"] = {"message_id": reply_to["message_id"]}
    return messages or [{"text_message": {"text": ""}}]
