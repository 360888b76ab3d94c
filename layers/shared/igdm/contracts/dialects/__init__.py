"""The seed vendors' own request formats (Webex Connect, Sinch, CM.com), translated into the gateway's outbound
contract, and their status reports built from the gateway's message_status events (docs/migrating.md).

Each dialect module has the same four functions:

  messages(body, key)     the vendor's request -> outbound messages (dicts of the outbound contract), in order;
                          `key` is the idempotency key (several messages get key.1, key.2, ...). A request the
                          vendor would refuse, or that Instagram cannot show, raises DialectError naming the
                          vendor's own field.
  accepted(messages, now) the vendor's answer to an accepted request: (HTTP status, body)
  refused(reason, status) the vendor's body for a refusal with that HTTP status (400, 401, 403, 413, 429, 503)
  status_report(status)   a message_status event (its `status` part and ids) -> the vendor's status report

The translation never drops what Instagram cannot show: it is transcoded as the vendor documents it (a location
becomes a maps link, a Sinch file that is no known media a text with its URL) or refused by name.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

WEBEX_CONNECT, SINCH, CM = "webex-connect", "sinch", "cm"
DIALECTS = (WEBEX_CONNECT, SINCH, CM)
DIALECT_ATTRIBUTE = "dialect"  # the outbound queue's message attribute naming a vendor body's dialect


class DialectError(ValueError):
    """The vendor's request cannot be sent: its reason names the vendor's field."""


@dataclass(frozen=True)
class Dialect:
    name: str
    messages: Callable[[Any, str], list[dict[str, Any]]]
    accepted: Callable[[list[dict[str, Any]], datetime], tuple[int, dict[str, Any]]]
    refused: Callable[[str, int], dict[str, Any]]
    status_report: Callable[[dict[str, Any]], dict[str, Any]]


def dialect(name: str) -> Dialect:
    """The dialect of that name (KeyError for another): imported when first used, so no function pays for the
    vendors it never sees."""
    if name == WEBEX_CONNECT:
        from igdm.contracts.dialects import webex_connect as module
    elif name == SINCH:
        from igdm.contracts.dialects import sinch as module  # type: ignore[no-redef]
    elif name == CM:
        from igdm.contracts.dialects import cm as module  # type: ignore[no-redef]
    else:
        raise KeyError(name)
    return Dialect(name, module.messages, module.accepted, module.refused, module.status_report)


def keyed(messages: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """One message keeps the request's key; several get key.1, key.2, ... (each is its own send, once)."""
    if len(messages) == 1:
        return [{**messages[0], "idempotency_key": key}]
    return [{**message, "idempotency_key": f"{key}.{n}"} for n, message in enumerate(messages, 1)]


def account_of(sender: Any) -> str | None:
    """The vendor's sender field names the Instagram account when it holds one's id (digits); a vendor's own app
    id (Webex Connect's a_6379..., a Sinch app's ULID) names none: the key's account, or the stack's only one."""
    return sender if isinstance(sender, str) and sender.isdigit() and len(sender) <= 64 else None


def with_scheme(url: Any) -> Any:
    """A link without a scheme (Webex Connect's "www.google.com") is taken as https, as the vendors do."""
    if isinstance(url, str) and url and "://" not in url:
        return f"https://{url}"
    return url


def maps_url(latitude: float, longitude: float) -> str:
    """The same link the sender makes of a location message (sender.graph_requests)."""
    return f"https://www.google.com/maps/search/?api=1&query={quote(f'{latitude:.6f},{longitude:.6f}')}"


IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".ico", ".webp")
VIDEO_EXTENSIONS = (".mp4", ".ogg", ".avi", ".mov", ".webm")
AUDIO_EXTENSIONS = (".aac", ".m4a", ".wav", ".mp3")


def media_kind(url: str, mime_type: str | None = None) -> str | None:
    """image, video, audio or file for a media URL (by its MIME type when given, else its path's extension);
    None when neither says."""
    if mime_type:
        major = mime_type.split("/", 1)[0].lower()
        if major in ("image", "video", "audio"):
            return major
        if mime_type.lower() == "application/pdf":
            return "file"
    path = url.split("?", 1)[0].split("#", 1)[0].lower()
    for kind, extensions in (("image", IMAGE_EXTENSIONS), ("video", VIDEO_EXTENSIONS), ("audio", AUDIO_EXTENSIONS)):
        if path.endswith(extensions):
            return kind
    return "file" if path.endswith(".pdf") else None


def require(document: Any, name: str, where: str) -> Any:
    if not isinstance(document, dict) or document.get(name) in (None, "", [], {}):
        raise DialectError(f"{where}{name}: required")
    return document[name]


def object_at(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise DialectError(f"{where}: must be an object")
    return value


def list_at(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise DialectError(f"{where}: must be an array")
    return value


def only_known(document: dict[str, Any], known: frozenset[str], where: str) -> None:
    """A field the translation does not know is refused by name, never ignored: it may be what the caller
    meant to change the message."""
    unknown = sorted(set(document) - known)
    if unknown:
        raise DialectError(f"{where}{unknown[0]}: not a field this gateway knows for Instagram")
