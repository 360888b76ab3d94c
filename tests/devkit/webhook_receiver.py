"""A loopback server that receives what the Graph sandbox posts as Meta's webhooks, for the devkit tests."""

import contextlib
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast


@dataclass
class Received:
    headers: dict[str, str]
    raw: bytes

    @property
    def event(self) -> dict[str, Any]:
        return cast(dict[str, Any], json.loads(self.raw)["entry"][0]["messaging"][0])

    def signed_with(self, secret: str) -> bool:
        expected = "sha256=" + hmac.new(secret.encode(), self.raw, hashlib.sha256).hexdigest()
        return hmac.compare_digest(self.headers["X-Hub-Signature-256"], expected)


@dataclass
class WebhookReceiver:
    """Collects what the sandbox posts; answers with `statuses` in turn, then 200."""

    url: str = ""
    statuses: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    attempts: int = 0
    changed: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, n: int, timeout: float = 5.0) -> list[Received]:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.received) >= n, timeout), self.received
            return list(self.received)


@contextlib.contextmanager
def serve_webhooks() -> Iterator[WebhookReceiver]:
    """A WebhookReceiver listening on 127.0.0.1 until the block ends."""
    state = WebhookReceiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers["Content-Length"]))
            with state.changed:
                state.attempts += 1
                status = state.statuses.pop(0) if state.statuses else 200
                if status == 200:
                    state.received.append(Received(dict(self.headers.items()), raw))
                state.changed.notify_all()
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/webhook"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
