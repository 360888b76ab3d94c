"""The eraser's configuration (environment variables set by template.yaml), read without pydantic
(igdm.runtime.plain_settings: the same rules and messages as the pydantic model it replaced)."""

from dataclasses import dataclass
from typing import ClassVar

from igdm.runtime.plain_settings import PlainSettings, Setting


@dataclass(frozen=True)
class EraserSettings(PlainSettings):
    table_name: str
    events_queue_url: str
    account_secret_prefix: str

    model_fields: ClassVar[dict[str, Setting]] = {
        "table_name": Setting(str, required=True, min_length=1),
        "events_queue_url": Setting(
            str, required=True, min_length=1, description="customer_forgotten and account_status events."
        ),
        "account_secret_prefix": Setting(
            str, required=True, min_length=1, description="An erased account's token secret is under it."
        ),
    }
