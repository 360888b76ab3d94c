"""The webhooks the sandbox sends back, as Meta does: the is_echo of every message sent (fact sheet §4.1), the
customer's messages (§4) and messaging_seen (§4.5), signed with the app secret, posted by one worker in the
background (a Send API answer never waits on them), each retried with the same bytes and signature. Some can be
held back, as Meta sometimes never sends them, and delivered late (WebhookDrops)."""

import contextlib
import hashlib
import hmac
import json
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from requests import RequestException, Session

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost"})
ECHO_QUEUE_SIZE = 10_000
# Meta's webhook client; some receivers log or filter on it.
WEBHOOK_USER_AGENT = "facebookexternalua"


@dataclass(frozen=True)
class Delivery:
    due: float  # time.monotonic()
    account_id: str
    event: dict[str, Any]
    raw: bytes | None = None  # the body to post as is (a late delivery); built at posting time otherwise


@dataclass(frozen=True)
class HeldWebhook:
    """A webhook Meta never sent, with the body it would have posted, kept for a late delivery."""

    account_id: str
    event: dict[str, Any]
    raw: bytes


class WebhookDrops:
    """Webhooks Meta never sends: drop_next(n) holds back the next n of any kind; release() hands them over, in
    their original order, for a late delivery."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._remaining = 0
        self._held: list[HeldWebhook] = []

    def drop_next(self, count: int) -> None:
        """Hold back the next `count` webhooks (0 stops dropping); replaces any count still pending."""
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError("count must be an integer, at least 0")
        with self._lock:
            self._remaining = count

    def hold(self, account_id: str, event: dict[str, Any]) -> bool:
        """Keep this webhook instead of delivering it, if a drop is pending; whether it was kept."""
        with self._lock:
            if self._remaining == 0:
                return False
            self._remaining -= 1
            self._held.append(HeldWebhook(account_id, event, webhook_body(account_id, event)))
            return True

    @property
    def remaining(self) -> int:
        with self._lock:
            return self._remaining

    @property
    def held(self) -> list[HeldWebhook]:
        with self._lock:
            return list(self._held)

    def release(self) -> list[HeldWebhook]:
        with self._lock:
            held, self._held = self._held, []
            return held

    def clear(self) -> None:
        with self._lock:
            self._remaining = 0
            self._held.clear()


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
    envelope = {"object": "instagram", "entry": [{"id": account_id, "time": now_ms(), "messaging": [event]}]}
    # Compact and with non-ASCII escaped as lowercase \uXXXX, which is how Meta serialises what it signs.
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def sign(raw: bytes, app_secret: str) -> str:
    return "sha256=" + hmac.new(app_secret.encode(), raw, hashlib.sha256).hexdigest()


def now_ms() -> int:
    return int(time.time() * 1000)


class WebhookSender:
    """Posts webhooks to one loopback URL in the background: a bounded queue, one worker, each webhook
    delivered after its delay and retried with the same bytes and signature, as Meta's retries are."""

    # Waits between delivery attempts: one try, then one retry per item. Tests may shorten it.
    RETRY_BACKOFF: tuple[float, ...] = (0.05, 0.1, 0.2, 0.4, 0.8)
    TIMEOUT_SECONDS = 10.0

    def __init__(self, url: str, app_secret: str, stopping: threading.Event) -> None:
        self.url = validate_webhook_url(url)
        self._app_secret = app_secret
        self._stopping = stopping  # the sandbox's: set, it ends the worker and every wait
        self._changed = threading.Condition(threading.Lock())
        self._pending = 0
        self._failures = 0
        # None wakes the worker to stop.
        self._queue: queue.Queue[Delivery | None] = queue.Queue(maxsize=ECHO_QUEUE_SIZE)

    @property
    def failures(self) -> int:
        """Webhooks dropped: refused or unanswered through every retry, or with the queue full."""
        with self._changed:
            return self._failures

    def forget_failures(self) -> None:
        with self._changed:
            self._failures = 0

    def enqueue(
        self, account_id: str, event: dict[str, Any], delay_seconds: float, *, raw: bytes | None = None
    ) -> None:
        """Post `event` after `delay_seconds`; `raw` is the exact body to post, for a late delivery."""
        delivery = Delivery(time.monotonic() + delay_seconds, account_id, event, raw)
        with self._changed:
            self._pending += 1
        try:
            # Never block a Send API answer on webhook delivery: Meta does not either.
            self._queue.put_nowait(delivery)
        except queue.Full:
            self._finish(delivered=False)

    def drain(self, timeout: float) -> None:
        """Wait until every queued webhook is delivered or dropped; TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{self._pending} webhooks still queued after {timeout} s")
                self._changed.wait(remaining)

    def wake_to_stop(self) -> None:
        with contextlib.suppress(queue.Full):  # a full queue is seen by the worker's timeout instead
            self._queue.put_nowait(None)

    def run(self) -> None:
        """The worker: until the sandbox stops."""
        session = Session()
        # Loopback only: a proxy from the environment must not see (or break) these requests.
        session.trust_env = False
        try:
            while not self._stopping.is_set():
                try:
                    delivery = self._queue.get(timeout=0.5)
                except queue.Empty:
                    continue
                if delivery is None:
                    return
                wait = delivery.due - time.monotonic()
                if wait > 0 and self._stopping.wait(wait):
                    return
                self._finish(delivered=self._post(session, delivery))
        finally:
            session.close()

    def _finish(self, *, delivered: bool) -> None:
        with self._changed:
            self._pending -= 1
            if not delivered:
                self._failures += 1
            self._changed.notify_all()

    def _post(self, session: Session, delivery: Delivery) -> bool:
        # Built once, so every retry carries the same bytes and signature, as Meta's retries do.
        raw = delivery.raw if delivery.raw is not None else webhook_body(delivery.account_id, delivery.event)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": WEBHOOK_USER_AGENT,
            "X-Hub-Signature-256": sign(raw, self._app_secret),
        }
        for backoff in (*self.RETRY_BACKOFF, None):
            try:
                response = session.post(
                    self.url, data=raw, headers=headers, timeout=self.TIMEOUT_SECONDS, allow_redirects=False
                )
                response.close()
                if 200 <= response.status_code < 300:
                    return True
            except RequestException:
                pass
            if backoff is None or self._stopping.wait(backoff):
                return False
        return False
