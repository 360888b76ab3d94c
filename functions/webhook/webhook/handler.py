"""Lambda entry point for GET/POST /webhook: wiring, request decoding and error mapping only."""

from collections.abc import Callable
from functools import cache
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from igdm import aws, observability
from igdm.accounts import AccountTable
from igdm.config import ConfigurationError, cached_settings
from igdm.http_api import TEXT_PLAIN, HttpApiRequest, Reply
from igdm.observability import logger, metrics
from igdm.outbound_records import OutboundRecords, RecordsUnavailable
from igdm.sqs_publisher import SqsEventPublisher
from igdm.status_events import StatusNotPublished, StatusPublisher
from webhook import service
from webhook.app_secrets import SecretsManagerAppSecret, SecretUnavailable
from webhook.dynamodb_store import DynamoEventStore
from webhook.heartbeat import WebhookHeartbeat
from webhook.receipts import OutboundReceipts
from webhook.service import Rejected, StorageUnavailable
from webhook.settings import WebhookSettings


@cache
def _secret_source() -> SecretsManagerAppSecret:
    settings = cached_settings(WebhookSettings)
    return SecretsManagerAppSecret(
        aws.client("secretsmanager"), settings.app_secret_name, settings.secret_max_age_seconds
    )


@cache
def _store() -> DynamoEventStore:
    settings = cached_settings(WebhookSettings)
    return DynamoEventStore(aws.client("dynamodb"), settings.table_name, settings.event_retention_days)


@cache
def _receipts() -> OutboundReceipts:
    settings = cached_settings(WebhookSettings)
    return OutboundReceipts(
        OutboundRecords(aws.client("dynamodb"), settings.table_name, settings.event_retention_days),
        StatusPublisher(aws.client("sqs"), settings.events_queue_url, settings.callback_queue_url),
    )


@cache
def _heartbeat() -> WebhookHeartbeat:
    return WebhookHeartbeat(AccountTable(aws.client("dynamodb"), cached_settings(WebhookSettings).table_name))


@cache
def _publisher() -> SqsEventPublisher:
    return SqsEventPublisher(aws.client("sqs"), cached_settings(WebhookSettings).events_queue_url)


def verify_subscription(request: HttpApiRequest) -> Reply:
    challenge = service.handshake(request.query, _secret_source().current().verify_token)
    metrics.add_metric(name="HandshakeVerified", unit=MetricUnit.Count, value=1)
    logger.info("webhook subscription verified")
    return Reply(200, challenge, TEXT_PLAIN)


def receive_events(request: HttpApiRequest) -> Reply:
    body = request.raw_body()
    if body is None:
        raise Rejected(400, "body is marked base64 but is not valid base64", "MalformedBody")
    result = service.receive(
        body=body,
        signature=request.header("x-hub-signature-256"),
        received_at_ms=request.request_context.time_epoch,
        secrets=_secret_source(),
        max_body_bytes=cached_settings(WebhookSettings).max_body_bytes,
        store=_store(),
        publisher=_publisher(),
        receipts=_receipts(),
        max_event_age_ms=cached_settings(WebhookSettings).max_event_age_ms,
    )
    _heartbeat().seen(result.accounts)
    metrics.add_metric(name="EventsPublished", unit=MetricUnit.Count, value=result.published)
    metrics.add_metric(name="EventsDuplicate", unit=MetricUnit.Count, value=result.duplicates)
    if result.stale:
        metrics.add_metric(name="EventsStale", unit=MetricUnit.Count, value=result.stale)
        logger.warning(
            "events older than the event retention ignored (a replayed body?)", extra={"stale": result.stale}
        )
    for kind, count in result.kinds.items():
        observability.count("EventsReceived", count, kind=kind)
    logger.info(
        "webhook accepted",
        extra={
            "received": result.received,
            "published": result.published,
            "duplicates": result.duplicates,
            "stale": result.stale,
            "kinds": result.kinds,
            "app_secret_index": result.secret_index,
        },
    )
    return Reply.of_json(
        200,
        {
            "received": result.received,
            "published": result.published,
            "duplicates": result.duplicates,
            "stale": result.stale,
        },
    )


# API Gateway's routeKey for each route in template.yaml (a test keeps the two the same).
ROUTES: dict[str, Callable[[HttpApiRequest], Reply]] = {
    "GET /webhook": verify_subscription,
    "POST /webhook": receive_events,
}


def _answer(request: HttpApiRequest) -> Reply:
    route = ROUTES.get(request.route_key)
    if route is None:
        metrics.add_metric(name="InvalidInvocations", unit=MetricUnit.Count, value=1)
        return Reply.of_json(404, {"error": f"no route {request.route_key}"})
    try:
        return route(request)
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


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        request = HttpApiRequest.model_validate(event)
    except ValidationError as exc:
        fields = sorted({".".join(str(p) for p in err["loc"]) for err in exc.errors(include_input=False)})
        metrics.add_metric(name="InvalidInvocations", unit=MetricUnit.Count, value=1)
        logger.warning("invoked with an event that is not an HTTP API request", extra={"fields": fields})
        reply = Reply.of_json(400, {"error": f"not an API Gateway HTTP API request: {', '.join(fields)}"})
        return reply.to_api_gateway()
    return _answer(request).to_api_gateway()
