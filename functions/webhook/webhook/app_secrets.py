"""The app-level secret (app secrets that sign webhooks, the verify token) from Secrets Manager.

Cached for SECRET_MAX_AGE_SECONDS. After an app-secret rotation the cache may be stale, so a failed
signature check may refetch it, at most once a minute.
"""

import json
import time
from typing import Any, NamedTuple

from igdm.runtime.configuration_error import ConfigurationError

_MIN_REFRESH_INTERVAL = 60.0


class SecretUnavailable(Exception):
    """Secrets Manager could not be reached; a retry may succeed."""


# Meta's app secrets are 32 hex digits: webhook.app_secret_model refuses shorter ones (placeholders).
MIN_APP_SECRET_LENGTH = 16
_OPTIONAL_TEXTS = ("verify_token", "instagram_app_id", "meta_app_id")
# The whitespace pydantic's strip_whitespace removes from an ASCII value.
_ASCII_WHITESPACE = " \t\n\r\x0b\x0c"


# A NamedTuple, not a dataclass: its class is built several times faster, on the webhook's cold start.
class AppSecretValues(NamedTuple):
    """What the webhook reads from the app secret (webhook.app_secret_model.AppSecret's fields)."""

    app_secrets: list[str]
    verify_token: str | None = None
    instagram_app_id: str | None = None
    meta_app_id: str | None = None

    @property
    def app_ids(self) -> frozenset[str]:
        """The ids Meta may put on echoes of the gateway's own messages."""
        return frozenset(i.strip() for i in (self.instagram_app_id, self.meta_app_id) if i)


def app_secret_values(value: Any, secret_id: str) -> AppSecretValues:
    """The secret's values as AppSecret reads them; ConfigurationError when it refuses them."""
    return _as_usual(value) or _through_the_model(value, secret_id)


def _as_usual(value: Any) -> AppSecretValues | None:
    """The secret in its usual shape (ASCII app secrets long enough, texts or nulls); None for anything else."""
    if type(value) is not dict:
        return None
    secrets = value.get("app_secrets", [])
    if type(secrets) is not list or not all(type(s) is str and s.isascii() for s in secrets):
        return None
    stripped = [s.strip(_ASCII_WHITESPACE) for s in secrets]
    if not all(len(s) >= MIN_APP_SECRET_LENGTH and s.isprintable() for s in stripped):
        return None
    texts = [value.get(name) for name in _OPTIONAL_TEXTS]
    if not all(t is None or type(t) is str for t in texts):
        return None
    verify_token, instagram_app_id, meta_app_id = (t if t is None or t.strip() else None for t in texts)
    return AppSecretValues(stripped, verify_token, instagram_app_id, meta_app_id)


def _through_the_model(value: Any, secret_id: str) -> AppSecretValues:
    from pydantic import ValidationError

    from webhook.app_secret_model import AppSecret

    try:
        model = AppSecret.model_validate(value)
    except ValidationError:
        raise ConfigurationError(
            f"secret {secret_id} must be JSON like "
            '{"app_secrets": ["..."], "verify_token": "..."} '
            f"with app secrets of at least {MIN_APP_SECRET_LENGTH} characters"
        ) from None
    return AppSecretValues(model.app_secrets, model.verify_token, model.instagram_app_id, model.meta_app_id)


class SecretsManagerAppSecret:
    """The secret read with the function's own client (the same timeouts and retry policy as every other call),
    and its JSON cached for max_age_seconds (0: not cached), as Powertools' SecretsProvider does; read without
    it, because importing Powertools' parameters costs the webhook's cold start more than the call."""

    def __init__(self, client: Any, secret_id: str, max_age_seconds: int) -> None:
        self._client = client
        self._secret_id = secret_id
        self._max_age = max_age_seconds
        self._last_forced = 0.0
        self._cached: Any = None
        self._expires_at = 0.0  # time.monotonic() after which the cached JSON is read again

    def current(self) -> AppSecretValues:
        return self._fetch(force=False)

    def refreshed(self) -> AppSecretValues | None:
        """A freshly fetched secret, or None if one was fetched too recently to try again."""
        now = time.monotonic()
        if now - self._last_forced < _MIN_REFRESH_INTERVAL:
            return None
        self._last_forced = now
        return self._fetch(force=True)

    def _fetch(self, *, force: bool) -> AppSecretValues:
        if force or self._cached is None or time.monotonic() > self._expires_at:
            self._cached = None
            value = self._read()
            if self._max_age > 0:
                self._cached, self._expires_at = value, time.monotonic() + self._max_age
        else:
            value = self._cached
        return app_secret_values(value, self._secret_id)

    def _read(self) -> Any:
        try:
            answer = self._client.get_secret_value(SecretId=self._secret_id)
        except Exception as exc:
            # The AWS error's text: its code and the secret id, never the value.
            raise SecretUnavailable(f"secret {self._secret_id} could not be read: {exc}") from exc
        text = answer["SecretString"] if "SecretString" in answer else answer["SecretBinary"]
        try:
            return json.loads(text.decode("utf-8") if isinstance(text, bytes) else text)
        except Exception:  # not UTF-8, not JSON
            raise ConfigurationError(f"secret {self._secret_id} is not JSON") from None
