"""The callback function's configuration (environment variables set by template.yaml), read without pydantic
(igdm.runtime.plain_settings: the same rules and messages as the pydantic model it replaced)."""

from dataclasses import dataclass
from typing import ClassVar

from igdm.runtime.plain_settings import PlainSettings, Setting


@dataclass(frozen=True)
class CallbackSettings(PlainSettings):
    callback_queue_url: str
    callback_dead_letter_queue_url: str
    callback_secret_name: str
    callback_max_receive_count: int = 12
    secret_max_age_seconds: int = 300
    # The defaults as the model had them (pydantic left them as given: 10, not 10.0).
    callback_connect_timeout_seconds: float = 3.05
    callback_read_timeout_seconds: float = 10
    callback_retry_base_seconds: float = 5
    callback_retry_cap_seconds: float = 900
    table_name: str | None = None
    allow_local_callbacks: bool = False

    model_fields: ClassVar[dict[str, Setting]] = {
        "callback_queue_url": Setting(
            str, required=True, min_length=1, description="The queue the function reads; retries are delayed on it."
        ),
        "callback_dead_letter_queue_url": Setting(
            str,
            required=True,
            min_length=1,
            description="Callbacks that can never be delivered go here at once, with their reason.",
        ),
        "callback_secret_name": Setting(
            str, required=True, min_length=1, description="Secrets Manager id of the signing secret JSON."
        ),
        "callback_max_receive_count": Setting(
            int,
            ge=2,
            description="The callback queue's maxReceiveCount: the "
            "last attempt moves the job to the dead-letter queue with its reason.",
        ),
        "secret_max_age_seconds": Setting(int, ge=0),
        "callback_connect_timeout_seconds": Setting(float, gt=0, le=10),
        "callback_read_timeout_seconds": Setting(float, gt=0, le=30),
        "callback_retry_base_seconds": Setting(float, gt=0, description="First retry delay; it doubles per attempt."),
        "callback_retry_cap_seconds": Setting(float, gt=0),
        "table_name": Setting(
            str, description="The table holding event webhooks' delivery logs; None: the attempts are not logged."
        ),
        "allow_local_callbacks": Setting(
            bool,
            description="Local stack only: accept http and private-address callback URLs. "
            "Never set in a deployed stack.",
        ),
    }
