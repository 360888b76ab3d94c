"""Status callbacks to producers' URLs: which targets may be called, and how each POST is signed.

A deployed stack calls only https URLs whose every address is public, so a producer cannot point the
gateway at the VPC, the instance metadata service or loopback (SSRF). The local stack allows http and
private addresses (ALLOW_LOCAL_CALLBACKS), so a receiver on 127.0.0.1 can be tried.

Each POST carries three headers:

  X-Gateway-Event-Id       the status event's stable id (a retry repeats it: deduplicate on it)
  X-Gateway-Timestamp      Unix seconds when this attempt was signed
  X-Gateway-Signature-256  sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>" under the signing secret>

Signing the timestamp with the body lets a receiver refuse a replayed request; `verify` is the
receiver's side, for Python consumers.
"""

import hashlib
import hmac
import ipaddress
import time
from urllib.parse import urlsplit

EVENT_ID_HEADER = "X-Gateway-Event-Id"
TIMESTAMP_HEADER = "X-Gateway-Timestamp"
SIGNATURE_HEADER = "X-Gateway-Signature-256"
DEFAULT_TOLERANCE_SECONDS = 300
MAX_URL_LENGTH = 2048

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def url_refusal(url: str, *, allow_local: bool) -> str | None:
    """Why ``url`` may not be called back (None when it may), judged from the URL alone. Host names are
    judged again, by the addresses they resolve to, when the callback is made."""
    if len(url) > MAX_URL_LENGTH:
        return f"the URL is longer than {MAX_URL_LENGTH} characters"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"the URL cannot be parsed: {exc}"
    scheme = parts.scheme.lower()
    if scheme != "https" and not (allow_local and scheme == "http"):
        return "the URL must be https" if not allow_local else "the URL must be http or https"
    if not parts.hostname:
        return "the URL has no host"
    if parts.username is not None or parts.password is not None:
        return "the URL carries credentials; authenticate the callback by its signature instead"
    if port == 0:
        return "the URL's port is 0"
    host = parts.hostname.rstrip(".").lower()
    if not allow_local and (host == "localhost" or host.endswith(".localhost")):
        return f"{host} is a loopback name"
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        return None
    return address_refusal(literal, allow_local=allow_local)


def address_refusal(address: IpAddress, *, allow_local: bool) -> str | None:
    """Why ``address`` may not be connected to (None when it may)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_unspecified or address.is_multicast:
        return f"{address} is not a host address"
    if not allow_local and not address.is_global:
        return f"{address} is a private, loopback, link-local or reserved address"
    return None


def signature(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode("utf-8"), str(timestamp).encode("ascii") + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def signed_headers(secret: str, event_id: str, body: bytes, *, now: float | None = None) -> dict[str, str]:
    timestamp = int(time.time() if now is None else now)
    return {
        "Content-Type": "application/json",
        EVENT_ID_HEADER: event_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp, body),
    }


def verify(secret: str, body: bytes, timestamp: str | None, signature_header: str | None, *,
           tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS, now: float | None = None) -> bool:
    """True when the request was signed with ``secret`` less than ``tolerance_seconds`` ago."""
    if not timestamp or not signature_header or not (timestamp.isascii() and timestamp.isdigit()):
        return False
    if not signature_header.isascii():
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > tolerance_seconds:
        return False
    return hmac.compare_digest(signature(secret, int(timestamp), body).encode(), signature_header.strip().encode())
