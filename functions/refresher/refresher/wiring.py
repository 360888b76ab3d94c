"""Builds the refresher from its settings, once per execution environment; reset() is for tests."""

from functools import cache

from igdm import runtime
from igdm.meta.instagram_login import InstagramLogin
from igdm.queues.account_publisher import AccountEventPublisher
from igdm.runtime import aws
from igdm.runtime.config import cached_settings
from igdm.store.accounts import AccountTable, TokenRescue
from igdm.store.tokens import TokenVault
from refresher.scheduled_run import ScheduledRun
from refresher.service import DAY, Refresher
from refresher.settings import RefresherSettings


@cache
def service() -> Refresher:
    settings = cached_settings(RefresherSettings)
    return Refresher(
        accounts=AccountTable(aws.client("dynamodb"), settings.table_name),
        vault=TokenVault(aws.client("secretsmanager"), settings.account_secret_prefix),
        rescue=TokenRescue(aws.client("dynamodb"), settings.table_name),
        login=InstagramLogin(
            graph_base_url=settings.graph_api_base_url, api_version=settings.graph_api_version, oauth_token_url=""
        ),  # nosec B106 # a URL, unused: the refresher never exchanges codes
        events=AccountEventPublisher(aws.client("sqs"), settings.events_queue_url),
        webhook_fields=settings.webhook_fields,
        window_seconds=settings.refresh_window_days * DAY,
        warning_seconds=settings.token_expiry_warning_days * DAY,
        graph_api_version=settings.graph_api_version,
    )


scheduled_run = ScheduledRun(service)


def reset() -> None:
    """Forget what was built, the clients, the settings and the cached secrets."""
    service.cache_clear()
    runtime.reset()
