"""Meta's Send API errors, classified (../shared/reference/instagram-platform.md §7 and §8)."""

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class ErrorClass(StrEnum):
    THROTTLED = "throttled"  # slow the account down, retry later
    TRANSIENT = "transient"  # retry with backoff
    TRANSIENT_LIMITED = "transient_limited"  # codes 1 and 2: retry a few times, then give up
    AMBIGUOUS = "ambiguous"  # may have been sent: never resend, settle from the echo
    AUTH = "auth"  # 190: read the token again once, else re-authorisation is needed
    WINDOW = "window"  # outside the messaging window: permanent
    PERMANENT = "permanent"


THROTTLE_CODES = frozenset({4, 17, 32, 613, 80001, 80002, 80006, 341})
WINDOW_SUBCODES = frozenset({2534022, 2018278, 2018065})
TRANSIENT_LIMITED_ATTEMPTS = 3


@dataclass(frozen=True)
class MetaError:
    http_status: int
    code: int | None
    subcode: int | None
    type: str | None
    message: str | None
    fbtrace_id: str | None
    is_transient: bool

    @classmethod
    def from_response(cls, http_status: int, body: Any) -> "MetaError":
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            error = {}

        def integer(name: str) -> int | None:
            value = error.get(name)
            if isinstance(value, bool):
                return None
            try:
                return int(value) if value is not None else None
            except (TypeError, ValueError):
                return None

        def text(name: str) -> str | None:
            value = error.get(name)
            return str(value)[:1000] if value is not None else None

        return cls(
            http_status,
            integer("code"),
            integer("error_subcode"),
            text("type"),
            text("message"),
            text("fbtrace_id"),
            error.get("is_transient") is True,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "http_status": self.http_status,
            "code": self.code,
            "subcode": self.subcode,
            "type": self.type,
            "message": self.message,
            "fbtrace_id": self.fbtrace_id,
        }


def classify(error: MetaError) -> ErrorClass:
    code, subcode = error.code, error.subcode
    if error.http_status == 429 or code in THROTTLE_CODES:
        return ErrorClass.THROTTLED
    if code == 190:
        return ErrorClass.AUTH
    if code == 1 and subcode == 1357046:  # "invalid JSON reply": Meta may have sent it anyway
        return ErrorClass.AMBIGUOUS
    if code == 10 and (subcode in WINDOW_SUBCODES or "allowed window" in (error.message or "").lower()):
        return ErrorClass.WINDOW
    if subcode in WINDOW_SUBCODES:
        return ErrorClass.WINDOW
    if (code, subcode) in ((1, 99), (2, 2018344)):
        return ErrorClass.PERMANENT
    if code in (1, 2):
        return ErrorClass.TRANSIENT_LIMITED
    if code is not None and (code in (10, 100, 368, 506, 551) or 200 <= code < 300):
        return ErrorClass.PERMANENT
    if error.is_transient or error.http_status >= 500:
        return ErrorClass.TRANSIENT
    return ErrorClass.PERMANENT


def reason(error_class: ErrorClass, error: MetaError) -> str:
    if error_class is ErrorClass.WINDOW:
        return "window_closed"
    if error_class is ErrorClass.AUTH:
        return "token_invalid"
    if error.code is not None and 200 <= error.code < 300:
        return "permission_denied"
    if error.code == 551 or error.subcode == 2534014:
        return "recipient_unavailable"
    return "meta_rejected"
