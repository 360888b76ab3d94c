"""Builds the sender from its settings: the service on its adapters, and the FIFO consumer that feeds it.
Built once per execution environment, at the first invocation; reset() is for tests."""

from functools import cache

from igdm import runtime
from igdm.queues.account_publisher import AccountEventPublisher
from igdm.queues.status_publisher import StatusPublisher
from igdm.runtime import aws
from igdm.runtime.config import cached_settings
from igdm.runtime.fifo_consumer import FifoConsumer
from igdm.runtime.observability import Counts
from igdm.store.account_directory import AccountDirectory
from igdm.store.comments import Comments
from igdm.store.conversation_state import ConversationState
from igdm.store.outbound_records import OutboundRecords
from igdm.store.rate_limits import RateLimiter, intervals
from sender.graph import GraphClient
from sender.service import Sender
from sender.settings import SenderSettings


@cache
def service() -> Sender:
    settings = cached_settings(SenderSettings)
    dynamodb = aws.client("dynamodb")
    limits = intervals(
        settings.text_rate_per_second,
        settings.media_rate_per_second,
        settings.private_replies_per_hour,
        settings.rate_headroom,
    )
    records = OutboundRecords(dynamodb, settings.table_name, settings.event_retention_days)
    return Sender(
        records=records,
        accounts=AccountDirectory(
            dynamodb,
            settings.table_name,
            aws.client("secretsmanager"),
            secret_max_age_seconds=settings.secret_max_age_seconds,
            events=AccountEventPublisher(aws.client("sqs"), settings.events_queue_url),
        ),
        graph=GraphClient(settings.graph_api_base_url, settings.graph_api_version, settings.graph_timeout_seconds),
        limiter=RateLimiter(dynamodb, settings.table_name, limits),
        statuses=StatusPublisher(aws.client("sqs"), settings.events_queue_url, settings.callback_queue_url),
        conversations=ConversationState(dynamodb, settings.table_name, settings.event_retention_days),
        metrics=Counts(),
        comments=Comments(dynamodb, settings.table_name),
        max_receive_count=settings.max_receive_count,
        allow_local_callbacks=settings.allow_local_callbacks,
    )


@cache
def consumer() -> FifoConsumer:
    return FifoConsumer(
        service(), aws.client("sqs"), cached_settings(SenderSettings).outbound_queue_url, what="outbound message"
    )


def reset() -> None:
    """Forget what was built, the clients, the settings and the cached secrets: the next invocation builds
    everything again from the environment."""
    service.cache_clear()
    consumer.cache_clear()
    runtime.reset()
