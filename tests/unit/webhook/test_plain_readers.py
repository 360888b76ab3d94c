"""What the webhook reads without pydantic (its settings, its app secret, its request) against the pydantic models
that read them before: the same values, and the same refusals in the same words."""

from typing import Any

import pytest
from pydantic import BaseModel, Field

from igdm.runtime.configuration_error import ConfigurationError
from local.aws.apigw import http_api_event
from tests.settings_reference import answers
from webhook.app_secret_model import AppSecret
from webhook.app_secrets import AppSecretValues, app_secret_values
from webhook.request import NotAnHttpRequest, WebhookRequest, _through_the_model, webhook_request
from webhook.settings import WebhookSettings


class PydanticWebhookSettings(BaseModel):
    """The webhook's settings as the pydantic model it had: the reference for the hand-written reader."""

    table_name: str = Field(min_length=1)
    events_queue_url: str = Field(min_length=1)
    app_secret_name: str = Field(min_length=1)
    secret_max_age_seconds: int = Field(300, ge=0)
    max_body_bytes: int = Field(4 * 1024 * 1024, gt=0)
    callback_queue_url: str | None = None
    event_retention_days: int = Field(90, gt=0)
    outbound_queue_url: str | None = None
    handover_payload: str = Field("HUMAN_AGENT", max_length=1000)


REQUIRED = {"TABLE_NAME": "t", "EVENTS_QUEUE_URL": "q", "APP_SECRET_NAME": "s"}
INTEGERS = ["5", " 5 ", "\t7\n", "+5", "-0", "007", "1_000", "5.0", "5.00", "0", "-1", "", " ", "5.", ".0", "5.5"]
INTEGERS += ["1e3", "0x10", "1__0", "_1", "1_", "\u0663", "\u22125", "abc", "99999999999999999999"]


def both(environment: dict[str, str]) -> tuple[str, str]:
    """Each reader's settings, or its error, as text."""
    return answers(WebhookSettings, PydanticWebhookSettings, environment)


@pytest.mark.parametrize(
    "environment",
    [
        {},
        REQUIRED,
        {**REQUIRED, "TABLE_NAME": ""},
        {"EVENTS_QUEUE_URL": ""},
        {**REQUIRED, "CALLBACK_QUEUE_URL": "", "OUTBOUND_QUEUE_URL": "https://sqs/o.fifo", "HANDOVER_PAYLOAD": ""},
        {**REQUIRED, "HANDOVER_PAYLOAD": "x" * 1000},
        {**REQUIRED, "HANDOVER_PAYLOAD": "x" * 1001},
        {**REQUIRED, "SECRET_MAX_AGE_SECONDS": "-1", "MAX_BODY_BYTES": "0", "EVENT_RETENTION_DAYS": "x"},
        *({**REQUIRED, "MAX_BODY_BYTES": text} for text in INTEGERS),
        *({**REQUIRED, "SECRET_MAX_AGE_SECONDS": text} for text in INTEGERS),
    ],
)
def test_the_settings_are_read_and_refused_as_the_model_did(environment: dict[str, str]) -> None:
    plain, model = both(environment)
    assert plain == model


def test_a_refusal_names_every_variable() -> None:
    with pytest.raises(ConfigurationError) as caught:
        WebhookSettings.from_environment({"TABLE_NAME": "", "MAX_BODY_BYTES": "0"})
    assert str(caught.value) == (
        "invalid configuration: TABLE_NAME: String should have at least 1 character; EVENTS_QUEUE_URL: Field "
        "required; APP_SECRET_NAME: Field required; MAX_BODY_BYTES: Input should be greater than 0"
    )


SECRET = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    "value",
    [
        {"app_secrets": [SECRET], "verify_token": "t"},
        {"app_secrets": [f" {SECRET}\n", SECRET.upper()], "verify_token": "  ", "callback_signing_secret": "x"},
        {"app_secrets": [], "instagram_app_id": " 123 ", "meta_app_id": "456"},
        {"verify_token": None, "meta_app_id": ""},
        {},
        {"app_secrets": [SECRET, "changeme"]},
        {"app_secrets": ["x" * 15]},
        {"app_secrets": ["\u00e9" * 16]},
        {"app_secrets": [f"{SECRET}\x1c"]},
        {"app_secrets": [f"\u00a0{SECRET}\u00a0"]},
        {"app_secrets": SECRET},
        {"app_secrets": [5]},
        {"app_secrets": [SECRET], "verify_token": 5},
        {"app_secrets": [SECRET], "instagram_app_id": 17841400000000001},
        {"app_secrets": None},
        [SECRET],
        "secret",
        None,
    ],
)
def test_the_app_secret_is_read_and_refused_as_the_model_reads_it(value: Any) -> None:
    try:
        model = AppSecret.model_validate(value)
    except ValueError:
        with pytest.raises(ConfigurationError, match=r"^secret app must be JSON like"):
            app_secret_values(value, "app")
        return
    plain = app_secret_values(value, "app")
    assert plain == AppSecretValues(model.app_secrets, model.verify_token, model.instagram_app_id, model.meta_app_id)
    assert plain.app_ids == model.app_ids


def _event(**changes: Any) -> dict[str, Any]:
    event = http_api_event("POST", "/webhook", headers={"content-type": "application/json"}, body=b"{}", now_ms=5)
    for path, value in changes.items():
        *parents, name = path.split("__")
        target = event
        for parent in parents:
            target = target[parent]
        if value is ...:
            del target[name]
        else:
            target[name] = value
    return event


@pytest.mark.parametrize(
    "event",
    [
        _event(),
        _event(headers=None, queryStringParameters=None, cookies=None, pathParameters=None, isBase64Encoded=None),
        _event(body=None),
        _event(isBase64Encoded=True, body="e30="),
        _event(isBase64Encoded="true"),
        _event(isBase64Encoded=1),
        _event(requestContext__timeEpoch="5"),
        _event(requestContext__timeEpoch=5.0),
        _event(requestContext__timeEpoch=True),
        _event(requestContext__timeEpoch=...),
        _event(requestContext__requestId=5),
        _event(requestContext__authorizer=None),
        _event(requestContext__authorizer=[]),
        _event(requestContext=None),
        _event(routeKey=...),
        _event(routeKey=5),
        _event(headers={"x-hub-signature-256": 5}),
        _event(headers=[]),
        _event(queryStringParameters={"a": ["b"]}),
        _event(cookies="a=b"),
        _event(cookies=[1]),
        _event(pathParameters={"a": 1}),
        _event(body=b"{}"),
        {},
    ],
)
def test_a_request_is_read_and_refused_as_the_http_api_model_reads_it(event: dict[str, Any]) -> None:
    def read(reader: Any) -> WebhookRequest | list[str]:
        try:
            request: WebhookRequest = reader(event)
        except NotAnHttpRequest as exc:
            return exc.fields
        return request

    assert read(webhook_request) == read(_through_the_model)
