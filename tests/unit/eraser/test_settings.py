"""The eraser's settings, read without pydantic, against the pydantic model it had: the same values, and the
same refusals in the same words."""

import pytest
from pydantic import BaseModel, Field

from eraser.settings import EraserSettings
from tests.settings_reference import answers, environments


class PydanticEraserSettings(BaseModel):
    """The reference: eraser.settings' model before it was read by hand."""

    table_name: str = Field(min_length=1)
    events_queue_url: str = Field(min_length=1, description="customer_forgotten and account_status events.")
    account_secret_prefix: str = Field(min_length=1, description="An erased account's token secret is under it.")


REQUIRED = {"TABLE_NAME": "t", "EVENTS_QUEUE_URL": "https://sqs/e.fifo", "ACCOUNT_SECRET_PREFIX": "igdm/"}
MORE = [{"TABLE_NAME": "", "ACCOUNT_SECRET_PREFIX": ""}]


@pytest.mark.parametrize("environment", [*environments(EraserSettings, REQUIRED), *MORE])
def test_the_settings_are_read_and_refused_as_the_model_did(environment: dict[str, str]) -> None:
    plain, model = answers(EraserSettings, PydanticEraserSettings, environment)
    assert plain == model
