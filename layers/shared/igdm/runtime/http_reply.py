"""An HTTP API (payload 2.0) response, apart from igdm.runtime.http_api's pydantic request model: the webhook
answers without importing pydantic (webhook.request reads its requests)."""

import json
from typing import Any, NamedTuple

TEXT_PLAIN = "text/plain"
APPLICATION_JSON = "application/json"


# A NamedTuple, not a dataclass: its class is built several times faster, on the webhook's cold start.
class Reply(NamedTuple):
    status: int
    body: str
    content_type: str = APPLICATION_JSON
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of_json(cls, status: int, document: dict[str, Any]) -> "Reply":
        return cls(status, json.dumps(document))

    def to_api_gateway(self) -> dict[str, Any]:
        return {
            "statusCode": self.status,
            "headers": {"Content-Type": self.content_type, **dict(self.headers)},
            "body": self.body,
            "isBase64Encoded": False,
        }
