"""The webhook's request, read from the payload 2.0 event of API Gateway's HTTP API or of the function's URL.

Read without pydantic when the event has the shape AWS gives it; any other event is handed to
igdm.runtime.http_api.HttpApiRequest, imported then, so that what it refuses is refused with its own reasons
and what it accepts (a console test's nulls, numbers as strings) is read as before.
"""

from typing import Any, NamedTuple

from igdm.runtime.http_body import decoded_body

# A function URL has one route: its event's routeKey is this, and the method and path are the request's own.
FUNCTION_URL_ROUTE_KEY = "$default"


class NotAnHttpRequest(Exception):
    """The event is no payload 2.0 HTTP request; ``fields`` names what is missing or wrong."""

    def __init__(self, fields: list[str]) -> None:
        super().__init__(", ".join(fields))
        self.fields = fields


# A NamedTuple, not a dataclass: its class is built several times faster, on the webhook's cold start.
class WebhookRequest(NamedTuple):
    route: str  # "POST /webhook": the HTTP API's routeKey, or the function URL's method and path
    query: dict[str, str]
    headers: dict[str, str]
    body: str | None
    is_base64_encoded: bool
    time_epoch: int

    def header(self, name: str) -> str | None:
        """HTTP API lowercases header names; compare without case all the same."""
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)

    def raw_body(self) -> bytes | None:
        """The exact bytes sent; None if the body claims base64 but is not."""
        return decoded_body(self.body, self.is_base64_encoded)


def webhook_request(event: dict[str, Any]) -> WebhookRequest:
    """The request the event carries; NotAnHttpRequest when it carries none."""
    plain = _as_delivered(event)
    if plain is not None:
        return plain
    return _through_the_model(event)


def _as_delivered(event: dict[str, Any]) -> WebhookRequest | None:
    """The request, when every field the model reads is there in the type AWS sends, or absent; else None."""
    context, route_key = event.get("requestContext"), event.get("routeKey")
    if type(context) is not dict or type(route_key) is not str:
        return None
    time_epoch, body, encoded = context.get("timeEpoch"), event.get("body"), event.get("isBase64Encoded")
    query, headers = _text_map(event.get("queryStringParameters")), _text_map(event.get("headers"))
    if type(time_epoch) is not int or query is None or headers is None:
        return None
    if (body is not None and type(body) is not str) or (encoded is not None and type(encoded) is not bool):
        return None
    authorizer = context.get("authorizer")
    also_read = (
        _text_map(event.get("pathParameters")) is not None
        and _texts_or_none(event.get("cookies"))
        and type(context.get("requestId", "")) is str
        and (authorizer is None or type(authorizer) is dict)
    )
    if not also_read:
        return None
    return WebhookRequest(_route(event, route_key), query, headers, body, bool(encoded), time_epoch)


def _through_the_model(event: dict[str, Any]) -> WebhookRequest:
    from pydantic import ValidationError

    from igdm.runtime.http_api import HttpApiRequest

    try:
        model = HttpApiRequest.model_validate(event)
    except ValidationError as exc:
        raise NotAnHttpRequest(
            sorted({".".join(str(p) for p in err["loc"]) for err in exc.errors(include_input=False)})
        ) from None
    return WebhookRequest(
        _route(event, model.route_key),
        model.query,
        model.headers,
        model.body,
        model.is_base64_encoded,
        model.request_context.time_epoch,
    )


def _route(event: dict[str, Any], route_key: str) -> str:
    """The HTTP API's routeKey; for a function URL ("$default") its method and path, in the same form."""
    if route_key != FUNCTION_URL_ROUTE_KEY:
        return route_key
    context = event.get("requestContext")
    http = context.get("http") if isinstance(context, dict) else None
    method = http.get("method") if isinstance(http, dict) else None
    path = event.get("rawPath")
    if not isinstance(method, str) or not isinstance(path, str):
        return route_key  # no route: answered 404, naming the route key it came with
    return f"{method.upper()} {path}"


def _text_map(value: Any) -> dict[str, str] | None:
    """A map of strings as the model takes it (absent or null is empty); None when it is anything else."""
    if value is None:
        return {}
    if type(value) is not dict or not all(type(v) is str for v in value.values()):
        return None
    return value


def _texts_or_none(value: Any) -> bool:
    return value is None or (type(value) is list and all(type(v) is str for v in value))
