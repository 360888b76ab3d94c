"""Who is calling: the HTTP API's Lambda authorizer (payload 2.0, simple responses) reads the key in
`Authorization: Bearer <key>` and hands the API function the key's id, scopes and account, or why it is refused.

It never answers `isAuthorized: false`: API Gateway turns that into a bare 403, while a key that is unknown or
revoked must get a 401 that says so (docs/http-api.md). So the authorizer identifies, and the API function
decides: 401 for a refusal, 403 for a missing scope or another account, 429 past the key's rate. A request
without the header never reaches it: API Gateway answers 401 itself. API Gateway caches each answer for a minute
per Authorization header, so a revocation takes up to a minute to apply.
"""

from dataclasses import dataclass
from typing import Any, Protocol

from igdm.store.api_keys import ApiKey, identify

BEARER = "bearer "


class Keys(Protocol):
    def get(self, key_id: str) -> ApiKey | None: ...


@dataclass
class Authorizer:
    keys: Keys

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        headers = {str(k).lower(): v for k, v in (event.get("headers") or {}).items()}
        return {"isAuthorized": True, "context": self.identify(headers.get("authorization"))}

    def identify(self, authorization: Any) -> dict[str, str]:
        if not isinstance(authorization, str) or not authorization.lower().startswith(BEARER):
            return {"refused": "send the key as Authorization: Bearer <key>"}
        return identify(self.keys, authorization[len(BEARER) :].strip())
