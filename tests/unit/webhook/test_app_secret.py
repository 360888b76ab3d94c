"""The app secret's shape: what counts as configured."""

import pytest
from pydantic import ValidationError

from webhook.app_secret_model import AppSecret

META_APP_SECRET = "0123456789abcdef0123456789abcdef"


def test_a_blank_verify_token_is_no_verify_token() -> None:
    assert AppSecret.model_validate({"app_secrets": [META_APP_SECRET], "verify_token": "  "}).verify_token is None


@pytest.mark.parametrize("placeholder", ["", "   ", "changeme", "x" * 15])
def test_a_placeholder_app_secret_is_refused(placeholder: str) -> None:
    with pytest.raises(ValidationError):
        AppSecret.model_validate({"app_secrets": [META_APP_SECRET, placeholder], "verify_token": "t"})


def test_later_fields_are_kept_for_later_issues() -> None:
    secret = AppSecret.model_validate({"app_secrets": [f" {META_APP_SECRET} "], "callback_signing_secret": "s"})
    assert secret.app_secrets == [META_APP_SECRET]
    assert secret.model_extra == {"callback_signing_secret": "s"}
