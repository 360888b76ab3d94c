"""The onboarding function's HTTP API: the pages (GET /oauth/start, GET /oauth/callback, GET
/meta/deletion-status) and Meta's callbacks (POST /meta/deauthorize, POST /meta/data-deletion). An API Gateway
event in, a page or a JSON answer out, whatever happens: a service the pages depend on not answering is a
page that says so (or a 503 Meta retries), never a bare 500."""

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from igdm.runtime.http_api import HttpApiRequest, Reply
from igdm.runtime.observability import logger
from onboarding.data_deletion import DataDeletion
from onboarding.pages import Next, page
from onboarding.service import Onboarding

# API Gateway's routeKey for each route in template.yaml.
ROUTES = (
    "GET /oauth/start",
    "GET /oauth/callback",
    "POST /meta/deauthorize",
    "POST /meta/data-deletion",
    "GET /meta/deletion-status",
)


class OnboardingApi:
    def __init__(
        self,
        onboarding: Callable[[], Onboarding],
        deauthorize: Callable[[], Callable[[HttpApiRequest], Reply]],
        data_deletion: Callable[[], DataDeletion],
    ) -> None:
        # Each built at its first request (a misconfiguration fails the invocation).
        self._onboarding = onboarding
        self._deauthorize = deauthorize
        self._data_deletion = data_deletion

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        try:
            request = HttpApiRequest.model_validate(event)
        except ValidationError:
            return page(400, "Bad request", ["This page could not be read."], outcome="bad_request").to_api_gateway()
        if request.route_key not in ROUTES:
            return page(
                404, "Page not found", ["No such page. Check the link you were given."], outcome="not_found"
            ).to_api_gateway()
        if request.route_key == "POST /meta/deauthorize":
            return self._callback(request, lambda: self._deauthorize()(request)).to_api_gateway()
        if request.route_key == "POST /meta/data-deletion":
            return self._callback(request, lambda: self._data_deletion().callback(request)).to_api_gateway()
        try:
            if request.route_key == "GET /meta/deletion-status":
                reply: Reply = self._data_deletion().status(request)
            else:
                onboarding = self._onboarding()
                route = onboarding.start if request.route_key == "GET /oauth/start" else onboarding.callback
                reply = route(request)
        except Exception as exc:  # AWS unreachable, a secret unreadable: say so rather than a bare 500
            logger.exception("onboarding failed", extra={"error": type(exc).__name__})
            again = (
                "Please reload this page in a few minutes."
                if request.route_key == "GET /meta/deletion-status"
                else "Please open your invite link again in a few minutes. Trying again is safe."
            )
            reply = page(
                503,
                "Something went wrong on our side",
                ["A service this page needs did not answer, so this step could not be finished.", Next(again)],
                outcome="unavailable",
            )
        return reply.to_api_gateway()

    def _callback(self, request: HttpApiRequest, answer: Callable[[], Reply]) -> Reply:
        """Meta's server-to-server callbacks: JSON answers; a service not answering is a 503 Meta retries."""
        try:
            return answer()
        except Exception as exc:
            logger.exception("Meta's callback failed", extra={"route": request.route_key, "error": type(exc).__name__})
            return Reply.of_json(503, {"error": "not finished; retry"})
