"""Lambda entry point for GET /oauth/start and GET /oauth/callback: wiring only (onboarding.service)."""

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from igdm import aws
from igdm.account_events import AccountEventPublisher
from igdm.accounts import AccountTable, TokenVault
from igdm.config import cached_settings
from igdm.connect import AccountConnector
from igdm.http_api import HttpApiRequest, Reply
from igdm.instagram_login import InstagramLogin
from igdm.observability import logger
from onboarding.pages import page
from onboarding.service import AppCredentials, Onboarding
from onboarding.settings import OnboardingSettings
from onboarding.state import StateStore


class _Credentials:
    """instagram_app_id and instagram_app_secret from the app secret, state_key from the onboarding secret."""

    def __init__(self, settings: OnboardingSettings) -> None:
        self._provider = SecretsProvider(boto3_client=aws.client("secretsmanager"))
        self._settings = settings

    def __call__(self) -> AppCredentials | None:
        app = self._get(self._settings.app_secret_name)
        onboarding = self._get(self._settings.onboarding_secret_name)
        values = (app.get("instagram_app_id"), app.get("instagram_app_secret"), onboarding.get("state_key"))
        if not all(isinstance(v, str | int) and str(v).strip() for v in values):
            return None
        return AppCredentials(*(str(v).strip() for v in values))

    def _get(self, name: str) -> dict[str, Any]:
        value = self._provider.get(name, transform="json", max_age=self._settings.secret_max_age_seconds)
        return value if isinstance(value, dict) else {}


@cache
def _onboarding() -> Onboarding:
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
        credentials=_Credentials(settings),
        states=lambda key: StateStore(dynamodb, settings.table_name, key),
        login=login,
        connector=connector,
        authorize_url=settings.instagram_authorize_url,
        scopes=settings.scopes,
        redirect_uri=settings.oauth_redirect_uri,
    )


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        request = HttpApiRequest.model_validate(event)
    except ValidationError:
        return page(400, "Bad request", ["The request could not be read."], outcome="bad_request").to_api_gateway()
    onboarding = _onboarding()
    routes = {"GET /oauth/start": onboarding.start, "GET /oauth/callback": onboarding.callback}
    route = routes.get(request.route_key)
    if route is None:
        return page(404, "Not found", ["No such page."], outcome="not_found").to_api_gateway()
    try:
        reply: Reply = route(request)
    except Exception as exc:  # AWS unreachable, a secret unreadable: say so rather than a bare 500
        logger.exception("onboarding failed", extra={"error": type(exc).__name__})
        reply = page(
            503,
            "The gateway could not finish this step",
            [
                "A service the gateway depends on did not answer. Start again from your invite link in a few "
                "minutes; connecting an account twice is harmless."
            ],
            outcome="unavailable",
        )
    return reply.to_api_gateway()
