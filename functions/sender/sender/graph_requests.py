"""An outbound message as the Send API requests that deliver it, in order, with the bodies Meta documents
(../shared/reference/instagram-platform.md §5.2 and §5.3).

Most messages are one request. Text over 1000 UTF-8 bytes becomes one request per part, and
text_with_media becomes the text and then the file: the sender records each part, so a retry resumes
after the last part that went out instead of sending the first one again.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal
from urllib.parse import quote

from igdm.contracts import outbound as o
from igdm.meta.echoes import marker

RateClass = Literal["text", "media", "private_reply"]
MEDIA_RATE_TYPES = frozenset({"audio", "video"})  # Meta's separate, lower limit (10 calls/s)


@dataclass(frozen=True)
class GraphSend:
    body: dict[str, Any]
    rate_class: RateClass
    expects_message_id: bool  # sender actions, reactions and thread control answer without a message_id
    endpoint: str = "messages"  # POST /me/<endpoint>: the Send API, or a thread-control endpoint


def build_requests(message: o.OutboundMessage, *, human_agent_tag: bool, markers: bool = True) -> list[GraphSend]:
    """The requests, in order. ``human_agent_tag``: the policy decided this message needs HUMAN_AGENT.
    ``markers``: each message carries Meta's `metadata` field naming it and its part, which Meta hands back
    on the echo, so an echo proves which message reached Instagram (igdm.meta.echoes)."""
    sends = _build(message, human_agent_tag)
    if not markers:
        return sends
    key = message.idempotency_key
    return [
        replace(s, body={**s.body, "message": {**s.body["message"], "metadata": marker(key, part)}})
        if s.expects_message_id
        else s
        for part, s in enumerate(sends)
    ]


def without_marker(send: GraphSend) -> GraphSend:
    if not send.expects_message_id or "metadata" not in send.body["message"]:
        return send
    return replace(
        send, body={**send.body, "message": {k: v for k, v in send.body["message"].items() if k != "metadata"}}
    )


def _build(message: o.OutboundMessage, human_agent_tag: bool) -> list[GraphSend]:
    recipient = {"id": message.recipient.id} if message.recipient.id else {"comment_id": message.recipient.comment_id}
    envelope: dict[str, Any] = {"recipient": recipient}
    if human_agent_tag and message.kind not in o.THREAD_CONTROL_KINDS:  # thread control is not a message
        # Messenger's convention; Instagram's own samples show the tag alone. Both fields are accepted.
        envelope["messaging_type"] = "MESSAGE_TAG"
        envelope["tag"] = "HUMAN_AGENT"
    private = message.recipient.comment_id is not None
    sends: list[GraphSend] = []
    for part in _PARTS[type(message.message)](message.message):
        body = dict(envelope)
        if part.is_message:
            body["message"] = part.content
            if message.reply_to_message_id:
                body["reply_to"] = {"mid": message.reply_to_message_id}
        else:
            body.update(part.content)
        rate_class = "private_reply" if private else part.rate_class
        sends.append(GraphSend(body, rate_class, part.is_message, part.endpoint))
    return sends


@dataclass(frozen=True)
class _Part:
    """One request's content: a ``message`` object, or (not is_message) a sender action's fields."""

    content: dict[str, Any]
    rate_class: RateClass = "text"
    is_message: bool = True
    endpoint: str = "messages"


def _text(m: o.Text) -> list[_Part]:
    return _text_parts(m.text, [_quick_reply(q) for q in m.quick_replies or []])


def _choice(m: o.Choice) -> list[_Part]:
    replies = [{"content_type": "text", "title": c.title, "payload": c.payload or c.title} for c in m.choices]
    return _text_parts(m.text, replies)


def _image(m: o.Image) -> list[_Part]:
    media = m.media()
    if len(media) == 1:
        return [_Part({"attachment": _attachment("image", media[0].url, media[0].attachment_id)})]
    return [_Part({"attachments": [_attachment("image", x.url, x.attachment_id) for x in media]})]


def _media(m: o.Audio | o.Video | o.File) -> list[_Part]:
    return [_Part({"attachment": _attachment(m.type, m.url, m.attachment_id)}, _rate_class(m.type))]


def _sticker(m: o.Sticker) -> list[_Part]:
    return [_Part({"attachment": {"type": m.sticker}})]


def _media_share(m: o.MediaShare) -> list[_Part]:
    return [_Part({"attachment": {"type": "MEDIA_SHARE", "payload": {"id": m.media_id}}})]


def _generic_template(m: o.GenericTemplate) -> list[_Part]:
    return [_Part(_generic([_element(e) for e in m.elements]))]


def _card(m: o.Card) -> list[_Part]:
    return [_Part(_generic([_card_element(m)]))]


def _carousel(m: o.Carousel) -> list[_Part]:
    return [_Part(_generic([_card_element(c) for c in m.cards]))]


def _button_template(m: o.ButtonTemplate) -> list[_Part]:
    payload = {"template_type": "button", "text": m.text, "buttons": [_button(b) for b in m.buttons]}
    return [_Part({"attachment": {"type": "template", "payload": payload}})]


def _location(m: o.Location) -> list[_Part]:
    return _text_parts(location_text(m), [])


def _text_with_media(m: o.TextWithMedia) -> list[_Part]:
    media = _Part({"attachment": _attachment(m.media_type, m.url, m.attachment_id)}, _rate_class(m.media_type))
    return [*_text_parts(m.text, []), media]


def _react(m: o.React) -> list[_Part]:
    payload = {"message_id": m.message_id, "reaction": m.reaction}
    return [_Part({"sender_action": "react", "payload": payload}, is_message=False)]


def _unreact(m: o.Unreact) -> list[_Part]:
    return [_Part({"sender_action": "unreact", "payload": {"message_id": m.message_id}}, is_message=False)]


def _sender_action(m: o.SenderAction) -> list[_Part]:
    return [_Part({"sender_action": m.type}, is_message=False)]


def _thread_control(m: o.ThreadControl) -> list[_Part]:
    """Meta's handover endpoints (/me/pass_thread_control ...): the recipient, the target app of a pass,
    and any metadata for the other app."""
    content: dict[str, Any] = {}
    if m.type == "pass_thread_control":
        content["target_app_id"] = m.target_app_id or o.INSTAGRAM_INBOX_APP_ID
    if m.metadata is not None:
        content["metadata"] = m.metadata
    return [_Part(content, is_message=False, endpoint=m.type)]


# Each kind of outbound message as the Send API requests that deliver it, in order.
_PARTS: dict[type, Callable[[Any], list[_Part]]] = {
    o.Text: _text,
    o.Choice: _choice,
    o.Image: _image,
    o.Audio: _media,
    o.Video: _media,
    o.File: _media,
    o.Sticker: _sticker,
    o.MediaShare: _media_share,
    o.GenericTemplate: _generic_template,
    o.Card: _card,
    o.Carousel: _carousel,
    o.ButtonTemplate: _button_template,
    o.Location: _location,
    o.TextWithMedia: _text_with_media,
    o.React: _react,
    o.Unreact: _unreact,
    o.SenderAction: _sender_action,
    o.ThreadControl: _thread_control,
}


def split_text(text: str, limit: int = o.MAX_TEXT_BYTES) -> list[str]:
    """Parts of at most ``limit`` UTF-8 bytes, cut at whitespace; a word longer than a part is cut
    between characters. Line breaks inside a part are kept; whitespace at a cut is dropped."""
    if len(text.encode()) <= limit:
        return [text]
    parts: list[str] = []
    current = ""
    for token in re.findall(r"\s*\S+", text):
        if len((current + token).encode()) <= limit:
            current += token
            continue
        if current.strip():
            parts.append(current.strip())
        current = token.lstrip()
        while len(current.encode()) > limit:
            head = _utf8_prefix(current, limit)
            parts.append(head)
            current = current[len(head) :]
    if current.strip():
        parts.append(current.strip())
    return parts


def location_text(location: o.Location) -> str:
    coordinates = f"{location.latitude:.6f},{location.longitude:.6f}"
    lines = [line for line in (location.title, location.label) if line]
    lines.append(f"https://www.google.com/maps/search/?api=1&query={quote(coordinates)}")
    return "\n".join(lines)


def _utf8_prefix(text: str, limit: int) -> str:
    encoded = text.encode()[:limit]
    return encoded.decode("utf-8", "ignore")  # drops a character cut in half


def _text_parts(text: str, quick_replies: list[dict[str, Any]]) -> list[_Part]:
    parts = split_text(text)
    contents: list[_Part] = []
    for i, part in enumerate(parts):
        content: dict[str, Any] = {"text": part}
        if quick_replies and i == len(parts) - 1:  # the buttons belong under the question, at the end
            content["quick_replies"] = quick_replies
        contents.append(_Part(content))
    return contents


def _quick_reply(reply: o.QuickReply) -> dict[str, Any]:
    if reply.content_type != "text":
        return {"content_type": reply.content_type}
    return {"content_type": "text", "title": reply.title, "payload": reply.payload}


def _attachment(kind: str, url: str | None, attachment_id: str | None) -> dict[str, Any]:
    return {"type": kind, "payload": {"url": url} if url else {"attachment_id": attachment_id}}


def _rate_class(kind: str) -> RateClass:
    return "media" if kind in MEDIA_RATE_TYPES else "text"


def _generic(elements: list[dict[str, Any]]) -> dict[str, Any]:
    return {"attachment": {"type": "template", "payload": {"template_type": "generic", "elements": elements}}}


def _button(button: o.UrlButton | o.PostbackButton) -> dict[str, Any]:
    if isinstance(button, o.UrlButton):
        return {"type": "web_url", "url": button.url, "title": button.title}
    return {"type": "postback", "title": button.title, "payload": button.payload}


def _element(element: o.Element) -> dict[str, Any]:
    out: dict[str, Any] = {"title": element.title}
    if element.subtitle:
        out["subtitle"] = element.subtitle
    if element.image_url:
        out["image_url"] = element.image_url
    if element.default_action:
        out["default_action"] = {"type": "web_url", "url": element.default_action.url}
    if element.buttons:
        out["buttons"] = [_button(b) for b in element.buttons]
    return out


def _card_element(card: o.CardContent) -> dict[str, Any]:
    buttons: list[o.UrlButton | o.PostbackButton] = [
        o.UrlButton(type="web_url", title=c.title, url=c.url)
        if c.url
        else o.PostbackButton(type="postback", title=c.title, payload=c.payload or c.title)
        for c in card.choices
    ]
    return _element(o.Element(title=card.title, subtitle=card.description, image_url=card.media_url, buttons=buttons))
