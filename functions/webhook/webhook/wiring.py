"""Builds the webhook from its settings: the HTTP API on the service's adapters. The adapters are built at
the first request that needs them (see webhook.api), once per execution environment; reset() is for tests."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import cache
from typing import TYPE_CHECKING, Any

from igdm import runtime
from igdm.inbound.event_store import DynamoEventStore
from igdm.inbound.handovers import Handovers
from igdm.inbound.ingest import Receipts
from igdm.queues.event_queue import SqsEventPublisher
from igdm.queues.outbound_queue import OutboundQueue
from igdm.runtime import aws
from igdm.store.accounts import AccountTable
from igdm.store.comments import Comments
from igdm.store.conversation_state import ConversationState
from webhook.api import Ports, WebhookApi
from webhook.app_secrets import SecretsManagerAppSecret
from webhook.heartbeat import WebhookHeartbeat
from webhook.settings import WebhookSettings

if TYPE_CHECKING:
    from igdm.contracts.plain_event import Event


@cache
def ports() -> Ports:
    settings = WebhookSettings.from_environment()
    dynamodb, sqs = aws.client("dynamodb"), aws.client("sqs")
    return Ports(
        secrets=SecretsManagerAppSecret(
            aws.client("secretsmanager"), settings.app_secret_name, settings.secret_max_age_seconds
        ),
        store=DynamoEventStore(dynamodb, settings.table_name, settings.event_retention_days),
        publisher=SqsEventPublisher(sqs, settings.events_queue_url),
        receipts=ReceiptsAtFirstUse(lambda: _receipts(dynamodb, sqs, settings)),
        heartbeat=WebhookHeartbeat(AccountTable(dynamodb, settings.table_name)),
        max_body_bytes=settings.max_body_bytes,
        max_event_age_ms=settings.max_event_age_ms,
        after=(
            Handovers(
                ConversationState(dynamodb, settings.table_name, settings.event_retention_days),
                OutboundQueue(sqs, settings.outbound_queue_url) if settings.outbound_queue_url else None,
                settings.handover_payload or None,
            ),
            Comments(dynamodb, settings.table_name),
        ),
    )


class ReceiptsAtFirstUse:
    """The receipts, built at the first echo or read: the outbound records and statuses they import cost the
    webhook's cold start about 6 ms, and a customer's message carries neither."""

    def __init__(self, build: Callable[[], Receipts]) -> None:
        self._build = build
        self._receipts: Receipts | None = None

    def apply(self, events: Iterable[Event]) -> int:
        given = list(events)
        if not given:
            return 0
        if self._receipts is None:
            self._receipts = self._build()
        return self._receipts.apply(given)


def _receipts(dynamodb: Any, sqs: Any, settings: WebhookSettings) -> Receipts:
    from igdm.inbound.receipts import OutboundReceipts
    from igdm.queues.status_publisher import StatusPublisher
    from igdm.store.outbound_records import OutboundRecords

    return OutboundReceipts(
        OutboundRecords(dynamodb, settings.table_name, settings.event_retention_days),
        StatusPublisher(sqs, settings.events_queue_url, settings.callback_queue_url),
    )


api = WebhookApi(ports)


def reset() -> None:
    """Forget what was built, the clients, the settings and the cached secrets."""
    ports.cache_clear()
    runtime.reset()
