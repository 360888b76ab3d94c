"""Meta's signed_request (igdm.meta.signed_request): built exactly as Meta builds it, it is accepted; forged,
altered, old or of another algorithm, it is refused with a reason."""

import base64
import hashlib
import hmac
import json

import pytest

from igdm.meta.signed_request import SignedRequestRefused, sign_request, verify_signed_request

SECRET, OTHER = "instagram-app-secret", "meta-app-secret"
NOW = 1_800_000_000
PAYLOAD = {"algorithm": "HMAC-SHA256", "issued_at": NOW - 60, "user_id": "17841400000000001"}


def metas(payload: dict[str, object], secret: str) -> str:
    """Built by hand as Meta documents it: base64url without padding, HMAC-SHA256 over the encoded payload."""
    encoded = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).rstrip(b"=")
    signature = base64.urlsafe_b64encode(hmac.new(secret.encode(), encoded, hashlib.sha256).digest()).rstrip(b"=")
    return (signature + b"." + encoded).decode()


def test_a_request_meta_signed_with_any_of_the_apps_secrets_is_accepted() -> None:
    for secret in (SECRET, OTHER):
        verified = verify_signed_request(metas(PAYLOAD, secret), [SECRET, OTHER], NOW)
        assert (verified.user_id, verified.issued_at) == ("17841400000000001", NOW - 60)
    assert verify_signed_request(sign_request(PAYLOAD, SECRET), [SECRET], NOW).user_id == "17841400000000001"


def test_a_numeric_user_id_is_kept_as_its_digits() -> None:
    payload = {**PAYLOAD, "user_id": 17841400000000001}
    assert verify_signed_request(metas(payload, SECRET), [SECRET], NOW).user_id == "17841400000000001"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "must be <signature>.<payload>"),
        ("no-dot", "must be <signature>.<payload>"),
        (metas(PAYLOAD, "not-the-secret"), "not the app's"),
        (
            metas(PAYLOAD, SECRET).split(".")[0] + "." + metas({**PAYLOAD, "user_id": "1"}, SECRET).split(".")[1],
            "not the app's",
        ),
        (metas({**PAYLOAD, "algorithm": "HMAC-SHA1"}, SECRET), "algorithm"),
        (metas({**PAYLOAD, "issued_at": NOW - 2 * 86_400}, SECRET), "within the last day"),
        (metas({"algorithm": "HMAC-SHA256", "issued_at": NOW}, SECRET), "user_id"),
        ("!!!.***", "base64url"),
    ],
    ids=["missing", "malformed", "forged", "altered-payload", "algorithm", "replayed", "no-user", "not-base64"],
)
def test_anything_else_is_refused_with_its_reason(value: str | None, reason: str) -> None:
    with pytest.raises(SignedRequestRefused, match=reason):
        verify_signed_request(value, [SECRET], NOW)
