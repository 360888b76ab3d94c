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
    outbound_queue_url: str | None = Field(None, description="Where the handover trigger's pass is queued.")
    handover_payload: str = Field(
        "HUMAN_AGENT",
        max_length=1000,
        description="A customer's tap on a quick reply or postback with this payload passes the conversation to "
        "the Instagram Inbox; empty: no trigger.",
    )

    @property
    def max_event_age_ms(self) -> int:
        """Older events are ignored: their items, which tell a redelivery from a new event, may be gone."""
        return self.event_retention_days * 86_400_000 - STALE_MARGIN_MS


# An event item lives at least EventRetentionDays after its event was received, which is after the event
# happened; this margin is for Meta's clock running ahead of ours.
STALE_MARGIN_MS = 3_600_000
