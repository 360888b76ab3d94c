"""The sender function's configuration (environment variables set by template.yaml)."""

from pydantic import Field

from igdm.meta.versions import DEFAULT_GRAPH_API_VERSION
from igdm.runtime.config import LocalStackSettings, TokenUrl


class SenderSettings(LocalStackSettings):
    table_name: str = Field(min_length=1)
    events_queue_url: str = Field(min_length=1)
    outbound_queue_url: str = Field(
        min_length=1, description="The queue the function reads; retries are delayed on it."
    )
    callback_queue_url: str | None = Field(None, description="Status callbacks are queued here.")
    allow_local_callbacks: bool = Field(
        False,
        description="Local stack only: accept http and private-address callback URLs. Never set in a deployed stack.",
    )
    graph_api_base_url: TokenUrl = Field(
        "https://graph.instagram.com",
        pattern=r"^\S+[^/\s]$",
        description="No trailing /; https (TokenUrl checks the scheme).",
    )
    graph_api_version: str = Field(DEFAULT_GRAPH_API_VERSION, pattern=r"^v\d+\.\d+$")
    graph_timeout_seconds: float = Field(10, gt=0, le=60)
    secret_max_age_seconds: int = Field(300, ge=0)
    event_retention_days: int = Field(90, gt=0)
    text_rate_per_second: float = Field(100, gt=0, description="Meta: text, links, reactions, stickers.")
    media_rate_per_second: float = Field(10, gt=0, description="Meta: audio and video.")
    private_replies_per_hour: float = Field(750, gt=0, description="Meta: private replies to post comments.")
    rate_headroom: float = Field(
        0.96,
        gt=0,
        le=1,
        description="Fraction of Meta's limits used, so network "
        "jitter (up to 40 ms at 0.96) never pushes a second over the limit at Meta's end.",
    )
    max_receive_count: int = Field(
        50,
        ge=2,
        description="The outbound queue's maxReceiveCount: the last "
        "receive ends FAILED rather than in the dead-letter queue.",
    )
