"""The fan-out's configuration (environment variables set by template.yaml)."""

from pydantic import BaseModel, Field


class FanoutSettings(BaseModel):
    table_name: str = Field(min_length=1)
    callback_queue_url: str = Field(min_length=1, description="Deliveries go out as the callback function's jobs.")
