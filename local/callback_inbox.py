"""A callback receiver on 127.0.0.1, the way a producer's system would be: it checks each POST's
signature, keeps what it received, prints it, and can be told to fail the next N requests (so the
callback function's retries can be watched and tested)."""

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from igdm.contracts.callbacks import EVENT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from local import narration

LOOPBACK = "127.0.0.1"
MAX_BODY = 1024 * 1024


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    signature_ok: bool

    @property
    def document(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.body)
        return value

    @property
    def event_id(self) -> str | None:
        return self.headers.get(EVENT_ID_HEADER.lower())


class CallbackInbox(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, signing_secret: str, port: int = 0, *, echo: bool = False) -> None:
        self.signing_secret = signing_secret
        self.echo = echo
        self.received: list[Received] = []
        self.attempts = 0
        self._failures: list[int] = []  # statuses to answer the next requests with
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        super().__init__((LOOPBACK, port), _InboxHandler)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.server_address[1]}/callbacks"

    def start(self) -> "CallbackInbox":
        threading.Thread(target=self.serve_forever, name="callback-inbox", daemon=True).start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def fail_next(self, count: int, status: int = 503) -> None:
        with self._lock:
            self._failures.extend([status] * count)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Until ``count`` callbacks have been accepted (or the timeout passes)."""
        with self._changed:
            self._changed.wait_for(lambda: len(self.received) >= count, timeout=timeout)
            return list(self.received)

    def _take(self, received: Received) -> int:
        with self._changed:
            self.attempts += 1
            if self._failures:
                return self._failures.pop(0)
            self.received.append(received)
            self._changed.notify_all()
            return 200


class _InboxHandler(BaseHTTPRequestHandler):
    server: CallbackInbox
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._answer(413)
            return
        body = self.rfile.read(length)
        headers = {k.lower(): v for k, v in self.headers.items()}
        ok = verify(
            self.server.signing_secret,
            body,
            headers.get(TIMESTAMP_HEADER.lower()),
            headers.get(SIGNATURE_HEADER.lower()),
        )
        status = self.server._take(Received(self.path, headers, body, ok)) if ok else 401
        if self.server.echo:
            self._print(body, ok, status)
        self._answer(status)

    def _print(self, body: bytes, ok: bool, status: int) -> None:
        try:
            what = summary(json.loads(body))
        except (ValueError, AttributeError, TypeError):
            what = f"{len(body)} bytes"
        tone = "good" if ok and status == 200 else "bad"
        narration.say("callback", f"{what} (signature {'ok' if ok else 'INVALID'}) -> {status}", tone)

    def _answer(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # _print says what matters


def summary(document: dict[str, Any]) -> str:
    """What a POST held, in a few words: a status callback (the gateway's shape, or a vendor's), or an event."""
    if isinstance(document.get("status"), dict):  # the gateway's message_status event
        return f"{document['status'].get('status')} {document['status'].get('idempotency_key')}"
    if "message_delivery_report" in document:  # Sinch
        report = document["message_delivery_report"]
        return f"sinch {report.get('status')} {report.get('message_id')}"
    if isinstance(document.get("messages"), dict):  # CM.com
        msg = document["messages"].get("msg") or {}
        return f"cm status {(msg.get('status') or {}).get('code')} {msg.get('messageId')}"
    if "messageId" in document:  # Webex Connect
        return f"webex-connect {document.get('status')} {document.get('messageId')}"
    if "kind" in document:  # an event webhook's delivery
        return f"event {document.get('kind')} {document.get('conversation_id')}"
    return "a JSON body"
