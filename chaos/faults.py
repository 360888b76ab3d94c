"""Faults at the AWS boundary: hooks on the functions' own boto3 clients (``igdm.runtime.aws.client``).

Three kinds, each on a seeded random fraction of calls:
  refused      AWS answers an error (throttling, 5xx): nothing was done. The error reaches the product
               as botocore raises it once its own retries are spent (the hook answers in place of them).
  unreachable  the connection fails before the request is sent: nothing was done.
  lost         the call succeeded at AWS, but its answer never came back (a read timeout): the write
               happened, and the caller cannot know it.
The harness's own clients (boto3.client, not igdm.runtime.aws.client) are separate objects with their own hooks,
so what the scenarios count is never faulted.
"""

import random
import threading
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError

from igdm.runtime import aws

# The error answers AWS gives under load, by service id (the code, and its HTTP status).
ERRORS: dict[str, tuple[tuple[str, int], ...]] = {
    "dynamodb": (
        ("ProvisionedThroughputExceededException", 400),
        ("ThrottlingException", 400),
        ("RequestLimitExceeded", 400),
        ("InternalServerError", 500),
    ),
    "sqs": (
        ("RequestThrottled", 400),
        ("ThrottlingException", 400),
        ("ServiceUnavailable", 503),
        ("InternalError", 500),
    ),
    "secrets-manager": (("ThrottlingException", 400), ("InternalServiceError", 500)),
}
_ENDPOINT = "https://aws.chaos.invalid"  # never contacted: only named in the exceptions


class _EmptyBody:
    def stream(self, **_: Any) -> Any:
        return iter(())


@dataclass
class _Armed:
    service: str
    kind: str
    operation: str | None  # None: any operation
    thread: int | None  # None: any thread
    skip: int  # matching calls still to let through first


@dataclass(frozen=True)
class Fault:
    service: str
    operation: str
    kind: str  # refused:<code> | unreachable | lost


class AwsFaults:
    """Injects faults into the calls of the clients it is attached to.

    ``rate`` is the fraction of calls refused or unreachable, ``lost_rate`` the fraction of successful
    calls whose answer is lost; ``operations`` limits both to those operation names. ``armed`` faults
    (``arm()``) come first, whatever the rates, for scenarios that need one at an exact moment.
    ``after_call`` is called after every call that reached AWS, before a lost answer is raised.
    """

    def __init__(
        self,
        rng: random.Random,
        *,
        rate: float = 0.0,
        lost_rate: float = 0.0,
        operations: Collection[str] | None = None,
        after_call: Callable[[str, str, dict[str, Any]], None] | None = None,
    ) -> None:
        self._rng = rng
        self.rate = rate
        self.lost_rate = lost_rate
        self._operations = frozenset(operations) if operations is not None else None
        self._after_call = after_call
        self._armed: list[_Armed] = []
        self._lock = threading.Lock()  # the webhook runs in the local API server's thread
        self.injected: Counter[Fault] = Counter()

    def attach(self, *services: str) -> "AwsFaults":
        """Hook the functions' cached clients of ``services`` (boto3 names: dynamodb, sqs, secretsmanager)."""
        for service in services:
            events = aws.client(service).meta.events
            service_id = aws.client(service).meta.service_model.service_id.hyphenize()
            events.register(f"before-call.{service_id}", self._before_call)
            events.register(f"after-call.{service_id}", self._after)
        return self

    def arm(
        self, service_id: str, kind: str, operation: str | None = None, *, this_thread: bool = False, after: int = 0
    ) -> None:
        """The next call of ``service_id`` (of ``operation``, if given; made by this thread, if asked: the
        webhook shares the sender's clients from another thread), once ``after`` such calls went through,
        gets fault ``kind``: refused, unreachable or lost."""
        with self._lock:
            self._armed.append(
                _Armed(service_id, kind, operation, threading.get_ident() if this_thread else None, after)
            )

    def pause(self) -> None:
        """No more random faults (armed ones still fire)."""
        self.rate = self.lost_rate = 0.0

    @property
    def total(self) -> int:
        return sum(self.injected.values())

    def _selected(self, operation: str) -> bool:
        return self._operations is None or operation in self._operations

    def _take_armed(self, service_id: str, operation: str, kinds: tuple[str, ...]) -> str | None:
        for index, armed in enumerate(self._armed):
            if (
                armed.service == service_id
                and armed.kind in kinds
                and armed.operation in (None, operation)
                and armed.thread in (None, threading.get_ident())
            ):
                if armed.skip:
                    armed.skip -= 1
                    return None
                del self._armed[index]
                return armed.kind
        return None

    def _before_call(self, model: Any, **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        service_id = model.service_model.service_id.hyphenize()
        with self._lock:
            kind = self._take_armed(service_id, model.name, ("refused", "unreachable"))
            if kind is None and self._selected(model.name) and self._rng.random() < self.rate:
                kind = self._rng.choice(("refused", "refused", "refused", "unreachable"))
            if kind is None:
                return None
            if kind == "unreachable":
                self.injected[Fault(service_id, model.name, kind)] += 1
                raise EndpointConnectionError(endpoint_url=_ENDPOINT)
            code, status = self._rng.choice(ERRORS[service_id])
            self.injected[Fault(service_id, model.name, f"refused:{code}")] += 1
        # What botocore builds from an error answer: it raises the modeled exception (a ClientError).
        parsed = {
            "Error": {"Code": code, "Message": "injected by chaos"},
            "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": "chaos"},
        }
        return AWSResponse(_ENDPOINT, status, HTTPHeaders(), _EmptyBody()), parsed

    def _after(self, http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        if http_response.status_code >= 300:
            return  # an error answer (perhaps ours): nothing happened at AWS
        service_id = model.service_model.service_id.hyphenize()
        if self._after_call is not None:
            self._after_call(service_id, model.name, parsed)
        with self._lock:
            lost = self._take_armed(service_id, model.name, ("lost",)) is not None or (
                self._selected(model.name) and self._rng.random() < self.lost_rate
            )
            if lost:
                self.injected[Fault(service_id, model.name, "lost")] += 1
        if lost:
            raise ReadTimeoutError(endpoint_url=_ENDPOINT)

    def by_kind(self) -> Counter[str]:
        """Injected faults by service and kind ("dynamodb refused": 12, ...)."""
        found: Counter[str] = Counter()
        for fault, count in self.injected.items():
            found[f"{fault.service} {fault.kind.split(':')[0]}"] += count
        return found

    def summary(self) -> str:
        return ", ".join(f"{name} {count}" for name, count in sorted(self.by_kind().items()))
