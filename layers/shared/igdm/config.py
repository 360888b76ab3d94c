"""Configuration as validated pydantic models, read from the environment once, on first use."""

import os
from functools import cache
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ValidationError

SettingsT = TypeVar("SettingsT", bound=BaseModel)


def _split_commas(value: Any) -> Any:
    return [item.strip() for item in value.split(",") if item.strip()] if isinstance(value, str) else value


# A list given in one environment variable as "a,b,c" (how the template passes a CommaDelimitedList).
CommaList = Annotated[list[str], BeforeValidator(_split_commas)]


class ConfigurationError(RuntimeError):
    """The function's environment is incomplete or invalid; the message names each variable."""


def load_settings[SettingsT: BaseModel](model: type[SettingsT]) -> SettingsT:
    """Build ``model`` from environment variables named after its fields in upper case."""
    values = {name: os.environ[name.upper()] for name in model.model_fields if name.upper() in os.environ}
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{str(err['loc'][0]).upper()}: {err['msg']}" for err in exc.errors(include_url=False)
        )
        raise ConfigurationError(f"invalid configuration: {problems}") from None


def cached_settings[SettingsT: BaseModel](model: type[SettingsT]) -> SettingsT:
    return _cached(model)  # type: ignore[return-value]


@cache
def _cached(model: type[BaseModel]) -> BaseModel:
    return load_settings(model)


def clear_settings_cache() -> None:
    """For tests and the local stack, which change the environment between invocations."""
    _cached.cache_clear()
