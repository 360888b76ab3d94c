"""The webhook's HTTP API (GET and POST /webhook): an event of API Gateway's HTTP API or of the function's URL
in, its answer out. Requests are decoded by webhook.request, handed to webhook.service, and every failure is
mapped to its status: a 4xx with its reason for what Meta (or an attacker) sent wrong, a 503 for what a retry
may fix, a 500 for a misconfiguration."""

from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, Protocol

from aws_lambda_powertools.metrics import MetricUnit

from igdm.inbound.ingest import AfterIngest, EventPublisher, EventStore, Receipts, StorageUnavailable
from igdm.runtime import observability
from igdm.runtime.configuration_error import ConfigurationError
from igdm.runtime.http_reply import TEXT_PLAIN, Reply
from igdm.runtime.observability import logger, metrics
from igdm.runtime.unavailable import RecordsUnavailable, StatusNotPublished
from webhook import service
from webhook.app_secrets import SecretUnavailable
from webhook.request import NotAnHttpRequest, WebhookRequest, webhook_request
from webhook.service import Rejected, SecretSource


class Heartbeat(Protocol):
    def seen(self, account_ids: Iterable[str]) -> None: ...


# A NamedTuple, not a dataclass: its class is built several times faster, on the webhook's cold start.
class Ports(NamedTuple):
    """What the webhook works with, built from its settings (webhook.wiring)."""

    secrets: SecretSource
    store: EventStore
    publisher: EventPublisher
    receipts: Receipts
    heartbeat: Heartbeat
    max_body_bytes: int
    max_event_age_ms: int
    after: tuple[AfterIngest, ...] = ()


# API Gateway's routeKey for each route in template.yaml (a test keeps the two the same); a request to the
# function's URL takes the route of its method and path.
ROUTES = ("GET /webhook", "POST /webhook")


class WebhookApi:
    def __init__(self, ports: Callable[[], Ports]) -> None:
        # Built at the first request that needs them, inside the error mapping: a misconfigured function
        # answers 500 with its reason logged, not a bare Lambda error.
        self._ports = ports

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        try:
            request = webhook_request(event)
        except NotAnHttpRequest as exc:
            metrics.add_metric(name="InvalidInvocations", unit=MetricUnit.Count, value=1)
            logger.warning("invoked with an event that is not an HTTP API request", extra={"fields": exc.fields})
            reply = Reply.of_json(400, {"error": f"not an API Gateway HTTP API request: {', '.join(exc.fields)}"})
            return reply.to_api_gateway()
        return self._answer(request).to_api_gateway()

    def _answer(self, request: WebhookRequest) -> Reply:
        if request.route not in ROUTES:
            metrics.add_metric(name="InvalidInvocations", unit=MetricUnit.Count, value=1)
            return Reply.of_json(404, {"error": f"no route {request.route}"})
        try:
            if request.route == "GET /webhook":
                return self._verify_subscription(request)
            return self._receive_events(request)
        except Rejected as exc:
            metrics.add_metric(name=exc.metric, unit=MetricUnit.Count, value=1)
            logger.warning("webhook request rejected", extra={"status": exc.status, "reason": exc.reason})
            return Reply.of_json(exc.status, {"error": exc.reason})
        except (StorageUnavailable, RecordsUnavailable, StatusNotPublished) as exc:
            metrics.add_metric(name="StorageFailures", unit=MetricUnit.Count, value=1)
            logger.error("events not durable; asking Meta to retry", extra={"reason": str(exc)})
            return Reply.of_json(503, {"error": "events could not be stored; retry later"})
        except SecretUnavailable as exc:
            metrics.add_metric(name="SecretReadFailures", unit=MetricUnit.Count, value=1)
            logger.error("app secret unreadable; asking Meta to retry", extra={"reason": str(exc)})
            return Reply.of_json(503, {"error": "secret unavailable; retry later"})
        except ConfigurationError as exc:
            metrics.add_metric(name="ConfigurationErrors", unit=MetricUnit.Count, value=1)
            logger.error("function is misconfigured", extra={"reason": str(exc)})
            return Reply.of_json(500, {"error": "gateway misconfigured"})

    def _verify_subscription(self, request: WebhookRequest) -> Reply:
        challenge = service.handshake(request.query, self._ports().secrets.current().verify_token)
        metrics.add_metric(name="HandshakeVerified", unit=MetricUnit.Count, value=1)
        logger.info("webhook subscription verified")
        return Reply(200, challenge, TEXT_PLAIN)

    def _receive_events(self, request: WebhookRequest) -> Reply:
        body = request.raw_body()
        if body is None:
            raise Rejected(400, "body is marked base64 but is not valid base64", "MalformedBody")
        ports = self._ports()
        result = service.receive(
            body=body,
            signature=request.header("x-hub-signature-256"),
            received_at_ms=request.time_epoch,
            secrets=ports.secrets,
            max_body_bytes=ports.max_body_bytes,
            store=ports.store,
            publisher=ports.publisher,
            receipts=ports.receipts,
            max_event_age_ms=ports.max_event_age_ms,
            after=ports.after,
        )
        ports.heartbeat.seen(result.accounts)
        metrics.add_metric(name="EventsPublished", unit=MetricUnit.Count, value=result.published)
        metrics.add_metric(name="EventsDuplicate", unit=MetricUnit.Count, value=result.duplicates)
        if result.stale:
            metrics.add_metric(name="EventsStale", unit=MetricUnit.Count, value=result.stale)
            logger.warning(
                "events older than the event retention ignored (a replayed body?)", extra={"stale": result.stale}
            )
        for kind, count in result.kinds.items():
            observability.count("EventsReceived", count, kind=kind)
        for lag in lag_sample(result.lags_ms):  # the dashboard's p50 and p99: how late Meta delivers
            metrics.add_metric(name="WebhookLag", unit=MetricUnit.Milliseconds, value=lag)
        answer = {
            "received": result.received,
            "published": result.published,
            "duplicates": result.duplicates,
            "stale": result.stale,
        }
        logger.info(
            "webhook accepted", extra={**answer, "kinds": result.kinds, "app_secret_index": result.secret_index}
        )
        return Reply.of_json(200, answer)


LAG_VALUES = 100  # values of one metric in one EMF document (CloudWatch's limit)


def lag_sample(lags: tuple[int, ...]) -> list[int]:
    """Every lag, or evenly spaced ones of the sorted lags when there are more than one document holds."""
    if len(lags) <= LAG_VALUES:
        return list(lags)
    ordered = sorted(lags)
    return [ordered[i * len(ordered) // LAG_VALUES] for i in range(LAG_VALUES)]
