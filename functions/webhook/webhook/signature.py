"""X-Hub-Signature-256 verification over the exact raw body (never over re-serialised JSON)."""

import hashlib
import hmac
from collections.abc import Sequence

SIGNATURE_PREFIX = "sha256="
# The re-escaping fallback runs before the sender is known to be Meta: it is pure Python, so it is only
# tried on bodies up to this size (Meta's bodies rarely exceed a few hundred kB, and arrive escaped).
FALLBACK_MAX_BYTES = 256 * 1024


def matching_secret(body: bytes, header: str | None, secrets: Sequence[str]) -> int | None:
    """Index of the app secret that signed ``body``, or None when none did (or no header came).

    Several secrets are accepted because Meta's pages disagree on whether the Meta app secret or
    the Instagram app secret signs Instagram-Login webhooks.
    """
    if not header or not header.startswith(SIGNATURE_PREFIX) or not secrets:
        return None
    claimed = header[len(SIGNATURE_PREFIX) :].strip().lower().encode("utf-8", "replace")
    keys = [secret.encode("utf-8") for secret in secrets]
    index = _first_match(body, claimed, keys)
    if index is None and len(body) <= FALLBACK_MAX_BYTES and not body.isascii():
        # Meta signs the escaped-unicode form (\u00e4). If something on the way decoded those
        # escapes into raw UTF-8, escape them back the way Meta does and check once more.
        escaped = _escape_non_ascii(body)
        if escaped is not None:
            index = _first_match(escaped, claimed, keys)
    return index


def sign(body: bytes, secret: str) -> str:
    """The header value Meta would send; used by the local stack, the events/ files and tests."""
    return SIGNATURE_PREFIX + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def _first_match(body: bytes, claimed: bytes, keys: Sequence[bytes]) -> int | None:
    for index, key in enumerate(keys):
        if not key:
            continue  # an empty key would verify a signature anyone can make
        digest = hmac.new(key, body, hashlib.sha256).hexdigest().encode("ascii")
        if hmac.compare_digest(digest, claimed):
            return index
    return None


def _escape_non_ascii(body: bytes) -> bytes | None:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    out = []
    for char in text:
        code = ord(char)
        if code < 0x80:
            out.append(char)
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:  # astral characters become a lowercase UTF-16 surrogate pair, as JSON escapes them
            code -= 0x10000
            out.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
    return "".join(out).encode("ascii")
