"""The app-level secret (app secrets that sign webhooks, the verify token) from Secrets Manager.

Read through Powertools parameters, cached for SECRET_MAX_AGE_SECONDS. After an app-secret
rotation the cache may be stale, so a failed signature check may refetch it, at most once a minute.
"""

import time
from typing import Annotated, Any

from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError, TransformParameterError
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, ValidationError

from igdm.runtime.config import ConfigurationError

_MIN_REFRESH_INTERVAL = 60.0


class SecretUnavailable(Exception):
    """Secrets Manager could not be reached; a retry may succeed."""


def _blank_as_none(value: Any) -> Any:
    """An empty verify token is no verify token (the handshake then says so), not a broken secret."""
    return None if isinstance(value, str) and not value.strip() else value


# Meta's app secrets are 32 hex digits. A short value is a placeholder left in by mistake, and an empty
# one would let anyone sign with the empty key, so neither is ever used to verify.
MIN_APP_SECRET_LENGTH = 16
AppSecretValue = Annotated[str, StringConstraints(strip_whitespace=True, min_length=MIN_APP_SECRET_LENGTH)]


class AppSecret(BaseModel):
    model_config = ConfigDict(extra="allow")  # later issues add app ids and a callback signing secret

    app_secrets: list[AppSecretValue] = Field(default_factory=list)
    verify_token: Annotated[str | None, BeforeValidator(_blank_as_none)] = None
    # Meta's echoes name the app that sent a message (app_id): which id, the Instagram app's or the Meta
    # app's, is not documented for Instagram Login, so either counts as the gateway's own.
    instagram_app_id: Annotated[str | None, BeforeValidator(_blank_as_none)] = None
    meta_app_id: Annotated[str | None, BeforeValidator(_blank_as_none)] = None

    @property
    def app_ids(self) -> frozenset[str]:
        """The ids Meta may put on echoes of the gateway's own messages."""
        return frozenset(str(i).strip() for i in (self.instagram_app_id, self.meta_app_id) if i)


class SecretsManagerAppSecret:
    def __init__(self, client: Any, secret_id: str, max_age_seconds: int) -> None:
        # Our client, so secret reads get the same timeouts and retry policy as every other call.
        self._provider = parameters.SecretsProvider(boto3_client=client)
        self._secret_id = secret_id
        self._max_age = max_age_seconds
        self._last_forced = 0.0

    def current(self) -> AppSecret:
        return self._fetch(force=False)

    def refreshed(self) -> AppSecret | None:
        """A freshly fetched secret, or None if one was fetched too recently to try again."""
        now = time.monotonic()
        if now - self._last_forced < _MIN_REFRESH_INTERVAL:
            return None
        self._last_forced = now
        return self._fetch(force=True)

    def _fetch(self, *, force: bool) -> AppSecret:
        try:
            value: Any = self._provider.get(self._secret_id, transform="json", max_age=self._max_age, force_fetch=force)
        except TransformParameterError:
            raise ConfigurationError(f"secret {self._secret_id} is not JSON") from None
        except GetParameterError as exc:
            # Powertools wraps the AWS error's text (error code and secret id; never the value).
            raise SecretUnavailable(f"secret {self._secret_id} could not be read: {exc}") from exc
        try:
            return AppSecret.model_validate(value)
        except ValidationError:
            raise ConfigurationError(
                f"secret {self._secret_id} must be JSON like "
                '{"app_secrets": ["..."], "verify_token": "..."} '
                f"with app secrets of at least {MIN_APP_SECRET_LENGTH} characters"
            ) from None
