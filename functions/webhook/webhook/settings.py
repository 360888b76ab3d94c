"""The webhook function's configuration (environment variables set by template.yaml).

Read by hand rather than by a pydantic model like the other functions' settings: Meta waits on the webhook's
cold start, and pydantic is a third of it. The checks and their wording are the models' (igdm.runtime.config):
a ConfigurationError names every variable that is missing or invalid, and why
(tests/unit/webhook/test_settings.py holds them to the pydantic model the webhook used before).
"""

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

from igdm.runtime.configuration_error import ConfigurationError

# An integer as pydantic reads one from a string: digits, "_" between digits, a zero fraction, a sign.
_INTEGER = re.compile(r"[+-]?[0-9]+(?:_[0-9]+)*(?:\.0+)?")
_WHITESPACE = " \t\n\r\x0b\x0c"


# A NamedTuple, not a dataclass: its class is built several times faster, on the webhook's cold start.
class Setting(NamedTuple):
    """One variable: an int or a str, whether it is required, and its bounds (its default is the field's)."""

    kind: type[int] | type[str]
    required: bool = False
    min_length: int | None = None
    max_length: int | None = None
    ge: int | None = None
    gt: int | None = None
    description: str = ""

    def is_required(self) -> bool:
        return self.required

    def read(self, text: str) -> int | str:
        """The value of ``text``; ValueError with pydantic's message when it is not one."""
        if self.kind is str:
            if self.min_length is not None and len(text) < self.min_length:
                raise ValueError(f"String should have at least {self.min_length} character{_s(self.min_length)}")
            if self.max_length is not None and len(text) > self.max_length:
                raise ValueError(f"String should have at most {self.max_length} character{_s(self.max_length)}")
            return text
        number = text.strip(_WHITESPACE)
        if not _INTEGER.fullmatch(number):
            raise ValueError("Input should be a valid integer, unable to parse string as an integer")
        value = int(number.partition(".")[0])
        if self.ge is not None and value < self.ge:
            raise ValueError(f"Input should be greater than or equal to {self.ge}")
        if self.gt is not None and value <= self.gt:
            raise ValueError(f"Input should be greater than {self.gt}")
        return value


def _s(count: int) -> str:
    return "" if count == 1 else "s"


@dataclass(frozen=True)
class WebhookSettings:
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

    @classmethod
    def from_environment(cls, environment: Mapping[str, str] = os.environ) -> "WebhookSettings":
        """Each field from the variable of its name in upper case; ConfigurationError naming every problem."""
        values: dict[str, int | str] = {}
        problems = []
        for name, setting in cls.model_fields.items():
            variable = name.upper()
            if variable not in environment:
                if setting.required:
                    problems.append(f"{variable}: Field required")
                continue
            try:
                values[name] = setting.read(environment[variable])
            except ValueError as exc:
                problems.append(f"{variable}: {exc}")
        if problems:
            raise ConfigurationError(f"invalid configuration: {'; '.join(problems)}")
        return cls(**values)  # type: ignore[arg-type]  # each value has its field's type (Setting.kind)

    @property
    def max_event_age_ms(self) -> int:
        """Older events are ignored: their items, which tell a redelivery from a new event, may be gone."""
        return self.event_retention_days * 86_400_000 - STALE_MARGIN_MS


# An event item lives at least EventRetentionDays after its event was received, which is after the event
# happened; this margin is for Meta's clock running ahead of ours.
STALE_MARGIN_MS = 3_600_000
