"""The HTTP API function's configuration (environment variables set by template.yaml)."""

from pydantic import BaseModel, Field


class ApiSettings(BaseModel):
    table_name: str = Field(min_length=1)
    outbound_queue_url: str = Field(min_length=1, description="POST /v1/messages puts messages here.")
    erasure_queue_url: str = Field(min_length=1, description="DELETE /v1/customers/{id} hands erasures to the eraser.")
    callback_queue_url: str = Field(min_length=1, description="A redelivery goes to the callback function here.")
    allow_local_callbacks: bool = Field(
        False, description="Local stack only: event webhooks may target http and private addresses."
    )
    api_key_rate_per_second: float = Field(50, gt=0, description="Requests per second one API key may make.")
    api_key_burst: int = Field(100, ge=1, description="Requests one idle API key may make at once.")
