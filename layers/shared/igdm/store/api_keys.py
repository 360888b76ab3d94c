"""The HTTP API's keys (docs/http-api.md): APIKEYS / KEY#<key id>, one item per key.

A key reads `igw_<key id>_<secret>`: the id (12 hex digits) says which item to read, the SHA-256 of the whole key
proves it (compared in constant time), so the table never holds a key that works. Each key has scopes (`send`,
`read`, `erase`, `webhooks`), an optional account it is restricted to, and once revoked a `revoked_at`: the
authorizer then refuses it.
"""

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from igdm.store.attributes import from_attributes, to_attributes
from igdm.store.keys import API_KEYS_PK, api_key_sk, key

SCOPES = ("send", "read", "erase", "webhooks")
PREFIX = "igw_"
_KEY = re.compile(r"igw_([0-9a-f]{12})_[A-Za-z0-9_-]{32,64}")


def key_id_of(presented: str) -> str | None:
    """The id a presented key names, or None for anything that is not a key of this form."""
    found = _KEY.fullmatch(presented)
    return found.group(1) if found else None


def identify(keys: Any, presented: str) -> dict[str, str]:
    """Who a presented key is, as the authorizer hands it on (key_id, scopes, account_id), or why it is refused
    (refused). ``keys`` has get(key_id) -> ApiKey | None: ApiKeys, or a test's dictionary."""
    key_id = key_id_of(presented)
    found = keys.get(key_id) if key_id else None
    if found is None or not found.matches(presented):
        return {"refused": "unknown API key"}
    if found.revoked_at:
        return {"refused": f"this API key was revoked at {found.revoked_at}"}
    return {"key_id": found.key_id, "scopes": ",".join(found.scopes), "account_id": found.account_id or ""}


def _digest(presented: str) -> str:
    return hashlib.sha256(presented.encode()).hexdigest()


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    name: str
    scopes: tuple[str, ...]
    digest: str
    created_at: str
    account_id: str | None = None
    revoked_at: str | None = None

    @classmethod
    def new(cls, name: str, scopes: tuple[str, ...], account_id: str | None, *, now: float) -> tuple["ApiKey", str]:
        """A new key and the key itself, which is shown once and never stored."""
        key_id = secrets.token_hex(6)
        presented = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        created = datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds")
        return cls(key_id, name, scopes, _digest(presented), created, account_id), presented

    def matches(self, presented: str) -> bool:
        return hmac.compare_digest(self.digest, _digest(presented))

    def to_item(self) -> dict[str, Any]:
        return {
            **key(API_KEYS_PK, api_key_sk(self.key_id)),
            **to_attributes(
                {
                    "key_id": self.key_id,
                    "name": self.name,
                    "scopes": list(self.scopes),
                    "digest": self.digest,
                    "created_at": self.created_at,
                    "account_id": self.account_id,
                    "revoked_at": self.revoked_at,
                }
            ),
        }

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> "ApiKey":
        a = from_attributes(item)
        return cls(
            a["key_id"],
            a.get("name", ""),
            tuple(a.get("scopes") or ()),
            a["digest"],
            a.get("created_at", ""),
            a.get("account_id"),
            a.get("revoked_at"),
        )


class ApiKeys:
    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def add(self, api_key: ApiKey) -> None:
        self._client.put_item(
            TableName=self._table, Item=api_key.to_item(), ConditionExpression="attribute_not_exists(pk)"
        )

    def get(self, key_id: str) -> ApiKey | None:
        item = self._client.get_item(
            TableName=self._table, Key=key(API_KEYS_PK, api_key_sk(key_id)), ConsistentRead=True
        ).get("Item")
        return ApiKey.from_item(item) if item else None

    def all(self) -> list[ApiKey]:
        found: list[ApiKey] = []
        request: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk",
            "ConsistentRead": True,
            "ExpressionAttributeValues": to_attributes({":pk": API_KEYS_PK}),
        }
        while True:
            answer = self._client.query(TableName=self._table, **request)
            found.extend(ApiKey.from_item(i) for i in answer.get("Items", []))
            if "LastEvaluatedKey" not in answer:
                return found
            request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]

    def revoke(self, key_id: str, *, now: float) -> bool:
        """Whether the key existed (revoking one already revoked keeps its first time)."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key=key(API_KEYS_PK, api_key_sk(key_id)),
                UpdateExpression="SET revoked_at = if_not_exists(revoked_at, :at)",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues=to_attributes(
                    {":at": datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds")}
                ),
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True
