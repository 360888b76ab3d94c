"""The reconciler's configuration (environment variables set by template.yaml)."""

from pydantic import Field

from igdm.meta.versions import DEFAULT_GRAPH_API_VERSION
from igdm.runtime.config import CommaList, LocalStackSettings, TokenUrl


class ReconcilerSettings(LocalStackSettings):
    table_name: str = Field(min_length=1)
    events_queue_url: str = Field(min_length=1, description="Backfilled and gap events, account_status events.")
    callback_queue_url: str | None = Field(
        None, description="Status callbacks of UNKNOWN messages the reconciler settles."
    )
    graph_api_base_url: TokenUrl = Field("https://graph.instagram.com", pattern=r"^\S+[^/\s]$")
    graph_api_version: str = Field(DEFAULT_GRAPH_API_VERSION, pattern=r"^v\d+\.\d+$")
    graph_timeout_seconds: float = Field(10, gt=0, le=60)
    secret_max_age_seconds: int = Field(300, ge=0)
    event_retention_days: int = Field(90, gt=0)
    history_import_days: float = Field(
        30,
        gt=0,
        le=90,
        description="How far back the first run for an account reads (no further back than its connection).",
    )
    conversations_rate_per_second: float = Field(2, gt=0, description="Meta: Conversations API calls per account.")
    rate_headroom: float = Field(0.96, gt=0, le=1, description="Fraction of Meta's limit used, as the sender's.")
    calls_per_run: int = Field(
        2000, gt=0, description="Conversations API calls one run may make across all accounts; the rest waits."
    )
    webhook_silence_seconds: float = Field(
        600,
        ge=0,
        description="A customer message still without its webhook this long after it was sent, and no webhook of "
        "the account since, means the account's webhooks stopped.",
    )
    unknown_settle_after_seconds: float = Field(
        300,
        ge=0,
        description="An UNKNOWN message no echo settled this long after its attempt is looked up in its conversation.",
    )
    webhook_fields: CommaList = Field(
        min_length=1,
        description="The fields an account must be subscribed to: restored at once when its webhooks fell silent.",
    )
