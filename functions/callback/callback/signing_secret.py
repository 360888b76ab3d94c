"""The callback signing secret, from Secrets Manager through Powertools parameters (cached)."""

from typing import Any

from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError, TransformParameterError

from igdm.runtime.configuration_error import ConfigurationError

MIN_SIGNING_SECRET_LENGTH = 32


class SigningSecret:
    def __init__(self, client: Any, secret_id: str, max_age_seconds: int) -> None:
        self._provider = parameters.SecretsProvider(boto3_client=client)
        self._secret_id = secret_id
        self._max_age = max_age_seconds

    def current(self) -> str:
        try:
            value: Any = self._provider.get(self._secret_id, transform="json", max_age=self._max_age)
        except TransformParameterError:
            raise ConfigurationError(f"secret {self._secret_id} is not JSON") from None
        except GetParameterError as exc:  # the AWS error's text: code and secret id, never the value
            raise ConfigurationError(f"secret {self._secret_id} could not be read: {exc}") from exc
        secret = value.get("signing_secret") if isinstance(value, dict) else None
        if not isinstance(secret, str) or len(secret.strip()) < MIN_SIGNING_SECRET_LENGTH:
            raise ConfigurationError(
                f'secret {self._secret_id} must be JSON like {{"signing_secret": "..."}} '
                f"with at least {MIN_SIGNING_SECRET_LENGTH} characters"
            )
        return secret.strip()
