"""The HTTP API for the gateway's own producers and readers (docs/http-api.md), every route behind an API key:

- POST /v1/messages: the outbound contract as JSON (docs/messages.md) -> 202 {"idempotency_key", "status":
  "QUEUED"}, put on the outbound FIFO queue exactly as an SQS producer does (igdm.queues.outbound_queue): its
  idempotency key is the deduplication id, so the same key again is the same answer and never a second send (SQS
  drops a repeat within five minutes, the sender's record after that). Invalid -> 400 naming the field, before
  anything is queued.
- GET /v1/messages/{idempotency_key}: the message's record and its status history.
- DELETE /v1/customers/{customer_id}: erase a customer (docs/security.md, "Erasure and data deletion"), as Meta's
  data-deletion callback and tools.accounts forget do: the request is recorded and handed to the eraser -> 202
  with its confirmation code and status page. Only a key with the erase scope and no account restriction (an
  erasure covers every account of the stack) may; an account's id is refused.

The authorizer (functions/authorizer) says who the key is, or why it is refused; here a refusal is a 401, a
missing scope or another account's message a 403 (a message of another account reads as not found), and a key
past its rate a 429 with Retry-After.
"""

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from igdm.runtime.http_api import HttpApiRequest, Reply
from igdm.runtime.observability import logger
from igdm.store.rate_limits import Slot

# API Gateway's routeKey for each route in template.yaml (tests/unit/project/test_contracts.py holds them equal).
SEND, READ, ERASE = "POST /v1/messages", "GET /v1/messages/{idempotency_key}", "DELETE /v1/customers/{customer_id}"
ROUTES = (SEND, READ, ERASE)
SCOPE = {SEND: "send", READ: "read", ERASE: "erase"}
API_RATE_CLASS = "api"
MAX_BODY_BYTES = 262_144  # SQS's message limit: the outbound queue takes nothing larger


class Outbound(Protocol):
    def enqueue(self, message: dict[str, Any]) -> str:
        """Validate and queue; ValueError says what is invalid."""
        ...


class Records(Protocol):
    def view(self, idempotency_key: str) -> dict[str, Any] | None: ...


class Accounts(Protocol):
    def get(self, account_id: str) -> Any: ...


class Erasures(Protocol):
    def request(self, customer_id: str, *, now: float) -> str:
        """Record an erasure request and queue it for the eraser; its confirmation code."""
        ...


class Limiter(Protocol):
    def acquire(self, account_id: str, rate_class: str, max_wait: float = 0.0) -> Slot: ...


@dataclass(frozen=True)
class Caller:
    key_id: str
    scopes: frozenset[str]
    account_id: str | None

    @classmethod
    def of(cls, request: HttpApiRequest) -> "Caller | str":
        """The key the authorizer found, or why there is none."""
        context = request.request_context.authorizer.get("lambda") or {}
        if not context.get("key_id"):
            return str(context.get("refused") or "no API key")
        scopes = frozenset(s for s in str(context.get("scopes", "")).split(",") if s)
        return cls(str(context["key_id"]), scopes, str(context.get("account_id") or "") or None)


@dataclass
class Api:
    outbound: Outbound
    records: Records
    limiter: Limiter
    accounts: Accounts
    erasures: Erasures
    clock: Callable[[], float] = field(default=time.time)

    def __call__(self, request: HttpApiRequest) -> Reply:
        if request.route_key not in ROUTES:
            return _error(404, "no such route")
        caller = Caller.of(request)
        if isinstance(caller, str):
            return _error(401, caller)
        scope = SCOPE[request.route_key]
        if scope not in caller.scopes:
            return _error(403, f"this API key has no {scope} scope")
        slot = self.limiter.acquire(f"key:{caller.key_id}", API_RATE_CLASS)
        if not slot.reserved:
            retry = max(1, math.ceil(slot.wait))
            reply = _error(429, f"this API key's rate is spent: retry in {retry} s")
            return Reply(reply.status, reply.body, reply.content_type, (("Retry-After", str(retry)),))
        if request.route_key == SEND:
            return self._send(request, caller)
        if request.route_key == ERASE:
            return self._erase(request, caller)
        return self._message(request, caller)

    def _send(self, request: HttpApiRequest, caller: Caller) -> Reply:
        raw = request.raw_body()
        if raw is None or len(raw) > MAX_BODY_BYTES:
            return _error(413 if raw else 400, "the body must be one outbound message as JSON, at most 256 KiB")
        try:
            message = json.loads(raw)
        except ValueError:
            return _error(400, "the body is not JSON")
        if not isinstance(message, dict):
            return _error(400, "the body must be a JSON object: one outbound message")
        if caller.account_id is not None:
            named = message.get("account_id")
            if named is None:
                message = {**message, "account_id": caller.account_id}  # the key's account sends
            elif named != caller.account_id:
                return _error(403, "this API key may send for its own account only")
        try:
            self.outbound.enqueue(message)
        except ValueError as invalid:
            return _error(400, str(invalid))
        except (ClientError, BotoCoreError) as exc:
            logger.warning("the outbound queue refused a message", extra={"error": type(exc).__name__})
            return _error(
                503, "the outbound queue did not take the message: send it again, with the same idempotency key"
            )
        logger.info("message queued", extra={"idempotency_key": message["idempotency_key"], "key_id": caller.key_id})
        return Reply.of_json(202, {"idempotency_key": message["idempotency_key"], "status": "QUEUED"})

    def _message(self, request: HttpApiRequest, caller: Caller) -> Reply:
        wanted = request.path_parameters.get("idempotency_key", "")
        found = self.records.view(wanted) if wanted else None
        if found is None or (caller.account_id is not None and found["account_id"] != caller.account_id):
            return _error(404, "no message with this idempotency key (it may not be processed yet)")
        return Reply.of_json(200, found)

    def _erase(self, request: HttpApiRequest, caller: Caller) -> Reply:
        if caller.account_id is not None:
            return _error(
                403, "an erasure covers every account of the stack: a key restricted to one may not ask for it"
            )
        customer_id = request.path_parameters.get("customer_id", "")
        if not customer_id.isdigit() or len(customer_id) > 64:
            return _error(400, "customer_id: a customer's Instagram-scoped id (IGSID), digits only")
        if self.accounts.get(customer_id) is not None:
            return _error(400, "customer_id: this is an account of the stack, not a customer: nothing was erased")
        code = self.erasures.request(customer_id, now=self.clock())
        logger.warning("erasure requested through the API", extra={"code": code, "key_id": caller.key_id})
        return Reply.of_json(
            202,
            {
                "confirmation_code": code,
                "status": "pending",
                "status_url": f"{request.base_url()}/meta/deletion-status?code={code}",
            },
        )


def _error(status: int, reason: str) -> Reply:
    return Reply.of_json(status, {"error": reason})
