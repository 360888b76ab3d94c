"""The HTTP API function's settings, read without pydantic, against the pydantic model it had: the same values, and the
same refusals in the same words."""

import pytest
from pydantic import BaseModel, Field

from api.settings import ApiSettings
from tests.settings_reference import answers, environments


class PydanticApiSettings(BaseModel):
    """The reference: api.settings' model before it was read by hand."""

    table_name: str = Field(min_length=1)
    outbound_queue_url: str = Field(min_length=1, description="POST /v1/messages puts messages here.")
    erasure_queue_url: str = Field(min_length=1, description="DELETE /v1/customers/{id} hands erasures to the eraser.")
    callback_queue_url: str = Field(min_length=1, description="A redelivery goes to the callback function here.")
    allow_local_callbacks: bool = Field(
        False, description="Local stack only: event webhooks may target http and private addresses."
    )
    api_key_rate_per_second: float = Field(50, gt=0, description="Requests per second one API key may make.")
    api_key_burst: int = Field(100, ge=1, description="Requests one idle API key may make at once.")


REQUIRED = {
    "TABLE_NAME": "t",
    "OUTBOUND_QUEUE_URL": "https://sqs/o.fifo",
    "ERASURE_QUEUE_URL": "https://sqs/e",
    "CALLBACK_QUEUE_URL": "https://sqs/c.fifo",
}
MORE = [
    {"TABLE_NAME": "", "API_KEY_RATE_PER_SECOND": "0", "API_KEY_BURST": "0", "ALLOW_LOCAL_CALLBACKS": "maybe"},
    {**REQUIRED, "API_KEY_RATE_PER_SECOND": "2.5", "API_KEY_BURST": "1", "ALLOW_LOCAL_CALLBACKS": "true"},
]


@pytest.mark.parametrize("environment", [*environments(ApiSettings, REQUIRED), *MORE])
def test_the_settings_are_read_and_refused_as_the_model_did(environment: dict[str, str]) -> None:
    plain, model = answers(ApiSettings, PydanticApiSettings, environment)
    assert plain == model
