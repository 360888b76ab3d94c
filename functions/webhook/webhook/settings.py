"""The webhook function's configuration (environment variables set by template.yaml)."""

from pydantic import BaseModel, Field


class WebhookSettings(BaseModel):
    table_name: str = Field(min_length=1)
    events_queue_url: str = Field(min_length=1)
    app_secret_name: str = Field(min_length=1, description="Secrets Manager id of the app secret JSON.")
    secret_max_age_seconds: int = Field(300, ge=0, description="How long a fetched secret is cached.")
    max_body_bytes: int = Field(4 * 1024 * 1024, gt=0, description="Larger webhook bodies get a 413.")
    callback_queue_url: str | None = Field(None, description="Status callbacks are queued here.")
    event_retention_days: int = Field(90, gt=0, description="Event items expire (TTL) after this.")
