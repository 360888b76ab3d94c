"""Meta's `signed_request`, as its deauthorize and data-deletion callbacks send it: a form field holding
base64url(signature) "." base64url(JSON payload), the signature HMAC-SHA256 of the encoded payload with the
app secret (Meta's "Parsing the Signed Request"; field-2026: the data deletion callback). The payload says
`algorithm` (HMAC-SHA256), `issued_at` (Unix seconds) and `user_id` (the app-scoped id of the person).

A request is accepted only when one of the app's secrets signed exactly its payload, the algorithm is
HMAC-SHA256 and it was issued within the last day (a captured request cannot be replayed later).
"""

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

MAX_AGE_SECONDS = 86_400
CLOCK_SKEW_SECONDS = 300  # Meta's clock ahead of ours
MAX_LENGTH = 8192


class SignedRequestRefused(Exception):
    """Not Meta's, or not any more: the callback answers 4xx with this reason and changes nothing."""


@dataclass(frozen=True)
class SignedRequest:
    user_id: str
    issued_at: int
    payload: dict[str, Any]


def verify_signed_request(value: str | None, secrets: Sequence[str], now: float) -> SignedRequest:
    if not value or len(value) > MAX_LENGTH or value.count(".") != 1:
        raise SignedRequestRefused("signed_request must be <signature>.<payload>")
    encoded_signature, encoded_payload = value.split(".")
    signature = _b64url(encoded_signature)
    expected = [hmac.new(s.encode(), encoded_payload.encode(), hashlib.sha256).digest() for s in secrets if s]
    if not expected or not any(hmac.compare_digest(signature, e) for e in expected):
        raise SignedRequestRefused("the signature is not the app's")
    try:
        payload = json.loads(_b64url(encoded_payload))
    except ValueError:
        raise SignedRequestRefused("the payload is not JSON") from None
    if not isinstance(payload, dict):
        raise SignedRequestRefused("the payload is not a JSON object")
    if str(payload.get("algorithm", "")).upper() != "HMAC-SHA256":
        raise SignedRequestRefused("algorithm must be HMAC-SHA256")
    issued_at = payload.get("issued_at")
    if isinstance(issued_at, bool) or not isinstance(issued_at, int):
        raise SignedRequestRefused("issued_at is missing")
    if not now - MAX_AGE_SECONDS <= issued_at <= now + CLOCK_SKEW_SECONDS:
        raise SignedRequestRefused("issued_at is not within the last day")
    user_id = payload.get("user_id")
    if isinstance(user_id, int) and not isinstance(user_id, bool):
        user_id = str(user_id)  # Meta's ids exceed 2^53: kept as digits, never as a float
    if not isinstance(user_id, str) or not user_id.isdigit():
        raise SignedRequestRefused("user_id is missing")
    return SignedRequest(user_id, issued_at, payload)


def sign_request(payload: dict[str, Any], secret: str) -> str:
    """What Meta sends (for tests and the local stack's sandbox)."""
    encoded = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    signature = hmac.new(secret.encode(), encoded.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(signature).decode().rstrip("=") + "." + encoded


def _b64url(text: str) -> bytes:
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise SignedRequestRefused("signed_request is not base64url") from None
