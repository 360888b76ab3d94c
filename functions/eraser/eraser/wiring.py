"""Builds the eraser from its settings, once per execution environment, at the first invocation; reset() is for
tests."""

from functools import cache

from eraser.jobs import ErasureJobs
from eraser.service import Eraser
from eraser.settings import EraserSettings
from igdm import runtime
from igdm.queues.account_publisher import AccountEventPublisher
from igdm.queues.event_queue import SqsEventPublisher
from igdm.runtime import aws
from igdm.runtime.observability import Counts
from igdm.runtime.plain_settings import cached_settings
from igdm.store.erasure import ErasureRequests, StoredData
from igdm.store.tokens import TokenVault


@cache
def service() -> Eraser:
    settings = cached_settings(EraserSettings)
    dynamodb, sqs = aws.client("dynamodb"), aws.client("sqs")
    vault = TokenVault(aws.client("secretsmanager"), settings.account_secret_prefix)
    return Eraser(
        requests=ErasureRequests(dynamodb, settings.table_name),
        data=StoredData(dynamodb, settings.table_name),
        vault=vault,
        events=SqsEventPublisher(sqs, settings.events_queue_url),
        account_events=AccountEventPublisher(sqs, settings.events_queue_url),
        secret_name=vault.secret_name,
        metrics=Counts(),
    )


@cache
def jobs() -> ErasureJobs:
    return ErasureJobs(service())


def reset() -> None:
    """Forget what was built, the clients and the settings."""
    service.cache_clear()
    jobs.cache_clear()
    runtime.reset()
