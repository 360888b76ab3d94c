"""The authorizer and the /v1 API function on in-memory ports: every way a key is refused, and the API
function's answers that the integration test (tests/integration/test_http_api.py) does not reach."""

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from api.service import Api
from authorizer.service import Authorizer
from igdm.runtime.http_api import HttpApiRequest
from igdm.store.api_keys import ApiKey, key_id_of
from igdm.store.rate_limits import Slot
from local.aws.apigw import http_api_event

NOW = 1_800_000_000.0


@dataclass
class Keys:
    keys: dict[str, ApiKey] = field(default_factory=dict)

    def get(self, key_id: str) -> ApiKey | None:
        return self.keys.get(key_id)


def issued(**changes: Any) -> tuple[Keys, str]:
    api_key, presented = ApiKey.new("t", ("send",), None, now=NOW)
    api_key = ApiKey(**{**api_key.__dict__, **changes})
    return Keys({api_key.key_id: api_key}), presented


def test_a_key_is_identified_by_its_id_and_proven_by_its_hash() -> None:
    keys, presented = issued()
    assert key_id_of(presented) is not None and presented.startswith("igw_")
    answer = Authorizer(keys)({"headers": {"Authorization": f"Bearer {presented}"}})
    assert answer == {
        "isAuthorized": True,
        "context": {"key_id": key_id_of(presented), "scopes": "send", "account_id": ""},
    }


@pytest.mark.parametrize(
    ("header", "refused"),
    [
        (None, "Bearer <key>"),
        ("Basic dXNlcjpwYXNz", "Bearer <key>"),
        ("Bearer ", "unknown API key"),
        ("Bearer igw_0123456789ab_" + "a" * 43, "unknown API key"),
    ],
)
def test_anything_but_a_known_key_is_refused_with_a_reason(header: str | None, refused: str) -> None:
    keys, _ = issued()
    context = Authorizer(keys)({"headers": {"authorization": header} if header else {}})["context"]
    assert refused in context["refused"] and "key_id" not in context


def test_a_key_with_the_right_id_but_another_secret_or_revoked_is_refused() -> None:
    keys, presented = issued()
    forged = presented[: presented.rindex("_") + 1] + "b" * 43
    assert Authorizer(keys).identify(f"Bearer {forged}") == {"refused": "unknown API key"}
    revoked_keys, revoked = issued(revoked_at="2027-01-01T00:00:00+00:00")
    assert "revoked at 2027-01-01" in Authorizer(revoked_keys).identify(f"bearer {revoked}")["refused"]


class Queue:
    def __init__(self, failure: Exception | None = None) -> None:
        self.failure = failure
        self.queued: list[dict[str, Any]] = []

    def enqueue(self, message: dict[str, Any]) -> str:
        if self.failure:
            raise self.failure
        self.queued.append(message)
        return "id"

    def enqueue_all(self, messages: list[dict[str, Any]]) -> None:
        for message in messages:
            self.enqueue(message)


class NoHistory:
    def conversations(self, account_id: str, limit: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        return [], None

    def events(
        self, account_id: str, customer_id: str, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        return [], None


class Records:
    def view(self, idempotency_key: str) -> dict[str, Any] | None:
        return None


class NoAccounts:
    def get(self, account_id: str) -> None:
        return None


class NoErasures:
    def request(self, customer_id: str, *, now: float) -> str:
        raise AssertionError("not asked for here")


class Limiter:
    def acquire(self, account_id: str, rate_class: str, max_wait: float = 0.0) -> Slot:
        return Slot(True, 0.0)


def call(api: Api, body: bytes, route: str = "POST /v1/messages") -> tuple[int, dict[str, Any]]:
    method, path = route.split(" ")
    event = http_api_event(method, path, body=body, route_key=route, headers={"content-type": "application/json"})
    event["requestContext"]["authorizer"] = {"lambda": {"key_id": "k", "scopes": "send,read", "account_id": "1"}}
    reply = api(HttpApiRequest.model_validate(event))
    return reply.status, json.loads(reply.body)


def test_the_api_functions_other_answers() -> None:
    queue = Queue()
    api = Api(queue, Records(), Limiter(), NoAccounts(), NoErasures(), {}, NoHistory(), None, None)  # type: ignore[arg-type]
    assert call(api, b"{not json")[0] == 400
    assert call(api, b"x" * 300_000)[0] == 413
    assert call(api, b"")[0] == 400
    assert call(api, b"", "DELETE /v1/messages")[0] == 404  # a route this function does not serve
    assert call(api, b"", "GET /v1/messages/{idempotency_key}")[0] == 404  # no parameter: nothing to find
    status, _ = call(api, json.dumps({"idempotency_key": "k1", "recipient": {"id": "9"}, "message": {}}).encode())
    assert status == 202 and queue.queued[0]["account_id"] == "1"  # the key's account sends
    down = Api(
        Queue(EndpointConnectionError(endpoint_url="https://sqs")),
        Records(),
        Limiter(),
        NoAccounts(),
        NoErasures(),
        {},
        NoHistory(),
        None,  # type: ignore[arg-type]  # no webhooks route here
        None,  # type: ignore[arg-type]
    )
    status, document = call(down, json.dumps({"idempotency_key": "k2"}).encode())
    assert status == 503 and "same idempotency key" in document["error"]
