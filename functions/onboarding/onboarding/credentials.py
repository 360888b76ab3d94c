"""The onboarding's credentials: the Instagram app's id and secret from the app secret, and the key that
signs invite links and OAuth states from the onboarding secret (Secrets Manager, cached)."""

from typing import Any

from aws_lambda_powertools.utilities.parameters import SecretsProvider

from onboarding.service import AppCredentials


class SecretsManagerCredentials:
    def __init__(
        self, secretsmanager: Any, app_secret_name: str, onboarding_secret_name: str, max_age_seconds: int
    ) -> None:
        self._provider = SecretsProvider(boto3_client=secretsmanager)
        self._names = (app_secret_name, onboarding_secret_name)
        self._max_age = max_age_seconds

    def __call__(self) -> AppCredentials | None:
        """None until the operator has put both the Instagram app's id and secret into the app secret."""
        app, onboarding = (self._get(name) for name in self._names)
        values = (app.get("instagram_app_id"), app.get("instagram_app_secret"), onboarding.get("state_key"))
        if not all(isinstance(v, str | int) and str(v).strip() for v in values):
            return None
        return AppCredentials(*(str(v).strip() for v in values))

    def signing_secrets(self) -> list[str]:
        """The secrets Meta may sign a callback's signed_request with: the Instagram app's, then the Meta
        app secrets of `app_secrets` (the same app secret JSON the webhook verifies with)."""
        app = self._get(self._names[0])
        listed = app.get("app_secrets")
        candidates = [app.get("instagram_app_secret"), *(listed if isinstance(listed, list) else [])]
        return [str(s).strip() for s in candidates if isinstance(s, str) and s.strip()]

    def _get(self, name: str) -> dict[str, Any]:
        value = self._provider.get(name, transform="json", max_age=self._max_age)
        return value if isinstance(value, dict) else {}
