"""Builds the HTTP API function from its settings, once per execution environment; reset() is for tests."""

from functools import cache
from typing import Any

from api.service import API_RATE_CLASS, Api
from api.settings import ApiSettings
from igdm import runtime
from igdm.queues.erasure_queue import ErasureQueue, request_erasure
from igdm.queues.outbound_queue import enqueue, enqueue_all
from igdm.runtime import aws
from igdm.runtime.http_api import HttpApiRequest, Reply
from igdm.runtime.plain_settings import cached_settings
from igdm.store.accounts import AccountTable
from igdm.store.api_keys import ApiKeys
from igdm.store.erasure import ErasureRequests
from igdm.store.history import ConversationHistory
from igdm.store.outbound_records import OutboundRecords
from igdm.store.rate_limits import RateLimiter
from igdm.store.webhooks import Webhooks


class OutboundQueue:
    def __init__(self, sqs: Any, queue_url: str) -> None:
        self._sqs, self._queue_url = sqs, queue_url

    def enqueue(self, message: dict[str, Any]) -> str:
        return enqueue(self._sqs, self._queue_url, message)

    def enqueue_all(self, messages: list[dict[str, Any]]) -> None:
        enqueue_all(self._sqs, self._queue_url, messages)


class CallbackQueue:
    """A redelivery, as the callback function's job."""

    def __init__(self, sqs: Any, queue_url: str) -> None:
        self._sqs, self._queue_url = sqs, queue_url

    def send(self, body: str, group: str, deduplication_id: str) -> None:
        self._sqs.send_message(
            QueueUrl=self._queue_url, MessageBody=body, MessageGroupId=group, MessageDeduplicationId=deduplication_id
        )


class Erasures:
    def __init__(self, requests: ErasureRequests, queue: ErasureQueue) -> None:
        self._requests, self._queue = requests, queue

    def request(self, customer_id: str, *, now: float) -> str:
        return request_erasure(self._requests, self._queue, customer_id, requested_by="operator", now=now)


@cache
def service() -> Api:
    settings = cached_settings(ApiSettings)
    dynamodb = aws.client("dynamodb")
    interval = 1 / settings.api_key_rate_per_second
    return Api(
        outbound=OutboundQueue(aws.client("sqs"), settings.outbound_queue_url),
        records=OutboundRecords(dynamodb, settings.table_name, retention_days=1),  # reads only
        accounts=AccountTable(dynamodb, settings.table_name),
        erasures=Erasures(
            ErasureRequests(dynamodb, settings.table_name), ErasureQueue(aws.client("sqs"), settings.erasure_queue_url)
        ),
        keys=ApiKeys(dynamodb, settings.table_name),  # CM.com's route, whose key may be in the body
        history=ConversationHistory(dynamodb, settings.table_name),
        hooks=Webhooks(dynamodb, settings.table_name),
        redeliveries=CallbackQueue(aws.client("sqs"), settings.callback_queue_url),
        allow_local_callbacks=settings.allow_local_callbacks,  # event webhooks' targets: the local stack's only
        limiter=RateLimiter(
            dynamodb, settings.table_name, {API_RATE_CLASS: (interval, interval * settings.api_key_burst)}
        ),
    )


def api(event: dict[str, Any]) -> dict[str, Any]:
    from pydantic import ValidationError

    try:
        request = HttpApiRequest.model_validate(event)
    except ValidationError:
        return Reply.of_json(400, {"error": "the request could not be read"}).to_api_gateway()
    return service()(request).to_api_gateway()


def reset() -> None:
    service.cache_clear()
    runtime.reset()
