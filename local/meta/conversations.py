"""Instagram's Conversations API for the Graph API sandbox (fact sheet §10; seed 003, "Instagram Conversations API
Guide"): the conversations the sandbox knows of, and the GET calls that read them.

A conversation is one account and one customer (IGSID). Its messages are those the sandbox saw: every message the
Send API accepted (a private reply to the IGSID `igsid_for_comment` gives), and those `GraphSandbox.customer_says`
and `business_says` originate. A message's id is the `mid` its webhook carries and the Send API answers as
`message_id`; every mid the sandbox makes starts with `m_`, which is how its path is told from an account's.

  GET /<v>/<IG_ID|me>/conversations?platform=instagram[&user_id=<IGSID>][&limit=][&after=][&date_format=U]
  GET /<v>/<CONVERSATION_ID>?fields=messages[,id,updated_time,participants][&limit=][&after=][&date_format=U]
  GET /<v>/<CONVERSATION_ID>/messages[?limit=][&after=][&date_format=U]   (where a nested page's paging.next leads)
  GET /<v>/<MESSAGE_ID>?fields=id,created_time,from,to,message,attachments[&date_format=U]

Meta's documented limits hold: details for the 20 most recent messages of a conversation only; a conversation in the
Requests folder is not returned once its last message is 30 days old; 2 calls per second per account (over a sliding
second of the sandbox clock, answered, by the sandbox's choice, as the Send API's per-account limit: 400, code 80002).
Times are Graph's ISO form (2026-01-02T03:04:05+0000), or Unix seconds with date_format=U. Where Meta's wording is
not documented, the message is constructed and marked so. This module holds the state and the rules, under the lock
it is given, and never touches the network.
"""

import base64
import binascii
import bisect
import json
import math
import re
import secrets
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from local.meta.answers import RATE_LIMIT_MESSAGE, GraphError, Reply, usage_header
from local.meta.webhooks import echo_message

CONVERSATION_ID_PREFIX = "ig_conversation:"
MESSAGE_ID_PREFIX = "m_"
MOST_RECENT_WITH_DETAILS = 20
DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 100
REQUESTS_FOLDER_INACTIVE_SECONDS = 30 * 86_400
RATE_WINDOW_SECONDS = 1.0
MESSAGE_FIELDS = ("id", "created_time", "from", "to", "message", "attachments", "is_unsupported")
# Fields of Meta's Message node the sandbox never has a value for: asked for, they are left out, as Graph leaves
# out a field without a value.
MESSAGE_FIELDS_WITHOUT_VALUE = ("reply_to", "shares", "story", "reactions")
MESSAGE_DEFAULT_FIELDS = ("id", "created_time")
CONVERSATION_FIELDS = ("id", "updated_time", "messages", "participants")
# Constructed: Meta documents the error ("the message has been deleted"), not its wording.
OLDER_THAN_MOST_RECENT_MESSAGE = (
    "(#100) This message has been deleted or is older than the 20 most recent messages of its conversation"
)

_VERSION = r"v\d+\.\d+"
_CONVERSATIONS_PATH = re.compile(rf"/({_VERSION})/([^/]+)/conversations")
_MESSAGES_EDGE_PATH = re.compile(rf"/({_VERSION})/([^/]+)/messages")
_NODE_PATH = re.compile(rf"/({_VERSION})/([^/]+)")
# Graph attachment data by the kind of what was sent; a share, sticker or like_heart comes back as an image URL.
_ATTACHMENT_KINDS = {"video": "video", "audio": "audio", "file": "file"}

type Order = tuple[float, int]


@dataclass(frozen=True)
class Read:
    """Which Conversations API call a request is: `conversations` (an account's list), `conversation` (a node),
    `messages` (a conversation's messages edge) or `message`; `node` is the id in the path."""

    call: str
    version: str
    node: str


def route(method: str, path: str) -> Read | None:
    """The Conversations API call for this request, or None (identity, the Send API, or an unknown path)."""
    if method != "GET":
        return None
    if match := _CONVERSATIONS_PATH.fullmatch(path):
        return Read("conversations", match.group(1), match.group(2))
    if (match := _MESSAGES_EDGE_PATH.fullmatch(path)) and parse_conversation_id(match.group(2)) is not None:
        return Read("messages", match.group(1), match.group(2))
    if match := _NODE_PATH.fullmatch(path):
        node = match.group(2)
        if parse_conversation_id(node) is not None:
            return Read("conversation", match.group(1), node)
        if node.startswith(MESSAGE_ID_PREFIX):
            return Read("message", match.group(1), node)
    return None


def conversation_id(account_id: str, igsid: str) -> str:
    """The conversation's id: deterministic, opaque, URL-safe (base64 without padding, as Meta's look)."""
    raw = f"{CONVERSATION_ID_PREFIX}{account_id}:{igsid}".encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def parse_conversation_id(value: str) -> tuple[str, str] | None:
    """The (account, IGSID) a conversation id names, or None when `value` is not one the sandbox makes."""
    try:
        decoded = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if not decoded.startswith(CONVERSATION_ID_PREFIX):
        return None
    account_id, _, igsid = decoded.removeprefix(CONVERSATION_ID_PREFIX).partition(":")
    # The decoder skips characters outside the alphabet: only the exact spelling names the conversation.
    if not account_id or not igsid or conversation_id(account_id, igsid) != value:
        return None
    return account_id, igsid


def new_message_id() -> str:
    return f"{MESSAGE_ID_PREFIX}{secrets.token_urlsafe(24)}"


def graph_time(at: float, *, unix: bool) -> str | int:
    """A time as Graph answers it: ISO with +0000 by default, integer Unix seconds with date_format=U."""
    if unix:
        return math.floor(at)
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


@dataclass(frozen=True)
class Participant:
    id: str
    username: str

    def graph(self) -> dict[str, str]:
        return {"username": self.username, "id": self.id}


@dataclass(frozen=True)
class Attachment:
    kind: str  # image | video | audio | file
    url: str

    def graph(self) -> dict[str, Any]:
        if self.kind == "image":
            return {"image_data": {"url": self.url}}
        if self.kind == "video":
            return {"video_data": {"url": self.url}}
        return {"file_url": self.url}


@dataclass(frozen=True)
class StoredMessage:
    """A message of a conversation; `sequence` (arrival order) breaks ties between equal created_times."""

    mid: str
    created_time: float  # the sandbox clock, seconds
    sender: Participant
    recipient: Participant
    text: str | None
    attachments: tuple[Attachment, ...]
    sequence: int

    @property
    def order(self) -> Order:
        return (self.created_time, self.sequence)

    @property
    def timestamp_ms(self) -> int:
        """The webhook's `timestamp`: the same moment as created_time."""
        return math.floor(self.created_time * 1000)

    def inspection(self) -> dict[str, Any]:
        return {
            "mid": self.mid,
            "created_time": self.created_time,
            "from": self.sender.graph(),
            "to": self.recipient.graph(),
            "text": self.text,
            "attachments": [{"kind": a.kind, "url": a.url} for a in self.attachments],
        }


@dataclass
class _Conversation:
    id: str
    account: Participant
    customer: Participant
    in_requests_folder: bool
    messages: list[StoredMessage] = field(default_factory=list)  # oldest first

    @property
    def newest(self) -> StoredMessage:
        return self.messages[-1]

    def visible(self, now: float) -> bool:
        # "Conversations in the Requests folder that have not been active for 30 days will not be returned."
        return not (self.in_requests_folder and now - self.newest.created_time >= REQUESTS_FOLDER_INACTIVE_SECONDS)


def sent_content(message: dict[str, Any]) -> tuple[str | None, tuple[Attachment, ...]]:
    """The text and attachments a Send API `message` leaves in its conversation (templates leave no URL)."""
    echoed = echo_message("", message)  # the URLs Meta reports for what was sent, CDN ones included
    attachments = tuple(
        Attachment(_ATTACHMENT_KINDS.get(item["type"], "image"), item["payload"]["url"])
        for item in echoed.get("attachments", ())
        if "url" in item["payload"]
    )
    return echoed.get("text"), attachments


def check_participants(account_id: Any, igsid: Any) -> None:
    for name, value in (("account_id", account_id), ("igsid", igsid)):
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name} must be a non-empty string")


def customer_content(
    text: Any, attachment_url: Any, username: Any, requests_folder: Any
) -> tuple[str | None, tuple[Attachment, ...]]:
    """Check a customer's message (text, an image URL, or both) and how it comes; its text and attachments."""
    if username is not None and (not isinstance(username, str) or not username):
        raise ValueError("username must be a non-empty string")
    if not isinstance(requests_folder, bool):
        raise ValueError("requests_folder must be true or false")
    if text is not None and (not isinstance(text, str) or not text):
        raise ValueError("text must be a non-empty string")
    if attachment_url is not None and (
        not isinstance(attachment_url, str) or not re.match(r"https?://[^/\s]+", attachment_url)
    ):
        raise ValueError("attachment_url must be an http(s) URL")
    if text is None and attachment_url is None:
        raise ValueError("a customer's message needs text, an attachment_url, or both")
    attachments = (Attachment("image", attachment_url),) if attachment_url is not None else ()
    return text, attachments


def customer_webhook_event(message: StoredMessage) -> dict[str, Any]:
    """Meta's webhook for a message the customer sent (fact sheet §4): the same envelope the echoes use."""
    content: dict[str, Any] = {"mid": message.mid}
    if message.text is not None:
        content["text"] = message.text
    if message.attachments:
        content["attachments"] = [{"type": a.kind, "payload": {"url": a.url}} for a in message.attachments]
    return {
        "sender": {"id": message.sender.id},
        "recipient": {"id": message.recipient.id},
        "timestamp": message.timestamp_ms,
        "message": content,
    }


def app_echo_event(message: StoredMessage) -> dict[str, Any]:
    """The echo of a message a person sent from the Instagram app: no app_id (no app sent it), no metadata."""
    return {
        "sender": {"id": message.sender.id},
        "recipient": {"id": message.recipient.id},
        "timestamp": message.timestamp_ms,
        "message": echo_message(message.mid, {"text": message.text}, app_id=None, with_metadata=False),
    }


class Conversations:
    """The conversations the sandbox knows of and the Conversations API over them; every method takes the lock."""

    def __init__(self, lock: threading.Lock, now: Callable[[], float], *, rate_per_second: int = 2) -> None:
        """`now` reads the sandbox clock and is called with the lock held."""
        if isinstance(rate_per_second, bool) or not isinstance(rate_per_second, int) or rate_per_second < 1:
            raise ValueError("conversations_rate_per_second must be an integer, at least 1")
        self._lock = lock
        self._now = now
        self.rate_per_second = rate_per_second
        self._conversations: dict[tuple[str, str], _Conversation] = {}
        self._conversation_of_mid: dict[str, tuple[str, str]] = {}
        self._windows: dict[str, deque[float]] = {}
        self._sequence = 0

    # --- the store ---

    def record(
        self,
        account: Participant,
        igsid: str,
        *,
        from_customer: bool,
        text: str | None,
        attachments: Iterable[Attachment] = (),
        customer_username: str | None = None,
        requests_folder: bool = False,
        mid: str | None = None,
    ) -> StoredMessage:
        """Add a message to the conversation of `account` and `igsid` (created on first use), dated now()."""
        with self._lock:
            key = (account.id, igsid)
            conversation = self._conversations.get(key)
            if conversation is None:
                customer = Participant(igsid, customer_username or f"customer_{igsid[-4:]}")
                conversation = _Conversation(conversation_id(account.id, igsid), account, customer, False)
                self._conversations[key] = conversation
            elif customer_username is not None:
                conversation.customer = Participant(igsid, customer_username)
            conversation.account = account  # its username as of now, for `participants`
            if not from_customer:
                conversation.in_requests_folder = False  # a reply moves the thread to the General folder (IG-SEND)
            elif requests_folder:
                conversation.in_requests_folder = True
            self._sequence += 1
            sender, recipient = (conversation.customer, account) if from_customer else (account, conversation.customer)
            message = StoredMessage(
                mid or new_message_id(), self._now(), sender, recipient, text, tuple(attachments), self._sequence
            )
            bisect.insort(conversation.messages, message, key=lambda m: m.order)
            self._conversation_of_mid[message.mid] = key
            return message

    def messages_of(self, account_id: str, igsid: str) -> list[StoredMessage]:
        """The conversation's messages, oldest first ([] if there is none)."""
        with self._lock:
            conversation = self._conversations.get((account_id, igsid))
            return list(conversation.messages) if conversation else []

    def inspection(self) -> list[dict[str, Any]]:
        """Every conversation, most recently updated first, for the control endpoint."""
        with self._lock:
            now = self._now()
            ordered = sorted(self._conversations.values(), key=lambda c: c.newest.order, reverse=True)
            return [
                {
                    "id": c.id,
                    "account_id": c.account.id,
                    "igsid": c.customer.id,
                    "username": c.customer.username,
                    "requests_folder": c.in_requests_folder,
                    "returned_by_api": c.visible(now),
                    "updated_time": c.newest.created_time,
                    "messages": [m.inspection() for m in c.messages],
                }
                for c in ordered
            ]

    def clear(self) -> None:
        with self._lock:
            self._conversations.clear()
            self._conversation_of_mid.clear()
            self._windows.clear()

    # --- the API ---

    def answer(self, read: Read, account_id: str, query: dict[str, list[str]], base_url: str) -> Reply:
        """Answer a call of the authenticated `account_id`; GraphError for a refusal or the rate limit."""
        call_count = self._admit(account_id)
        unix = _date_format(query)
        with self._lock:
            now = self._now()
            if read.call == "conversations":
                body = self._list(read, account_id, query, base_url, now, unix)
            elif read.call == "message":
                body = self._message(read.node, account_id, query, now, unix)
            else:
                conversation = self._owned_conversation(read.node, account_id, now)
                if read.call == "messages":
                    _fields(query, ("id", "created_time"), ("id", "created_time"), "Message")
                    base = f"{base_url}/{read.version}/{read.node}/messages"
                    body = _messages_page(conversation, query, base, _same_query(query), unix)
                else:
                    body = self._conversation(read, conversation, query, base_url, unix)
        return Reply(200, body, usage_header(account_id, call_count))

    def _admit(self, account_id: str) -> int:
        # A sliding second on the sandbox clock: a test with a fixed clock decides what "the same second" is.
        with self._lock:
            now = self._now()
            window = self._windows.setdefault(account_id, deque())
            while window and window[0] <= now - RATE_WINDOW_SECONDS:
                window.popleft()
            if len(window) >= self.rate_per_second:
                raise GraphError(
                    400, 80002, RATE_LIMIT_MESSAGE, is_transient=True, headers=usage_header(account_id, 100)
                )
            window.append(now)
            return min(100, len(window) * 100 // self.rate_per_second)

    def _list(
        self, read: Read, account_id: str, query: dict[str, list[str]], base_url: str, now: float, unix: bool
    ) -> dict[str, Any]:
        if read.node not in ("me", account_id):
            raise _unknown_object(read.node)
        platform = _first(query, "platform")
        if platform is None:
            raise _invalid("The parameter platform is required")  # constructed
        if platform != "instagram":
            raise _invalid("Param platform must be instagram")  # constructed: the only platform on this host
        visible = [c for c in self._conversations.values() if c.account.id == account_id and c.visible(now)]
        user_id = _first(query, "user_id")
        if user_id is not None:
            return {"data": [{"id": c.id} for c in visible if c.customer.id == user_id]}
        visible.sort(key=lambda c: c.newest.order, reverse=True)
        page, cursors, more = _page(visible, lambda c: c.newest.order, query)
        body: dict[str, Any] = {
            "data": [{"id": c.id, "updated_time": graph_time(c.newest.created_time, unix=unix)} for c in page]
        }
        base = f"{base_url}/{read.version}/{read.node}/conversations"
        return _with_paging(body, cursors, more, base, _same_query(query))

    def _owned_conversation(self, node: str, account_id: str, now: float) -> _Conversation:
        named = parse_conversation_id(node)
        conversation = self._conversations.get(named) if named else None
        # Another account's conversation is as unknown as one that does not exist, as Graph answers it.
        if conversation is None or conversation.account.id != account_id or not conversation.visible(now):
            raise _unknown_object(node)
        return conversation

    def _conversation(
        self, read: Read, conversation: _Conversation, query: dict[str, list[str]], base_url: str, unix: bool
    ) -> dict[str, Any]:
        body: dict[str, Any] = {}
        for name in _fields(query, CONVERSATION_FIELDS, ("id",), "Conversation"):
            if name == "messages":
                # Graph's nested paging.next leads to the edge, /<CONVERSATION_ID>/messages (restfb #687 shows one).
                base = f"{base_url}/{read.version}/{conversation.id}/messages"
                body["messages"] = _messages_page(conversation, query, base, _next_query(query), unix)
            elif name == "updated_time":
                body["updated_time"] = graph_time(conversation.newest.created_time, unix=unix)
            elif name == "participants":
                body["participants"] = {"data": [conversation.customer.graph(), conversation.account.graph()]}
        body["id"] = conversation.id  # Graph always answers the node's id
        return body

    def _message(
        self, mid: str, account_id: str, query: dict[str, list[str]], now: float, unix: bool
    ) -> dict[str, Any]:
        fields = _fields(query, MESSAGE_FIELDS + MESSAGE_FIELDS_WITHOUT_VALUE, MESSAGE_DEFAULT_FIELDS, "Message")
        key = self._conversation_of_mid.get(mid)
        conversation = self._conversations.get(key) if key else None
        if conversation is None or conversation.account.id != account_id or not conversation.visible(now):
            raise _unknown_object(mid)
        position = next(i for i, m in enumerate(conversation.messages) if m.mid == mid)
        if len(conversation.messages) - position > MOST_RECENT_WITH_DETAILS:
            raise GraphError(400, 100, OLDER_THAN_MOST_RECENT_MESSAGE, is_transient=False)
        message = conversation.messages[position]
        values: dict[str, Any] = {
            "created_time": graph_time(message.created_time, unix=unix),
            "from": message.sender.graph(),
            "to": {"data": [message.recipient.graph()]},
            "message": message.text or "",
            "is_unsupported": False,
        }
        if message.attachments:
            values["attachments"] = {"data": [a.graph() for a in message.attachments]}
        body = {name: values[name] for name in fields if name in values}
        body["id"] = message.mid  # Graph always answers the node's id
        return body


# --- paging and parameters -------------------------------------------------------------------------------------


def _messages_page(
    conversation: _Conversation,
    query: dict[str, list[str]],
    base: str,
    next_query: list[tuple[str, str]],
    unix: bool,
) -> dict[str, Any]:
    # Every message id, newest first: the 20-message limit is on details only.
    newest_first = conversation.messages[::-1]
    page, cursors, more = _page(newest_first, lambda m: m.order, query)
    body: dict[str, Any] = {
        "data": [{"id": m.mid, "created_time": graph_time(m.created_time, unix=unix)} for m in page]
    }
    return _with_paging(body, cursors, more, base, next_query)


def _page[T](
    newest_first: Sequence[T], order: Callable[[T], Order], query: dict[str, list[str]]
) -> tuple[list[T], dict[str, str] | None, bool]:
    """One page after the `after` cursor: the items, their cursors, and whether more remain."""
    limit = _limit(query)
    after = _first(query, "after")
    remaining = list(newest_first)
    if after is not None:
        position = _decode_cursor(after)
        # By position, not index: an item that moved to the top since the last page is not seen twice.
        remaining = [item for item in remaining if order(item) < position]
    page = remaining[:limit]
    cursors = {"before": _cursor(order(page[0])), "after": _cursor(order(page[-1]))} if page else None
    return page, cursors, len(remaining) > limit


def _with_paging(
    body: dict[str, Any], cursors: dict[str, str] | None, more: bool, base: str, query: list[tuple[str, str]]
) -> dict[str, Any]:
    if cursors is None:
        return body
    paging: dict[str, Any] = {"cursors": cursors}
    if more:
        paging["next"] = f"{base}?{urlencode([*query, ('after', cursors['after'])])}"
    body["paging"] = paging
    return body


def _same_query(query: dict[str, list[str]]) -> list[tuple[str, str]]:
    """The request's query without its cursor: what paging.next repeats (the access_token too, as Graph does)."""
    return [(name, value) for name, values in query.items() if name != "after" for value in values]


def _next_query(query: dict[str, list[str]]) -> list[tuple[str, str]]:
    """The query of a messages page's paging.next, on the edge: no `fields`, the page size spelled out."""
    kept = [(name, value) for name, value in _same_query(query) if name not in ("fields", "limit")]
    return [*kept, ("limit", str(_limit(query)))]


def _cursor(order: Order) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(order)).encode()).rstrip(b"=").decode("ascii")


def _decode_cursor(value: str) -> Order:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    except (binascii.Error, ValueError, RecursionError):
        decoded = None
    if (
        isinstance(decoded, list)
        and len(decoded) == 2
        and isinstance(decoded[0], int | float)
        and isinstance(decoded[1], int)
        and not isinstance(decoded[1], bool)
    ):
        return (float(decoded[0]), decoded[1])
    raise _invalid("Param after is not a cursor this endpoint gave")  # constructed


def _limit(query: dict[str, list[str]]) -> int:
    value = _first(query, "limit")
    if value is None:
        return DEFAULT_PAGE_SIZE
    if not value.isdigit() or int(value) < 1:
        raise _invalid("Param limit must be a positive integer")  # constructed
    return min(int(value), MAX_PAGE_SIZE)


def _date_format(query: dict[str, list[str]]) -> bool:
    """Whether times are Unix seconds (date_format=U) rather than Graph's ISO form."""
    value = _first(query, "date_format")
    if value is None:
        return False
    if value != "U":
        raise _invalid("The sandbox answers date_format=U (Unix seconds) only")  # constructed: Graph takes more
    return True


def _fields(query: dict[str, list[str]], allowed: Sequence[str], default: Sequence[str], node_type: str) -> list[str]:
    value = _first(query, "fields")
    names = list(dict.fromkeys(n for n in re.split(r"[,\s]+", value) if n)) if value else list(default)
    for name in names:
        if name not in allowed:
            # Graph's wording for an unknown field; the node type's name on graph.instagram.com is approximate.
            raise _invalid(f"Tried accessing nonexisting field ({name}) on node type ({node_type})")
    return names


def _first(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def _invalid(message: str) -> GraphError:
    return GraphError(400, 100, f"(#100) {message}")


def _unknown_object(node: str) -> GraphError:
    return GraphError(
        400,
        100,
        f"Unsupported get request. Object with ID '{node}' does not exist, cannot be loaded due to missing "
        "permissions, or does not support this operation",
        subcode=33,
        error_type="GraphMethodException",
    )
