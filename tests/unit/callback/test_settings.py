"""The callback function's settings, read without pydantic, against the pydantic model it had: the same values, and
the same refusals in the same words."""

import pytest
from pydantic import BaseModel, Field

from callback.settings import CallbackSettings
from tests.settings_reference import answers, environments


class PydanticCallbackSettings(BaseModel):
    """The reference: callback.settings' model before it was read by hand."""

    callback_queue_url: str = Field(
        min_length=1, description="The queue the function reads; retries are delayed on it."
    )
    callback_dead_letter_queue_url: str = Field(
        min_length=1, description="Callbacks that can never be delivered go here at once, with their reason."
    )
    callback_secret_name: str = Field(min_length=1, description="Secrets Manager id of the signing secret JSON.")
    callback_max_receive_count: int = Field(
        12,
        ge=2,
        description="The callback queue's maxReceiveCount: the "
        "last attempt moves the job to the dead-letter queue with its reason.",
    )
    secret_max_age_seconds: int = Field(300, ge=0)
    callback_connect_timeout_seconds: float = Field(3.05, gt=0, le=10)
    callback_read_timeout_seconds: float = Field(10, gt=0, le=30)
    callback_retry_base_seconds: float = Field(5, gt=0, description="First retry delay; it doubles per attempt.")
    callback_retry_cap_seconds: float = Field(900, gt=0)
    table_name: str | None = Field(
        None, description="The table holding event webhooks' delivery logs; None: the attempts are not logged."
    )
    allow_local_callbacks: bool = Field(
        False,
        description="Local stack only: accept http and private-address callback URLs. Never set in a deployed stack.",
    )


REQUIRED = {
    "CALLBACK_QUEUE_URL": "https://sqs/c.fifo",
    "CALLBACK_DEAD_LETTER_QUEUE_URL": "https://sqs/d.fifo",
    "CALLBACK_SECRET_NAME": "s",
}
MORE = [
    {"CALLBACK_QUEUE_URL": "", "CALLBACK_MAX_RECEIVE_COUNT": "1", "CALLBACK_CONNECT_TIMEOUT_SECONDS": "nan"},
    {**REQUIRED, "CALLBACK_READ_TIMEOUT_SECONDS": "30.5", "CALLBACK_RETRY_BASE_SECONDS": "-1", "TABLE_NAME": ""},
    {**REQUIRED, "CALLBACK_CONNECT_TIMEOUT_SECONDS": "10", "CALLBACK_RETRY_CAP_SECONDS": "1e3", "TABLE_NAME": "t"},
]


@pytest.mark.parametrize("environment", [*environments(CallbackSettings, REQUIRED), *MORE])
def test_the_settings_are_read_and_refused_as_the_model_did(environment: dict[str, str]) -> None:
    plain, model = answers(CallbackSettings, PydanticCallbackSettings, environment)
    assert plain == model
