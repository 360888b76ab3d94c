"""What the emulated Graph API answers with: a reply, Meta's error object (fact sheet §8), the usage header."""

import json
import secrets
from dataclasses import dataclass
from typing import Any

RATE_LIMIT_MESSAGE = "There have been too many calls to this Instagram account. Wait a bit and try again."


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict[str, Any] | bytes  # a JSON object, or raw bytes of `content_type` (a page, a redirect)
    headers: dict[str, str]
    delay: float = 0.0
    content_type: str = "application/json; charset=UTF-8"


class GraphError(Exception):
    """An answer in Meta's error-object shape (fact sheet §8)."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        *,
        subcode: int | None = None,
        error_type: str = "IGApiException",
        is_transient: bool | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.subcode = subcode
        self.error_type = error_type
        self.is_transient = is_transient
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"message": self.message, "type": self.error_type, "code": self.code}
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        if self.is_transient is not None:
            error["is_transient"] = self.is_transient
        error["fbtrace_id"] = "A" + secrets.token_urlsafe(16)
        return {"error": error}


def usage_header(account_id: str, call_count: int) -> dict[str, str]:
    usage = {
        account_id: [
            {
                "type": "instagram",
                "call_count": call_count,
                "total_cputime": max(1, call_count // 4) if call_count else 0,
                "total_time": max(1, call_count // 2) if call_count else 0,
                "estimated_time_to_regain_access": 0,
            }
        ]
    }
    return {"X-Business-Use-Case-Usage": json.dumps(usage, separators=(",", ":"))}


def error_codes(body: dict[str, Any] | bytes) -> tuple[int | None, int | None]:
    """The code and subcode of an error answer: Graph's {"error": {...}}, or the flat OAuth shape."""
    if not isinstance(body, dict):
        return None, None
    error = body.get("error")
    if isinstance(error, dict):
        return error.get("code"), error.get("error_subcode")
    if "error_type" in body:
        return body.get("code"), None
    return None, None
