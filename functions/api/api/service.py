"""The HTTP API for the gateway's own producers and readers (docs/http-api.md), every route behind an API key:

- POST /v1/messages: the outbound contract as JSON (docs/messages.md) -> 202 {"idempotency_key", "status":
  "QUEUED"}, put on the outbound FIFO queue exactly as an SQS producer does (igdm.queues.outbound_queue): its
  idempotency key is the deduplication id, so the same key again is the same answer and never a second send (SQS
  drops a repeat within five minutes, the sender's record after that). Invalid -> 400 naming the field, before
  anything is queued.
- GET /v1/messages/{idempotency_key}: the message's record and its status history.
- POST /compat/webex-connect/v1/messages, POST /compat/sinch/v1/projects/{project_id}/messages:send (its route
  /compat/sinch/v1/projects/{project_id}/{method}: API Gateway's HTTP APIs take no colon in a path) and
  POST /compat/cm/v1.0/message: the seed vendors' own requests (igdm.contracts.dialects, docs/migrating.md),
  translated into outbound messages, queued as POST /v1/messages queues them, and answered in the vendor's shape;
  their status callbacks go in the vendor's shape too. Each request is new messages (a fresh key) unless it
  carries an Idempotency-Key header: the same header again is the same answer and no second send. CM.com's
  route also takes the key as CM.com's producttoken (in the body, or the X-CM-PRODUCTTOKEN header), so it has no
  authorizer in front: this function checks the key itself.
- GET /v1/accounts/{account_id}/conversations and GET /v1/conversations/{conversation_id}/events: what the
  gateway stored (igdm.store.history), newest first, `limit` (1-100, 25 by default) per page and the next page's
  `cursor`; what a customer deleted is not there (it is scrubbed when the deletion comes).
- POST/GET /v1/webhooks, GET/DELETE /v1/webhooks/{webhook_id}, GET /v1/webhooks/{webhook_id}/deliveries and
  POST /v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver: event webhooks (igdm.store.webhooks), behind
  the webhooks scope: an https target (refused for private and loopback addresses in a deployed stack), the event
  kinds it wants, optionally a dialect; its delivery log for 30 days, newest first; a delivery sent again.
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
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from igdm.queues.outbound_queue import NotQueued
from igdm.runtime.http_api import HttpApiRequest, Reply
from igdm.runtime.observability import logger
from igdm.store.api_keys import ApiKey, identify
from igdm.store.rate_limits import Slot
from igdm.store.webhooks import Webhook

# API Gateway's routeKey for each route in template.yaml (tests/unit/project/test_contracts.py holds them equal).
SEND, READ, ERASE = "POST /v1/messages", "GET /v1/messages/{idempotency_key}", "DELETE /v1/customers/{customer_id}"
COMPAT = {
    "POST /compat/webex-connect/v1/messages": "webex-connect",
    "POST /compat/sinch/v1/projects/{project_id}/{method}": "sinch",  # {method}: messages:send only
    "POST /compat/cm/v1.0/message": "cm",
}
SINCH_METHOD = "messages:send"
CM_ROUTE = "POST /compat/cm/v1.0/message"  # no authorizer: CM.com's key may come in the body
CONVERSATIONS = "GET /v1/accounts/{account_id}/conversations"
EVENTS = "GET /v1/conversations/{conversation_id}/events"
HOOK_ROUTES = (
    ADD_HOOK := "POST /v1/webhooks",
    LIST_HOOKS := "GET /v1/webhooks",
    GET_HOOK := "GET /v1/webhooks/{webhook_id}",
    DELETE_HOOK := "DELETE /v1/webhooks/{webhook_id}",
    DELIVERIES := "GET /v1/webhooks/{webhook_id}/deliveries",
    REDELIVER := "POST /v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
)
ROUTES = (SEND, READ, ERASE, CONVERSATIONS, EVENTS, *HOOK_ROUTES, *COMPAT)
SCOPE = {
    SEND: "send",
    READ: "read",
    ERASE: "erase",
    CONVERSATIONS: "read",
    EVENTS: "read",
    **dict.fromkeys(COMPAT, "send"),
    **dict.fromkeys(HOOK_ROUTES, "webhooks"),
}
_ID = re.compile(r"^[0-9]{1,64}$")
# Every stored event is offered to every registration: a bound keeps one event's fan-out (and its log writes) small.
MAX_WEBHOOKS = 25
IDEMPOTENCY_HEADER = "idempotency-key"
_IDEMPOTENCY_VALUE = re.compile(r"^[!-~]{1,100}$")
API_RATE_CLASS = "api"
MAX_BODY_BYTES = 262_144  # SQS's message limit: the outbound queue takes nothing larger


class Outbound(Protocol):
    def enqueue(self, message: dict[str, Any]) -> str:
        """Validate and queue; ValueError says what is invalid."""
        ...

    def enqueue_all(self, messages: list[dict[str, Any]]) -> None:
        """Validate all, then queue all in order; ValueError says which is invalid and why."""
        ...


class History(Protocol):
    def conversations(
        self, account_id: str, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]: ...

    def events(
        self, account_id: str, customer_id: str, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]: ...


class Hooks(Protocol):
    def add(self, hook: Webhook) -> None: ...

    def get(self, webhook_id: str) -> Webhook | None: ...

    def all(self) -> list[Webhook]: ...

    def delete(self, webhook_id: str) -> bool: ...

    def deliveries(
        self, webhook_id: str, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]: ...

    def delivery(self, webhook_id: str, delivery_id: str) -> dict[str, Any] | None: ...

    def redelivering(self, webhook_id: str, delivery_id: str) -> int: ...


class Redeliveries(Protocol):
    def send(self, body: str, group: str, deduplication_id: str) -> None: ...


class Keys(Protocol):
    def get(self, key_id: str) -> ApiKey | None: ...


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
        return cls.of_context(request.request_context.authorizer.get("lambda") or {})

    @classmethod
    def of_context(cls, context: dict[str, Any]) -> "Caller | str":
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
    keys: Keys
    history: History
    hooks: Hooks
    redeliveries: Redeliveries
    allow_local_callbacks: bool = False
    clock: Callable[[], float] = field(default=time.time)

    def __call__(self, request: HttpApiRequest) -> Reply:
        if request.route_key not in ROUTES:
            return _error(404, "no such route")
        dialect = COMPAT.get(request.route_key)
        caller = self._cm_caller(request) if request.route_key == CM_ROUTE else Caller.of(request)
        if isinstance(caller, str):
            return _error(401, caller, dialect)
        scope = SCOPE[request.route_key]
        if scope not in caller.scopes:
            return _error(403, f"this API key has no {scope} scope", dialect)
        slot = self.limiter.acquire(f"key:{caller.key_id}", API_RATE_CLASS)
        if not slot.reserved:
            retry = max(1, math.ceil(slot.wait))
            reply = _error(429, f"this API key's rate is spent: retry in {retry} s", dialect)
            return Reply(reply.status, reply.body, reply.content_type, (("Retry-After", str(retry)),))
        if dialect is not None:
            return self._compat(request, caller, dialect)
        return self._route(request, caller)

    def _route(self, request: HttpApiRequest, caller: Caller) -> Reply:
        if request.route_key == SEND:
            return self._send(request, caller)
        if request.route_key == ERASE:
            return self._erase(request, caller)
        if request.route_key in (CONVERSATIONS, EVENTS):
            return self._history(request, caller)
        if request.route_key in HOOK_ROUTES:
            return self._hooks(request, caller)
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

    def _cm_caller(self, request: HttpApiRequest) -> "Caller | str":
        """CM.com's route has no authorizer in front (its key may be in the body): the same check, made here."""
        authorization = request.header("authorization") or ""
        presented = authorization[7:].strip() if authorization.lower().startswith("bearer ") else None
        presented = presented or request.header("x-cm-producttoken")
        if not presented:
            from igdm.contracts.dialects.cm import product_token

            raw = request.raw_body()
            try:
                presented = product_token(json.loads(raw)) if raw and len(raw) <= MAX_BODY_BYTES else None
            except ValueError:
                presented = None
        if not presented:
            return "send the key as Authorization: Bearer <key>, or as CM.com's producttoken"
        return Caller.of_context(identify(self.keys, presented))

    def _compat(self, request: HttpApiRequest, caller: Caller, name: str) -> Reply:
        """A seed vendor's request: translated, every message checked, then all queued, answered as the vendor."""
        from igdm.contracts.dialects import DialectError, dialect

        if name == "sinch" and request.path_parameters.get("method") != SINCH_METHOD:
            return _error(404, f"no such route: Sinch's is .../projects/{{project_id}}/{SINCH_METHOD}", name)
        vendor = dialect(name)
        body = _json_body(request, name)
        if isinstance(body, Reply):
            return body
        given = request.header(IDEMPOTENCY_HEADER)
        if given is not None and not _IDEMPOTENCY_VALUE.match(given):
            return _error(400, "Idempotency-Key: 1 to 100 printable ASCII characters, no spaces", name)
        key = f"{name}-{given or uuid.uuid4().hex}"
        try:
            messages = vendor.messages(body, key)
        except DialectError as refused:
            return _error(400, str(refused), name)
        for message in messages:
            named = message.get("account_id")
            if caller.account_id is not None and named not in (None, caller.account_id):
                return _error(403, "this API key may send for its own account only", name)
            if caller.account_id is not None:
                message["account_id"] = caller.account_id
        try:
            self.outbound.enqueue_all(messages)
        except ValueError as invalid:
            return _error(400, f"as an Instagram message: {invalid}", name)
        except (ClientError, BotoCoreError, NotQueued) as exc:
            logger.warning("the outbound queue refused a message", extra={"error": type(exc).__name__})
            reason = "the outbound queue did not take the message: send it again"
            return _error(503, reason + (", with the same Idempotency-Key" if given else ""), name)
        logger.info(
            "vendor request queued",
            extra={
                "dialect": name,
                "idempotency_keys": [m["idempotency_key"] for m in messages],
                "key_id": caller.key_id,
            },
        )
        status, answer = vendor.accepted(messages, _now(self.clock()))
        return Reply.of_json(status, answer)

    def _history(self, request: HttpApiRequest, caller: Caller) -> Reply:
        from igdm.store.history import DEFAULT_PAGE, MAX_PAGE, BadCursor

        limit_given = request.query.get("limit", str(DEFAULT_PAGE))
        if not limit_given.isdigit() or not 1 <= int(limit_given) <= MAX_PAGE:
            return _error(400, f"limit: a whole number from 1 to {MAX_PAGE}")
        limit, cursor = int(limit_given), request.query.get("cursor") or None
        if request.route_key == CONVERSATIONS:
            account, customer = request.path_parameters.get("account_id", ""), None
        else:
            account, _, customer = request.path_parameters.get("conversation_id", "").partition(":")
            if not customer or not _ID.match(customer):
                return _error(400, "conversation_id: <account id>:<customer id>, as events name it")
        if not _ID.match(account):
            return _error(400, "account_id: an Instagram account's id, digits only")
        if caller.account_id is not None and account != caller.account_id:
            return _error(403, "this API key may read its own account only")
        try:
            if customer is None:
                found, following = self.history.conversations(account, limit, cursor)
                return Reply.of_json(200, {"conversations": found, "next_cursor": following})
            found, following = self.history.events(account, customer, limit, cursor)
            return Reply.of_json(200, {"events": found, "next_cursor": following})
        except BadCursor as bad:
            return _error(400, str(bad))

    def _hooks(self, request: HttpApiRequest, caller: Caller) -> Reply:
        route = request.route_key
        if route == ADD_HOOK:
            return self._add_hook(request, caller)
        if route == LIST_HOOKS:
            hooks = [h.view() for h in self.hooks.all() if caller.account_id in (None, h.account_id)]
            return Reply.of_json(200, {"webhooks": sorted(hooks, key=lambda h: h["created_at"])})
        hook = self.hooks.get(request.path_parameters.get("webhook_id", ""))
        if hook is None or caller.account_id not in (None, hook.account_id):
            return _error(404, "no such webhook")
        if route == GET_HOOK:
            return Reply.of_json(200, hook.view())
        if route == DELETE_HOOK:
            self.hooks.delete(hook.webhook_id)
            logger.info("event webhook deleted", extra={"webhook_id": hook.webhook_id, "key_id": caller.key_id})
            return Reply.of_json(200, {"webhook_id": hook.webhook_id, "deleted": True})
        if route == DELIVERIES:
            limit = request.query.get("limit", "25")
            if not limit.isdigit() or not 1 <= int(limit) <= 100:
                return _error(400, "limit: a whole number from 1 to 100")
            try:
                found, following = self.hooks.deliveries(hook.webhook_id, int(limit), request.query.get("cursor"))
            except ValueError as bad:
                return _error(400, str(bad))
            return Reply.of_json(200, {"deliveries": found, "next_cursor": following})
        return self._redeliver(request, hook)

    def _add_hook(self, request: HttpApiRequest, caller: Caller) -> Reply:
        from igdm.contracts.callbacks import url_refusal
        from igdm.contracts.event_webhooks import DIALECTS, kinds_wanted

        raw = request.raw_body()
        try:
            wanted = json.loads(raw or "")
        except ValueError:
            return _error(400, "the body is not JSON")
        if not isinstance(wanted, dict):
            return _error(400, 'the body must be a JSON object: {"url", "kinds", "dialect"}')
        unknown = sorted(set(wanted) - {"url", "kinds", "dialect"})
        if unknown:
            return _error(400, f"{unknown[0]}: not a field of a webhook (url, kinds, dialect)")
        url, dialect = wanted.get("url"), wanted.get("dialect")
        if not isinstance(url, str) or not url:
            return _error(400, "url: required, the https URL to POST events to")
        refusal = url_refusal(url, allow_local=self.allow_local_callbacks)
        if refusal is not None:
            return _error(400, f"url: {refusal}")
        if dialect is not None and dialect not in DIALECTS:
            return _error(400, f"dialect: one of {', '.join(DIALECTS)}, or none for the gateway's own events")
        try:
            kinds = kinds_wanted(wanted.get("kinds"), dialect)
        except ValueError as invalid:
            return _error(400, str(invalid))
        if len(self.hooks.all()) >= MAX_WEBHOOKS:
            return _error(409, f"this stack has {MAX_WEBHOOKS} event webhooks, its most: delete one first")
        hook = Webhook.new(url, kinds, dialect, caller.account_id, caller.key_id)
        self.hooks.add(hook)
        logger.info("event webhook registered", extra={"webhook_id": hook.webhook_id, "key_id": caller.key_id})
        return Reply.of_json(201, hook.view())

    def _redeliver(self, request: HttpApiRequest, hook: Webhook) -> Reply:
        from igdm.store.webhooks import Delivery, job

        delivery_id = request.path_parameters.get("delivery_id", "")
        found = self.hooks.delivery(hook.webhook_id, delivery_id) if delivery_id else None
        if found is None:
            return _error(404, "no such delivery (the log keeps 30 days)")
        if found["content_deleted"]:
            return _error(409, "the customer deleted this message: its content is no longer kept, nor sent again")
        delivery = Delivery(
            hook.webhook_id, delivery_id, found["event_id"], found["kind"], found["conversation_id"], found["body"]
        )  # only its job is made again: the item keeps its account and customer
        # Queued first, then logged: a refused send leaves the log as it was (and the caller asks again).
        body, group, dedup = job(hook, delivery, redelivery=str(int(self.clock() * 1000)))
        try:
            self.redeliveries.send(json.dumps(body), group, dedup)
        except (ClientError, BotoCoreError) as exc:
            logger.warning("the callback queue refused a redelivery", extra={"error": type(exc).__name__})
            return _error(503, "the redelivery was not queued: ask again")
        count = self.hooks.redelivering(hook.webhook_id, delivery_id)
        return Reply.of_json(202, {"delivery_id": delivery_id, "state": "pending", "redelivery": count})

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


def _json_body(request: HttpApiRequest, dialect: str) -> Any:
    """The request's JSON, or the vendor-shaped refusal of a body that is missing, too large or not JSON."""
    raw = request.raw_body()
    if raw is None or len(raw) > MAX_BODY_BYTES:
        return _error(413 if raw else 400, "the body must be one request as JSON, at most 256 KiB", dialect)
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return _error(400, "the body is not JSON", dialect)


def _error(status: int, reason: str, dialect: str | None = None) -> Reply:
    """Our error body, or the vendor's for its own routes (with our status code)."""
    if dialect is None:
        return Reply.of_json(status, {"error": reason})
    from igdm.contracts.dialects import dialect as vendor

    return Reply.of_json(status, vendor(dialect).refused(reason, status))


def _now(epoch: float) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC)
