"""Meta's data deletion callback, POST /meta/data-deletion, and the page it links to, GET /meta/deletion-status.

Meta sends a form field `signed_request` (igdm.meta.signed_request) naming a user id: an account's, or a
customer's. One that is not signed with the app's secret, or is more than a day old, is answered 400 and changes
nothing. Otherwise the request is recorded (an ERASURE# audit item: the confirmation code and a hash of the id,
never the id) and put on the erasure queue for the eraser, and Meta gets what it asks for:
`{"url": <the status page>, "confirmation_code": <code>}`. The deletion itself takes seconds (minutes for a large
account); the status page says whether it is done, what was deleted, and when.
"""

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol
from urllib.parse import quote

from igdm.queues.erasure_queue import ErasureJob, request_erasure
from igdm.runtime.http_api import HttpApiRequest, Reply
from igdm.runtime.observability import logger
from igdm.store.erasure import COMPLETED, FAMILIES, ErasureRequest
from onboarding.meta_callback import signed_request
from onboarding.pages import page

STATUS_PATH = "/meta/deletion-status"
CODE = re.compile(r"[A-Za-z0-9_-]{16,64}")
# What the status page calls each kind of item (igdm.store.erasure.FAMILIES): one, and more than one.
LABELS = {
    "events": ("message or other event", "messages and other events"),
    "conversation_states": ("conversation state", "conversation states"),
    "unsettled_markers": ("marker of a message awaiting confirmation", "markers of messages awaiting confirmation"),
    "outbound_messages": ("record of a message sent", "records of messages sent"),
    "message_ids": ("message id record", "message id records"),
    "comments": ("comment record", "comment records"),
    "rate_states": ("rate-limit record", "rate-limit records"),
    "rescued_tokens": ("kept access token", "kept access tokens"),
    "webhook_deliveries": ("event webhook delivery", "event webhook deliveries"),
    "accounts": ("account record", "account records"),
    "token_secrets": ("stored access token", "stored access tokens"),
}


class Requests(Protocol):
    def add(self, request: ErasureRequest) -> None: ...

    def get(self, code: str) -> ErasureRequest | None: ...


class Jobs(Protocol):
    def send(self, job: ErasureJob) -> None: ...


@dataclass
class DataDeletion:
    signing_secrets: Callable[[], Sequence[str]]  # the Instagram app's secret and the Meta app's
    requests: Requests
    jobs: Jobs
    clock: Callable[[], float] = field(default=time.time)

    def callback(self, request: HttpApiRequest) -> Reply:
        now = self.clock()
        signed = signed_request(request, self.signing_secrets(), now, "data deletion")
        if isinstance(signed, Reply):
            return signed
        code = request_erasure(self.requests, self.jobs, signed.user_id, requested_by="meta", now=now)
        logger.warning("data deletion requested by Meta", extra={"code": code})
        return Reply.of_json(
            200, {"url": f"{request.base_url()}{STATUS_PATH}?code={quote(code)}", "confirmation_code": code}
        )

    def status(self, request: HttpApiRequest) -> Reply:
        code = request.query.get("code", "")
        found = self.requests.get(code) if CODE.fullmatch(code) else None
        if found is None:
            return page(
                404,
                "No such deletion request",
                ["This confirmation code names no data deletion request. Check the link Instagram gave you."],
                outcome="unknown_code",
            )
        done = found.status == COMPLETED
        deleted = [
            f"{found.deleted[name]} {LABELS[name][found.deleted[name] > 1]}"
            for name in FAMILIES
            if found.deleted.get(name)
        ]
        lines = [
            f"Confirmation code: {found.code}",
            f"Requested: {_shown(found.requested_at)}",
            f"Completed: {_shown(found.completed_at)}"
            if done
            else "Status: in progress. This page shows the result once it is done.",
        ]
        if done:
            lines.append(
                "Deleted: " + "; ".join(deleted) + "."
                if deleted
                else "Nothing was stored about you: there was nothing to delete."
            )
            lines.append(
                "The systems that read this business's Instagram messages were told to delete what they keep too."
            )
        return page(
            200,
            "Your data deletion request" + (" is complete" if done else " is in progress"),
            lines,
            outcome="deletion_completed" if done else "deletion_pending",
        )


def _shown(iso: str | None) -> str:
    if not iso:
        return "unknown"
    try:
        return datetime.fromisoformat(iso).astimezone(UTC).strftime("%d %B %Y, %H:%M UTC")
    except ValueError:
        return iso
