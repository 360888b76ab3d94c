"""The webhook function's configuration (environment variables set by template.yaml).

Read by hand (igdm.runtime.plain_settings) rather than by a pydantic model: Meta waits on the webhook's cold
start, and pydantic was a third of it. The checks and their wording are pydantic's: a ConfigurationError names
every variable that is missing or invalid, and why (tests/unit/webhook/test_plain_readers.py holds them to the
pydantic model the webhook used before).
"""

from dataclasses import dataclass
from typing import ClassVar

from igdm.runtime.plain_settings import PlainSettings, Setting


@dataclass(frozen=True)
class WebhookSettings(PlainSettings):
    table_name: str
    events_queue_url: str
    app_secret_name: str
    secret_max_age_seconds: int = 300
    max_body_bytes: int = 4 * 1024 * 1024
    callback_queue_url: str | None = None
    event_retention_days: int = 90
    outbound_queue_url: str | None = None
    handover_payload: str = "HUMAN_AGENT"

    # Each variable, under the field's name (as pydantic's model_fields: a test holds the template to them).
    model_fields: ClassVar[dict[str, Setting]] = {
        "table_name": Setting(str, required=True, min_length=1),
        "events_queue_url": Setting(str, required=True, min_length=1),
        "app_secret_name": Setting(
            str, required=True, min_length=1, description="Secrets Manager id of the app secret JSON."
        ),
        "secret_max_age_seconds": Setting(int, ge=0, description="How long a fetched secret is cached."),
        "max_body_bytes": Setting(int, gt=0, description="Larger webhook bodies get a 413."),
        "callback_queue_url": Setting(str, description="Status callbacks are queued here."),
        "event_retention_days": Setting(int, gt=0, description="Event items expire (TTL) after this."),
        "outbound_queue_url": Setting(str, description="Where the handover trigger's pass is queued."),
        "handover_payload": Setting(
            str,
            max_length=1000,
            description="A customer's tap on a quick reply or postback with this payload passes the conversation "
            "to the Instagram Inbox; empty: no trigger.",
        ),
    }

    @property
    def max_event_age_ms(self) -> int:
        """Older events are ignored: their items, which tell a redelivery from a new event, may be gone."""
        return self.event_retention_days * 86_400_000 - STALE_MARGIN_MS


# An event item lives at least EventRetentionDays after its event was received, which is after the event
# happened; this margin is for Meta's clock running ahead of ours.
STALE_MARGIN_MS = 3_600_000
