"""Builds the callback function from its settings: the service on its adapters, and the FIFO consumer that
feeds it. Built once per execution environment, at the first invocation; reset() is for tests."""

from functools import cache

from callback.dead_letters import DeadLetterQueue
from callback.http_client import CallbackClient
from callback.service import CallbackDelivery
from callback.settings import CallbackSettings
from callback.signing_secret import SigningSecret
from igdm import runtime
from igdm.runtime import aws
from igdm.runtime.fifo_consumer import FifoConsumer
from igdm.runtime.observability import Counts
from igdm.runtime.plain_settings import cached_settings
from igdm.store.webhooks import Webhooks


class DeliveryLog:
    """Event webhooks' delivery log, its DynamoDB client made at the first event webhook's job: a function that
    only delivers status callbacks never pays for it at its cold start."""

    def __init__(self, table_name: str) -> None:
        self._table_name = table_name

    def attempted(self, webhook_id: str, delivery_id: str, state: str, *, http_status: int | None, detail: str) -> None:
        _webhooks(self._table_name).attempted(webhook_id, delivery_id, state, http_status=http_status, detail=detail)


@cache
def _webhooks(table_name: str) -> Webhooks:
    return Webhooks(aws.client("dynamodb"), table_name)


@cache
def service() -> CallbackDelivery:
    settings = cached_settings(CallbackSettings)
    secret = SigningSecret(aws.client("secretsmanager"), settings.callback_secret_name, settings.secret_max_age_seconds)
    return CallbackDelivery(
        client=CallbackClient(
            allow_local=settings.allow_local_callbacks,
            connect_timeout=settings.callback_connect_timeout_seconds,
            read_timeout=settings.callback_read_timeout_seconds,
        ),
        signing_secret=secret.current,
        dead_letters=DeadLetterQueue(aws.client("sqs"), settings.callback_dead_letter_queue_url),
        metrics=Counts(),
        max_receive_count=settings.callback_max_receive_count,
        retry_base_seconds=settings.callback_retry_base_seconds,
        retry_cap_seconds=settings.callback_retry_cap_seconds,
        log=DeliveryLog(settings.table_name) if settings.table_name else None,
    )


@cache
def consumer() -> FifoConsumer:
    # Each outbound message's callbacks form one message group, so a message's SENT reaches its receiver
    # before its DELIVERED, while a slow receiver holds up only its own messages' callbacks.
    return FifoConsumer(
        service(),
        aws.client("sqs"),
        cached_settings(CallbackSettings).callback_queue_url,
        what="callback",
        default_seconds=60.0,
    )


def reset() -> None:
    """Forget what was built, the clients, the settings and the cached secrets."""
    _webhooks.cache_clear()
    service.cache_clear()
    consumer.cache_clear()
    runtime.reset()
