"""X-Hub-Signature-256 verification."""

import hashlib
import hmac
import json

from webhook.signature import matching_secret, sign

SECRET = "meta-app-secret"
OTHER = "instagram-app-secret"


def meta_signature(raw: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def test_signature_over_the_raw_bytes_matches() -> None:
    raw = b'{"object":"instagram","entry":[]}'
    assert matching_secret(raw, meta_signature(raw, SECRET), [SECRET]) == 0


def test_any_configured_secret_is_accepted_and_reported_by_index() -> None:
    raw = b'{"object":"instagram"}'
    assert matching_secret(raw, meta_signature(raw, OTHER), [SECRET, OTHER]) == 1


def test_wrong_secret_missing_header_and_bad_prefix_are_refused() -> None:
    raw = b'{"object":"instagram"}'
    assert matching_secret(raw, meta_signature(raw, "nope"), [SECRET]) is None
    assert matching_secret(raw, None, [SECRET]) is None
    assert matching_secret(raw, meta_signature(raw, SECRET).replace("sha256=", "sha1="), [SECRET]) is None
    assert matching_secret(raw, meta_signature(raw, SECRET), []) is None


def test_a_changed_byte_breaks_the_signature() -> None:
    raw = b'{"text":"hello"}'
    assert matching_secret(b'{"text":"hellO"}', meta_signature(raw, SECRET), [SECRET]) is None


def test_non_ascii_in_metas_escaped_form_verifies_on_the_exact_bytes() -> None:
    # Meta signs the body as it sends it: non-ASCII escaped as lowercase \\uXXXX.
    raw = b'{"text":"\\u00e4\\u00f6\\u00e5 \\ud83d\\ude00"}'
    assert matching_secret(raw, meta_signature(raw, SECRET), [SECRET]) == 0


def test_re_serialised_json_does_not_verify() -> None:
    raw = b'{"text":"\\u00e4\\u00f6\\u00e5","n":1}'
    signature = meta_signature(raw, SECRET)
    parsed = json.loads(raw)
    spaced, reordered = json.dumps(parsed), json.dumps(parsed, sort_keys=True, separators=(",", ":"))
    for reserialised in (spaced.encode(), reordered.encode()):
        assert reserialised != raw
        assert matching_secret(reserialised, signature, [SECRET]) is None
    assert matching_secret(raw, signature, [SECRET]) == 0


def test_body_decoded_on_the_way_is_re_escaped_as_meta_signed_it() -> None:
    signed = b'{"text":"\\u00e4\\u00f6\\u00e5 \\ud83d\\ude00"}'
    decoded_by_a_proxy = '{"text":"äöå 😀"}'.encode()
    assert matching_secret(decoded_by_a_proxy, meta_signature(signed, SECRET), [SECRET]) == 0


def test_uppercase_hex_in_the_header_is_accepted() -> None:
    raw = b"{}"
    assert matching_secret(raw, meta_signature(raw, SECRET).upper().replace("SHA256=", "sha256="), [SECRET]) == 0


def test_sign_produces_what_meta_sends() -> None:
    raw = b'{"a":1}'
    assert sign(raw, SECRET) == meta_signature(raw, SECRET)


def test_an_empty_secret_never_verifies() -> None:
    raw = b'{"object":"instagram"}'
    assert matching_secret(raw, meta_signature(raw, ""), ["", SECRET]) is None
    assert matching_secret(raw, meta_signature(raw, SECRET), ["", SECRET]) == 1


def test_the_re_escaping_fallback_is_not_run_on_large_bodies() -> None:
    from webhook.signature import FALLBACK_MAX_BYTES

    signed = b'{"t":"' + b"\\u00e9" * (FALLBACK_MAX_BYTES // 6) + b'"}'
    decoded = signed.decode("unicode_escape").encode()  # what a decoding proxy would forward
    assert len(decoded) <= len(signed) and len(decoded) > FALLBACK_MAX_BYTES // 3
    small_signed, small_decoded = b'{"t":"\\u00e9"}', '{"t":"é"}'.encode()
    assert matching_secret(small_decoded, meta_signature(small_signed, SECRET), [SECRET]) == 0
    oversized = decoded + b" " * FALLBACK_MAX_BYTES
    assert matching_secret(oversized, meta_signature(signed + b" " * FALLBACK_MAX_BYTES, SECRET), [SECRET]) is None
