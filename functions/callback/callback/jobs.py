"""A job on the callback queue, read without pydantic when it is well formed.

Every job is written by the gateway itself (the sender's status callbacks, the fan-out's event webhooks), so the
plain reader below takes all of them; pydantic's model (callback.job_model) reads anything else, so that a
refused job is refused with its wording. Pydantic is 70 ms of the callback function's cold start
(-X importtime), and a well-formed job never loads it (tests/unit/callback/test_jobs.py holds the two readers to
the same answers)."""

import json
from typing import Any, NamedTuple, TypeIs

# The fields the gateway writes (igdm.queues.status_publisher, igdm.store.webhooks.job): a job with any other is
# the model's to read, which ignores them but refuses some (nested too deep, a lone surrogate).
FIELDS = frozenset({"url", "event_id", "body", "hook"})
HOOK_FIELDS = frozenset({"webhook_id", "delivery_id"})
# Field bounds, as callback.job_model declares them.
EVENT_ID_MAX = 128
WEBHOOK_ID_MAX = 64
DELIVERY_ID_MAX = 200


class JobRefused(Exception):
    """Not a valid job: ``detail`` names each problem, as pydantic words it."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class HookDelivery(NamedTuple):
    """An event webhook's delivery (functions/fanout): each attempt is recorded in its log."""

    webhook_id: str
    delivery_id: str


class CallbackJob(NamedTuple):
    url: str
    event_id: str
    body: str
    hook: HookDelivery | None = None


def read_job(job_body: str) -> CallbackJob:
    """The job in ``job_body``; JobRefused when it is not one."""
    return _plain(job_body) or _by_model(job_body)


def _plain(job_body: str) -> CallbackJob | None:
    """The job when every field is as the model requires; None for anything else, which the model then reads."""
    try:
        document = json.loads(job_body)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the interpreter's stack
        return None
    if not isinstance(document, dict) or not document.keys() <= FIELDS:
        return None
    url, event_id, body = document.get("url"), document.get("event_id"), document.get("body")
    if not (_text(url, 1) and _text(event_id, 1, EVENT_ID_MAX) and _text(body, 0)):
        return None
    hook = document.get("hook")
    if hook is None:
        return CallbackJob(url, event_id, body)
    if not isinstance(hook, dict) or not hook.keys() <= HOOK_FIELDS:
        return None
    webhook_id, delivery_id = hook.get("webhook_id"), hook.get("delivery_id")
    if not (_text(webhook_id, 1, WEBHOOK_ID_MAX) and _text(delivery_id, 1, DELIVERY_ID_MAX)):
        return None
    return CallbackJob(url, event_id, body, HookDelivery(webhook_id, delivery_id))


def _text(value: Any, shortest: int, longest: int | None = None) -> TypeIs[str]:
    """A string within the bounds that encodes as UTF-8 (a lone surrogate, which JSON allows, is left to the model)."""
    if not isinstance(value, str) or len(value) < shortest or (longest is not None and len(value) > longest):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _by_model(job_body: str) -> CallbackJob:
    from pydantic import ValidationError

    from callback.job_model import CallbackJobModel

    try:
        model = CallbackJobModel.model_validate_json(job_body)
    except ValidationError as exc:
        detail = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'job'}: {e['msg']}"
            for e in exc.errors(include_url=False, include_input=False)
        )
        raise JobRefused(detail) from None
    hook = None if model.hook is None else HookDelivery(model.hook.webhook_id, model.hook.delivery_id)
    return CallbackJob(model.url, model.event_id, model.body, hook)
