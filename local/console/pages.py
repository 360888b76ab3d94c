"""The console's HTTP side: one page, its script and style, and the JSON the page reads and posts.

    GET  /console                                          the page (static/console.html)
    GET  /console/console.js, console.css, favicon.svg     its script, style and icon
    GET  /console/api/accounts                             {"accounts": [...]}
    GET  /console/api/conversations                        {"conversations": [...]}, the latest activity first
    GET  /console/api/conversations/<account>:<customer>   its events and outbound messages, each status
    POST /console/api/conversations/<account>:<customer>/replies
                                                           {"text": ..., "form_token": ...} -> 202, queued
    GET  /console/api/callbacks                            {"callbacks": [...]}, the newest first
    GET  /console/api/snapshot?conversation=<id>&after=<tag>
                                                           all of the above at once, for the page's poll: the
                                                           same tag again answers {"unchanged": true} alone

A bad request is a 4xx with {"message": <why>}; an unknown path under /console a 404; nothing raises into the
API server. The form token is made when the stack starts and written into the page: a POST without it did not
come from the page (another site open in the same browser can post to 127.0.0.1, but cannot read the page), so a
reply is never sent on a stranger's behalf, as it would be to Meta itself with GRAPH_API_BASE_URL set.
"""

import hashlib
import hmac
import json
import re
import secrets
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from botocore.exceptions import BotoCoreError, ClientError

from local.console.reads import ConsoleReads
from local.console.replies import Replies

Answer = tuple[int, dict[str, str], bytes]

STATIC = Path(__file__).parent / "static"
ASSETS = {
    "/console/console.js": ("console.js", "text/javascript; charset=utf-8"),
    "/console/console.css": ("console.css", "text/css; charset=utf-8"),
    "/console/favicon.svg": ("favicon.svg", "image/svg+xml"),
}
API = "/console/api/"
ID = re.compile(r"^[0-9]{1,64}$")  # Instagram's ids, as the HTTP API's routes take them
FORM_TOKEN_PLACEHOLDER = "{{form_token}}"  # noqa: S105  # nosec B105 # where the page takes it, not a secret
# Nothing but what /console serves: no inline script or style, no other origin, no frames.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


JSON_HEADERS = {
    "Content-Type": "application/json; charset=utf-8",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


class Refusal(Exception):
    """A request the console answers with a 4xx and why."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class Console:
    def __init__(self, reads: ConsoleReads, replies: Replies, *, form_token: str | None = None) -> None:
        self._reads = reads
        self._replies = replies
        self.form_token = form_token or secrets.token_urlsafe(24)

    def __call__(self, method: str, path: str, query: str, body: bytes) -> Answer:
        try:
            return self._answer(method, path, {k: v[-1] for k, v in parse_qs(query).items()}, body)
        except Refusal as refusal:
            return _json(refusal.status, {"message": refusal.message}, refusal.headers)
        except Exception as exc:  # the API server's thread must go on: a 500 that says what broke
            sys.stderr.write(f"console: {method} {path} failed: {type(exc).__name__}: {exc}\n")
            return _json(500, {"message": f"the console could not answer: {type(exc).__name__}"})

    def _answer(self, method: str, path: str, query: dict[str, str], body: bytes) -> Answer:
        if path in ("/console", "/console/"):
            _allow(method, "GET")
            page = (
                (STATIC / "console.html").read_text(encoding="utf-8").replace(FORM_TOKEN_PLACEHOLDER, self.form_token)
            )
            return 200, {"Content-Type": "text/html; charset=utf-8", **PAGE_HEADERS}, page.encode()
        if path in ASSETS:
            _allow(method, "GET")
            name, content_type = ASSETS[path]
            return 200, {"Content-Type": content_type, **PAGE_HEADERS}, (STATIC / name).read_bytes()
        parts = path.removeprefix(API).split("/") if path.startswith(API) else []
        match parts:
            case ["accounts"]:
                _allow(method, "GET")
                return _json(200, {"accounts": self._reads.accounts()})
            case ["conversations"]:
                _allow(method, "GET")
                return _json(200, {"conversations": self._reads.conversations()})
            case ["conversations", conversation_id]:
                _allow(method, "GET")
                return _json(200, self._conversation(*self._conversation_of(conversation_id)))
            case ["conversations", conversation_id, "replies"]:
                _allow(method, "POST")
                return self._reply(conversation_id, body)
            case ["callbacks"]:
                _allow(method, "GET")
                return _json(200, {"callbacks": self._reads.callbacks()})
            case ["snapshot"]:
                _allow(method, "GET")
                return self._snapshot(query)
        raise Refusal(404, "Not Found")

    def _conversation_of(self, conversation_id: str) -> tuple[str, str]:
        account_id, _, customer_id = conversation_id.partition(":")
        if not (ID.match(account_id) and ID.match(customer_id)):
            raise Refusal(400, "conversation: <account id>:<customer id>, both digits, as events name it")
        if not self._reads.account_exists(account_id):
            raise Refusal(404, f"no account {account_id} in this stack")
        return account_id, customer_id

    def _conversation(self, account_id: str, customer_id: str) -> dict[str, Any]:
        return self._reads.conversation(account_id, customer_id, self._replies.queued(account_id, customer_id))

    def _reply(self, conversation_id: str, body: bytes) -> Answer:
        account_id, customer_id = self._conversation_of(conversation_id)
        try:
            request = json.loads(body)
        except ValueError:
            request = None
        if not isinstance(request, dict):
            raise Refusal(400, 'body: a JSON object, {"text": "...", "form_token": "..."}')
        token = request.get("form_token")
        if not isinstance(token, str) or not hmac.compare_digest(token.encode(), self.form_token.encode()):
            raise Refusal(403, "form_token: missing or not this console's; reload the console and send again")
        text = request.get("text")
        if not isinstance(text, str):
            raise Refusal(400, "text: the reply's text, a string")
        try:
            reply = self._replies.send(account_id, customer_id, text)
        except ValueError as invalid:  # blank, or a text the outbound contract refuses (it says why)
            raise Refusal(400, str(invalid)) from None
        except (ClientError, BotoCoreError) as exc:
            return _json(503, {"message": f"the outbound queue did not take the reply: {type(exc).__name__}"})
        return _json(202, {"idempotency_key": reply.idempotency_key, "status": "QUEUED", "queued_at": reply.queued_at})

    def _snapshot(self, query: dict[str, str]) -> Answer:
        document: dict[str, Any] = {
            "accounts": self._reads.accounts(),
            "conversations": self._reads.conversations(),
            "callbacks": self._reads.callbacks(),
            "conversation": None,
            "conversation_problem": None,
        }
        if query.get("conversation"):
            try:
                document["conversation"] = self._conversation(*self._conversation_of(query["conversation"]))
            except Refusal as refusal:  # the rest of the page still updates
                document["conversation_problem"] = refusal.message
        tag = hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()[:20]
        if query.get("after") == tag:
            return _json(200, {"tag": tag, "unchanged": True})
        return _json(200, {"tag": tag, "unchanged": False, **document})


def _allow(method: str, allowed: str) -> None:
    if method != allowed:
        raise Refusal(405, f"{method} is not allowed here: {allowed} only", {"Allow": allowed})


def _json(status: int, document: dict[str, Any], headers: dict[str, str] | None = None) -> Answer:
    payload = json.dumps(document, ensure_ascii=False).encode()
    return status, {**JSON_HEADERS, **(headers or {})}, payload
