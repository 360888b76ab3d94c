"""The Instagram accounts a stack serves: an item per account in the table (ACCOUNTS / ACCOUNT#<id>).

Accounts are keyed by the id Meta puts in webhooks (entry.id, the user_id of /me, never `id`). Their
tokens are not here: each is in its own Secrets Manager secret (igdm.store.tokens), except a renewed one
Secrets Manager refused, which waits in a TOKEN_RESCUE# item (TokenRescue) until it can be stored.
"""

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from igdm.store.keys import ACCOUNTS_PK, TOKEN_RESCUE_SK, TTL_ATTRIBUTE, account_sk, token_rescue_pk
from igdm.store.tokens import TokenDocument

ACTIVE = "active"
EXPIRING = "expiring"
NEEDS_REAUTHORISATION = "needs_reauthorisation"
STATUSES = (ACTIVE, EXPIRING, NEEDS_REAUTHORISATION)


@dataclass(frozen=True)
class Account:
    account_id: str
    status: str
    token_secret_id: str
    username: str | None = None
    token_expires_at: int | None = None  # epoch seconds; None when unknown (a pasted dashboard token)
    subscribed_fields: tuple[str, ...] = ()
    status_detail: str | None = None
    last_webhook_at: str | None = None

    @property
    def can_send(self) -> bool:
        return self.status != NEEDS_REAUTHORISATION


class AccountTable:
    """The account items: status, token expiry, webhook subscription, last webhook."""

    def __init__(self, dynamodb: Any, table: str) -> None:
        self._dynamodb = dynamodb
        self._table = table

    def all(self) -> list[Account]:
        accounts: list[Account] = []
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": ACCOUNTS_PK}},
            "ConsistentRead": True,
        }
        while True:
            page = self._dynamodb.query(**request)
            accounts.extend(_account(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return accounts
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def get(self, account_id: str) -> Account | None:
        item = self._dynamodb.get_item(TableName=self._table, Key=_key(account_id), ConsistentRead=True).get("Item")
        return _account(item) if item else None

    def save(self, document: TokenDocument, token_secret_id: str, *, now: float) -> Account:
        """An account (re)connected: active, with its new token's expiry. Keeps registered_at."""
        values: dict[str, Any] = {
            ":id": {"S": document.user_id},
            ":secret": {"S": token_secret_id},
            ":active": {"S": ACTIVE},
            ":now": {"S": _iso(now)},
            ":scopes": {"L": [{"S": s} for s in document.scopes]},
        }
        sets = [
            "account_id = :id",
            "token_secret_id = :secret",
            "#status = :active",
            "status_changed_at = :now",
            "registered_at = if_not_exists(registered_at, :now)",
            "connected_at = :now",
            "scopes = :scopes",
        ]
        removes = ["status_detail", "last_error"]
        for name, value in (
            ("username", document.username),
            ("token_expires_at", _iso_or_none(document.expires_at)),
            ("token_refreshed_at", _iso_or_none(document.refreshed_at)),
        ):
            if value is None:
                removes.append(name)
            else:
                sets.append(f"{name} = :{name}")
                values[f":{name}"] = {"S": value}
        self._dynamodb.update_item(
            TableName=self._table,
            Key=_key(document.user_id),
            UpdateExpression=f"SET {', '.join(sets)} REMOVE {', '.join(removes)}",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=values,
        )
        return Account(document.user_id, ACTIVE, token_secret_id, document.username, document.expires_at)

    def record_refresh(self, account_id: str, document: TokenDocument, *, now: float) -> None:
        values = {
            ":active": {"S": ACTIVE},
            ":now": {"S": _iso(now)},
            ":refreshed": {"S": _iso(document.refreshed_at or now)},
        }
        sets = ["#status = :active", "token_refreshed_at = :refreshed", "last_checked_at = :now"]
        if document.expires_at is not None:
            sets.append("token_expires_at = :expires")
            values[":expires"] = {"S": _iso(document.expires_at)}
        self._update(account_id, f"SET {', '.join(sets)} REMOVE last_error, status_detail", values)

    def set_status(self, account_id: str, status: str, detail: str | None, *, now: float | None = None) -> None:
        values = {":status": {"S": status}, ":now": {"S": _iso(time.time() if now is None else now)}}
        expression = "SET #status = :status, status_changed_at = :now"
        if detail:
            expression += ", status_detail = :detail"
            values[":detail"] = {"S": detail[:500]}
        else:
            expression += " REMOVE status_detail"
        self._update(account_id, expression, values)

    def record_check(
        self, account_id: str, *, now: float, subscribed_fields: list[str] | None = None, error: str | None = None
    ) -> None:
        values: dict[str, Any] = {":now": {"S": _iso(now)}}
        sets = ["last_checked_at = :now"]
        if subscribed_fields is not None:
            sets.append("subscribed_fields = :fields")
            values[":fields"] = {"L": [{"S": f} for f in sorted(subscribed_fields)]}
        if error:
            sets.append("last_error = :error")
            values[":error"] = {"S": error[:500]}
        self._update(account_id, f"SET {', '.join(sets)}" + ("" if error else " REMOVE last_error"), values)

    def record_webhook(self, account_id: str, at: str) -> None:
        """Time of the latest webhook for a registered account (an unknown id creates nothing)."""
        self._update(account_id, "SET last_webhook_at = :at", {":at": {"S": at}})

    def _update(self, account_id: str, expression: str, values: dict[str, Any]) -> None:
        names = {"#status": "status"} if "#status" in expression else None
        self._dynamodb.update_item(
            TableName=self._table,
            Key=_key(account_id),
            UpdateExpression=expression,
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues=values,
            **({"ExpressionAttributeNames": names} if names else {}),
        )


class TokenRescue:
    """Where a renewed token waits when Secrets Manager will not take it. Meta may have revoked the old token
    when it issued the new one, so the new one must outlive a failed write: it is kept in the table, which
    only the refresher's role may read (IAM dynamodb:LeadingKeys), until a later run writes it to Secrets
    Manager and deletes it. It expires with the token."""

    def __init__(self, dynamodb: Any, table: str) -> None:
        self._dynamodb = dynamodb
        self._table = table

    def keep(self, document: TokenDocument, *, now: float) -> None:
        item: dict[str, Any] = {
            **_rescue_key(document.user_id),
            "token": {"S": document.to_json()},
            "rescued_at": {"S": _iso(now)},
        }
        if document.expires_at is not None:
            item[TTL_ATTRIBUTE] = {"N": str(document.expires_at)}
        self._dynamodb.put_item(TableName=self._table, Item=item)

    def get(self, account_id: str) -> TokenDocument | None:
        item = self._dynamodb.get_item(TableName=self._table, Key=_rescue_key(account_id), ConsistentRead=True).get(
            "Item"
        )
        return TokenDocument.from_json(item["token"]["S"], account_id) if item else None

    def drop(self, account_id: str) -> None:
        self._dynamodb.delete_item(TableName=self._table, Key=_rescue_key(account_id))


def _rescue_key(account_id: str) -> dict[str, Any]:
    return {"pk": {"S": token_rescue_pk(account_id)}, "sk": {"S": TOKEN_RESCUE_SK}}


def _key(account_id: str) -> dict[str, Any]:
    return {"pk": {"S": ACCOUNTS_PK}, "sk": {"S": account_sk(account_id)}}


def _account(item: dict[str, Any]) -> Account:
    fields = item.get("subscribed_fields", {}).get("L", [])
    expires = item.get("token_expires_at", {}).get("S")
    return Account(
        account_id=item["account_id"]["S"],
        status=item.get("status", {}).get("S", ACTIVE),
        token_secret_id=item["token_secret_id"]["S"],
        username=item.get("username", {}).get("S"),
        token_expires_at=int(datetime.fromisoformat(expires).timestamp()) if expires else None,
        subscribed_fields=tuple(f["S"] for f in fields if "S" in f),
        status_detail=item.get("status_detail", {}).get("S"),
        last_webhook_at=item.get("last_webhook_at", {}).get("S"),
    )


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def _iso_or_none(epoch: int | None) -> str | None:
    return None if epoch is None else _iso(epoch)
