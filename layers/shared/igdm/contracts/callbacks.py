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

The same POST is also signed as Standard Webhooks (standardwebhooks.com) specifies, so a receiver can verify it
with that project's ready-made libraries (every common language) instead of our own code:

  webhook-id         the same stable id as X-Gateway-Event-Id
  webhook-timestamp  the same Unix seconds
  webhook-signature  v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<raw body>">

Its libraries take the key as `whsec_` and the key's base64: `standard_webhooks_secret` gives that form of the
signing secret (docs/messages.md, "Verifying a callback").
"""

import base64
import hashlib
import hmac
import ipaddress
import time
from urllib.parse import urlsplit

EVENT_ID_HEADER = "X-Gateway-Event-Id"
TIMESTAMP_HEADER = "X-Gateway-Timestamp"
SIGNATURE_HEADER = "X-Gateway-Signature-256"
STANDARD_ID_HEADER = "webhook-id"
STANDARD_TIMESTAMP_HEADER = "webhook-timestamp"
STANDARD_SIGNATURE_HEADER = "webhook-signature"
DEFAULT_TOLERANCE_SECONDS = 300
MAX_URL_LENGTH = 2048

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# IPv6 ranges whose addresses carry an IPv4 address that a translator or tunnel on the way delivers to, and
# which Python's ipaddress does not unwrap (it does ipv4_mapped, sixtofour and teredo). Each one's IPv4
# address is judged too, or [64:ff9b::a9fe:a9fe] reaches the instance metadata service through a NAT64.
# IPv4-compatible ::a.b.c.d (RFC 4291 §2.5.5.1, deprecated; :: and ::1 are not of it): a stack that still
# tunnels it automatically sends it to a.b.c.d over IPv4, and ipaddress calls ::127.0.0.1 global.
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
# IPv4-translated ::ffff:0:a.b.c.d (RFC 2765 §2.1): what a stateless translator (SIIT) turns into a.b.c.d.
_IPV4_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")
# NAT64's well-known prefix (RFC 6052 §2.1): a.b.c.d in the last 32 bits. Deliberately globally reachable,
# so ipaddress calls 64:ff9b::a9fe:a9fe global; an IPv6-only VPC reaches public IPv4 hosts this way.
_NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")
# NAT64's local-use prefix (RFC 8215): an operator carves a NAT64 prefix of any RFC 6052 length out of it,
# and which one is not knowable from here, so the IPv4 address is read at each length that fits a /48.
_NAT64_LOCAL_USE = ipaddress.IPv6Network("64:ff9b:1::/48")
_NAT64_LOCAL_USE_LENGTHS = (96, 64, 56, 48)


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
    if not allow_local:  # the local stack connects to private addresses anyway, embedded or not
        for inner in embedded_ipv4(address):
            refusal = address_refusal(inner, allow_local=False)
            if refusal is not None:
                return f"{address} embeds {inner}: {refusal}"
    if address.is_unspecified or address.is_multicast:
        return f"{address} is not a host address"
    if not allow_local and not address.is_global:
        return f"{address} is a private, loopback, link-local or reserved address"
    return None


def embedded_ipv4(address: IpAddress) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses that ``address`` carries and that a translator or tunnel would deliver to: for
    Teredo both the server and the client (de-obfuscated), for NAT64's local-use prefix one per length."""
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    value = int(address)
    found: list[ipaddress.IPv4Address] = []
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if address.sixtofour is not None:  # 6to4 (RFC 3056): 2002:a.b.c.d::/48
        found.append(address.sixtofour)
    if address.teredo is not None:  # Teredo (RFC 4380): 2001:0:<server>:<flags>:<port>:<client xor ffffffff>
        found.extend(address.teredo)
    if (address in _IPV4_COMPATIBLE and value > 1) or address in _IPV4_TRANSLATED or address in _NAT64_WELL_KNOWN:
        found.append(ipaddress.IPv4Address(value & 0xFFFFFFFF))
    if address in _NAT64_LOCAL_USE:
        found.extend(_rfc6052_ipv4(value, length) for length in _NAT64_LOCAL_USE_LENGTHS)
    return list(dict.fromkeys(found))


def _rfc6052_ipv4(value: int, prefix_length: int) -> ipaddress.IPv4Address:
    """The IPv4 address after a NAT64 prefix of ``prefix_length`` bits (RFC 6052 §2.2): it skips bits 64-71
    (the "u" octet), so behind a /48, /56 or /64 it straddles them; behind a /96 it is the last 32 bits."""
    if prefix_length == 96:
        return ipaddress.IPv4Address(value & 0xFFFFFFFF)
    without_u = (value >> 64 << 56) | (value & ((1 << 56) - 1))  # 120 bits: bits 0-63, then 72-127
    return ipaddress.IPv4Address((without_u >> (120 - prefix_length - 32)) & 0xFFFFFFFF)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode("utf-8"), str(timestamp).encode("ascii") + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def standard_signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).digest()).decode()


def standard_webhooks_secret(secret: str) -> str:
    """The signing secret as Standard Webhooks libraries take it."""
    return "whsec_" + base64.b64encode(secret.encode("utf-8")).decode()


def signed_headers(secret: str, event_id: str, body: bytes, *, now: float | None = None) -> dict[str, str]:
    timestamp = int(time.time() if now is None else now)
    return {
        "Content-Type": "application/json",
        EVENT_ID_HEADER: event_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp, body),
        STANDARD_ID_HEADER: event_id,
        STANDARD_TIMESTAMP_HEADER: str(timestamp),
        STANDARD_SIGNATURE_HEADER: standard_signature(secret, event_id, timestamp, body),
    }


def verify(
    secret: str,
    body: bytes,
    timestamp: str | None,
    signature_header: str | None,
    *,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """True when the request was signed with ``secret`` less than ``tolerance_seconds`` ago."""
    if not timestamp or not signature_header or not (timestamp.isascii() and timestamp.isdigit()):
        return False
    if not signature_header.isascii():
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > tolerance_seconds:
        return False
    return hmac.compare_digest(signature(secret, int(timestamp), body).encode(), signature_header.strip().encode())
