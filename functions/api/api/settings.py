"""The HTTP API function's configuration (environment variables set by template.yaml), read without pydantic
(igdm.runtime.plain_settings: the same rules and messages as the pydantic model it replaced)."""

from dataclasses import dataclass
from typing import ClassVar

from igdm.runtime.plain_settings import PlainSettings, Setting


@dataclass(frozen=True)
class ApiSettings(PlainSettings):
    table_name: str
    outbound_queue_url: str
    erasure_queue_url: str
    callback_queue_url: str
    allow_local_callbacks: bool = False
    api_key_rate_per_second: float = 50  # an int, as the model's default was (pydantic left it as given)
    api_key_burst: int = 100

    model_fields: ClassVar[dict[str, Setting]] = {
        "table_name": Setting(str, required=True, min_length=1),
        "outbound_queue_url": Setting(
            str, required=True, min_length=1, description="POST /v1/messages puts messages here."
        ),
        "erasure_queue_url": Setting(
            str, required=True, min_length=1, description="DELETE /v1/customers/{id} hands erasures to the eraser."
        ),
        "callback_queue_url": Setting(
            str, required=True, min_length=1, description="A redelivery goes to the callback function here."
        ),
        "allow_local_callbacks": Setting(
            bool, description="Local stack only: event webhooks may target http and private addresses."
        ),
        "api_key_rate_per_second": Setting(float, gt=0, description="Requests per second one API key may make."),
        "api_key_burst": Setting(int, ge=1, description="Requests one idle API key may make at once."),
    }
