"""The onboarding pages as a business owner reads them: who asks (the business's name, logo and privacy policy,
escaped wherever they appear), for what, in plain words, on a phone; and the headers that keep them safe. The
pages of each way a login ends are in test_service.py."""

import re
from typing import Any

import pytest
from pydantic import ValidationError

from igdm.meta.webhook_fields import BASIC_SCOPE, COMMENTS_SCOPE, MESSAGES_SCOPE
from igdm.runtime.http_api import Reply
from local.aws.template import load
from onboarding.api import OnboardingApi
from onboarding.explainer import PUBLISH_SCOPE, continue_url, explainer
from onboarding.pages import Business, headers
from onboarding.settings import OnboardingSettings
from tests.unit.onboarding.reading import jargon, visible_text

COFFEE = Business("Local Coffee Shop", "https://cdn.example.com/logo.png", "https://coffee.example/privacy")
SCOPES = [BASIC_SCOPE, MESSAGES_SCOPE, COMMENTS_SCOPE]
# Instagram's authorise URL as the service builds it: the login's state rides in it.
AUTHORIZE = "https://www.instagram.com/oauth/authorize?client_id=1&scope=a%2Cb&state=nonce.1800000900.signature"
COOKIE = "igdm_oauth=nonce; Path=/oauth; Max-Age=900; HttpOnly; SameSite=Lax; Secure"
TEMPLATE_PARAMETERS = load()["Parameters"]


def explained(business: Business = COFFEE, scopes: list[str] = SCOPES) -> Reply:
    return explainer(business, scopes, AUTHORIZE, cookie=COOKIE)


def policy(reply: Reply) -> str:
    return dict(reply.headers)["Content-Security-Policy"]


def test_the_explainer_says_who_asks_for_what_and_its_button_leads_to_instagram_with_the_state() -> None:
    reply = explained()
    text = visible_text(reply)
    assert reply.status == 200 and 'data-outcome="explainer"' in reply.body
    assert "Connect your Instagram account to Local Coffee Shop" in text
    assert (
        "Local Coffee Shop asks to connect your Instagram professional account, so that it can read and answer "
        "your Direct messages." in text
    )
    assert "If you continue, Local Coffee Shop can: See your profile" in text
    assert "Read the Direct messages people send you, and answer them from your account" in text
    assert "Read the comments on your posts" in text
    assert "Local Coffee Shop cannot: See your password" in text
    assert "Post on your account, or publish stories or reels" in text
    assert "open Settings in Instagram, find Apps and websites, and remove the app" in text
    assert continue_url(reply.body) == AUTHORIZE
    assert '<a class="button" id="continue" href="' in reply.body and "Continue to Instagram" in text
    assert dict(reply.headers)["Set-Cookie"] == COOKIE
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in reply.body


def test_the_logo_and_the_privacy_policy_are_shown_without_telling_their_hosts_where_from() -> None:
    body = explained().body
    assert '<img id="logo" src="https://cdn.example.com/logo.png" alt="" referrerpolicy="no-referrer">' in body
    assert (
        '<a id="privacy-policy" href="https://coffee.example/privacy" target="_blank" rel="noopener noreferrer">'
        "Read Local Coffee Shop&#x27;s privacy policy</a>" in body
    )
    assert dict(explained().headers)["Referrer-Policy"] == "no-referrer"


def test_a_login_that_asks_for_more_says_so_and_promises_nothing_it_does_not_keep() -> None:
    text = visible_text(explained(scopes=[*SCOPES, PUBLISH_SCOPE, "instagram_business_something_new"]))
    assert "Publish posts, reels and stories on your account" in text
    assert "Post on your account" not in text  # no longer something it cannot do
    assert "Anything else Instagram lists on its page" in text


def test_without_a_name_logo_or_privacy_policy_the_pages_use_neutral_words() -> None:
    reply = explained(Business())
    text = visible_text(reply)
    assert text.startswith("Connect your Instagram account Connect your Instagram account The business that invited")
    assert "The business that invited you asks to connect your Instagram professional account" in text
    assert "If you continue, the business that invited you can:" in text
    assert "<header" not in reply.body and "<img" not in reply.body and "privacy-policy" not in reply.body
    assert "img-src" not in policy(reply)


def test_everything_the_business_gave_is_escaped() -> None:
    odd = Business(
        '<script>alert(1)</script> & "Sons"',
        'https://cdn.example.com/logo.png?size="96"&<x>',
        "https://coffee.example/privacy?a=1&b='2'",
    )
    body = explained(odd).body
    assert "<script>" not in body and "<x>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;Sons&quot;" in body
    assert 'src="https://cdn.example.com/logo.png?size=&quot;96&quot;&amp;&lt;x&gt;"' in body
    assert 'href="https://coffee.example/privacy?a=1&amp;b=&#x27;2&#x27;"' in body


def test_the_pages_allow_no_script_and_images_from_the_logos_host_only() -> None:
    strict = (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
    )
    assert dict(headers(Business("Local Coffee Shop")))["Content-Security-Policy"] == strict
    assert policy(explained()) == strict.replace("'none'; ", "'none'; img-src https://cdn.example.com; ", 1)
    ported = Business("Shop", "https://CDN.Example.com:8443/brand/logo.png")
    assert "img-src https://cdn.example.com:8443;" in dict(headers(ported))["Content-Security-Policy"]
    assert dict(headers())["X-Frame-Options"] == "DENY" and dict(headers())["Cache-Control"] == "no-store"


def test_the_explainer_uses_no_jargon() -> None:
    for scopes in (SCOPES, [*SCOPES, PUBLISH_SCOPE, "instagram_business_manage_insights", "something_new"]):
        for business in (COFFEE, Business()):
            assert jargon(explained(business, scopes)) == []


def test_a_service_that_does_not_answer_is_a_page_in_plain_words() -> None:
    def broken() -> Any:
        raise ConnectionError("DynamoDB did not answer")

    api = OnboardingApi(broken, broken, broken)
    event = {
        "routeKey": "GET /oauth/start",
        "rawPath": "/oauth/start",
        "queryStringParameters": {"invite": "x"},
        "headers": {"host": "abc.example"},
        "requestContext": {"requestId": "r1", "timeEpoch": 0},
    }
    answer = api(event)
    reply = Reply(answer["statusCode"], answer["body"])
    assert reply.status == 503 and "Please open your invite link again in a few minutes" in visible_text(reply)
    assert jargon(reply) == []


def _settings(**business: str) -> OnboardingSettings:
    return OnboardingSettings.model_validate(
        {
            "table_name": "t",
            "events_queue_url": "q",
            "account_secret_prefix": "p/",
            "app_secret_name": "a",
            "onboarding_secret_name": "o",
            "webhook_fields": "messages",
            "erasure_queue_url": "e",
            **business,
        }
    )


REFUSED_URLS = [
    "http://cdn.example.com/logo.png",
    "HTTPS://cdn.example.com/logo.png",
    "javascript:alert(1)",
    "data:image/png;base64,iVBORw0KGgo=",
    "//cdn.example.com/logo.png",
    "https://",
    "https://user@cdn.example.com/logo.png",
    "https://cdn.example.com;img-src *",
    "https://cdn.example.com/a logo.png",
    "https://cdn.example.com/logo.png\n",
    "https://[::1]/logo.png",
]
ACCEPTED_URLS = ["", "https://cdn.example.com/logo.png", "https://coffee.example:8443/privacy?lang=en#data"]


@pytest.mark.parametrize("url", REFUSED_URLS)
@pytest.mark.parametrize("field", ["business_logo_url", "business_privacy_policy_url"])
def test_the_business_addresses_must_be_https_with_a_plain_host(field: str, url: str) -> None:
    with pytest.raises(ValidationError):
        _settings(**{field: url})


@pytest.mark.parametrize("url", ACCEPTED_URLS)
def test_an_https_address_or_none_is_taken(url: str) -> None:
    settings = _settings(business_name="  Local Coffee Shop ", business_logo_url=url, business_privacy_policy_url=url)
    assert settings.business == Business("Local Coffee Shop", url, url)


@pytest.mark.parametrize("parameter", ["BusinessLogoUrl", "BusinessPrivacyPolicyUrl"])
def test_the_template_refuses_what_the_settings_refuse(parameter: str) -> None:
    # CloudFormation matches AllowedPattern against the whole value, as fullmatch does.
    pattern = TEMPLATE_PARAMETERS[parameter]["AllowedPattern"]
    assert [url for url in REFUSED_URLS if re.fullmatch(pattern, url)] == []
    assert [url for url in ACCEPTED_URLS if not re.fullmatch(pattern, url)] == []
    assert TEMPLATE_PARAMETERS[parameter]["Default"] == ""


def test_the_business_name_is_optional_and_short() -> None:
    name = TEMPLATE_PARAMETERS["BusinessName"]
    assert (name["Default"], name["MaxLength"]) == ("", 100)
    assert _settings(business_name="x" * 100).business.name == "x" * 100
    with pytest.raises(ValidationError):
        _settings(business_name="x" * 101)
