"""A request body as AWS hands it to a function (API Gateway's HTTP API, a Lambda function URL): text, or base64
for what it cannot pass as text. Plain Python: the webhook's path to it imports no pydantic."""

import base64
import binascii


def decoded_body(body: str | None, is_base64_encoded: bool) -> bytes | None:
    """The exact bytes sent; None if the body claims base64 but is not."""
    if not body:
        return b""
    if not is_base64_encoded:
        return body.encode("utf-8")
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        return None
