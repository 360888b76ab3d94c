"""Failures the sandbox produces on purpose (GraphSandbox.inject, POST /__sandbox/faults): 5xx, Meta's error
object, throttling, timeouts and invalid-JSON replies, including the ambiguous ones a sender must reconcile
through the echo (a timeout or a 1/1357046 reply after the message was in fact delivered)."""

import json
from dataclasses import dataclass
from typing import Any

from local.meta.answers import RATE_LIMIT_MESSAGE, GraphError, Reply, usage_header

FAULT_KINDS = ("http_5xx", "error", "throttle", "timeout", "invalid_json_reply")
# "exchange" is GET /access_token (ig_exchange_token); "code_exchange" is POST /oauth/access_token;
# "conversations" is every Conversations API call (a conversation list, a conversation, a message).
FAULT_ENDPOINTS = ("messages", "refresh", "exchange", "code_exchange", "me", "subscribed_apps", "conversations")
IDENTITY_FAULT_KINDS = ("http_5xx", "error", "throttle", "timeout")
UNEXPECTED_ERROR_MESSAGE = "An unexpected error has occurred. Please retry your request later."
THROTTLE_MESSAGES = {
    4: "(#4) Application request limit reached",
    17: "(#17) User request limit reached",
    32: "(#32) Page request limit reached",
    613: "(#613) Calls to this api have exceeded the rate limit.",
    80002: RATE_LIMIT_MESSAGE,
}
DEFAULT_TIMEOUT_DELAY = 30.0


@dataclass
class Fault:
    kind: str
    remaining: int
    status: int | None
    code: int | None
    subcode: int | None
    message: str | None
    delay: float | None
    deliver: bool
    account_id: str | None
    endpoint: str = "messages"


def new_fault(
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
) -> Fault:
    """A fault for the next `count` sends (of `account_id`, if given) that pass auth and validation.

    Faults are used first in, first out. A `deliver` fault (timeout, invalid_json_reply) records the send
    and queues its echo before answering, whatever the rate window holds: it models a message Meta did
    deliver while the caller saw a failure.

    With another `endpoint` (refresh, exchange, code_exchange, me, subscribed_apps, conversations) the fault
    hits only that endpoint, with kind http_5xx, error, throttle or timeout (a delay, then a 5xx), and changes
    no state: `me`, `subscribed_apps` and `conversations` faults fire after the token is accepted, the others
    on any request.
    """
    if endpoint not in FAULT_ENDPOINTS:
        raise ValueError(f"endpoint must be one of {', '.join(FAULT_ENDPOINTS)}")
    kinds = FAULT_KINDS if endpoint == "messages" else IDENTITY_FAULT_KINDS
    if kind not in kinds:
        raise ValueError(f"kind must be one of {', '.join(kinds)}")
    _check_int("count", count, low=1)
    for name, value in (("status", status), ("code", code), ("subcode", subcode)):
        if value is not None:
            _check_int(name, value, low=100 if name == "status" else 0, high=599 if name == "status" else None)
    if message is not None and not isinstance(message, str):
        raise ValueError("message must be a string")
    if delay is not None and (isinstance(delay, bool) or not isinstance(delay, int | float) or delay < 0):
        raise ValueError("delay must be a non-negative number of seconds")
    if not isinstance(deliver, bool):
        raise ValueError("deliver must be true or false")
    if deliver and kind not in ("timeout", "invalid_json_reply"):
        raise ValueError("deliver applies to the timeout and invalid_json_reply faults only")
    if deliver and endpoint != "messages":
        raise ValueError("deliver applies to the messages endpoint only")
    if account_id is not None and not isinstance(account_id, str):
        raise ValueError("account_id must be a string")
    return Fault(
        kind,
        count,
        status,
        code,
        subcode,
        message,
        None if delay is None else float(delay),
        deliver,
        account_id,
        endpoint,
    )


def take_fault(faults: list[Fault], account_id: str | None, endpoint: str = "messages") -> Fault | None:
    """The first fault queued for this endpoint and account, counted down (and gone once used up)."""
    for index, fault in enumerate(faults):
        if fault.endpoint == endpoint and fault.account_id in (None, account_id):
            fault.remaining -= 1
            if fault.remaining == 0:
                del faults[index]
            return fault
    return None


def fault_reply(fault: Fault, account_id: str, success: dict[str, Any], call_count: int) -> Reply:
    """The answer a fault gives; `success` is what a timeout that delivered answers once its delay is over."""
    delay = fault.delay or 0.0
    if fault.kind == "timeout":
        delay = DEFAULT_TIMEOUT_DELAY if fault.delay is None else fault.delay
        if fault.deliver:
            # Whoever is still waiting after the delay learns that the send went through.
            return Reply(200, success, usage_header(account_id, call_count), delay)
        error = GraphError(
            fault.status or 500,
            fault.code or 2,
            fault.message or UNEXPECTED_ERROR_MESSAGE,
            subcode=fault.subcode,
            is_transient=True,
        )
    elif fault.kind == "http_5xx":
        error = GraphError(
            fault.status or 500,
            fault.code or 2,
            fault.message or UNEXPECTED_ERROR_MESSAGE,
            subcode=fault.subcode,
            is_transient=True,
        )
    elif fault.kind == "throttle":
        code = fault.code or 4
        message = fault.message or THROTTLE_MESSAGES.get(code, f"(#{code}) Rate limit reached")
        headers = (
            {"X-App-Usage": json.dumps({"call_count": 100, "total_cputime": 25, "total_time": 50})}
            if code == 4
            else usage_header(account_id, 100)
        )
        error = GraphError(
            fault.status or 400, code, message, subcode=fault.subcode, is_transient=True, headers=headers
        )
    elif fault.kind == "invalid_json_reply":
        error = GraphError(
            fault.status or 500,
            fault.code or 1,
            fault.message or "Received Invalid JSON reply.",
            subcode=fault.subcode if fault.subcode is not None else 1357046,
        )
    else:
        error = GraphError(
            fault.status or 400,
            fault.code if fault.code is not None else 1,
            fault.message or "An unknown error has occurred.",
            subcode=fault.subcode,
        )
    return Reply(error.status, error.body(), error.headers, delay)


def _check_int(name: str, value: Any, *, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        bound = f"{low} to {high}" if high is not None else f"at least {low}"
        raise ValueError(f"{name} must be an integer, {bound}")
