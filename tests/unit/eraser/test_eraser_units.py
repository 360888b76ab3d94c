"""The eraser's edges on in-memory ports: what its queue handler does with a job that is not one, one that fails
and one that runs out of time; a job that names no request of the stack, or a request already complete; a
publication the queue refuses. The deletions themselves run on moto in tests/integration/test_erasure.py."""

import math
from dataclasses import dataclass, field
from typing import Any

import pytest

from eraser.jobs import ErasureJobs
from eraser.service import Eraser, OutOfTime
from igdm.contracts.account_status import AccountChange
from igdm.contracts.serialized import SerializedEvent
from igdm.queues.erasure_queue import BadJob, ErasureJob
from igdm.store.erasure import COMPLETED, ErasureRequest
from tests.fakes.metrics import CountedMetrics

CUSTOMER, ACCOUNT = "6543210987654321", "17841400000000001"


@dataclass
class Requests:
    requests: dict[str, ErasureRequest] = field(default_factory=dict)
    completed: list[str] = field(default_factory=list)

    def get(self, code: str) -> ErasureRequest | None:
        return self.requests.get(code)

    def started(self, code: str) -> None:
        pass

    def deleted(self, code: str, counts: dict[str, int]) -> None:
        pass

    def complete(self, code: str, at: str) -> None:
        self.completed.append(code)


@dataclass
class Data:
    """A table holding one account and nothing about anyone."""

    deletes: list[Any] = field(default_factory=list)

    def accounts(self) -> list[str]:
        return [ACCOUNT]

    def indexed(self, account_id: str, customer_id: str | None = None) -> list[Any]:
        return []

    def partition(self, pk: str, **filters: str) -> list[dict[str, Any]]:
        return []

    def existing(self, keys: Any, projection: str = "pk, sk") -> list[dict[str, Any]]:
        return []

    def delete(self, keys: Any) -> None:
        self.deletes.append(list(keys))

    def delete_if_present(self, pk: str, sk: str) -> bool:
        return False


@dataclass
class Events:
    refuse: bool = False
    published: list[SerializedEvent] = field(default_factory=list)

    def publish(self, events: Any) -> list[SerializedEvent]:
        if self.refuse:
            return []
        self.published.extend(events)
        return list(events)


class AccountEvents:
    def publish(self, changes: list[AccountChange], *, now: float) -> list[AccountChange]:
        return []


def eraser(requests: Requests, events: Events | None = None) -> tuple[Eraser, Data, CountedMetrics]:
    data, metrics = Data(), CountedMetrics()
    built = Eraser(
        requests=requests,
        data=data,
        vault=_Vault(),
        events=events or Events(),
        account_events=AccountEvents(),
        secret_name=lambda a: f"gw/accounts/{a}",
        metrics=metrics,
        clock=lambda: 1_800_000_000.0,
    )
    return built, data, metrics


class _Vault:
    def delete(self, secret_id: str) -> bool:
        return False


def request_for(user_id: str, **changes: Any) -> ErasureRequest:
    request = ErasureRequest.new(user_id, "meta", now=1_800_000_000.0)
    return ErasureRequest(**{**request.__dict__, **changes})


def test_a_job_whose_id_is_not_its_requests_is_refused_and_nothing_is_deleted() -> None:
    request = request_for("1111111111")
    built, data, metrics = eraser(Requests({request.code: request}))
    assert built.erase(ErasureJob(request.code, CUSTOMER)) is None  # the hash names another id
    assert built.erase(ErasureJob("no-such-code-0000000000", CUSTOMER)) is None
    assert data.deletes == [] and metrics.total("ErasureJobsRefused") == 2


def test_a_request_already_complete_is_not_carried_out_again() -> None:
    request = request_for(CUSTOMER, status=COMPLETED)
    requests = Requests({request.code: request})
    built, data, _ = eraser(requests)
    assert built.erase(ErasureJob(request.code, CUSTOMER)) == request
    assert data.deletes == [] and requests.completed == []


def test_an_erasure_whose_events_the_queue_refuses_is_not_complete() -> None:
    request = request_for(CUSTOMER)
    requests = Requests({request.code: request})
    built, _, _ = eraser(requests, Events(refuse=True))
    with pytest.raises(RuntimeError, match="customer_forgotten"):
        built.erase(ErasureJob(request.code, CUSTOMER))
    assert requests.completed == []  # SQS hands the job back; the events' ids make the retry's duplicates harmless


def test_nothing_stored_still_tells_every_account_and_completes() -> None:
    request = request_for(CUSTOMER)
    requests, events = Requests({request.code: request}), Events()
    built, _, _ = eraser(requests, events)
    built.erase(ErasureJob(request.code, CUSTOMER), lambda: math.inf)
    assert [(e.event.kind, e.event.account_id, e.event.customer_id) for e in events.published] == [
        ("customer_forgotten", ACCOUNT, CUSTOMER)
    ]
    assert requests.completed == [request.code]


class Context:
    def get_remaining_time_in_millis(self) -> int:
        return 900_000


class Scripted:
    """An eraser whose outcome the test chooses."""

    def __init__(self, outcome: Exception | None) -> None:
        self.outcome = outcome
        self.jobs: list[ErasureJob] = []

    def erase(self, job: ErasureJob, time_left: Any) -> None:
        self.jobs.append(job)
        assert time_left() == 900.0
        if self.outcome is not None:
            raise self.outcome


def record(body: str, message_id: str = "m-1") -> dict[str, Any]:
    return {"messageId": message_id, "body": body}


@pytest.mark.parametrize("outcome", [None, OutOfTime("12 items left"), RuntimeError("DynamoDB unreachable")])
def test_the_queue_handler_hands_back_only_a_job_that_is_not_done(outcome: Exception | None) -> None:
    scripted = Scripted(outcome)
    handler = ErasureJobs(scripted)  # type: ignore[arg-type]
    job = ErasureJob("code-0000000000000000", CUSTOMER)
    answer = handler({"Records": [record(job.to_json())]}, Context())  # type: ignore[arg-type]
    assert scripted.jobs == [job]
    assert answer == {"batchItemFailures": [] if outcome is None else [{"itemIdentifier": "m-1"}]}


@pytest.mark.parametrize(
    "body", ["not json", "[1]", '{"confirmation_code": "c"}', '{"confirmation_code": "c", "user_id": "abc"}']
)
def test_a_message_that_is_no_job_is_dropped_not_retried(body: str) -> None:
    with pytest.raises(BadJob):
        ErasureJob.from_json(body)
    scripted = Scripted(None)
    answer = ErasureJobs(scripted)({"Records": [record(body)]}, Context())  # type: ignore[arg-type]
    assert answer == {"batchItemFailures": []} and scripted.jobs == []
