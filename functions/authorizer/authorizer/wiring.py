"""Builds the authorizer from its settings, once per execution environment; reset() is for tests."""

from functools import cache

from authorizer.service import Authorizer
from authorizer.settings import AuthorizerSettings
from igdm import runtime
from igdm.runtime import aws
from igdm.runtime.plain_settings import cached_settings
from igdm.store.api_keys import ApiKeys


@cache
def service() -> Authorizer:
    settings = cached_settings(AuthorizerSettings)
    return Authorizer(ApiKeys(aws.client("dynamodb"), settings.table_name))


def reset() -> None:
    service.cache_clear()
    runtime.reset()
