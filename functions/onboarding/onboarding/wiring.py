"""Builds the onboarding pages from their settings, at the first request (see onboarding.api), once per
execution environment; reset() is for tests."""

from functools import cache

from igdm import runtime
from igdm.meta.connect import AccountConnector
from igdm.meta.instagram_login import InstagramLogin
from igdm.queues.account_publisher import AccountEventPublisher
from igdm.queues.erasure_queue import ErasureQueue
from igdm.runtime import aws
from igdm.runtime.config import cached_settings
from igdm.store.accounts import AccountTable
from igdm.store.erasure import ErasureRequests
from igdm.store.tokens import TokenVault
from onboarding.api import OnboardingApi
from onboarding.credentials import SecretsManagerCredentials
from onboarding.data_deletion import DataDeletion
from onboarding.deauthorize import Deauthorize
from onboarding.service import Onboarding
from onboarding.settings import OnboardingSettings
from onboarding.state import StateStore


@cache
def service() -> Onboarding:
    settings = cached_settings(OnboardingSettings)
    dynamodb = aws.client("dynamodb")
    login = InstagramLogin(
        graph_base_url=settings.graph_api_base_url,
        api_version=settings.graph_api_version,
        oauth_token_url=settings.instagram_token_url,
    )
    connector = AccountConnector(
        login=login,
        vault=TokenVault(aws.client("secretsmanager"), settings.account_secret_prefix),
        accounts=AccountTable(dynamodb, settings.table_name),
        events=AccountEventPublisher(aws.client("sqs"), settings.events_queue_url),
        webhook_fields=settings.webhook_fields,
    )
    return Onboarding(
        credentials=credentials(),
        states=lambda key: StateStore(dynamodb, settings.table_name, key),
        login=login,
        connector=connector,
        authorize_url=settings.instagram_authorize_url,
        scopes=settings.scopes,
        redirect_uri=settings.oauth_redirect_uri,
        business=settings.business,
    )


@cache
def deauthorize() -> Deauthorize:
    settings = cached_settings(OnboardingSettings)
    return Deauthorize(
        signing_secrets=credentials().signing_secrets,
        accounts=AccountTable(aws.client("dynamodb"), settings.table_name),
        vault=TokenVault(aws.client("secretsmanager"), settings.account_secret_prefix),
        events=AccountEventPublisher(aws.client("sqs"), settings.events_queue_url),
    )


@cache
def data_deletion() -> DataDeletion:
    settings = cached_settings(OnboardingSettings)
    return DataDeletion(
        signing_secrets=credentials().signing_secrets,
        requests=ErasureRequests(aws.client("dynamodb"), settings.table_name),
        jobs=ErasureQueue(aws.client("sqs"), settings.erasure_queue_url),
    )


@cache
def credentials() -> SecretsManagerCredentials:
    settings = cached_settings(OnboardingSettings)
    return SecretsManagerCredentials(
        aws.client("secretsmanager"),
        settings.app_secret_name,
        settings.onboarding_secret_name,
        settings.secret_max_age_seconds,
    )


api = OnboardingApi(service, deauthorize, data_deletion)


def reset() -> None:
    """Forget what was built, the clients, the settings and the cached secrets."""
    service.cache_clear()
    deauthorize.cache_clear()
    data_deletion.cache_clear()
    credentials.cache_clear()
    runtime.reset()
