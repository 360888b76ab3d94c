"""The fan-out's settings, read without pydantic, against the pydantic model it had: the same values, and the
same refusals in the same words."""

import pytest
from pydantic import BaseModel, Field

from fanout.settings import FanoutSettings
from tests.settings_reference import answers, environments


class PydanticFanoutSettings(BaseModel):
    """The reference: fanout.settings' model before it was read by hand."""

    table_name: str = Field(min_length=1)
    callback_queue_url: str = Field(min_length=1, description="Deliveries go out as the callback function's jobs.")


REQUIRED = {"TABLE_NAME": "t", "CALLBACK_QUEUE_URL": "https://sqs/c.fifo"}
MORE = [{"TABLE_NAME": "", "CALLBACK_QUEUE_URL": ""}]


@pytest.mark.parametrize("environment", [*environments(FanoutSettings, REQUIRED), *MORE])
def test_the_settings_are_read_and_refused_as_the_model_did(environment: dict[str, str]) -> None:
    plain, model = answers(FanoutSettings, PydanticFanoutSettings, environment)
    assert plain == model
