"""A thin client of the Instagram Send API on one keep-alive requests.Session.

The token goes in the Authorization header, never in the URL, so no proxy, access log or exception
message can carry it. Outcomes keep apart what may have been sent (a read timeout) from what
certainly was not (a refused connection), because only the latter may be tried again blindly.
"""

import json
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from sender.errors import MetaError


@dataclass(frozen=True)
class Accepted:
    message_id: str | None
    recipient_id: str | None
    usage: dict[str, Any] | None


@dataclass(frozen=True)
class Refused:
    error: MetaError
    usage: dict[str, Any] | None


@dataclass(frozen=True)
class NotSent:
    """The request never reached Meta (connection refused or timed out while connecting)."""

    detail: str


@dataclass(frozen=True)
class Ambiguous:
    """The request went out and no answer came back: Meta may have delivered it."""

    detail: str


Outcome = Accepted | Refused | NotSent | Ambiguous


class GraphClient:
    def __init__(self, base_url: str, api_version: str, timeout_seconds: float, pool_size: int = 10) -> None:
        self._url = f"{base_url.rstrip('/')}/{api_version}/me/"
        self._timeout = (min(3.05, timeout_seconds), timeout_seconds)
        self._session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)  # retries are ours
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)

    def send(self, token: str, body: dict[str, Any], endpoint: str = "messages") -> Outcome:
        """POST ``body`` to /me/<endpoint>: the Send API (messages), or a thread-control endpoint."""
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        try:
            response = self._session.post(self._url + endpoint, data=payload, headers=headers, timeout=self._timeout)
        except requests.exceptions.ConnectTimeout:
            return NotSent("connect timeout")
        except requests.exceptions.ConnectionError as exc:
            # A connection error after the request was written (reset mid-response) is ambiguous.
            if _before_sending(exc):
                return NotSent(f"connection failed: {type(exc).__name__}")
            return Ambiguous(f"connection lost after sending: {type(exc).__name__}")
        except requests.exceptions.Timeout:
            return Ambiguous("no answer within the read timeout")
        except requests.exceptions.RequestException as exc:
            return Ambiguous(f"request failed: {type(exc).__name__}")
        usage = _usage(response.headers)
        try:
            document = response.json()
        except ValueError:
            document = None
        if 200 <= response.status_code < 300 and isinstance(document, dict):
            mid = document.get("message_id")
            recipient = document.get("recipient_id")
            return Accepted(str(mid) if mid else None, str(recipient) if recipient else None, usage)
        if 200 <= response.status_code < 300:
            return Ambiguous(f"HTTP {response.status_code} with a body that is not JSON")
        return Refused(MetaError.from_response(response.status_code, document), usage)


def _before_sending(exc: requests.exceptions.ConnectionError) -> bool:
    text = repr(exc)
    return any(
        marker in text
        for marker in ("NewConnectionError", "Connection refused", "NameResolution", "Failed to establish")
    )


def _usage(headers: Any) -> dict[str, Any] | None:
    """Meta's X-Business-Use-Case-Usage (or X-App-Usage) header, parsed; which one the Instagram host
    sends is unconfirmed, so both are read."""
    for name in ("X-Business-Use-Case-Usage", "X-App-Usage"):
        value = headers.get(name)
        if value:
            try:
                parsed = json.loads(value)
            except ValueError:
                continue
            if isinstance(parsed, dict):
                return parsed
    return None


def regain_seconds(usage: dict[str, Any] | None) -> float | None:
    """The longest estimated_time_to_regain_access (minutes) in a usage header, in seconds."""
    if not usage:
        return None
    minutes = [
        item.get("estimated_time_to_regain_access")
        for items in usage.values()
        if isinstance(items, list)
        for item in items
        if isinstance(item, dict)
    ]
    values = [float(m) for m in minutes if isinstance(m, int | float) and not isinstance(m, bool) and m > 0]
    return max(values) * 60 if values else None
