"""A local stand-in for Meta's Instagram Graph API (Send API, Business Login, Conversations API), for the local
stack, tests, benches.

It answers `POST /<version>/<ig_id>/messages` and `POST /<version>/me/messages` (and the handover endpoints,
`/me/pass_thread_control`, `take_`, `release_` and `request_thread_control`, with `{"success": true}`) the way
graph.instagram.com does (see the Instagram platform fact sheet: §5 Send API, §7 rate limits, §8 error
object): bearer or `access_token` query auth, the documented body rules, Meta's error object, per-account
sliding-window rate limits with the `X-Business-Use-Case-Usage` header, and the `is_echo` webhook Meta
sends for every message the business sends, signed like a real webhook. Tests add failures on purpose
with `inject()` (or `POST /__sandbox/faults`), including the ambiguous ones (a timeout or a code
1/1357046 reply after the message was in fact delivered) that a sender must reconcile through the echo.

It also answers Business Login for Instagram (fact sheet §9, §11; the rules live in `local.meta.login`):
`GET|POST /oauth/authorize` (a consent page, then a redirect with a code), `POST /oauth/access_token`,
`GET /access_token` (ig_exchange_token), `GET /refresh_access_token`, `GET /<version>/<ig_id|me>` and
`GET|POST|DELETE /<version>/<ig_id|me>/subscribed_apps`. Tokens age on a clock the caller controls
(`clock=`, `advance()`), and the Send API refuses expired (190/463) and revoked (190/460) ones.

And it answers the Conversations API (fact sheet §10; the rules live in `local.meta.conversations`):
`GET /<version>/<ig_id|me>/conversations?platform=instagram`, `GET /<version>/<conversation_id>?fields=messages`
(and its `/messages` edge, where paging.next leads) and `GET /<version>/<message_id>?fields=...`, over every message
it saw: those the Send API accepted, and the customer's and the business's own, which `customer_says()` and
`business_says()` originate with their webhooks. `drop_webhooks(n)` holds back the next n webhooks of any kind, as
Meta sometimes never sends them, and `redeliver_dropped()` delivers them late.

Control endpoints, for tests and tools in other processes (JSON bodies, `Content-Type: application/json`):
  POST /__sandbox/faults       {"kind": ..., "count": ..., "endpoint": ..., ...}  same fields as inject()
  POST /__sandbox/reset        clears faults, the request log, sent messages, conversations, dropped webhooks and
                               rate windows
  POST /__sandbox/read         {"account_id": ..., "igsid": ..., "mid": ...}    the customer's messaging_seen
  GET  /__sandbox/sent         {"sent": [...], "requests": [...]}
  GET  /__sandbox/clock        {"now": ...}                                      the sandbox clock
  POST /__sandbox/clock        {"advance_seconds": n} -> {"now": ...}
  POST /__sandbox/revoke       {"account_id": ...}   every token of the account dies (a password reset)
  POST /__sandbox/unsubscribe  {"account_id": ...}   drops its subscribed fields (Meta's auto-unsubscribe)
  GET  /__sandbox/accounts     {"accounts": [...]}   usernames, subscribed fields, token ages; no token strings
  POST /__sandbox/customer_message  {"account_id", "igsid", "text", "attachment_url", "username", "requests_folder",
                                     "quick_reply_payload"}
                                    -> {"mid": ..., "conversation_id": ...}  the customer writes (and its webhook)
  POST /__sandbox/business_message  {"account_id", "igsid", "text"} -> {"mid", "conversation_id"}  sent from the app
  POST /__sandbox/drop_webhooks     {"count": n} -> {"dropping": n}  the next n webhooks are never delivered
  POST /__sandbox/profile_drift     {"account_id"}   someone clears the account's ice breakers in another tool
  POST /__sandbox/inbox_handover    {"account_id", "igsid", "action": "pass_back"|"take"}  the Instagram Inbox's
                                    handover webhook: a person there is done with the conversation, or takes it
  POST /__sandbox/redeliver_dropped -> {"redelivered": n}   the dropped ones, now, in order, with their bodies
  GET  /__sandbox/conversations     {"conversations": [...], "dropped": [...], "dropping": n}

It listens on 127.0.0.1 only and delivers webhooks to loopback URLs only: it is a test double, not a
service, and its control endpoints have no authentication.
"""

import argparse
import functools
import hashlib
import json
import re
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

from local.meta.answers import RATE_LIMIT_MESSAGE, GraphError, Reply, error_codes, usage_header
from local.meta.conversations import (
    Conversations,
    Participant,
    Read,
    StoredMessage,
    app_echo_event,
    check_participants,
    conversation_id,
    customer_content,
    customer_webhook_event,
    new_message_id,
    sent_content,
)
from local.meta.conversations import route as conversations_route
from local.meta.faults import Fault, fault_reply, new_fault, take_fault
from local.meta.login import (
    DEFAULT_APP_ID,
    DEFAULT_INSTAGRAM_APP_SECRET,
    LONG_LIVED_SECONDS,
    Answer,
    IdentityError,
    InstagramIdentity,
    Route,
    TokenInfo,
)
from local.meta.login import route as identity_route
from local.meta.profile import Profiles
from local.meta.profile import route as profile_route
from local.meta.send_validation import invalid, rate_bucket, validate_send, validate_thread_control
from local.meta.webhooks import LOOPBACK_HOSTS, HeldWebhook, WebhookDrops, WebhookSender, echo_message

LOOPBACK = "127.0.0.1"
MAX_BODY_BYTES = 1024 * 1024
RATE_WINDOW_SECONDS = 1.0
WEBHOOK_USER_AGENT = "facebookexternalua"

INSTAGRAM_INBOX_APP_ID = "1217981644879628"  # Meta's Instagram Inbox (fact sheet §4.8): Meta's, not the gateway's
_SEND_PATH = re.compile(
    r"/(v\d+\.\d+)/([^/]+)/(messages|pass_thread_control|take_thread_control|release_thread_control"
    r"|request_thread_control)"
)


@dataclass(frozen=True)
class SentMessage:
    """A send the sandbox accepted (or, with an injected `deliver` fault, delivered while reporting failure)."""

    account_id: str
    body: dict[str, Any]
    message_id: str | None  # None for sender actions, which Meta answers without a message_id
    at: float
    via_url_token: bool
    endpoint: str = "messages"  # or the thread-control endpoint the call went to


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


def igsid_for_comment(comment_id: str) -> str:
    """The IGSID a private reply to this comment reports: stable across runs, so tests can predict it."""
    digest = int.from_bytes(hashlib.sha256(comment_id.encode()).digest()[:8], "big")
    return f"9{digest % 10**15:015d}"


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
            self._write(Reply(411, {"error": "Content-Length is required"}, {}), close=True)
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            self._write(Reply(413, {"error": f"body must be 0 to {MAX_BODY_BYTES} bytes"}, {}), close=True)
            return
        raw = self.rfile.read(length) if length else b""
        reply = sandbox._dispatch(self.command, self.path, self.headers, raw)
        if reply.delay > 0:
            # Woken early by stop(), so a stopped sandbox does not leave a 30 s timeout behind.
            sandbox._stopping.wait(reply.delay)
        self._write(reply)

    def _write(self, reply: Reply, *, close: bool = False) -> None:
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
        conversations_rate_per_second: int = 2,
    ) -> None:
        """`clock` drives token and code expiry (plus whatever advance() adds); `app_id` and
        `instagram_app_secret` are the Instagram app's, checked by the OAuth endpoints (`app_secret` only signs
        webhooks). `token_response_shape` is "data" (documented) or "flat" (seen: user_id a JSON number);
        `subscription_field_spelling` is "matrix" (message_reactions, messaging_referral) or "send_doc"
        (messaging_reactions, messaging_referrals); `refresh_invalidates_old` kills a token once refreshed.
        `echo_app_id` and `echo_metadata`: whether echoes carry the app id and the sender's metadata.
        `conversations_rate_per_second`: Conversations API calls per account in any second of the sandbox clock.
        """
        if webhook_url is not None and not app_secret:
            raise ValueError("app_secret is required with webhook_url: Meta signs every webhook")
        if text_rate_per_second < 1 or media_rate_per_second < 1:
            raise ValueError("rate limits must be at least 1 call per second")
        if echo_delay_seconds < 0:
            raise ValueError("echo_delay_seconds must not be negative")
        self._requested_port = port
        self._stopping = threading.Event()
        self._webhooks = WebhookSender(webhook_url, app_secret or "", self._stopping) if webhook_url else None
        self.webhook_url = webhook_url
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
        # Every conversation's messages and the Conversations API's rate windows, under the same lock and clock.
        self._conversations = Conversations(
            self._lock, self._identity.now_holding_lock, rate_per_second=conversations_rate_per_second
        )
        self._drops = WebhookDrops()
        self._profiles = Profiles(self._lock)
        self.thread_control_refusals: dict[
            str, GraphError
        ] = {}  # endpoint -> the error it answers (refuse_thread_control)
        self._sent: list[SentMessage] = []
        self._requests: list[RequestRecord] = []
        self._faults: list[Fault] = []
        self._windows: dict[tuple[str, str], deque[float]] = {}
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
        ]
        if self._webhooks is not None:
            self._threads.append(
                threading.Thread(target=self._webhooks.run, name="graph-sandbox-webhooks", daemon=True)
            )
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        if self._stopping.is_set():
            return
        self._stopping.set()
        if self._webhooks is not None:
            self._webhooks.wake_to_stop()
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

        With another `endpoint` (refresh, exchange, code_exchange, me, subscribed_apps, conversations) the fault
        hits only that endpoint, with kind http_5xx, error, throttle or timeout (a delay, then a 5xx), and changes
        no state: `me`, `subscribed_apps` and `conversations` faults fire after the token is accepted, the others
        on any request.
        """
        fault = new_fault(
            kind,
            count,
            status=status,
            code=code,
            subcode=subcode,
            message=message,
            delay=delay,
            deliver=deliver,
            account_id=account_id,
            endpoint=endpoint,
        )
        with self._lock:
            self._faults.append(fault)

    def clear_faults(self) -> None:
        """Forget the faults not used yet; everything else stays."""
        with self._lock:
            self._faults.clear()

    def reset(self) -> None:
        """Forget faults, requests, sent messages, conversations, rate windows, dropped webhooks, echo failures and
        thread-control refusals.

        Accounts, their tokens and subscriptions, and the clock stay.
        """
        with self._lock:
            self._faults.clear()
            self.thread_control_refusals.clear()
            self._requests.clear()
            self._sent.clear()
            self._windows.clear()
        self._conversations.clear()
        self._drops.clear()
        self._profiles.clear()
        if self._webhooks is not None:
            self._webhooks.forget_failures()

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
        return self._webhooks.failures if self._webhooks is not None else 0

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
        if self._webhooks is not None:
            self._webhooks.drain(timeout)

    def send_read(self, account_id: str, igsid: str, mid: str) -> None:
        """Have the customer `igsid` read message `mid`: Meta's messaging_seen webhook (fact sheet §4.5)."""
        if self.webhook_url is None:
            raise RuntimeError("send_read needs a webhook_url")
        for name, value in (("account_id", account_id), ("igsid", igsid), ("mid", mid)):
            if not isinstance(value, str) or not value:
                raise ValueError(f"{name} must be a non-empty string")
        event = {
            "sender": {"id": igsid},
            "recipient": {"id": account_id},
            "timestamp": self._now_ms(),
            "read": {"mid": mid},
        }
        self._enqueue_webhook(account_id, event)

    # --- conversations: the customer's and the business's own messages, webhooks Meta never sends ---

    def customer_says(
        self,
        account_id: str,
        igsid: str,
        text: str | None = None,
        *,
        attachment_url: str | None = None,
        username: str | None = None,
        requests_folder: bool = False,
        quick_reply_payload: str | None = None,
    ) -> str:
        """The customer `igsid` writes to the account (text, an image URL, or both): recorded in their conversation
        (in the Requests folder if `requests_folder`), and Meta's webhook for it delivered unless webhooks are being
        dropped. With `quick_reply_payload`, the text is the title of a quick reply the customer tapped. Returns
        the mid. Needs a webhook_url, unless the webhook is to be dropped.
        """
        said, attachments = customer_content(text, attachment_url, username, requests_folder)
        if quick_reply_payload is not None and (not isinstance(quick_reply_payload, str) or not quick_reply_payload):
            raise ValueError("quick_reply_payload must be a non-empty string")
        if quick_reply_payload is not None and said is None:
            raise ValueError("a quick reply tap needs its title as text")
        message = self._conversations.record(
            self._participant(account_id, igsid),
            igsid,
            from_customer=True,
            text=said,
            attachments=attachments,
            customer_username=username,
            requests_folder=requests_folder,
        )
        event = customer_webhook_event(message)
        if quick_reply_payload is not None:
            event["message"]["quick_reply"] = {"payload": quick_reply_payload}
        self._enqueue_webhook(account_id, event)
        return message.mid

    def business_says(self, account_id: str, igsid: str, text: str) -> str:
        """A person at the business writes to `igsid` from the Instagram app: recorded, and its echo delivered
        (is_echo, no app_id, no metadata) unless webhooks are being dropped. Returns the mid."""
        if not isinstance(text, str) or not text:
            raise ValueError("text must be a non-empty string")
        message = self._conversations.record(
            self._participant(account_id, igsid), igsid, from_customer=False, text=text
        )
        self._enqueue_webhook(account_id, app_echo_event(message))
        return message.mid

    def inbox_hands_over(self, account_id: str, igsid: str, action: str = "pass_back", metadata: str = "") -> None:
        """A person in the Instagram Inbox is done with the conversation (``pass_back``: it passes the thread to
        the gateway's app) or takes it (``take``): the handover webhook Meta sends the gateway's app, naming
        the Instagram Inbox and the app (fact sheet §4.8)."""
        if action not in ("pass_back", "take"):
            raise ValueError("action must be pass_back or take")
        self._participant(account_id, igsid)
        inbox, app = INSTAGRAM_INBOX_APP_ID, self._identity.app_id
        moves = {"pass_back": ("pass_thread_control", inbox, app), "take": ("take_thread_control", app, inbox)}
        kind, previous, new = moves[action]
        handover: dict[str, Any] = {"previous_owner_app_id": previous, "new_owner_app_id": new}
        if metadata:
            handover["metadata"] = metadata
        event = {
            "sender": {"id": igsid},
            "recipient": {"id": account_id},
            "timestamp": int(time.time() * 1000),
            kind: handover,
        }
        self._enqueue_webhook(account_id, event)

    def drop_webhooks(self, count: int) -> None:
        """The next `count` webhooks of any kind (messages, echoes, reads) are never delivered, as when Meta never
        sends them; they are kept for redeliver_dropped(). 0 stops dropping."""
        self._drops.drop_next(count)

    def redeliver_dropped(self) -> int:
        """Deliver the dropped webhooks now (a late delivery), in their original order and with their original
        bodies; returns how many."""
        if self._webhooks is None:
            raise RuntimeError("redeliver_dropped needs a webhook_url")
        held = self._drops.release()
        for webhook in held:
            self._webhooks.enqueue(webhook.account_id, webhook.event, 0.0, raw=webhook.raw)
        return len(held)

    @property
    def dropped(self) -> list[HeldWebhook]:
        """The webhooks dropped and not redelivered, oldest first."""
        return self._drops.held

    def conversation_messages(self, account_id: str, igsid: str) -> list[StoredMessage]:
        """The messages of the conversation of `account_id` and `igsid`, oldest first."""
        return self._conversations.messages_of(account_id, igsid)

    def _participant(self, account_id: str, igsid: str) -> Participant:
        check_participants(account_id, igsid)
        # Checked before anything is recorded: a message whose webhook can go nowhere would be lost unnoticed.
        if self._webhooks is None and self._drops.remaining == 0:
            raise RuntimeError("a message of the customer or the business needs a webhook_url (or drop_webhooks)")
        return Participant(account_id, self._identity.username_of(account_id))

    def _now_ms(self) -> int:
        return int(self.now() * 1000)

    # --- request handling ---

    def _dispatch(self, method: str, target: str, headers: Message, raw: bytes) -> Reply:
        parts = urlsplit(target)
        if not self._host_allowed(headers.get("Host")):
            # A page in a browser can reach 127.0.0.1 through DNS rebinding; its Host header gives it away.
            return Reply(403, {"error": "Host must be 127.0.0.1 or localhost"}, {})
        if parts.path.startswith("/__sandbox/"):
            return self._control(method, parts.path, headers, raw)
        return self._graph(method, parts.path, parse_qs(parts.query), headers, raw)

    def _host_allowed(self, host: str | None) -> bool:
        if not host:
            return False
        name, _, port = host.rpartition(":") if host.count(":") == 1 else (host, "", "")
        return name in LOOPBACK_HOSTS and port in ("", str(self.port))

    def _graph(self, method: str, path: str, query: dict[str, list[str]], headers: Message, raw: bytes) -> Reply:
        via_url_token = "access_token" in query
        body: Any = None
        if (read := conversations_route(method, path)) is not None:
            reply, account_id = self._conversations_request(read, query, headers)
        elif (node := profile_route(path)) is not None:
            reply, account_id, body = self._profile_request(method, node, query, headers, raw)
        elif (route := identity_route(method, path)) is None:
            reply, account_id, body = self._send_request(method, path, query, headers, raw)
        else:
            reply, account_id, body = self._identity_request(route, query, headers, raw)
        error_code, error_subcode = error_codes(reply.body) if reply.status >= 400 else (None, None)
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
    ) -> tuple[Reply, str | None, Any]:
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
                raise invalid("The request body must be a JSON object") from None
            if match.group(3) != "messages":
                validate_thread_control(match.group(3), body)
                reply = self._thread_control(account_id, match.group(3), body, via_url_token)
            else:
                validate_send(body)
                reply = self._send(account_id, body, via_url_token)
        except GraphError as error:
            reply = Reply(error.status, error.body(), error.headers)
        return reply, account_id, body

    def _profile_request(
        self, method: str, node: str, query: dict[str, list[str]], headers: Message, raw: bytes
    ) -> tuple[Reply, str | None, Any]:
        account_id: str | None = None
        body: Any = None
        try:
            account_id = self._authenticate(headers.get("Authorization"), query)
            if node not in ("me", account_id):
                raise GraphError(400, 100, f"(#100) Object with ID '{node}' does not exist or cannot be loaded")
            if raw:
                try:
                    body = json.loads(raw)
                except (ValueError, RecursionError):
                    raise GraphError(400, 100, "(#100) The request body must be JSON") from None
            reply = self._profiles.answer(method, account_id, query, body)
        except GraphError as error:
            reply = Reply(error.status, error.body(), error.headers)
        return reply, account_id, body

    def messenger_profile(self, account_id: str) -> dict[str, list[Any]]:
        """The account's ice breakers and menu as Meta shows them."""
        return self._profiles.of(account_id)

    def drift_profile(self, account_id: str) -> None:
        """Someone clears the account's ice breakers in another tool (the refresher applies them again)."""
        self._profiles.drift(account_id)

    def _identity_request(
        self, route: Route, query: dict[str, list[str]], headers: Message, raw: bytes
    ) -> tuple[Reply, str | None, Any]:
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
                    fault = take_fault(self._faults, account_id, route.endpoint)
                if fault is not None:
                    return self._identity_fault_reply(fault, route.endpoint, account_id), account_id, None
            answer = self._identity.answer(
                route, query=query, content_type=headers.get("Content-Type", ""), raw=raw, account_id=account_id
            )
        except (IdentityError, GraphError) as refusal:
            error = _graph_error(refusal) if isinstance(refusal, IdentityError) else refusal
            return Reply(error.status, error.body(), error.headers), account_id, None
        return _reply_of(answer), answer.account_id or account_id, answer.record

    def _conversations_request(
        self, read: Read, query: dict[str, list[str]], headers: Message
    ) -> tuple[Reply, str | None]:
        account_id: str | None = None
        try:
            account_id = self._authenticate(headers.get("Authorization"), query)
            with self._lock:
                fault = take_fault(self._faults, account_id, "conversations")
            if fault is not None:
                return fault_reply(fault, account_id, {}, 0), account_id
            return self._conversations.answer(read, account_id, query, self.base_url), account_id
        except GraphError as error:
            return Reply(error.status, error.body(), error.headers), account_id

    def _identity_fault_reply(self, fault: Fault, endpoint: str, account_id: str | None) -> Reply:
        reply = fault_reply(fault, account_id or self._identity.app_id, {}, 0)
        if endpoint != "code_exchange" or not isinstance(reply.body, dict):
            return reply
        # api.instagram.com answers its OAuth errors flat (fact sheet §9).
        error = reply.body["error"]
        flat = {"error_type": error["type"], "code": error["code"], "error_message": error["message"]}
        return Reply(reply.status, flat, reply.headers, reply.delay)

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

    def _thread_control(self, account_id: str, endpoint: str, body: dict[str, Any], via_url_token: bool) -> Reply:
        """A handover call: refused as `refuse_thread_control` says (a 2026 report has take and request refused
        for Instagram Login apps), else recorded and answered `{"success": true}`. Meta sends the caller no
        handover webhook for its own call."""
        with self._changed:
            refusal = self.thread_control_refusals.get(endpoint)
            if refusal is not None:
                raise refusal
            self._sent.append(SentMessage(account_id, body, None, time.time(), via_url_token, endpoint))
            self._changed.notify_all()
        return Reply(200, {"success": True}, usage_header(account_id, 0))

    def refuse_thread_control(self, endpoint: str, code: int = 10, message: str | None = None) -> None:
        """Answer every later call to ``endpoint`` with this error (constructed: Meta's wording is not documented)."""
        text = message or f"(#{code}) {endpoint} is not supported for this app"
        self.thread_control_refusals[endpoint] = GraphError(400, code, text)

    def _send(self, account_id: str, body: dict[str, Any], via_url_token: bool) -> Reply:
        recipient = body["recipient"]
        recipient_id = recipient["id"] if "id" in recipient else igsid_for_comment(recipient["comment_id"])
        is_message = "message" in body
        bucket = rate_bucket(body)
        limit = self.media_rate_per_second if bucket == "media" else self.text_rate_per_second
        with self._changed:
            fault = take_fault(self._faults, account_id)
            now = time.monotonic()
            window = self._windows.setdefault((account_id, bucket), deque())
            while window and window[0] <= now - RATE_WINDOW_SECONDS:
                window.popleft()
            delivered = fault is None or fault.deliver
            if fault is None and len(window) >= limit:
                raise GraphError(
                    400, 80002, RATE_LIMIT_MESSAGE, is_transient=True, headers=usage_header(account_id, 100)
                )
            message_id = new_message_id() if is_message else None
            if delivered:
                window.append(now)
                self._sent.append(SentMessage(account_id, body, message_id, time.time(), via_url_token))
                self._changed.notify_all()
            call_count = min(100, len(window) * 100 // limit)
        if delivered and message_id is not None:
            text, attachments = sent_content(body["message"])
            account = Participant(account_id, self._identity.username_of(account_id))
            stored = self._conversations.record(
                account, recipient_id, from_customer=False, text=text, attachments=attachments, mid=message_id
            )
            event = {
                "sender": {"id": account_id},
                "recipient": {"id": recipient_id},
                "timestamp": stored.timestamp_ms,
                "message": echo_message(
                    message_id, body["message"], app_id=self.echo_app_id, with_metadata=self.echo_metadata
                ),
            }
            self._enqueue_webhook(account_id, event)
        success: dict[str, Any] = {"recipient_id": recipient_id}
        if message_id is not None:
            success["message_id"] = message_id
        if fault is None:
            return Reply(200, success, usage_header(account_id, call_count))
        return fault_reply(fault, account_id, success, call_count)

    def _control(self, method: str, path: str, headers: Message, raw: bytes) -> Reply:
        if method == "GET" and path == "/__sandbox/sent":
            with self._lock:
                sent = [asdict(item) for item in self._sent]
                logged = [asdict(item) for item in self._requests]
            return Reply(200, {"sent": sent, "requests": logged}, {})
        if method == "GET" and path == "/__sandbox/clock":
            return Reply(200, {"now": self.now()}, {})
        if method == "GET" and path == "/__sandbox/accounts":
            return Reply(200, {"accounts": self._identity.accounts()}, {})
        if method == "GET" and path == "/__sandbox/conversations":
            return Reply(200, self._conversations_inspection(), {})
        actions: dict[str, Callable[..., dict[str, Any] | None]] = {
            "/__sandbox/faults": self.inject,
            "/__sandbox/read": self.send_read,
            "/__sandbox/clock": self._advance_clock,
            "/__sandbox/revoke": self.revoke,
            "/__sandbox/unsubscribe": self.unsubscribe,
            "/__sandbox/customer_message": functools.partial(self._originate, self.customer_says),
            "/__sandbox/business_message": functools.partial(self._originate, self.business_says),
            "/__sandbox/drop_webhooks": self._drop_webhooks,
            "/__sandbox/inbox_handover": self.inbox_hands_over,
            "/__sandbox/profile_drift": self.drift_profile,
        }
        bodiless: dict[str, Callable[[], dict[str, Any]]] = {
            "/__sandbox/reset": self._reset,
            "/__sandbox/redeliver_dropped": self._redeliver_dropped,
        }
        if method != "POST" or (path not in actions and path not in bodiless):
            return Reply(404, {"error": f"no route {method} {path}"}, {})
        # A browser cannot send this content type cross-origin without a preflight, which is never answered.
        if headers.get("Content-Type", "").split(";")[0].strip().lower() != "application/json":
            return Reply(415, {"error": "Content-Type must be application/json"}, {})
        if path in bodiless:
            try:
                return Reply(200, bodiless[path](), {})
            except RuntimeError as exc:
                return Reply(400, {"error": str(exc)}, {})
        try:
            fields = json.loads(raw)
        except (ValueError, RecursionError):
            return Reply(400, {"error": "the body must be a JSON object"}, {})
        if not isinstance(fields, dict):
            return Reply(400, {"error": "the body must be a JSON object"}, {})
        try:
            answer = actions[path](**fields)
        except (TypeError, ValueError, RuntimeError) as exc:
            return Reply(400, {"error": str(exc)}, {})
        return Reply(200, answer if answer is not None else {"ok": True}, {})

    def _advance_clock(self, advance_seconds: float) -> dict[str, Any]:
        return {"now": self._identity.advance(advance_seconds)}

    def _reset(self) -> dict[str, Any]:
        self.reset()
        return {"ok": True}

    def _originate(self, says: Callable[..., str], **fields: Any) -> dict[str, Any]:
        mid = says(**fields)  # checks account_id and igsid, which are required
        return {"mid": mid, "conversation_id": conversation_id(fields["account_id"], fields["igsid"])}

    def _drop_webhooks(self, count: int) -> dict[str, Any]:
        self.drop_webhooks(count)
        return {"dropping": count}

    def _redeliver_dropped(self) -> dict[str, Any]:
        return {"redelivered": self.redeliver_dropped()}

    def _conversations_inspection(self) -> dict[str, Any]:
        dropped = [{"account_id": held.account_id, "event": held.event} for held in self._drops.held]
        return {
            "conversations": self._conversations.inspection(),
            "dropped": dropped,
            "dropping": self._drops.remaining,
        }

    def _enqueue_webhook(self, account_id: str, event: dict[str, Any]) -> None:
        # Every webhook Meta would send passes here, so a drop holds back whichever kind comes next.
        if self._drops.hold(account_id, event):
            return
        if self._webhooks is not None:
            self._webhooks.enqueue(account_id, event, self.echo_delay_seconds)


def _graph_error(error: IdentityError) -> GraphError:
    return GraphError(error.status, error.code, error.message, subcode=error.subcode, error_type=error.error_type)


def _reply_of(answer: Answer) -> Reply:
    return Reply(answer.status, answer.body, answer.headers, content_type=answer.content_type)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m local.meta.graph_sandbox",
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
        "--conversations-rate", type=int, default=2, help="Conversations API calls per second per account"
    )
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
            conversations_rate_per_second=args.conversations_rate,
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
        "Instagram Graph API sandbox (Send API, Business Login, Conversations API)",
        f"  send URL      {sandbox.base_url}/v24.0/<ig_id|me>/messages",
        f"  login page    {sandbox.base_url}/oauth/authorize?client_id={args.app_id}&redirect_uri=<loopback URL>"
        "&response_type=code&scope=instagram_business_basic,instagram_business_manage_messages",
        f"  tokens        {sandbox.base_url}/oauth/access_token, /access_token, /refresh_access_token",
        f"  profile       {sandbox.base_url}/v24.0/me?fields=user_id,username  and  /v24.0/me/subscribed_apps",
        f"  conversations {sandbox.base_url}/v24.0/me/conversations?platform=instagram, /v24.0/<conversation_id>"
        "?fields=messages, /v24.0/<message_id>?fields=id,created_time,from,to,message,attachments",
        f"  accounts      {', '.join(a for a, _ in accounts) or '(none: pass --account ID=TOKEN)'}",
        f"  logins        {', '.join(f'{a} ({u})' for a, u in logins) or '(none: the --account ones)'}",
        f"  webhooks to   {args.webhook_url or '(none)'}",
        f"  control       {sandbox.base_url}/__sandbox/{{faults,reset,read,sent,clock,revoke,unsubscribe,accounts,"
        "customer_message,business_message,drop_webhooks,redeliver_dropped,conversations}",
        "ready",
    ]
    print("\n".join(lines), flush=True)
    stop.wait()
    sandbox.stop()
    print("stopped", flush=True)


if __name__ == "__main__":
    main()
