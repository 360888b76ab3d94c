"""The fan-out's configuration (environment variables set by template.yaml), read without pydantic
(igdm.runtime.plain_settings: the same rules and messages as the pydantic model it replaced)."""

from dataclasses import dataclass
from typing import ClassVar

from igdm.runtime.plain_settings import PlainSettings, Setting


@dataclass(frozen=True)
class FanoutSettings(PlainSettings):
    table_name: str
    callback_queue_url: str

    model_fields: ClassVar[dict[str, Setting]] = {
        "table_name": Setting(str, required=True, min_length=1),
        "callback_queue_url": Setting(
            str, required=True, min_length=1, description="Deliveries go out as the callback function's jobs."
        ),
    }
