"""Builds the reconciler from its settings, once per execution environment; reset() is for tests."""

from functools import cache

from igdm import runtime
from igdm.inbound.event_store import DynamoEventStore
from igdm.inbound.receipts import OutboundReceipts
from igdm.meta.instagram_login import InstagramLogin
from igdm.queues.account_publisher import AccountEventPublisher
from igdm.queues.event_queue import SqsEventPublisher
from igdm.queues.status_publisher import StatusPublisher
from igdm.runtime import aws
from igdm.runtime.config import cached_settings
from igdm.store.account_directory import AccountDirectory
from igdm.store.accounts import AccountTable
from igdm.store.outbound_records import OutboundRecords
from igdm.store.rate_limits import RateLimiter, conversations_limits
from reconciler.conversations import ConversationsClient
from reconciler.scheduled_run import ScheduledRun
from reconciler.service import DAY, Reconciler
from reconciler.settings import ReconcilerSettings


@cache
def service() -> Reconciler:
    settings = cached_settings(ReconcilerSettings)
    dynamodb, sqs = aws.client("dynamodb"), aws.client("sqs")
    login = InstagramLogin(
        graph_base_url=settings.graph_api_base_url,
        api_version=settings.graph_api_version,
        oauth_token_url="",  # nosec B106 # a URL, unused: the reconciler never exchanges codes
        timeout_seconds=settings.graph_timeout_seconds,
    )
    statuses = StatusPublisher(sqs, settings.events_queue_url, settings.callback_queue_url)
    records = OutboundRecords(dynamodb, settings.table_name, settings.event_retention_days)
    account_events = AccountEventPublisher(sqs, settings.events_queue_url)
    return Reconciler(
        accounts=AccountTable(dynamodb, settings.table_name),
        tokens=AccountDirectory(
            dynamodb,
            settings.table_name,
            aws.client("secretsmanager"),
            secret_max_age_seconds=settings.secret_max_age_seconds,
            events=account_events,
        ),
        graph=ConversationsClient(login),
        limiter=RateLimiter(
            dynamodb,
            settings.table_name,
            conversations_limits(settings.conversations_rate_per_second, settings.rate_headroom),
        ),
        store=DynamoEventStore(dynamodb, settings.table_name, settings.event_retention_days),
        publisher=SqsEventPublisher(sqs, settings.events_queue_url),
        receipts=OutboundReceipts(records, statuses),
        subscriptions=login,
        events=account_events,
        webhook_fields=settings.webhook_fields,
        silence_seconds=settings.webhook_silence_seconds,
        history_seconds=settings.history_import_days * DAY,
        calls_per_run=settings.calls_per_run,
        unknown=records,
        statuses=statuses,
        unknown_settle_after_seconds=settings.unknown_settle_after_seconds,
    )


scheduled_run = ScheduledRun(service)


def reset() -> None:
    """Forget what was built, the clients, the settings and the cached secrets."""
    service.cache_clear()
    runtime.reset()
