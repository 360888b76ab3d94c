"""What Meta's two server-to-server callbacks share (POST /meta/deauthorize, POST /meta/data-deletion): a form
whose field `signed_request` must be signed by one of the app's secrets (igdm.meta.signed_request). Anything
else is answered 4xx with the reason, and the callback changes nothing."""

from collections.abc import Sequence
from urllib.parse import parse_qs

from igdm.meta.signed_request import SignedRequest, SignedRequestRefused, verify_signed_request
from igdm.runtime.http_api import HttpApiRequest, Reply
from igdm.runtime.observability import logger

MAX_FORM_BYTES = 16_384


def signed_request(request: HttpApiRequest, secrets: Sequence[str], now: float, callback: str) -> SignedRequest | Reply:
    """The verified request, or the answer that refuses it (``callback`` names it in the log)."""
    raw = request.raw_body() or b""
    if len(raw) > MAX_FORM_BYTES:
        return Reply.of_json(413, {"error": "the form is too large"})
    form = parse_qs(raw.decode("utf-8", "replace"))
    try:
        return verify_signed_request(next(iter(form.get("signed_request", [])), None), secrets, now)
    except SignedRequestRefused as refused:
        logger.warning(f"{callback} callback refused", extra={"reason": str(refused)})
        return Reply.of_json(400, {"error": str(refused)})
