"""The webhook's logic: handshake, verification and parsing; then durable idempotent ingestion
(igdm.inbound.ingest, shared with the reconciler). Meta gets its 200 only once ingestion is done."""

import hmac
import json
import math
import re
from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

from igdm.inbound.ingest import AfterIngest, EventPublisher, EventStore, IngestResult, Receipts, ingest
from igdm.inbound.meta_values import as_list
from igdm.inbound.text_messages import Entries, SignedBody
from igdm.runtime.unicode import without_lone_surrogates
from webhook.signature import matching_secret

INSTAGRAM_OBJECT = "instagram"
_CHALLENGE = re.compile(r"[A-Za-z0-9]{1,64}")


class Rejected(Exception):
    """A request refused at the edge with a 4xx and a reason; nothing was stored."""

    def __init__(self, status: int, reason: str, metric: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.metric = metric


MAX_NESTING = 64
_ESCAPED_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")
# An escaped backslash, or a surrogate's escape (group 1 holds a high one's third digit). Read left to right, a
# backslash the first alternative does not take begins an escape: the JSON text \\ud83d (an escaped backslash,
# then "ud83d") holds no surrogate.
_SURROGATE_OR_BACKSLASH = re.compile(rb"\\\\|\\u[dD](?:([89abAB])|[c-fC-F])[0-9a-fA-F]{2}")


def _nesting_depth(document: Any) -> int:
    """How deep the parsed body goes, walked a level at a time (no recursion to run out of)."""
    depth, level = 0, [document]
    while level:
        depth += 1
        below = []
        for container in level:
            for child in container.values() if type(container) is dict else container:
                if type(child) is dict or type(child) is list:
                    below.append(child)
        level = below
    return depth


def _may_be_too_deep(body: bytes) -> bool:
    """Whether the body has enough opening brackets to be nested deeper than MAX_NESTING: a scan at C speed,
    so that a small body is not walked at all."""
    return body.count(b"{") + body.count(b"[") > MAX_NESTING


class AppSecretView(Protocol):
    @property
    def app_secrets(self) -> list[str]: ...

    @property
    def verify_token(self) -> str | None: ...

    @property
    def app_ids(self) -> frozenset[str]:
        """The gateway's app ids, as Meta names the sending app on echoes."""
        ...


class SecretSource(Protocol):
    def current(self) -> AppSecretView: ...

    def refreshed(self) -> AppSecretView | None:
        """A freshly fetched secret (after a rotation), or None when refetching is not allowed yet."""
        ...


def handshake(params: dict[str, str], verify_token: str | None) -> str:
    """Meta's subscription check: the challenge to echo, or Rejected(403)."""
    mode = params.get("hub.mode")
    token = params.get("hub.verify_token", "")
    challenge = params.get("hub.challenge", "")
    if mode != "subscribe":
        raise Rejected(403, "hub.mode must be subscribe", "HandshakeRejected")
    if not verify_token:
        raise Rejected(403, "no verify token is configured in the app secret", "HandshakeRejected")
    if not hmac.compare_digest(token.encode(), verify_token.encode()):
        raise Rejected(403, "verify token does not match", "HandshakeRejected")
    if not _CHALLENGE.fullmatch(challenge):
        raise Rejected(403, "hub.challenge must be 1-64 letters or digits", "HandshakeRejected")
    return challenge


class Verified(NamedTuple):
    envelope: Entries
    secret_index: int  # which configured app secret signed it: tells which one Meta uses


def verify_and_parse(body: bytes, signature: str | None, secrets: Sequence[str], max_bytes: int) -> Verified:
    """Size, then signature over the raw bytes, then JSON and the envelope; Rejected on any failure."""
    secret_index = _verified(body, signature, secrets, max_bytes)
    document = _document(body)
    if document.get("object") != INSTAGRAM_OBJECT:
        raise Rejected(400, f"object must be 'instagram', got {document.get('object')!r}", "WrongObject")
    if "entry" in document:  # Envelope's one field besides object (a lone entry or null is read as a list)
        return Verified(SignedBody(INSTAGRAM_OBJECT, as_list(document["entry"])), secret_index)
    return Verified(_envelope(document), secret_index)


def _envelope(document: dict[str, Any]) -> Entries:
    """The envelope as the pydantic model reads it, for a body the plain reading above does not take: its
    refusal, with the model's own words."""
    from pydantic import ValidationError

    from igdm.inbound.meta_payload import Envelope

    try:
        return Envelope.model_validate(document)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise Rejected(400, f"envelope invalid at {where}: {first['msg']}", "MalformedBody") from None


def _verified(body: bytes, signature: str | None, secrets: Sequence[str], max_bytes: int) -> int:
    """Which app secret signed ``body``: nothing of the body is read before this says it is Meta's."""
    if len(body) > max_bytes:
        raise Rejected(413, f"body is {len(body)} bytes; the limit is {max_bytes}", "BodyTooLarge")
    if not signature:
        raise Rejected(401, "missing X-Hub-Signature-256 header", "SignatureRejected")
    if not secrets:
        raise Rejected(401, "no app secret is configured in the app secret", "AppSecretMissing")
    secret_index = matching_secret(body, signature, secrets)
    if secret_index is None:
        raise Rejected(401, "X-Hub-Signature-256 does not match the body", "SignatureRejected")
    return secret_index


def _document(body: bytes) -> dict[str, Any]:
    """The signed body as a JSON object, no deeper than MAX_NESTING, without lone surrogates."""
    if not body.strip():
        raise Rejected(400, "empty body", "MalformedBody")
    try:
        # Decoded strictly as UTF-8 first: json.loads(bytes) would also take UTF-16 and encoded surrogates.
        document = json.loads(body.decode("utf-8"), parse_constant=_reject_constant, parse_float=_finite_float)
    except ValueError as exc:
        raise Rejected(400, f"body is not valid JSON: {exc}", "MalformedBody") from None
    except RecursionError:
        raise Rejected(400, "body is nested too deeply", "MalformedBody") from None
    if not isinstance(document, dict):
        raise Rejected(400, "body must be a JSON object", "MalformedBody")
    if _may_be_too_deep(body):
        depth = _nesting_depth(document)
        if depth > MAX_NESTING:
            # Meta's bodies are a dozen levels deep. Far deeper, the recursive steps after this one (serialising
            # the raw payload, replacing lone surrogates) would fail with a 500, and Meta would retry it forever.
            raise Rejected(400, f"body is nested {depth} levels deep; the limit is {MAX_NESTING}", "MalformedBody")
    # Emoji arrive as escaped surrogate pairs; a cut one leaves half. Only then is the document copied.
    if _ESCAPED_SURROGATE.search(body) and _has_lone_surrogate(body):
        cleaned: dict[str, Any] = without_lone_surrogates(document)
        return cleaned
    return document


def _has_lone_surrogate(body: bytes) -> bool:
    """Whether the body escapes half a surrogate pair: a high one not followed at once by a low one, or a low one
    not right after a high one (JSON's decoder joins exactly those pairs into one character)."""
    low_expected_at = -1
    for escape in _SURROGATE_OR_BACKSLASH.finditer(body):
        if len(escape[0]) == 2:  # an escaped backslash
            continue
        high = escape[1] is not None
        if low_expected_at >= 0:
            if high or escape.start() != low_expected_at:
                return True
            low_expected_at = -1
        elif high:
            low_expected_at = escape.end()
        else:
            return True
    return low_expected_at >= 0


def receive(
    body: bytes,
    signature: str | None,
    received_at_ms: int,
    secrets: SecretSource,
    max_body_bytes: int,
    store: EventStore,
    publisher: EventPublisher,
    receipts: Receipts | None = None,
    max_event_age_ms: int | None = None,
    after: Sequence[AfterIngest] = (),
) -> IngestResult:
    """A webhook POST: verified against the app secrets (refetched once if they may have rotated)."""
    secret = secrets.current()
    try:
        verified = verify_and_parse(body, signature, secret.app_secrets, max_body_bytes)
    except Rejected as rejected:
        may_have_rotated = rejected.metric in ("SignatureRejected", "AppSecretMissing") and signature
        try:
            fresh = secrets.refreshed() if may_have_rotated else None
        except Exception:
            fresh = None  # a failed refetch must not turn a forged request's 401 into a 5xx
        if fresh is None:
            raise rejected from None
        secret = fresh
        verified = verify_and_parse(body, signature, secret.app_secrets, max_body_bytes)
    result = ingest(
        verified.envelope,
        received_at_ms,
        store,
        publisher,
        receipts,
        gateway_app_ids=secret.app_ids,
        max_event_age_ms=max_event_age_ms,
        after=after,
    )
    return result._replace(secret_index=verified.secret_index)


def _reject_constant(name: str) -> None:
    # Python accepts NaN and Infinity; JSON (and Meta) do not.
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is not a finite number")
    return value
