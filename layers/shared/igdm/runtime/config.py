"""Configuration as validated pydantic models, read from the environment once, on first use.

The functions whose settings are plain strings, numbers and flags read them without pydantic
(igdm.runtime.plain_settings); clear_settings_cache clears both caches."""

import os
from functools import cache
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, ValidationError, ValidationInfo
from pydantic_core import PydanticCustomError

from igdm.runtime import plain_settings
from igdm.runtime.configuration_error import ConfigurationError as ConfigurationError


def _split_commas(value: Any) -> Any:
    return [item.strip() for item in value.split(",") if item.strip()] if isinstance(value, str) else value


# A list given in one environment variable as "a,b,c" (how the template passes a CommaDelimitedList).
CommaList = Annotated[list[str], BeforeValidator(_split_commas)]


# The only hosts the local stack may reach over http: its Graph sandbox listens on 127.0.0.1.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost"})


class LocalStackSettings(BaseModel):
    """Settings of a function that sends tokens or the app secret to Meta. ``local_stack`` is declared
    first, so the URL fields below it (TokenUrl) are validated knowing it."""

    local_stack: bool = Field(
        False,
        description="Set by the local stack and the test harnesses only (LOCAL_STACK): "
        "the Graph and Instagram URLs may then be http to 127.0.0.1 or localhost, where the "
        "Graph sandbox runs. Never set in a deployed stack.",
    )


def _https_unless_local_loopback(url: str, info: ValidationInfo) -> str:
    try:
        parts = urlsplit(url)
        scheme, host = parts.scheme.lower(), (parts.hostname or "").rstrip(".")
    except ValueError:  # an unparseable host ("http://[::1")
        scheme, host = "", ""
    shown = {"url": f"{scheme}://{host}" if scheme and host else "a URL without a scheme or host"}
    if scheme == "https" and host:
        return url
    local = bool(info.data.get("local_stack"))  # absent (a model without it, or invalid): deployed
    if scheme == "http" and host in LOOPBACK_HOSTS and local:
        return url
    if scheme == "http" and host and local:
        raise PydanticCustomError(
            "insecure_url",
            "must be https: it carries tokens, and even the local stack "
            "(LOCAL_STACK) may use http only to 127.0.0.1 or localhost, not {url}",
            shown,
        )
    raise PydanticCustomError(
        "insecure_url",
        "must be https, not {url}: it carries tokens (http is allowed only in "
        "the local stack, LOCAL_STACK=true, to 127.0.0.1 or localhost)",
        shown,
    )


# A URL the function sends an access token, a login code or the app secret to: https, except in the
# local stack (a LocalStackSettings with local_stack) to a loopback host.
TokenUrl = Annotated[str, AfterValidator(_https_unless_local_loopback)]


def load_settings[SettingsT: BaseModel](model: type[SettingsT]) -> SettingsT:
    """Build ``model`` from environment variables named after its fields in upper case."""
    values = {name: os.environ[name.upper()] for name in model.model_fields if name.upper() in os.environ}
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(f"{str(err['loc'][0]).upper()}: {err['msg']}" for err in exc.errors(include_url=False))
        raise ConfigurationError(f"invalid configuration: {problems}") from None


def cached_settings[SettingsT: BaseModel](model: type[SettingsT]) -> SettingsT:
    return _cached(model)  # type: ignore[return-value]


@cache
def _cached(model: type[BaseModel]) -> BaseModel:
    return load_settings(model)


def clear_settings_cache() -> None:
    """For tests and the local stack, which change the environment between invocations."""
    _cached.cache_clear()
    plain_settings.clear_cache()
