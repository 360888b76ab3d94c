"""Instagram's Conversations API (fact sheet §10; seed 003): an account's conversations, their message ids,
and a message's details. Graph answers times as ISO 8601 (`2026-01-02T03:04:05+0000`) or, with
`date_format=U`, Unix seconds: both are read. Every page is followed through `paging.next` as Meta gives it,
whatever page size Meta chose. Each call first calls ``pace``, which the service uses to keep Meta's 2 calls
per second per account and the run's call budget."""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from igdm.meta.instagram_login import InstagramLogin, LoginError

MESSAGE_FIELDS = "id,created_time,from,to,message,attachments"
GONE_CODE = 100  # details of a message older than its conversation's 20 most recent: "deleted"
# How Meta names an attachment's media in a message's details, and the kind the webhook would give it.
ATTACHMENT_KINDS = (("image_data", "image"), ("video_data", "video"), ("audio_data", "audio"), ("file_url", "file"))


class MessageGone(Exception):
    """Meta keeps the details of a conversation's 20 most recent messages only (it answers code 100)."""


@dataclass(frozen=True)
class Conversation:
    conversation_id: str
    updated_at: float  # epoch seconds


@dataclass(frozen=True)
class MessageRef:
    message_id: str
    created_at: float  # epoch seconds


@dataclass(frozen=True)
class MessageDetail:
    message_id: str
    created_at: float
    sender_id: str
    recipient_ids: tuple[str, ...]
    text: str | None
    attachments: tuple[tuple[str, str], ...]  # (kind, url)
    raw: dict[str, Any] = field(repr=False)


class ConversationsClient:
    def __init__(self, login: InstagramLogin) -> None:
        self._login = login

    def conversations(
        self, token: str, account_id: str, *, since: float, pace: Callable[[], None]
    ) -> Iterator[Conversation]:
        """The account's conversations updated at or after ``since``, newest first (Meta's order): paging
        stops at the first one older."""
        page = self._get(f"/{account_id}/conversations", token, pace, {"platform": "instagram"})
        while True:
            for item in _data(page):
                updated = _epoch(item.get("updated_time"))
                if not isinstance(item.get("id"), str) or updated is None:
                    continue
                if updated < since:
                    return
                yield Conversation(item["id"], updated)
            next_url = _next(page)
            if next_url is None:
                return
            page = self._get(next_url, token, pace)

    def conversation_with(
        self, token: str, account_id: str, customer_id: str, *, pace: Callable[[], None]
    ) -> str | None:
        """The id of the account's conversation with one customer (IGSID), None when Instagram has none."""
        page = self._get(f"/{account_id}/conversations", token, pace, {"platform": "instagram", "user_id": customer_id})
        return next((item["id"] for item in _data(page) if isinstance(item.get("id"), str)), None)

    def messages(
        self, token: str, conversation_id: str, *, pace: Callable[[], None], since: float | None = None
    ) -> list[MessageRef]:
        """Every message id of the conversation, newest first; with ``since``, paging stops at the first
        page that reaches older messages (the older ones of that page are returned too)."""
        document = self._get(f"/{conversation_id}", token, pace, {"fields": "messages"})
        page: dict[str, Any] = document["messages"] if isinstance(document.get("messages"), dict) else {}
        found: list[MessageRef] = []
        while True:
            for item in _data(page):
                created = _epoch(item.get("created_time"))
                if isinstance(item.get("id"), str) and created is not None:
                    found.append(MessageRef(item["id"], created))
            next_url = _next(page)
            if next_url is None or (since is not None and found and found[-1].created_at < since):
                return found
            page = self._get(next_url, token, pace)

    def message(self, token: str, message_id: str, *, pace: Callable[[], None]) -> MessageDetail:
        try:
            document = self._get(f"/{message_id}", token, pace, {"fields": MESSAGE_FIELDS})
        except LoginError as error:
            if error.code == GONE_CODE and not error.transient:
                raise MessageGone(error.detail) from None
            raise
        sender: dict[str, Any] = document["from"] if isinstance(document.get("from"), dict) else {}
        created = _epoch(document.get("created_time"))
        if not isinstance(sender.get("id"), str) or created is None:
            raise LoginError(f"message {message_id} answered without from or created_time")
        recipients = tuple(r["id"] for r in _data(document.get("to")) if isinstance(r.get("id"), str))
        text = document.get("message")
        return MessageDetail(
            message_id,
            created,
            sender["id"],
            recipients,
            text if isinstance(text, str) and text else None,
            tuple(_attachments(document.get("attachments"))),
            document,
        )

    def _get(
        self, path_or_url: str, token: str, pace: Callable[[], None], params: dict[str, str] | None = None
    ) -> dict[str, Any]:
        pace()
        return self._login.get(path_or_url, token=token, params=params)


def _data(page: Any) -> list[dict[str, Any]]:
    data = page.get("data") if isinstance(page, dict) else None
    return [item for item in data if isinstance(item, dict)] if isinstance(data, list) else []


def _next(page: Any) -> str | None:
    paging = page.get("paging") if isinstance(page, dict) else None
    link = paging.get("next") if isinstance(paging, dict) else None
    return link if isinstance(link, str) and link else None


def _epoch(value: Any) -> float | None:
    """Graph's times: Unix seconds (date_format=U, a number or digits) or ISO 8601 with a +0000 offset."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        if value.isdigit():
            return float(value)
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            return None
    return None


def _attachments(value: Any) -> Iterator[tuple[str, str]]:
    for item in _data(value):
        for name, kind in ATTACHMENT_KINDS:
            media = item.get(name)
            url = media.get("url") if isinstance(media, dict) else media
            if isinstance(url, str) and url:
                yield kind, url
                break
