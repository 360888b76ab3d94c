"""Every Meta error the reference classifies, classified as it says (instagram-platform.md §7 and §8)."""

from typing import Any

import pytest

from sender.errors import ErrorClass, MetaError, classify, reason


def error(
    code: int | None, subcode: int | None = None, *, status: int = 400, message: str = "", transient: bool = False
) -> MetaError:
    body: dict[str, Any] = {
        "error": {"message": message, "type": "IGApiException", "is_transient": transient, "fbtrace_id": "Aabc"}
    }
    if code is not None:
        body["error"]["code"] = code
    if subcode is not None:
        body["error"]["error_subcode"] = subcode
    return MetaError.from_response(status, body)


CLASSIFICATION = [
    # (code, subcode, http status, class, reason of a FAILED status)
    (1, None, 500, ErrorClass.TRANSIENT_LIMITED, None),
    (1, 1357046, 500, ErrorClass.AMBIGUOUS, None),  # may have been sent: never resent, settled by its echo
    (1, 99, 400, ErrorClass.PERMANENT, "meta_rejected"),
    (2, None, 500, ErrorClass.TRANSIENT_LIMITED, None),
    (2, 2018344, 400, ErrorClass.PERMANENT, "meta_rejected"),
    *((code, None, 400, ErrorClass.THROTTLED, None) for code in (4, 17, 32, 613, 80001, 80002, 80006, 341)),
    (613, 2534040, 400, ErrorClass.THROTTLED, None),
    (None, None, 429, ErrorClass.THROTTLED, None),
    (368, None, 400, ErrorClass.PERMANENT, "meta_rejected"),
    (10, 2534022, 403, ErrorClass.WINDOW, "window_closed"),
    (10, 2018278, 400, ErrorClass.WINDOW, "window_closed"),
    (10, 2018065, 400, ErrorClass.WINDOW, "window_closed"),
    (10, 1893063, 400, ErrorClass.PERMANENT, "meta_rejected"),
    (10, None, 400, ErrorClass.PERMANENT, "meta_rejected"),
    (100, None, 400, ErrorClass.PERMANENT, "meta_rejected"),
    (100, 2534014, 400, ErrorClass.PERMANENT, "recipient_unavailable"),
    (100, 2018001, 400, ErrorClass.PERMANENT, "meta_rejected"),
    (100, 2018109, 400, ErrorClass.PERMANENT, "meta_rejected"),
    (100, 2534029, 400, ErrorClass.PERMANENT, "meta_rejected"),
    *((190, sub, 401, ErrorClass.AUTH, "token_invalid") for sub in (None, 458, 459, 460, 463, 464, 467)),
    (200, None, 403, ErrorClass.PERMANENT, "permission_denied"),
    (200, 2534041, 403, ErrorClass.PERMANENT, "permission_denied"),
    (299, None, 403, ErrorClass.PERMANENT, "permission_denied"),
    (551, None, 400, ErrorClass.PERMANENT, "recipient_unavailable"),
    (506, None, 400, ErrorClass.PERMANENT, "meta_rejected"),
    (None, None, 502, ErrorClass.TRANSIENT, None),  # a 5xx without Meta's error object
    (12345, None, 500, ErrorClass.TRANSIENT, None),
    (12345, None, 400, ErrorClass.PERMANENT, "meta_rejected"),
]


@pytest.mark.parametrize(("code", "subcode", "status", "expected", "failed_reason"), CLASSIFICATION)
def test_each_documented_error_is_classified(
    code: int | None, subcode: int | None, status: int, expected: ErrorClass, failed_reason: str | None
) -> None:
    meta_error = error(code, subcode, status=status)
    assert classify(meta_error) is expected
    if failed_reason is not None:
        assert reason(expected, meta_error) == failed_reason


def test_a_code_10_that_says_allowed_window_is_window_closed_whatever_its_subcode() -> None:
    assert classify(error(10, 9999, message="This message is sent outside of allowed window.")) is ErrorClass.WINDOW


def test_is_transient_makes_an_unknown_code_retryable() -> None:
    assert classify(error(12345, transient=True)) is ErrorClass.TRANSIENT


@pytest.mark.parametrize(
    "body",
    [
        None,
        "<html>bad gateway</html>",
        {"error": "text"},
        {"error": {"code": "x"}},
        {"error": {"code": True, "error_subcode": []}},
    ],
)
def test_an_answer_that_is_not_metas_error_object_still_classifies(body: Any) -> None:
    meta_error = MetaError.from_response(503, body)
    assert (meta_error.code, meta_error.subcode) == (None, None)
    assert classify(meta_error) is ErrorClass.TRANSIENT
