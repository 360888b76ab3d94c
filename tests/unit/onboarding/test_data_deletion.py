"""Meta's data-deletion callback and the status page on in-memory ports, through the onboarding API's routing:
what Meta gets back, what a forged or oversized request gets, and what the page says before and after. The
whole path on moto, eraser included, is tests/integration/test_erasure.py."""

import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from igdm.meta.signed_request import sign_request
from igdm.queues.erasure_queue import ErasureJob
from igdm.store.erasure import COMPLETED, ErasureRequest, subject_hash
from local.aws.apigw import http_api_event
from onboarding.api import OnboardingApi
from onboarding.data_deletion import DataDeletion

SECRET = "instagram-app-secret"
HOST = "abc123.execute-api.eu-west-1.amazonaws.com"
CUSTOMER = "6543210987654321"


@dataclass
class Requests:
    items: dict[str, ErasureRequest] = field(default_factory=dict)
    broken: bool = False

    def add(self, request: ErasureRequest) -> None:
        self.items[request.code] = request

    def get(self, code: str) -> ErasureRequest | None:
        if self.broken:
            raise ConnectionError("DynamoDB did not answer")
        return self.items.get(code)


@dataclass
class Jobs:
    sent: list[ErasureJob] = field(default_factory=list)

    def send(self, job: ErasureJob) -> None:
        self.sent.append(job)


def api(requests: Requests, jobs: Jobs) -> OnboardingApi:
    deletion = DataDeletion(signing_secrets=lambda: [SECRET], requests=requests, jobs=jobs)

    def unused() -> Any:
        raise AssertionError("not these routes")

    return OnboardingApi(unused, unused, lambda: deletion)


def callback(app: OnboardingApi, body: bytes) -> dict[str, Any]:
    event = http_api_event(
        "POST",
        "/meta/data-deletion",
        headers={"host": HOST, "x-forwarded-proto": "https", "content-type": "application/x-www-form-urlencoded"},
        body=body,
    )
    return app(event)


def signed(user_id: str, secret: str = SECRET) -> bytes:
    payload = {"algorithm": "HMAC-SHA256", "issued_at": int(time.time()), "user_id": user_id}
    return urlencode({"signed_request": sign_request(payload, secret)}).encode()


def page(app: OnboardingApi, code: str) -> dict[str, Any]:
    return app(http_api_event("GET", "/meta/deletion-status", query=urlencode({"code": code}), headers={"host": HOST}))


def test_meta_gets_the_status_pages_address_and_a_code_and_the_eraser_a_job() -> None:
    requests, jobs = Requests(), Jobs()
    app = api(requests, jobs)
    answer = callback(app, signed(CUSTOMER))
    assert answer["statusCode"] == 200
    document = json.loads(answer["body"])
    code = document["confirmation_code"]
    assert document == {"url": f"https://{HOST}/meta/deletion-status?code={code}", "confirmation_code": code}
    assert jobs.sent == [ErasureJob(code, CUSTOMER)]
    assert requests.items[code].subject_hash == subject_hash(CUSTOMER) and requests.items[code].requested_by == "meta"
    pending = page(app, code)
    assert pending["statusCode"] == 200 and 'data-outcome="deletion_pending"' in pending["body"]


def test_a_forged_or_oversized_request_records_nothing() -> None:
    requests, jobs = Requests(), Jobs()
    app = api(requests, jobs)
    assert callback(app, signed(CUSTOMER, secret="forged"))["statusCode"] == 400
    assert callback(app, b"signed_request=" + b"a" * 20_000)["statusCode"] == 413
    assert requests.items == {} and jobs.sent == []


def test_a_completed_request_with_nothing_stored_says_so_and_an_unknown_code_is_not_found() -> None:
    request = ErasureRequest.new(CUSTOMER, "meta", now=1_800_000_000.0)
    done = ErasureRequest(**{**request.__dict__, "status": COMPLETED, "completed_at": "2027-01-15T08:00:00+00:00"})
    app = api(Requests({done.code: done}), Jobs())
    shown = page(app, done.code)
    assert shown["statusCode"] == 200 and 'data-outcome="deletion_completed"' in shown["body"]
    assert "Nothing was stored about you" in shown["body"] and "15 January 2027, 08:00 UTC" in shown["body"]
    for code in ("", "short", "A" * 30, "<script>" * 3):
        assert page(app, code)["statusCode"] == 404


def test_a_table_that_does_not_answer_is_a_503_for_meta_and_a_page_for_a_person() -> None:
    app = api(Requests(broken=True), Jobs())
    assert page(app, "A" * 24)["statusCode"] == 503
    broken = Requests()
    broken.add = lambda request: (_ for _ in ()).throw(ConnectionError("down"))  # type: ignore[method-assign]
    answer = callback(api(broken, Jobs()), signed(CUSTOMER))
    assert answer["statusCode"] == 503 and "retry" in answer["body"]
