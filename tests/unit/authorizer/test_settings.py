"""The authorizer's settings, read without pydantic, against the pydantic model it had: the same values, and
the same refusals in the same words."""

import pytest
from pydantic import BaseModel, Field

from authorizer.settings import AuthorizerSettings
from tests.settings_reference import answers, environments


class PydanticAuthorizerSettings(BaseModel):
    """The reference: authorizer.settings' model before it was read by hand."""

    table_name: str = Field(min_length=1, description="Holds the API keys (APIKEYS / KEY#<id>).")


REQUIRED = {"TABLE_NAME": "t"}
MORE = [{"TABLE_NAME": "", "OTHER": "x"}]


@pytest.mark.parametrize("environment", [*environments(AuthorizerSettings, REQUIRED), *MORE])
def test_the_settings_are_read_and_refused_as_the_model_did(environment: dict[str, str]) -> None:
    plain, model = answers(AuthorizerSettings, PydanticAuthorizerSettings, environment)
    assert plain == model
