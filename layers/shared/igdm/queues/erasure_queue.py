"""The erasure queue (standard SQS): one job per erasure request, from Meta's data-deletion callback to the
eraser. The job carries the id to erase and the request's confirmation code; the table's audit item holds only
a hash of the id, and the queue keeps a job no longer than its retention (14 days, or until it is done)."""

import json
from dataclasses import dataclass
from typing import Any, Protocol

from igdm.store.erasure import ErasureRequest, Requester


class BadJob(ValueError):
    """A message on the erasure queue that is not a job: nothing can be erased from it."""


@dataclass(frozen=True)
class ErasureJob:
    code: str
    user_id: str

    def to_json(self) -> str:
        return json.dumps({"confirmation_code": self.code, "user_id": self.user_id})

    @classmethod
    def from_json(cls, body: str) -> "ErasureJob":
        try:
            document = json.loads(body)
        except ValueError:
            raise BadJob("not JSON") from None
        if not isinstance(document, dict):
            raise BadJob("not a JSON object")
        code, user_id = document.get("confirmation_code"), document.get("user_id")
        if not isinstance(code, str) or not code or not isinstance(user_id, str) or not user_id.isdigit():
            raise BadJob("confirmation_code and user_id (digits) are required")
        return cls(code, user_id)


class ErasureQueue:
    def __init__(self, sqs: Any, queue_url: str) -> None:
        self._sqs = sqs
        self._queue_url = queue_url

    def send(self, job: ErasureJob) -> None:
        self._sqs.send_message(QueueUrl=self._queue_url, MessageBody=job.to_json())


class Requests(Protocol):
    def add(self, request: ErasureRequest) -> None: ...


class Jobs(Protocol):
    def send(self, job: ErasureJob) -> None: ...


def request_erasure(requests: Requests, jobs: Jobs, user_id: str, *, requested_by: Requester, now: float) -> str:
    """Record an erasure request, then hand it to the eraser: the audit item first, so a job always finds its
    request. Returns the confirmation code."""
    request = ErasureRequest.new(user_id, requested_by, now=now)
    requests.add(request)
    jobs.send(ErasureJob(request.code, user_id))
    return request.code
