"""The eraser's configuration (environment variables set by template.yaml)."""

from pydantic import BaseModel, Field


class EraserSettings(BaseModel):
    table_name: str = Field(min_length=1)
    events_queue_url: str = Field(min_length=1, description="customer_forgotten and account_status events.")
    account_secret_prefix: str = Field(min_length=1, description="An erased account's token secret is under it.")
