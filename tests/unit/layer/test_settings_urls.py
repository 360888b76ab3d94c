"""Every URL a function sends a token or an app secret to is https (issue 11, item 9): a typo in a
deployed stack must stop the function at its first invocation, naming the variable, rather than send
tokens in clear. Only the local stack (LOCAL_STACK=true) may use http, and only to 127.0.0.1 or
localhost, where its Graph sandbox runs."""

from typing import Any

import pytest
from pydantic import BaseModel

from igdm.runtime.config import ConfigurationError, load_settings
from local.stack import LocalConfig
from onboarding.settings import OnboardingSettings
from refresher.settings import RefresherSettings
from sender.settings import SenderSettings

REQUIRED = {  # what the template (Globals and the function) always sets, other than the URLs
    "TABLE_NAME": "gw-table",
    "EVENTS_QUEUE_URL": "https://sqs.example/events.fifo",
    "OUTBOUND_QUEUE_URL": "https://sqs.example/outbound.fifo",
    "ERASURE_QUEUE_URL": "https://sqs.example/erasure",
    "ACCOUNT_SECRET_PREFIX": "gw/accounts/",
    "APP_SECRET_NAME": "gw/app",
    "ONBOARDING_SECRET_NAME": "gw/onboarding",
    "WEBHOOK_FIELDS": "messages",
}

# (settings model, the variable that names a URL tokens or the app secret are sent to)
TOKEN_URLS = [
    (SenderSettings, "GRAPH_API_BASE_URL"),
    (OnboardingSettings, "GRAPH_API_BASE_URL"),
    (OnboardingSettings, "INSTAGRAM_TOKEN_URL"),
    (OnboardingSettings, "INSTAGRAM_AUTHORIZE_URL"),
    (RefresherSettings, "GRAPH_API_BASE_URL"),
]
IDS = [f"{model.__name__}.{variable}" for model, variable in TOKEN_URLS]


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "LOCAL_STACK",
        "ALLOW_LOCAL_CALLBACKS",
        "GRAPH_API_BASE_URL",
        "INSTAGRAM_TOKEN_URL",
        "INSTAGRAM_AUTHORIZE_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)


def settings_with(monkeypatch: pytest.MonkeyPatch, model: type[BaseModel], variables: dict[str, str]) -> Any:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return load_settings(model)


@pytest.mark.parametrize(("model", "variable"), TOKEN_URLS, ids=IDS)
@pytest.mark.parametrize(
    "url",
    [
        "http://graph.instagram.com",
        "HTTP://graph.instagram.com",
        "http://127.0.0.1:8081",
        "ftp://graph.instagram.com",
        "graph.instagram.com",
    ],
)
def test_a_url_that_is_not_https_stops_the_function_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, model: type[BaseModel], variable: str, url: str
) -> None:
    with pytest.raises(ConfigurationError) as refused:
        settings_with(monkeypatch, model, {variable: url})
    message = str(refused.value)
    assert f"{variable}: " in message and "https" in message, message
    assert "LOCAL_STACK" in message, message  # says how the local stack may use http


@pytest.mark.parametrize(("model", "variable"), TOKEN_URLS, ids=IDS)
def test_https_is_accepted_and_is_the_default(
    monkeypatch: pytest.MonkeyPatch, model: type[BaseModel], variable: str
) -> None:
    field = variable.lower()
    assert str(model.model_fields[field].default).startswith("https://")
    assert getattr(load_settings(model), field) == model.model_fields[field].default
    url = "https://graph.facebook.com" if variable == "GRAPH_API_BASE_URL" else "https://api.example.com/oauth/x"
    assert getattr(settings_with(monkeypatch, model, {variable: url}), field) == url


@pytest.mark.parametrize(("model", "variable"), TOKEN_URLS, ids=IDS)
@pytest.mark.parametrize("url", ["http://127.0.0.1:8081", "http://localhost:8081", "http://LOCALHOST:8081"])
def test_the_local_stack_may_use_http_to_loopback(
    monkeypatch: pytest.MonkeyPatch, model: type[BaseModel], variable: str, url: str
) -> None:
    settings = settings_with(monkeypatch, model, {"LOCAL_STACK": "true", variable: url})
    assert getattr(settings, variable.lower()) == url
    assert settings.local_stack is True


@pytest.mark.parametrize(("model", "variable"), TOKEN_URLS, ids=IDS)
@pytest.mark.parametrize(
    "url",
    [
        "http://graph.instagram.com",
        "http://10.0.0.8:8081",
        "http://127.0.0.1.example.com",
        "http://localhost.example.com:8081",
        "http://[::ffff:7f00:1]:8081",
    ],
)
def test_even_the_local_stack_uses_https_to_a_host_that_is_not_loopback(
    monkeypatch: pytest.MonkeyPatch, model: type[BaseModel], variable: str, url: str
) -> None:
    with pytest.raises(ConfigurationError) as refused:
        settings_with(monkeypatch, model, {"LOCAL_STACK": "true", variable: url})
    message = str(refused.value)
    assert f"{variable}: " in message and "127.0.0.1 or localhost" in message, message


@pytest.mark.parametrize(("model", "variable"), TOKEN_URLS, ids=IDS)
def test_the_callbacks_flag_does_not_allow_http_to_meta(
    monkeypatch: pytest.MonkeyPatch, model: type[BaseModel], variable: str
) -> None:
    # One flag per meaning: ALLOW_LOCAL_CALLBACKS is about producers' callback URLs, not Meta's.
    with pytest.raises(ConfigurationError, match=variable):
        settings_with(monkeypatch, model, {"ALLOW_LOCAL_CALLBACKS": "true", variable: "http://127.0.0.1:8081"})


def test_the_message_names_every_insecure_url_and_no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError) as refused:
        settings_with(
            monkeypatch,
            OnboardingSettings,
            {
                "GRAPH_API_BASE_URL": "http://user:hunter2@graph.example.com",
                "INSTAGRAM_TOKEN_URL": "http://api.example.com/oauth/access_token",
            },
        )
    message = str(refused.value)
    assert "GRAPH_API_BASE_URL: " in message and "INSTAGRAM_TOKEN_URL: " in message, message
    assert "hunter2" not in message and "graph.example.com" in message, message


@pytest.mark.parametrize("model", [SenderSettings, OnboardingSettings, RefresherSettings])
def test_the_local_stacks_environment_marks_it_local_and_its_sandbox_is_accepted(
    monkeypatch: pytest.MonkeyPatch, model: type[BaseModel]
) -> None:
    config = LocalConfig.from_environment()
    environment = config.function_environment(f"http://127.0.0.1:{config.graph_port}")
    assert environment["LOCAL_STACK"] == "true"
    assert settings_with(monkeypatch, model, environment).local_stack is True
    # GRAPH_API_BASE_URL=http://<a real host> make run: refused, so a token never leaves in clear.
    with pytest.raises(ConfigurationError, match="GRAPH_API_BASE_URL"):
        settings_with(monkeypatch, model, config.function_environment("http://graph.example.com"))
