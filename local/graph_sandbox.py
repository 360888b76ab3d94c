"""A local stand-in for Meta's Instagram Graph API (Send API, Business Login), for the local stack, tests, benches.

It answers `POST /<version>/<ig_id>/messages` and `POST /<version>/me/messages` the way
graph.instagram.com does (see the Instagram platform fact sheet: §5 Send API, §7 rate limits, §8 error
object): bearer or `access_token` query auth, the documented body rules, Meta's error object, per-account
sliding-window rate limits with the `X-Business-Use-Case-Usage` header, and the `is_echo` webhook Meta
sends for every message the business sends, signed like a real webhook. Tests add failures on purpose
with `inject()` (or `POST /__sandbox/faults`), including the ambiguous ones (a timeout or a code
1/1357046 reply after the message was in fact delivered) that a sender must reconcile through the echo.

It also answers Business Login for Instagram (fact sheet §9, §11; the rules live in `local.instagram_identity`):
`GET|POST /oauth/authorize` (a consent page, then a redirect with a code), `POST /oauth/access_token`,
`GET /access_token` (ig_exchange_token), `GET /refresh_access_token`, `GET /<version>/<ig_id|me>` and
`GET|POST|DELETE /<version>/<ig_id|me>/subscribed_apps`. Tokens age on a clock the caller controls
(`clock=`, `advance()`), and the Send API refuses expired (190/463) and revoked (190/460) ones.

Control endpoints, for tests and tools in other processes (JSON bodies, `Content-Type: application/json`):
  POST /__sandbox/faults       {"kind": ..., "count": ..., "endpoint": ..., ...}  same fields as inject()
  POST /__sandbox/reset        clears faults, the request log, sent messages and rate windows
  POST /__sandbox/read         {"account_id": ..., "igsid": ..., "mid": ...}    the customer's messaging_seen
  GET  /__sandbox/sent         {"sent": [...], "requests": [...]}
  GET  /__sandbox/clock        {"now": ...}                                      the sandbox clock
  POST /__sandbox/clock        {"advance_seconds": n} -> {"now": ...}
  POST /__sandbox/revoke       {"account_id": ...}   every token of the account dies (a password reset)
  POST /__sandbox/unsubscribe  {"account_id": ...}   drops its subscribed fields (Meta's auto-unsubscribe)
  GET  /__sandbox/accounts     {"accounts": [...]}   usernames, subscribed fields, token ages; no token strings

It listens on 127.0.0.1 only and delivers webhooks to loopback URLs only: it is a test double, not a
service, and its control endpoints have no authentication.
"""

import argparse
import contextlib
import hashlib
import hmac
import json
import queue
import re
import secrets
import signal
import socketserver
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self, cast
from urllib.parse import parse_qs, urlsplit

from requests import RequestException, Session

from local.instagram_identity import (
    DEFAULT_APP_ID,
    DEFAULT_INSTAGRAM_APP_SECRET,
    LONG_LIVED_SECONDS,
    UNKNOWN_TOKEN_MESSAGE,
    Answer,
    IdentityError,
    InstagramIdentity,
    Route,
    TokenInfo,
)
from local.instagram_identity import route as identity_route

LOOPBACK = "127.0.0.1"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost"})
FAULT_KINDS = ("http_5xx", "error", "throttle", "timeout", "invalid_json_reply")
# "exchange" is GET /access_token (ig_exchange_token); "code_exchange" is POST /oauth/access_token.
FAULT_ENDPOINTS = ("messages", "refresh", "exchange", "code_exchange", "me", "subscribed_apps")
IDENTITY_FAULT_KINDS = ("http_5xx", "error", "throttle", "timeout")
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
MAX_BODY_BYTES = 1024 * 1024
RATE_WINDOW_SECONDS = 1.0
RATE_LIMIT_MESSAGE = "There have been too many calls to this Instagram account. Wait a bit and try again."
BAD_OAUTH_MESSAGE = UNKNOWN_TOKEN_MESSAGE
UNEXPECTED_ERROR_MESSAGE = "An unexpected error has occurred. Please retry your request later."
THROTTLE_MESSAGES = {
    4: "(#4) Application request limit reached",
    17: "(#17) User request limit reached",
    32: "(#32) Page request limit reached",
    613: "(#613) Calls to this api have exceeded the rate limit.",
    80002: RATE_LIMIT_MESSAGE,
}
DEFAULT_TIMEOUT_DELAY = 30.0
ECHO_QUEUE_SIZE = 10_000
# Meta's webhook client; some receivers log or filter on it.
WEBHOOK_USER_AGENT = "facebookexternalua"

_SEND_PATH = re.compile(r"/(v\d+\.\d+)/([^/]+)/messages")


@dataclass(frozen=True)
class SentMessage:
    """A send the sandbox accepted (or, with an injected `deliver` fault, delivered while reporting failure)."""

    account_id: str
    body: dict[str, Any]
    message_id: str | None  # None for sender actions, which Meta answers without a message_id
    at: float
    via_url_token: bool


@dataclass(frozen=True)
class RequestRecord:
    """One Graph API request, accepted or not. The path never includes the query, so no token is kept."""

    at: float
    method: str
    path: str
    account_id: str | None
    status: int
    error_code: int | None
    error_subcode: int | None
    via_url_token: bool
    body: Any


@dataclass
class _Fault:
    kind: str
    remaining: int
    status: int | None
    code: int | None
    subcode: int | None
    message: str | None
    delay: float | None
    deliver: bool
    account_id: str | None
    endpoint: str = "messages"


@dataclass(frozen=True)
class _Reply:
    status: int
    body: dict[str, Any] | bytes  # a JSON object, or raw bytes of `content_type` (a page, a redirect)
    headers: dict[str, str]
    delay: float = 0.0
    content_type: str = "application/json; charset=UTF-8"


@dataclass(frozen=True)
class _Delivery:
    due: float  # time.monotonic()
    account_id: str
    event: dict[str, Any]


class GraphError(Exception):
    """An answer in Meta's error-object shape (fact sheet §8)."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        *,
        subcode: int | None = None,
        error_type: str = "IGApiException",
        is_transient: bool | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.subcode = subcode
        self.error_type = error_type
        self.is_transient = is_transient
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"message": self.message, "type": self.error_type, "code": self.code}
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        if self.is_transient is not None:
            error["is_transient"] = self.is_transient
        error["fbtrace_id"] = "A" + secrets.token_urlsafe(16)
        return {"error": error}


def igsid_for_comment(comment_id: str) -> str:
    """The IGSID a private reply to this comment reports: stable across runs, so tests can predict it."""
    digest = int.from_bytes(hashlib.sha256(comment_id.encode()).digest()[:8], "big")
    return f"9{digest % 10**15:015d}"


def usage_header(account_id: str, call_count: int) -> dict[str, str]:
    usage = {
        account_id: [
            {
                "type": "instagram",
                "call_count": call_count,
                "total_cputime": max(1, call_count // 4) if call_count else 0,
                "total_time": max(1, call_count // 2) if call_count else 0,
                "estimated_time_to_regain_access": 0,
            }
        ]
    }
    return {"X-Business-Use-Case-Usage": json.dumps(usage, separators=(",", ":"))}


def validate_webhook_url(url: str) -> str:
    # The sandbox signs with a real-looking app secret and posts message contents: never off this machine.
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname not in LOOPBACK_HOSTS or parts.username or parts.password:
        raise ValueError(f"webhook_url must be a loopback http URL (http://127.0.0.1:<port>/...), got {url!r}")
    try:
        _ = parts.port
    except ValueError as exc:
        raise ValueError(f"webhook_url has an invalid port: {url!r}") from exc
    return url


# --- body validation (fact sheet §5.2, §5.3) -------------------------------------------------------------


def _invalid(message: str) -> GraphError:
    return GraphError(400, 100, f"(#100) {message}")


def _only_keys(obj: dict[str, Any], allowed: set[str] | frozenset[str], path: str) -> None:
    unknown = ", ".join(sorted(set(obj) - allowed))
    if unknown:
        raise _invalid(f"Param {path} has unknown field(s): {unknown}" if path else f"Unknown parameter(s): {unknown}")


def _object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _invalid(f"Param {path} must be a JSON object" if path else "The request body must be a JSON object")
    return cast(dict[str, Any], value)


def _array(value: Any, path: str, low: int, high: int) -> list[Any]:
    if not isinstance(value, list):
        raise _invalid(f"Param {path} must be an array")
    if not low <= len(value) <= high:
        raise _invalid(f"Param {path} must have {low} to {high} items, got {len(value)}")
    return value


def _string(value: Any, path: str, *, max_chars: int | None = None) -> str:
    if not isinstance(value, str) or not value:
        raise _invalid(f"Param {path} must be a non-empty string")
    if max_chars is not None and len(value) > max_chars:
        raise _invalid(f"Param {path} must be at most {max_chars} characters, got {len(value)}")
    return value


def _required(obj: dict[str, Any], key: str, path: str) -> Any:
    if key not in obj:
        raise _invalid(f"Param {path}[{key}] is required" if path else f"Param {key} is required")
    return obj[key]


def _url(value: Any, path: str, *, https_only: bool) -> None:
    parts = urlsplit(_string(value, path))
    schemes = ("https",) if https_only else ("http", "https")
    if parts.scheme not in schemes or not parts.netloc:
        raise _invalid(f"Param {path} must be a valid {' or '.join(schemes)} URL")


def validate_send(body: Any) -> None:
    """Raise GraphError (HTTP 400, code 100) naming the first problem in a Send API body."""
    body = _object(body, "")
    _only_keys(body, TOP_LEVEL_KEYS, "")
    recipient = _object(_required(body, "recipient", ""), "recipient")
    _only_keys(recipient, {"id", "comment_id"}, "recipient")
    if len(recipient) != 1:
        raise _invalid("Param recipient must have exactly one of id or comment_id")
    for key, value in recipient.items():
        _string(value, f"recipient[{key}]")
    private_reply = "comment_id" in recipient
    if ("message" in body) == ("sender_action" in body):
        raise _invalid("The request must have exactly one of message or sender_action")
    if "sender_action" in body:
        if private_reply:
            raise _invalid("A private reply (recipient[comment_id]) can only send message[text]")
        _validate_sender_action(body)
    else:
        if "payload" in body:
            raise _invalid("Param payload is only valid with sender_action react or unreact")
        _validate_message(_object(body["message"], "message"), private_reply=private_reply)
    messaging_type = body.get("messaging_type")
    if "messaging_type" in body and messaging_type not in MESSAGING_TYPES:
        raise _invalid(f"Param messaging_type must be one of {', '.join(MESSAGING_TYPES)}")
    if "tag" in body:
        if body["tag"] != "HUMAN_AGENT":
            raise _invalid("Param tag must be HUMAN_AGENT, the only message tag for Instagram")
        if "messaging_type" in body and messaging_type != "MESSAGE_TAG":
            raise _invalid("Param messaging_type must be MESSAGE_TAG when tag is set")
    elif messaging_type == "MESSAGE_TAG":
        raise _invalid("Param tag is required when messaging_type is MESSAGE_TAG")
    if "reply_to" in body:
        if "message" not in body:
            raise _invalid("Param reply_to is only valid with a message")
        reply_to = _object(body["reply_to"], "reply_to")
        _only_keys(reply_to, {"mid"}, "reply_to")
        _string(_required(reply_to, "mid", "reply_to"), "reply_to[mid]")


def _validate_sender_action(body: dict[str, Any]) -> None:
    action = body["sender_action"]
    if action not in SENDER_ACTIONS:
        raise _invalid(f"Param sender_action must be one of {', '.join(SENDER_ACTIONS)}")
    if action not in ("react", "unreact"):
        if "payload" in body:
            raise _invalid(f"Param payload is not valid with sender_action {action}")
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
        raise _invalid("Param message must have exactly one of text, attachment or attachments")
    if private_reply and set(message) - {"metadata"} != {"text"}:
        raise _invalid("A private reply (recipient[comment_id]) can only send message[text]")
    if "metadata" in message:
        metadata = message["metadata"]
        if not isinstance(metadata, str) or not 0 < len(metadata) <= METADATA_MAX_CHARACTERS:
            raise _invalid(f"Param message[metadata] must be a string of 1 to {METADATA_MAX_CHARACTERS} characters")
    if "text" in message:
        text = message["text"]
        if not isinstance(text, str) or not text:
            raise _invalid("Param message[text] must be a non-empty string")
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > TEXT_MAX_BYTES:
            raise _invalid(f"Param message[text] must be at most {TEXT_MAX_BYTES} UTF-8 bytes, got {size}")
    elif "attachment" in message:
        _validate_attachment(_object(message["attachment"], "message[attachment]"), "message[attachment]")
    else:
        items = _array(message["attachments"], "message[attachments]", 1, ATTACHMENTS_MAX)
        for index, item in enumerate(items):
            path = f"message[attachments][{index}]"
            attachment = _object(item, path)
            _only_keys(attachment, {"type", "payload"}, path)
            if attachment.get("type") != "image":
                raise _invalid(f"Param {path}[type] must be image: several attachments can only be images")
            _validate_media_payload(_required(attachment, "payload", path), f"{path}[payload]")
    if "quick_replies" in message:
        if "text" not in message:
            raise _invalid("Param message[quick_replies] is only valid with message[text]")
        _validate_quick_replies(message["quick_replies"])


def _validate_attachment(attachment: dict[str, Any], path: str) -> None:
    _only_keys(attachment, {"type", "payload"}, path)
    kind = attachment.get("type")
    if kind not in ATTACHMENT_TYPES:
        raise _invalid(f"Param {path}[type] must be one of {', '.join(ATTACHMENT_TYPES)}")
    if kind in MEDIA_TYPES:
        _validate_media_payload(_required(attachment, "payload", path), f"{path}[payload]")
    elif kind == "like_heart":
        if "payload" in attachment:
            raise _invalid(f"Param {path}[payload] is not valid with type like_heart")
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
        raise _invalid(f"Param {path} must have exactly one of url or attachment_id")
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
        raise _invalid(f"Param {path}[template_type] must be generic or button")


def _validate_element(element: dict[str, Any], path: str) -> None:
    _only_keys(element, {"title", "subtitle", "image_url", "default_action", "buttons"}, path)
    _string(_required(element, "title", path), f"{path}[title]", max_chars=TEMPLATE_TEXT_MAX)
    if len(element) < 2:
        raise _invalid(f"Param {path} needs at least one property besides title")
    if "subtitle" in element:
        _string(element["subtitle"], f"{path}[subtitle]", max_chars=TEMPLATE_TEXT_MAX)
    if "image_url" in element:
        _url(element["image_url"], f"{path}[image_url]", https_only=False)
    if "default_action" in element:
        action_path = f"{path}[default_action]"
        action = _object(element["default_action"], action_path)
        if "title" in action:
            raise _invalid(f"Param {action_path} must not have a title")
        _only_keys(action, {"type", "url"}, action_path)
        if action.get("type") != "web_url":
            raise _invalid(f"Param {action_path}[type] must be web_url")
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
        raise _invalid(f"Param {path}[type] must be web_url or postback")
    _string(_required(button, "title", path), f"{path}[title]")


def _validate_quick_replies(value: Any) -> None:
    replies = _array(value, "message[quick_replies]", 1, QUICK_REPLIES_MAX)
    for index, item in enumerate(replies):
        path = f"message[quick_replies][{index}]"
        reply = _object(item, path)
        _only_keys(reply, {"content_type", "title", "payload"}, path)
        content_type = reply.get("content_type")
        if content_type not in ("text", "user_email", "user_phone_number"):
            raise _invalid(f"Param {path}[content_type] must be text, user_email or user_phone_number")
        if content_type == "text":
            _required(reply, "title", path)
            _required(reply, "payload", path)
        if "title" in reply:
            _string(reply["title"], f"{path}[title]", max_chars=QUICK_REPLY_TITLE_MAX)
        if "payload" in reply:
            _string(reply["payload"], f"{path}[payload]", max_chars=QUICK_REPLY_PAYLOAD_MAX)


def _rate_bucket(body: dict[str, Any]) -> str:
    attachment = body.get("message", {}).get("attachment")
    return "media" if isinstance(attachment, dict) and attachment.get("type") in RATE_LIMITED_AS_MEDIA else "text"


# --- echo webhooks ---------------------------------------------------------------------------------------


def _echo_attachment(attachment: dict[str, Any]) -> dict[str, Any]:
    kind = attachment["type"]
    payload = attachment.get("payload") or {}
    if kind == "template":
        return {"type": "template", "payload": payload}
    if "url" in payload:
        return {"type": kind, "payload": {"url": payload["url"]}}
    # Meta re-hosts what it delivers; an uploaded attachment or a sticker comes back as a CDN URL.
    asset = payload.get("attachment_id") or payload.get("id") or kind
    echoed_type = "share" if kind == "MEDIA_SHARE" else kind
    url = f"https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id={asset}&signature=sandbox"
    return {"type": echoed_type, "payload": {"url": url}}


def echo_message(
    mid: str, message: dict[str, Any], *, app_id: str | None = None, with_metadata: bool = True
) -> dict[str, Any]:
    """The `message` of the is_echo webhook for a sent message (fact sheet §4.1), with the sending app's id
    and the metadata it attached, as Messenger's echoes carry them (whether Instagram's do is not documented:
    the sandbox can leave either out)."""
    echo: dict[str, Any] = {"mid": mid, "is_echo": True}
    if app_id is not None:
        echo["app_id"] = app_id
    if with_metadata and isinstance(message.get("metadata"), str):
        echo["metadata"] = message["metadata"]
    if "text" in message:
        echo["text"] = message["text"]
    elif "attachment" in message:
        echo["attachments"] = [_echo_attachment(message["attachment"])]
    else:
        echo["attachments"] = [_echo_attachment(item) for item in message["attachments"]]
    return echo


def webhook_body(account_id: str, event: dict[str, Any]) -> bytes:
    envelope = {"object": "instagram", "entry": [{"id": account_id, "time": _now_ms(), "messaging": [event]}]}
    # Compact and with non-ASCII escaped as lowercase \uXXXX, which is how Meta serialises what it signs.
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def sign(raw: bytes, app_secret: str) -> str:
    return "sha256=" + hmac.new(app_secret.encode(), raw, hashlib.sha256).hexdigest()


def _now_ms() -> int:
    return int(time.time() * 1000)


# --- the server ------------------------------------------------------------------------------------------


class _SandboxServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, sandbox: "GraphSandbox") -> None:
        self.sandbox = sandbox
        super().__init__((LOOPBACK, port), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name, which can stall for seconds without DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = LOOPBACK, int(self.server_address[1])


class _Handler(BaseHTTPRequestHandler):
    # Keep-alive, so a sender (and the rate-limit test) is not bound by one TCP handshake per call.
    protocol_version = "HTTP/1.1"
    timeout = 60
    # Headers and body leave in two writes; with Nagle on, the second waits for a delayed ACK (~40 ms).
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _handle(self) -> None:
        sandbox = cast(_SandboxServer, self.server).sandbox
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self._write(_Reply(411, {"error": "Content-Length is required"}, {}), close=True)
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            self._write(_Reply(413, {"error": f"body must be 0 to {MAX_BODY_BYTES} bytes"}, {}), close=True)
            return
        raw = self.rfile.read(length) if length else b""
        reply = sandbox._dispatch(self.command, self.path, self.headers, raw)
        if reply.delay > 0:
            # Woken early by stop(), so a stopped sandbox does not leave a 30 s timeout behind.
            sandbox._stopping.wait(reply.delay)
        self._write(reply)

    def _write(self, reply: _Reply, *, close: bool = False) -> None:
        body = reply.body
        payload = body if isinstance(body, bytes) else json.dumps(body, separators=(",", ":")).encode()
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up first, which is the point of a timeout fault.
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        # Quiet: the default line includes the query string, where an access_token may be.
        pass


class GraphSandbox:
    """Meta's Instagram Send API on 127.0.0.1, with the faults and webhooks a sender has to cope with."""

    # Waits between webhook delivery attempts: one try, then one retry per item. Tests may shorten it.
    ECHO_RETRY_BACKOFF: tuple[float, ...] = (0.05, 0.1, 0.2, 0.4, 0.8)
    WEBHOOK_TIMEOUT_SECONDS = 10.0

    def __init__(
        self,
        *,
        port: int = 0,
        webhook_url: str | None = None,
        app_secret: str | None = None,
        text_rate_per_second: int = 100,
        media_rate_per_second: int = 10,
        echo_delay_seconds: float = 0.0,
        clock: Callable[[], float] = time.time,
        app_id: str = DEFAULT_APP_ID,
        instagram_app_secret: str = DEFAULT_INSTAGRAM_APP_SECRET,
        token_response_shape: str = "data",  # noqa: S107 - a response shape, not a secret
        subscription_field_spelling: str = "matrix",
        refresh_invalidates_old: bool = False,
        echo_app_id: bool = True,
        echo_metadata: bool = True,
    ) -> None:
        """`clock` drives token and code expiry (plus whatever advance() adds); `app_id` and
        `instagram_app_secret` are the Instagram app's, checked by the OAuth endpoints (`app_secret` only signs
        webhooks). `token_response_shape` is "data" (documented) or "flat" (seen: user_id a JSON number);
        `subscription_field_spelling` is "matrix" (message_reactions, messaging_referral) or "send_doc"
        (messaging_reactions, messaging_referrals); `refresh_invalidates_old` kills a token once refreshed.
        `echo_app_id` and `echo_metadata`: whether echoes carry the app id and the sender's metadata.
        """
        if webhook_url is not None:
            validate_webhook_url(webhook_url)
            if not app_secret:
                raise ValueError("app_secret is required with webhook_url: Meta signs every webhook")
        if text_rate_per_second < 1 or media_rate_per_second < 1:
            raise ValueError("rate limits must be at least 1 call per second")
        if echo_delay_seconds < 0:
            raise ValueError("echo_delay_seconds must not be negative")
        self._requested_port = port
        self.webhook_url = webhook_url
        self._app_secret = app_secret
        self.text_rate_per_second = text_rate_per_second
        self.media_rate_per_second = media_rate_per_second
        self.echo_delay_seconds = echo_delay_seconds
        self.echo_app_id = app_id if echo_app_id else None
        self.echo_metadata = echo_metadata
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        # Accounts, tokens, codes and subscriptions, under the same lock.
        self._identity = InstagramIdentity(
            self._lock,
            clock=clock,
            app_id=app_id,
            instagram_app_secret=instagram_app_secret,
            token_response_shape=token_response_shape,
            subscription_field_spelling=subscription_field_spelling,
            refresh_invalidates_old=refresh_invalidates_old,
        )
        self._sent: list[SentMessage] = []
        self._requests: list[RequestRecord] = []
        self._faults: list[_Fault] = []
        self._windows: dict[tuple[str, str], deque[float]] = {}
        self._echo_failures = 0
        # None wakes the worker to stop.
        self._echo_queue: queue.Queue[_Delivery | None] = queue.Queue(maxsize=ECHO_QUEUE_SIZE)
        self._pending_webhooks = 0
        self._stopping = threading.Event()
        self._server: _SandboxServer | None = None
        self._threads: list[threading.Thread] = []

    # --- lifecycle ---

    def start(self) -> Self:
        if self._server is not None or self._stopping.is_set():
            raise RuntimeError("a GraphSandbox starts once")
        self._server = _SandboxServer(self._requested_port, self)
        self._threads = [
            # A short poll keeps stop() fast, which adds up over a test suite that starts one per test.
            threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, name="graph-sandbox", daemon=True
            ),
            threading.Thread(target=self._deliver_webhooks, name="graph-sandbox-webhooks", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        if self._stopping.is_set():
            return
        self._stopping.set()
        with contextlib.suppress(queue.Full):  # a full queue is seen by the worker's timeout instead
            self._echo_queue.put_nowait(None)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the sandbox is not started")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    # --- configuration and inspection ---

    def add_account(
        self,
        account_id: str,
        access_token: str,
        *,
        username: str | None = None,
        issued_at: float | None = None,
        expires_in: float = LONG_LIVED_SECONDS,
    ) -> None:
        """Register a long-lived token for an account, issued at `issued_at` (default now()) and expiring
        `expires_in` seconds later. An account may hold several (an old and a refreshed one). The first call
        for an account creates its profile (username default user_<last 4 digits>), subscribed to nothing.
        """
        self._identity.add_account(
            account_id, access_token, username=username, issued_at=issued_at, expires_in=expires_in
        )

    def add_login(self, account_id: str, username: str) -> None:
        """An Instagram professional account a person can log in as on the consent page (/oauth/authorize)."""
        self._identity.add_login(account_id, username)

    def now(self) -> float:
        """The sandbox clock: clock() plus every advance()."""
        return self._identity.now()

    def advance(self, seconds: float) -> None:
        """Move the sandbox clock forward, ageing every token and authorization code."""
        self._identity.advance(seconds)

    def revoke(self, account_id: str) -> None:
        """Revoke every token of the account, as a password reset does: they answer 190/460 from now on."""
        self._identity.revoke(account_id)

    def unsubscribe(self, account_id: str) -> None:
        """Drop every subscribed field of the account, as Meta does after about an hour of failed webhooks."""
        self._identity.unsubscribe(account_id)

    def subscribed_fields(self, account_id: str) -> list[str]:
        return self._identity.subscribed_fields(account_id)

    def tokens_of(self, account_id: str) -> list[TokenInfo]:
        return self._identity.tokens_of(account_id)

    def inject(
        self,
        kind: str,
        count: int = 1,
        *,
        status: int | None = None,
        code: int | None = None,
        subcode: int | None = None,
        message: str | None = None,
        delay: float | None = None,
        deliver: bool = False,
        account_id: str | None = None,
        endpoint: str = "messages",
    ) -> None:
        """Queue a fault for the next `count` sends (of `account_id`, if given) that pass auth and validation.

        Faults are used first in, first out. A `deliver` fault (timeout, invalid_json_reply) records the send
        and queues its echo before answering, whatever the rate window holds: it models a message Meta did
        deliver while the caller saw a failure.

        With another `endpoint` (refresh, exchange, code_exchange, me, subscribed_apps) the fault hits only
        that endpoint, with kind http_5xx, error, throttle or timeout (a delay, then a 5xx), and changes no
        state: `me` and `subscribed_apps` faults fire after the token is accepted, the others on any request.
        """
        if endpoint not in FAULT_ENDPOINTS:
            raise ValueError(f"endpoint must be one of {', '.join(FAULT_ENDPOINTS)}")
        kinds = FAULT_KINDS if endpoint == "messages" else IDENTITY_FAULT_KINDS
        if kind not in kinds:
            raise ValueError(f"kind must be one of {', '.join(kinds)}")
        _check_int("count", count, low=1)
        for name, value in (("status", status), ("code", code), ("subcode", subcode)):
            if value is not None:
                _check_int(name, value, low=100 if name == "status" else 0, high=599 if name == "status" else None)
        if message is not None and not isinstance(message, str):
            raise ValueError("message must be a string")
        if delay is not None and (isinstance(delay, bool) or not isinstance(delay, int | float) or delay < 0):
            raise ValueError("delay must be a non-negative number of seconds")
        if not isinstance(deliver, bool):
            raise ValueError("deliver must be true or false")
        if deliver and kind not in ("timeout", "invalid_json_reply"):
            raise ValueError("deliver applies to the timeout and invalid_json_reply faults only")
        if deliver and endpoint != "messages":
            raise ValueError("deliver applies to the messages endpoint only")
        if account_id is not None and not isinstance(account_id, str):
            raise ValueError("account_id must be a string")
        fault = _Fault(
            kind,
            count,
            status,
            code,
            subcode,
            message,
            None if delay is None else float(delay),
            deliver,
            account_id,
            endpoint,
        )
        with self._lock:
            self._faults.append(fault)

    def reset(self) -> None:
        """Forget faults, requests, sent messages, rate windows and echo failures.

        Accounts, their tokens and subscriptions, and the clock stay.
        """
        with self._lock:
            self._faults.clear()
            self._requests.clear()
            self._sent.clear()
            self._windows.clear()
            self._echo_failures = 0

    @property
    def sent(self) -> list[SentMessage]:
        with self._lock:
            return list(self._sent)

    @property
    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._requests)

    @property
    def echo_failures(self) -> int:
        with self._lock:
            return self._echo_failures

    def wait_for_sent(self, n: int, timeout: float = 5.0) -> list[SentMessage]:
        """Wait until at least `n` sends are recorded and return them all; TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self._sent) < n:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{len(self._sent)} sends recorded after {timeout} s, wanted {n}")
                self._changed.wait(remaining)
            return list(self._sent)

    def drain_webhooks(self, timeout: float = 5.0) -> None:
        """Wait until every queued webhook is delivered or dropped; TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._pending_webhooks:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{self._pending_webhooks} webhooks still queued after {timeout} s")
                self._changed.wait(remaining)

    def send_read(self, account_id: str, igsid: str, mid: str) -> None:
        """Have the customer `igsid` read message `mid`: Meta's messaging_seen webhook (fact sheet §4.5)."""
        if self.webhook_url is None:
            raise RuntimeError("send_read needs a webhook_url")
        for name, value in (("account_id", account_id), ("igsid", igsid), ("mid", mid)):
            if not isinstance(value, str) or not value:
                raise ValueError(f"{name} must be a non-empty string")
        event = {"sender": {"id": igsid}, "recipient": {"id": account_id}, "timestamp": _now_ms(), "read": {"mid": mid}}
        self._enqueue_webhook(account_id, event)

    # --- request handling ---

    def _dispatch(self, method: str, target: str, headers: Message, raw: bytes) -> _Reply:
        parts = urlsplit(target)
        if not self._host_allowed(headers.get("Host")):
            # A page in a browser can reach 127.0.0.1 through DNS rebinding; its Host header gives it away.
            return _Reply(403, {"error": "Host must be 127.0.0.1 or localhost"}, {})
        if parts.path.startswith("/__sandbox/"):
            return self._control(method, parts.path, headers, raw)
        return self._graph(method, parts.path, parse_qs(parts.query), headers, raw)

    def _host_allowed(self, host: str | None) -> bool:
        if not host:
            return False
        name, _, port = host.rpartition(":") if host.count(":") == 1 else (host, "", "")
        return name in LOOPBACK_HOSTS and port in ("", str(self.port))

    def _graph(self, method: str, path: str, query: dict[str, list[str]], headers: Message, raw: bytes) -> _Reply:
        via_url_token = "access_token" in query
        route = identity_route(method, path)
        if route is None:
            reply, account_id, body = self._send_request(method, path, query, headers, raw)
        else:
            reply, account_id, body = self._identity_request(route, query, headers, raw)
        error_code, error_subcode = _error_codes(reply.body) if reply.status >= 400 else (None, None)
        record = RequestRecord(
            at=time.time(),
            method=method,
            path=path,
            account_id=account_id,
            status=reply.status,
            error_code=error_code,
            error_subcode=error_subcode,
            via_url_token=via_url_token,
            body=body,
        )
        with self._changed:
            self._requests.append(record)
            self._changed.notify_all()
        return reply

    def _send_request(
        self, method: str, path: str, query: dict[str, list[str]], headers: Message, raw: bytes
    ) -> tuple[_Reply, str | None, Any]:
        via_url_token = "access_token" in query
        body: Any = None
        account_id: str | None = None
        try:
            match = _SEND_PATH.fullmatch(path)
            if method != "POST" or match is None:
                raise GraphError(404, 2500, f"Unknown path components: {path}", error_type="OAuthException")
            account_id = self._authenticate(headers.get("Authorization"), query)
            ig_id = match.group(2)
            if ig_id not in ("me", account_id):
                raise GraphError(
                    400,
                    100,
                    f"Unsupported post request. Object with ID '{ig_id}' does not exist, cannot be "
                    "loaded due to missing permissions, or does not support this operation",
                    subcode=33,
                    error_type="GraphMethodException",
                )
            try:
                body = json.loads(raw)
            except (ValueError, RecursionError):
                raise _invalid("The request body must be a JSON object") from None
            validate_send(body)
            reply = self._send(account_id, body, via_url_token)
        except GraphError as error:
            reply = _Reply(error.status, error.body(), error.headers)
        return reply, account_id, body

    def _identity_request(
        self, route: Route, query: dict[str, list[str]], headers: Message, raw: bytes
    ) -> tuple[_Reply, str | None, Any]:
        # The log keeps what the answer says it may (subscribed fields at most): never a code, secret or token.
        account_id: str | None = None
        try:
            if route.endpoint in ("me", "subscribed_apps"):
                account_id = self._authenticate(headers.get("Authorization"), query)
                self._identity.check_node(route.node, account_id, route.method)
            elif route.endpoint in ("exchange", "refresh"):
                token = query.get("access_token")
                account_id = self._identity.owner_of(token[0] if token else None)
            if route.endpoint != "authorize":
                with self._lock:
                    fault = self._take_fault(account_id, route.endpoint)
                if fault is not None:
                    return self._identity_fault_reply(fault, route.endpoint, account_id), account_id, None
            answer = self._identity.answer(
                route, query=query, content_type=headers.get("Content-Type", ""), raw=raw, account_id=account_id
            )
        except (IdentityError, GraphError) as refusal:
            error = _graph_error(refusal) if isinstance(refusal, IdentityError) else refusal
            return _Reply(error.status, error.body(), error.headers), account_id, None
        return _reply_of(answer), answer.account_id or account_id, answer.record

    def _identity_fault_reply(self, fault: _Fault, endpoint: str, account_id: str | None) -> _Reply:
        reply = self._fault_reply(fault, account_id or self._identity.app_id, {}, 0)
        if endpoint != "code_exchange" or not isinstance(reply.body, dict):
            return reply
        # api.instagram.com answers its OAuth errors flat (fact sheet §9).
        error = reply.body["error"]
        flat = {"error_type": error["type"], "code": error["code"], "error_message": error["message"]}
        return _Reply(reply.status, flat, reply.headers, reply.delay)

    def _authenticate(self, authorization: str | None, query: dict[str, list[str]]) -> str:
        token: str | None = None
        if authorization is not None:
            scheme, _, value = authorization.strip().partition(" ")
            if scheme.lower() == "bearer" and value.strip():
                token = value.strip()
        elif query.get("access_token"):
            token = query["access_token"][0]
        try:
            # Unknown: 401/190. Expired: 400/190/463. Revoked: 400/190/460 (fact sheet §8).
            return self._identity.account_for(token)
        except IdentityError as error:
            raise _graph_error(error) from None

    def _send(self, account_id: str, body: dict[str, Any], via_url_token: bool) -> _Reply:
        recipient = body["recipient"]
        recipient_id = recipient["id"] if "id" in recipient else igsid_for_comment(recipient["comment_id"])
        is_message = "message" in body
        bucket = _rate_bucket(body)
        limit = self.media_rate_per_second if bucket == "media" else self.text_rate_per_second
        with self._changed:
            fault = self._take_fault(account_id)
            now = time.monotonic()
            window = self._windows.setdefault((account_id, bucket), deque())
            while window and window[0] <= now - RATE_WINDOW_SECONDS:
                window.popleft()
            delivered = fault is None or fault.deliver
            if fault is None and len(window) >= limit:
                raise GraphError(
                    400, 80002, RATE_LIMIT_MESSAGE, is_transient=True, headers=usage_header(account_id, 100)
                )
            message_id = f"m_{secrets.token_urlsafe(24)}" if is_message else None
            if delivered:
                window.append(now)
                self._sent.append(SentMessage(account_id, body, message_id, time.time(), via_url_token))
                self._changed.notify_all()
            call_count = min(100, len(window) * 100 // limit)
        if delivered and message_id is not None and self.webhook_url is not None:
            event = {
                "sender": {"id": account_id},
                "recipient": {"id": recipient_id},
                "timestamp": _now_ms(),
                "message": echo_message(
                    message_id, body["message"], app_id=self.echo_app_id, with_metadata=self.echo_metadata
                ),
            }
            self._enqueue_webhook(account_id, event)
        success: dict[str, Any] = {"recipient_id": recipient_id}
        if message_id is not None:
            success["message_id"] = message_id
        if fault is None:
            return _Reply(200, success, usage_header(account_id, call_count))
        return self._fault_reply(fault, account_id, success, call_count)

    def _take_fault(self, account_id: str | None, endpoint: str = "messages") -> _Fault | None:
        for index, fault in enumerate(self._faults):
            if fault.endpoint == endpoint and fault.account_id in (None, account_id):
                fault.remaining -= 1
                if fault.remaining == 0:
                    del self._faults[index]
                return fault
        return None

    def _fault_reply(self, fault: _Fault, account_id: str, success: dict[str, Any], call_count: int) -> _Reply:
        delay = fault.delay or 0.0
        if fault.kind == "timeout":
            delay = DEFAULT_TIMEOUT_DELAY if fault.delay is None else fault.delay
            if fault.deliver:
                # Whoever is still waiting after the delay learns that the send went through.
                return _Reply(200, success, usage_header(account_id, call_count), delay)
            error = GraphError(
                fault.status or 500,
                fault.code or 2,
                fault.message or UNEXPECTED_ERROR_MESSAGE,
                subcode=fault.subcode,
                is_transient=True,
            )
        elif fault.kind == "http_5xx":
            error = GraphError(
                fault.status or 500,
                fault.code or 2,
                fault.message or UNEXPECTED_ERROR_MESSAGE,
                subcode=fault.subcode,
                is_transient=True,
            )
        elif fault.kind == "throttle":
            code = fault.code or 4
            message = fault.message or THROTTLE_MESSAGES.get(code, f"(#{code}) Rate limit reached")
            headers = (
                {"X-App-Usage": json.dumps({"call_count": 100, "total_cputime": 25, "total_time": 50})}
                if code == 4
                else usage_header(account_id, 100)
            )
            error = GraphError(
                fault.status or 400, code, message, subcode=fault.subcode, is_transient=True, headers=headers
            )
        elif fault.kind == "invalid_json_reply":
            error = GraphError(
                fault.status or 500,
                fault.code or 1,
                fault.message or "Received Invalid JSON reply.",
                subcode=fault.subcode if fault.subcode is not None else 1357046,
            )
        else:
            error = GraphError(
                fault.status or 400,
                fault.code if fault.code is not None else 1,
                fault.message or "An unknown error has occurred.",
                subcode=fault.subcode,
            )
        return _Reply(error.status, error.body(), error.headers, delay)

    def _control(self, method: str, path: str, headers: Message, raw: bytes) -> _Reply:
        if method == "GET" and path == "/__sandbox/sent":
            with self._lock:
                sent = [asdict(item) for item in self._sent]
                logged = [asdict(item) for item in self._requests]
            return _Reply(200, {"sent": sent, "requests": logged}, {})
        if method == "GET" and path == "/__sandbox/clock":
            return _Reply(200, {"now": self.now()}, {})
        if method == "GET" and path == "/__sandbox/accounts":
            return _Reply(200, {"accounts": self._identity.accounts()}, {})
        actions: dict[str, Callable[..., dict[str, Any] | None]] = {
            "/__sandbox/faults": self.inject,
            "/__sandbox/read": self.send_read,
            "/__sandbox/clock": self._advance_clock,
            "/__sandbox/revoke": self.revoke,
            "/__sandbox/unsubscribe": self.unsubscribe,
        }
        if method != "POST" or (path not in actions and path != "/__sandbox/reset"):
            return _Reply(404, {"error": f"no route {method} {path}"}, {})
        # A browser cannot send this content type cross-origin without a preflight, which is never answered.
        if headers.get("Content-Type", "").split(";")[0].strip().lower() != "application/json":
            return _Reply(415, {"error": "Content-Type must be application/json"}, {})
        if path == "/__sandbox/reset":
            self.reset()
            return _Reply(200, {"ok": True}, {})
        try:
            fields = json.loads(raw)
        except (ValueError, RecursionError):
            return _Reply(400, {"error": "the body must be a JSON object"}, {})
        if not isinstance(fields, dict):
            return _Reply(400, {"error": "the body must be a JSON object"}, {})
        try:
            answer = actions[path](**fields)
        except (TypeError, ValueError, RuntimeError) as exc:
            return _Reply(400, {"error": str(exc)}, {})
        return _Reply(200, answer if answer is not None else {"ok": True}, {})

    def _advance_clock(self, advance_seconds: float) -> dict[str, Any]:
        return {"now": self._identity.advance(advance_seconds)}

    # --- webhook delivery ---

    def _enqueue_webhook(self, account_id: str, event: dict[str, Any]) -> None:
        delivery = _Delivery(time.monotonic() + self.echo_delay_seconds, account_id, event)
        with self._lock:
            self._pending_webhooks += 1
        try:
            # Never block a Send API answer on webhook delivery: Meta does not either.
            self._echo_queue.put_nowait(delivery)
        except queue.Full:
            self._finish_webhook(delivered=False)

    def _finish_webhook(self, *, delivered: bool) -> None:
        with self._changed:
            self._pending_webhooks -= 1
            if not delivered:
                self._echo_failures += 1
            self._changed.notify_all()

    def _deliver_webhooks(self) -> None:
        session = Session()
        # Loopback only: a proxy from the environment must not see (or break) these requests.
        session.trust_env = False
        try:
            while not self._stopping.is_set():
                try:
                    delivery = self._echo_queue.get(timeout=0.5)
                except queue.Empty:
                    continue
                if delivery is None:
                    return
                wait = delivery.due - time.monotonic()
                if wait > 0 and self._stopping.wait(wait):
                    return
                self._finish_webhook(delivered=self._post_webhook(session, delivery))
        finally:
            session.close()

    def _post_webhook(self, session: Session, delivery: _Delivery) -> bool:
        assert self.webhook_url is not None and self._app_secret is not None
        # Built once, so every retry carries the same bytes and signature, as Meta's retries do.
        raw = webhook_body(delivery.account_id, delivery.event)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": WEBHOOK_USER_AGENT,
            "X-Hub-Signature-256": sign(raw, self._app_secret),
        }
        for backoff in (*self.ECHO_RETRY_BACKOFF, None):
            try:
                response = session.post(
                    self.webhook_url,
                    data=raw,
                    headers=headers,
                    timeout=self.WEBHOOK_TIMEOUT_SECONDS,
                    allow_redirects=False,
                )
                response.close()
                if 200 <= response.status_code < 300:
                    return True
            except RequestException:
                pass
            if backoff is None or self._stopping.wait(backoff):
                return False
        return False


def _graph_error(error: IdentityError) -> GraphError:
    return GraphError(error.status, error.code, error.message, subcode=error.subcode, error_type=error.error_type)


def _reply_of(answer: Answer) -> _Reply:
    return _Reply(answer.status, answer.body, answer.headers, content_type=answer.content_type)


def _error_codes(body: dict[str, Any] | bytes) -> tuple[int | None, int | None]:
    """The code and subcode of an error answer: Graph's {"error": {...}}, or the flat OAuth shape."""
    if not isinstance(body, dict):
        return None, None
    error = body.get("error")
    if isinstance(error, dict):
        return error.get("code"), error.get("error_subcode")
    if "error_type" in body:
        return body.get("code"), None
    return None, None


def _check_int(name: str, value: Any, *, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        bound = f"{low} to {high}" if high is not None else f"at least {low}"
        raise ValueError(f"{name} must be an integer, {bound}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m local.graph_sandbox",
        description="A local stand-in for Meta's Instagram Graph API (Send API, Business Login), on 127.0.0.1.",
    )
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument(
        "--account",
        action="append",
        default=[],
        metavar="ACCOUNT_ID=TOKEN",
        help="an Instagram account and an access token for it (repeatable)",
    )
    parser.add_argument("--webhook-url", help="where echo and read webhooks go (a loopback http URL)")
    parser.add_argument("--app-secret", help="signs the webhooks (X-Hub-Signature-256)")
    parser.add_argument("--text-rate", type=int, default=100, help="text sends per second per account")
    parser.add_argument("--media-rate", type=int, default=10, help="audio/video sends per second per account")
    parser.add_argument("--echo-delay", type=float, default=0.0, help="seconds before an echo is posted")
    parser.add_argument(
        "--login",
        action="append",
        default=[],
        metavar="ID=USERNAME",
        help="an Instagram professional account to log in as on the consent page (repeatable)",
    )
    parser.add_argument("--app-id", default=DEFAULT_APP_ID, help="the Instagram app ID (OAuth client_id)")
    parser.add_argument(
        "--instagram-app-secret",
        default=DEFAULT_INSTAGRAM_APP_SECRET,
        help="the Instagram app secret the OAuth endpoints check",
    )
    args = parser.parse_args(argv)
    accounts = []
    for spec in args.account:
        account_id, sep, token = spec.partition("=")
        if not sep or not account_id or not token:
            parser.error("--account takes ACCOUNT_ID=TOKEN")  # not echoed: a typo may still hold a token
        accounts.append((account_id, token))
    logins = []
    for spec in args.login:
        account_id, sep, username = spec.partition("=")
        if not sep or not account_id or not username:
            parser.error(f"--login takes ID=USERNAME, got {spec!r}")
        logins.append((account_id, username))
    try:
        sandbox = GraphSandbox(
            port=args.port,
            webhook_url=args.webhook_url,
            app_secret=args.app_secret,
            text_rate_per_second=args.text_rate,
            media_rate_per_second=args.media_rate,
            echo_delay_seconds=args.echo_delay,
            app_id=args.app_id,
            instagram_app_secret=args.instagram_app_secret,
        )
    except ValueError as exc:
        parser.error(str(exc))
    for account_id, token in accounts:
        sandbox.add_account(account_id, token)
    for account_id, username in logins:
        sandbox.add_login(account_id, username)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        sandbox.start()
    except OSError as exc:
        raise SystemExit(f"cannot listen on {LOOPBACK}:{args.port}: {exc}") from exc
    # Account ids only: tokens stay out of terminals and CI logs.
    lines = [
        "Instagram Graph API sandbox (Send API, Business Login)",
        f"  send URL      {sandbox.base_url}/v24.0/<ig_id|me>/messages",
        f"  login page    {sandbox.base_url}/oauth/authorize?client_id={args.app_id}&redirect_uri=<loopback URL>"
        "&response_type=code&scope=instagram_business_basic,instagram_business_manage_messages",
        f"  tokens        {sandbox.base_url}/oauth/access_token, /access_token, /refresh_access_token",
        f"  profile       {sandbox.base_url}/v24.0/me?fields=user_id,username  and  /v24.0/me/subscribed_apps",
        f"  accounts      {', '.join(a for a, _ in accounts) or '(none: pass --account ID=TOKEN)'}",
        f"  logins        {', '.join(f'{a} ({u})' for a, u in logins) or '(none: the --account ones)'}",
        f"  webhooks to   {args.webhook_url or '(none)'}",
        f"  control       {sandbox.base_url}/__sandbox/{{faults,reset,read,sent,clock,revoke,unsubscribe,accounts}}",
        "ready",
    ]
    print("\n".join(lines), flush=True)
    stop.wait()
    sandbox.stop()
    print("stopped", flush=True)


if __name__ == "__main__":
    main()
