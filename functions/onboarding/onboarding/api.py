"""The onboarding pages' HTTP API (GET /oauth/start and GET /oauth/callback): an API Gateway event in, a
page out, whatever happens: a service the gateway depends on not answering is a page that says so, never
a bare 500."""

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from igdm.runtime.http_api import HttpApiRequest, Reply
from igdm.runtime.observability import logger
from onboarding.pages import page
from onboarding.service import Onboarding

# API Gateway's routeKey for each route in template.yaml.
ROUTES = ("GET /oauth/start", "GET /oauth/callback", "POST /meta/deauthorize")


class OnboardingApi:
    def __init__(
        self, onboarding: Callable[[], Onboarding], deauthorize: Callable[[], Callable[[HttpApiRequest], Reply]]
    ) -> None:
        self._onboarding = onboarding  # built at the first request (a misconfiguration fails the invocation)
        self._deauthorize = deauthorize

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        try:
            request = HttpApiRequest.model_validate(event)
        except ValidationError:
            return page(400, "Bad request", ["The request could not be read."], outcome="bad_request").to_api_gateway()
        if request.route_key not in ROUTES:
            return page(404, "Not found", ["No such page."], outcome="not_found").to_api_gateway()
        if request.route_key == "POST /meta/deauthorize":
            return self._callback(request).to_api_gateway()
        onboarding = self._onboarding()
        try:
            route = onboarding.start if request.route_key == "GET /oauth/start" else onboarding.callback
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

    def _callback(self, request: HttpApiRequest) -> Reply:
        """Meta's server-to-server callbacks: JSON answers; a service not answering is a 503 Meta retries."""
        try:
            return self._deauthorize()(request)
        except Exception as exc:
            logger.exception("deauthorize callback failed", extra={"error": type(exc).__name__})
            return Reply.of_json(503, {"error": "not finished; retry"})
