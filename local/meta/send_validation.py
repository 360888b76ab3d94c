"""The Send API's body rules (fact sheet §5.2, §5.3): what graph.instagram.com refuses with (#100), and which
of Meta's rate buckets a send counts against (§7)."""

from typing import Any, cast
from urllib.parse import urlsplit

from local.meta.answers import GraphError

SENDER_ACTIONS = ("typing_on", "typing_off", "mark_seen", "react", "unreact")
MESSAGING_TYPES = ("RESPONSE", "UPDATE", "MESSAGE_TAG")
MEDIA_TYPES = ("image", "audio", "video", "file")
ATTACHMENT_TYPES = (*MEDIA_TYPES, "like_heart", "MEDIA_SHARE", "template")
RATE_LIMITED_AS_MEDIA = frozenset({"audio", "video"})
TEXT_MAX_BYTES = 1000
METADATA_MAX_CHARACTERS = 1000  # Messenger's Send API reference; echoed back on the message's echo
QUICK_REPLIES_MAX = 13
QUICK_REPLY_TITLE_MAX = 20
QUICK_REPLY_PAYLOAD_MAX = 1000
ATTACHMENTS_MAX = 10
TEMPLATE_ELEMENTS_MAX = 10
TEMPLATE_BUTTONS_MAX = 3
TEMPLATE_TEXT_MAX = 80
TOP_LEVEL_KEYS = frozenset({"recipient", "message", "sender_action", "payload", "messaging_type", "tag", "reply_to"})


def invalid(message: str) -> GraphError:
    return GraphError(400, 100, f"(#100) {message}")


def _only_keys(obj: dict[str, Any], allowed: set[str] | frozenset[str], path: str) -> None:
    unknown = ", ".join(sorted(set(obj) - allowed))
    if unknown:
        raise invalid(f"Param {path} has unknown field(s): {unknown}" if path else f"Unknown parameter(s): {unknown}")


def _object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid(f"Param {path} must be a JSON object" if path else "The request body must be a JSON object")
    return cast(dict[str, Any], value)


def _array(value: Any, path: str, low: int, high: int) -> list[Any]:
    if not isinstance(value, list):
        raise invalid(f"Param {path} must be an array")
    if not low <= len(value) <= high:
        raise invalid(f"Param {path} must have {low} to {high} items, got {len(value)}")
    return value


def _string(value: Any, path: str, *, max_chars: int | None = None) -> str:
    if not isinstance(value, str) or not value:
        raise invalid(f"Param {path} must be a non-empty string")
    if max_chars is not None and len(value) > max_chars:
        raise invalid(f"Param {path} must be at most {max_chars} characters, got {len(value)}")
    return value


def _required(obj: dict[str, Any], key: str, path: str) -> Any:
    if key not in obj:
        raise invalid(f"Param {path}[{key}] is required" if path else f"Param {key} is required")
    return obj[key]


def _url(value: Any, path: str, *, https_only: bool) -> None:
    parts = urlsplit(_string(value, path))
    schemes = ("https",) if https_only else ("http", "https")
    if parts.scheme not in schemes or not parts.netloc:
        raise invalid(f"Param {path} must be a valid {' or '.join(schemes)} URL")


def validate_send(body: Any) -> None:
    """Raise GraphError (HTTP 400, code 100) naming the first problem in a Send API body."""
    body = _object(body, "")
    _only_keys(body, TOP_LEVEL_KEYS, "")
    recipient = _object(_required(body, "recipient", ""), "recipient")
    _only_keys(recipient, {"id", "comment_id"}, "recipient")
    if len(recipient) != 1:
        raise invalid("Param recipient must have exactly one of id or comment_id")
    for key, value in recipient.items():
        _string(value, f"recipient[{key}]")
    private_reply = "comment_id" in recipient
    if ("message" in body) == ("sender_action" in body):
        raise invalid("The request must have exactly one of message or sender_action")
    if "sender_action" in body:
        if private_reply:
            raise invalid("A private reply (recipient[comment_id]) can only send message[text]")
        _validate_sender_action(body)
    else:
        if "payload" in body:
            raise invalid("Param payload is only valid with sender_action react or unreact")
        _validate_message(_object(body["message"], "message"), private_reply=private_reply)
    messaging_type = body.get("messaging_type")
    if "messaging_type" in body and messaging_type not in MESSAGING_TYPES:
        raise invalid(f"Param messaging_type must be one of {', '.join(MESSAGING_TYPES)}")
    if "tag" in body:
        if body["tag"] != "HUMAN_AGENT":
            raise invalid("Param tag must be HUMAN_AGENT, the only message tag for Instagram")
        if "messaging_type" in body and messaging_type != "MESSAGE_TAG":
            raise invalid("Param messaging_type must be MESSAGE_TAG when tag is set")
    elif messaging_type == "MESSAGE_TAG":
        raise invalid("Param tag is required when messaging_type is MESSAGE_TAG")
    if "reply_to" in body:
        if "message" not in body:
            raise invalid("Param reply_to is only valid with a message")
        reply_to = _object(body["reply_to"], "reply_to")
        _only_keys(reply_to, {"mid"}, "reply_to")
        _string(_required(reply_to, "mid", "reply_to"), "reply_to[mid]")


def _validate_sender_action(body: dict[str, Any]) -> None:
    action = body["sender_action"]
    if action not in SENDER_ACTIONS:
        raise invalid(f"Param sender_action must be one of {', '.join(SENDER_ACTIONS)}")
    if action not in ("react", "unreact"):
        if "payload" in body:
            raise invalid(f"Param payload is not valid with sender_action {action}")
        return
    payload = _object(_required(body, "payload", ""), "payload")
    needed = {"message_id", "reaction"} if action == "react" else {"message_id"}
    _only_keys(payload, needed, "payload")
    for key in sorted(needed):
        _string(_required(payload, key, "payload"), f"payload[{key}]")


def _validate_message(message: dict[str, Any], *, private_reply: bool) -> None:
    _only_keys(message, {"text", "attachment", "attachments", "quick_replies", "metadata"}, "message")
    contents = [key for key in ("text", "attachment", "attachments") if key in message]
    if len(contents) != 1:
        raise invalid("Param message must have exactly one of text, attachment or attachments")
    if private_reply and set(message) - {"metadata"} != {"text"}:
        raise invalid("A private reply (recipient[comment_id]) can only send message[text]")
    if "metadata" in message:
        metadata = message["metadata"]
        if not isinstance(metadata, str) or not 0 < len(metadata) <= METADATA_MAX_CHARACTERS:
            raise invalid(f"Param message[metadata] must be a string of 1 to {METADATA_MAX_CHARACTERS} characters")
    if "text" in message:
        text = message["text"]
        if not isinstance(text, str) or not text:
            raise invalid("Param message[text] must be a non-empty string")
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > TEXT_MAX_BYTES:
            raise invalid(f"Param message[text] must be at most {TEXT_MAX_BYTES} UTF-8 bytes, got {size}")
    elif "attachment" in message:
        _validate_attachment(_object(message["attachment"], "message[attachment]"), "message[attachment]")
    else:
        items = _array(message["attachments"], "message[attachments]", 1, ATTACHMENTS_MAX)
        for index, item in enumerate(items):
            path = f"message[attachments][{index}]"
            attachment = _object(item, path)
            _only_keys(attachment, {"type", "payload"}, path)
            if attachment.get("type") != "image":
                raise invalid(f"Param {path}[type] must be image: several attachments can only be images")
            _validate_media_payload(_required(attachment, "payload", path), f"{path}[payload]")
    if "quick_replies" in message:
        if "text" not in message:
            raise invalid("Param message[quick_replies] is only valid with message[text]")
        _validate_quick_replies(message["quick_replies"])


def _validate_attachment(attachment: dict[str, Any], path: str) -> None:
    _only_keys(attachment, {"type", "payload"}, path)
    kind = attachment.get("type")
    if kind not in ATTACHMENT_TYPES:
        raise invalid(f"Param {path}[type] must be one of {', '.join(ATTACHMENT_TYPES)}")
    if kind in MEDIA_TYPES:
        _validate_media_payload(_required(attachment, "payload", path), f"{path}[payload]")
    elif kind == "like_heart":
        if "payload" in attachment:
            raise invalid(f"Param {path}[payload] is not valid with type like_heart")
    elif kind == "MEDIA_SHARE":
        payload = _object(_required(attachment, "payload", path), f"{path}[payload]")
        _only_keys(payload, {"id"}, f"{path}[payload]")
        _string(_required(payload, "id", f"{path}[payload]"), f"{path}[payload][id]")
    else:
        _validate_template(_object(_required(attachment, "payload", path), f"{path}[payload]"), f"{path}[payload]")


def _validate_media_payload(value: Any, path: str) -> None:
    payload = _object(value, path)
    _only_keys(payload, {"url", "attachment_id"}, path)
    if len(payload) != 1:
        raise invalid(f"Param {path} must have exactly one of url or attachment_id")
    if "url" in payload:
        _url(payload["url"], f"{path}[url]", https_only=True)
    else:
        _string(payload["attachment_id"], f"{path}[attachment_id]")


def _validate_template(payload: dict[str, Any], path: str) -> None:
    template_type = payload.get("template_type")
    if template_type == "generic":
        _only_keys(payload, {"template_type", "elements"}, path)
        elements = _array(_required(payload, "elements", path), f"{path}[elements]", 1, TEMPLATE_ELEMENTS_MAX)
        for index, element in enumerate(elements):
            _validate_element(_object(element, f"{path}[elements][{index}]"), f"{path}[elements][{index}]")
    elif template_type == "button":
        _only_keys(payload, {"template_type", "text", "buttons"}, path)
        _string(_required(payload, "text", path), f"{path}[text]")
        buttons = _array(_required(payload, "buttons", path), f"{path}[buttons]", 1, TEMPLATE_BUTTONS_MAX)
        for index, button in enumerate(buttons):
            _validate_button(button, f"{path}[buttons][{index}]")
    else:
        raise invalid(f"Param {path}[template_type] must be generic or button")


def _validate_element(element: dict[str, Any], path: str) -> None:
    _only_keys(element, {"title", "subtitle", "image_url", "default_action", "buttons"}, path)
    _string(_required(element, "title", path), f"{path}[title]", max_chars=TEMPLATE_TEXT_MAX)
    if len(element) < 2:
        raise invalid(f"Param {path} needs at least one property besides title")
    if "subtitle" in element:
        _string(element["subtitle"], f"{path}[subtitle]", max_chars=TEMPLATE_TEXT_MAX)
    if "image_url" in element:
        _url(element["image_url"], f"{path}[image_url]", https_only=False)
    if "default_action" in element:
        action_path = f"{path}[default_action]"
        action = _object(element["default_action"], action_path)
        if "title" in action:
            raise invalid(f"Param {action_path} must not have a title")
        _only_keys(action, {"type", "url"}, action_path)
        if action.get("type") != "web_url":
            raise invalid(f"Param {action_path}[type] must be web_url")
        _url(_required(action, "url", action_path), f"{action_path}[url]", https_only=False)
    if "buttons" in element:
        buttons = _array(element["buttons"], f"{path}[buttons]", 1, TEMPLATE_BUTTONS_MAX)
        for index, button in enumerate(buttons):
            _validate_button(button, f"{path}[buttons][{index}]")


def _validate_button(value: Any, path: str) -> None:
    button = _object(value, path)
    kind = button.get("type")
    if kind == "web_url":
        _only_keys(button, {"type", "url", "title"}, path)
        _url(_required(button, "url", path), f"{path}[url]", https_only=False)
    elif kind == "postback":
        _only_keys(button, {"type", "title", "payload"}, path)
        _string(_required(button, "payload", path), f"{path}[payload]")
    else:
        raise invalid(f"Param {path}[type] must be web_url or postback")
    _string(_required(button, "title", path), f"{path}[title]")


def _validate_quick_replies(value: Any) -> None:
    replies = _array(value, "message[quick_replies]", 1, QUICK_REPLIES_MAX)
    for index, item in enumerate(replies):
        path = f"message[quick_replies][{index}]"
        reply = _object(item, path)
        _only_keys(reply, {"content_type", "title", "payload"}, path)
        content_type = reply.get("content_type")
        if content_type in ("user_email", "user_phone_number"):
            # Constructed wording: Meta disabled both on 2026-10-05 and documents no error text for them.
            raise invalid(f"Param {path}[content_type] {content_type} is no longer supported")
        if content_type != "text":
            raise invalid(f"Param {path}[content_type] must be text")
        if content_type == "text":
            _required(reply, "title", path)
            _required(reply, "payload", path)
        if "title" in reply:
            _string(reply["title"], f"{path}[title]", max_chars=QUICK_REPLY_TITLE_MAX)
        if "payload" in reply:
            _string(reply["payload"], f"{path}[payload]", max_chars=QUICK_REPLY_PAYLOAD_MAX)


def rate_bucket(body: dict[str, Any]) -> str:
    attachment = body.get("message", {}).get("attachment")
    return "media" if isinstance(attachment, dict) and attachment.get("type") in RATE_LIMITED_AS_MEDIA else "text"


THREAD_CONTROL_ENDPOINTS = frozenset(
    {"pass_thread_control", "take_thread_control", "release_thread_control", "request_thread_control"}
)


def validate_thread_control(endpoint: str, body: Any) -> None:
    """Raise GraphError naming the first problem in a handover call's body (Messenger's Handover Protocol
    reference, which Instagram's Conversation Routing keeps): the recipient's id, a pass's target_app_id,
    optional metadata (at most 1000 characters)."""
    body = _object(body, "")
    allowed = {"recipient", "metadata"} | ({"target_app_id"} if endpoint == "pass_thread_control" else set())
    _only_keys(body, allowed, "")
    recipient = _object(_required(body, "recipient", ""), "recipient")
    _only_keys(recipient, {"id"}, "recipient")
    _string(_required(recipient, "id", "recipient"), "recipient[id]")
    if endpoint == "pass_thread_control":
        _string(_required(body, "target_app_id", ""), "target_app_id")
    if "metadata" in body:
        _string(body["metadata"], "metadata", max_chars=1000)
