"""Realistic Instagram webhook payloads, shaped as in Meta's examples (shared/reference §4)."""

import json
import time as _time
from typing import Any

ACCOUNT = "17841400000000001"
CUSTOMER = "6543210987654321"
T0 = 1735689599876  # ms
RECEIVED_MS = 1735689601000  # when the samples' Meta delivers them (API Gateway's requestContext.timeEpoch)
CDN = "https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id={}&signature=abc"


def envelope(
    *items: dict[str, Any], account: str = ACCOUNT, time: Any = 1735689600123, key: str = "messaging"
) -> dict[str, Any]:
    return {"object": "instagram", "entry": [{"id": account, "time": time, key: list(items)}]}


def inbound(payload: dict[str, Any], *, ts: Any = T0, customer: str = CUSTOMER) -> dict[str, Any]:
    return {"sender": {"id": customer}, "recipient": {"id": ACCOUNT}, "timestamp": ts, **payload}


def body(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def recent(document: Any, now_ms: int | None = None) -> Any:
    """The same sample as if it had happened just now: every entry `time` and item `timestamp` moved by as
    much as RECEIVED_MS is from now. The webhook ignores events older than the table keeps them (a replayed
    body), so a sample posted to a running stack must be recent."""
    shift = (int(_time.time() * 1000) if now_ms is None else now_ms) - RECEIVED_MS
    if isinstance(document, list):
        return [recent(item, RECEIVED_MS + shift) for item in document]
    if not isinstance(document, dict):
        return document
    return {
        key: value + shift
        if key in ("time", "timestamp") and type(value) is int
        else recent(value, RECEIVED_MS + shift)
        for key, value in document.items()
    }


def text(mid: str = "m_text", words: str = "Hi, is this in stock?", **kw: Any) -> dict[str, Any]:
    return inbound({"message": {"mid": mid, "text": words}}, **kw)


def attachment(kind: str, mid: str = "m_att", payload: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    return inbound(
        {
            "message": {
                "mid": mid,
                "attachments": [
                    {"type": kind, "payload": payload if payload is not None else {"url": CDN.format(mid)}}
                ],
            }
        },
        **kw,
    )


def post_share(mid: str = "m_share") -> dict[str, Any]:
    shared = {"ig_post_media_id": "18139494541428835", "title": "Caption", "url": CDN.format(18139494541428835)}
    return inbound(
        {
            "message": {
                "mid": mid,
                "attachments": [{"type": "share", "payload": shared}, {"type": "ig_post", "payload": shared}],
            }
        }
    )


def story_reply(mid: str = "m_story_reply") -> dict[str, Any]:
    return inbound(
        {
            "message": {
                "mid": mid,
                "text": "Love this!",
                "reply_to": {"story": {"url": CDN.format(9), "id": "17900000000000000"}},
            }
        }
    )


def reply(mid: str = "m_reply", to: str = "m_6") -> dict[str, Any]:
    return inbound({"message": {"mid": mid, "text": "this one", "reply_to": {"mid": to}}})


def quick_reply(mid: str = "m_qr") -> dict[str, Any]:
    return inbound({"message": {"mid": mid, "text": "Track order", "quick_reply": {"payload": "TRACK_ORDER"}}})


def postback(mid: str = "m_pb") -> dict[str, Any]:
    return inbound({"postback": {"mid": mid, "title": "Talk to a human", "payload": "HUMAN"}}, ts=T0 + 100)


def reaction(mid: str = "m_6", action: str = "react") -> dict[str, Any]:
    body_: dict[str, Any] = {"mid": mid, "action": action}
    if action == "react":
        body_.update(reaction="love", emoji="\u2764\ufe0f")
    return inbound({"reaction": body_}, ts=T0 + 200)


def read(mid: str = "m_6") -> dict[str, Any]:
    return inbound({"read": {"mid": mid}}, ts=T0 + 300)


def deleted(mid: str = "m_text") -> dict[str, Any]:
    return inbound({"message": {"mid": mid, "is_deleted": True}}, ts=T0 + 400)


def edited(mid: str = "m_text") -> dict[str, Any]:
    return inbound({"message_edit": {"mid": mid, "text": "Hi, is this in stock in blue?", "num_edit": 1}}, ts=T0 + 500)


def echo(mid: str = "m_echo", words: str = "Yes, size M is available") -> dict[str, Any]:
    return {
        "sender": {"id": ACCOUNT},
        "recipient": {"id": CUSTOMER},
        "timestamp": T0 + 600,
        "message": {"mid": mid, "text": words, "is_echo": True},
    }


def referral() -> dict[str, Any]:
    return inbound(
        {"referral": {"ref": "promo42", "source": "https://ig.me/m/yourbrand?ref=promo42", "type": "OPEN_THREAD"}},
        ts=T0 + 700,
    )


def ad_message(mid: str = "m_ad") -> dict[str, Any]:
    return inbound(
        {
            "message": {
                "mid": mid,
                "text": "Hi!",
                "referral": {
                    "ref": "summer",
                    "ad_id": 120000000000,
                    "source": "ADS",
                    "type": "OPEN_THREAD",
                    "ads_context_data": {"ad_title": "Summer sale"},
                },
            }
        }
    )


def optin() -> dict[str, Any]:
    return inbound(
        {
            "optin": {
                "type": "notification_messages",
                "payload": "DEALS",
                "notification_messages_token": "tok",
                "token_expiry_timestamp": 1767225600000,
            }
        },
        ts=T0 + 800,
    )


def handover() -> dict[str, Any]:
    return inbound(
        {
            "pass_thread_control": {
                "previous_owner_app_id": 111111111111111,
                "new_owner_app_id": "222222222222222",
                "metadata": "escalated",
            }
        },
        ts=T0 + 900,
    )


def unsupported(mid: str = "m_unsupported") -> dict[str, Any]:
    return inbound({"message": {"mid": mid, "is_unsupported": True}})


def comment_change(comment_id: str = "17999999999999999") -> dict[str, Any]:
    return {
        "field": "comments",
        "value": {
            "from": {"id": CUSTOMER, "username": "jane"},
            "id": comment_id,
            "text": "price?",
            "media": {"id": "18000000000000000", "media_product_type": "FEED"},
        },
    }


def mention_change() -> dict[str, Any]:
    return {"field": "mentions", "value": {"media_id": "18000000000000001", "comment_id": "17999999999999998"}}
