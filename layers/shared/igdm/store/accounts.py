"""The Instagram accounts a stack serves: an item per account in the table (ACCOUNTS / ACCOUNT#<id>).

Accounts are keyed by the id Meta puts in webhooks (entry.id, the user_id of /me, never `id`). Their
tokens are not here: each is in its own Secrets Manager secret (igdm.store.tokens), except a renewed one
Secrets Manager refused, which waits in a TOKEN_RESCUE# item (TokenRescue) until it can be stored.
"""

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from igdm.store.attributes import from_attributes, to_attributes
from igdm.store.keys import (
    ACCOUNTS_PK,
    TOKEN_RESCUE_PK_PREFIX,
    TOKEN_RESCUE_SK,
    TTL_ATTRIBUTE,
    account_sk,
    key,
    token_rescue_pk,
)
from igdm.store.tokens import TokenDocument

ACTIVE = "active"
EXPIRING = "expiring"
NEEDS_REAUTHORISATION = "needs_reauthorisation"
DISCONNECTED = "disconnected"  # the owner removed the app (Meta's deauthorize callback): no token, nothing sent
STATUSES = (ACTIVE, EXPIRING, NEEDS_REAUTHORISATION, DISCONNECTED)


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
    connected_at: str | None = None  # ISO 8601: the latest login (or register)
    reconciled_until: str | None = None  # ISO 8601: the reconciler's watermark (conversations read up to it)
    history_imported_at: str | None = None  # ISO 8601: when the reconciler's first complete run ended
    paused_at: str | None = None  # ISO 8601: sending stopped by an operator (tools.accounts pause) since then
    messenger_profile: str | None = None  # JSON: its declared ice breakers and menu (igdm.contracts.profile)
    profile_checked_at: str | None = None  # ISO 8601: when the refresher last found Meta showing it (or restored it)
    last_checked_at: str | None = None  # ISO 8601: the refresher's latest check of it (its runs go oldest first)

    @property
    def can_send(self) -> bool:
        return self.status not in (NEEDS_REAUTHORISATION, DISCONNECTED)

    def to_item(self) -> dict[str, Any]:
        """The attributes an Account reads. The item holds more, each set by the update that knows it
        (registered_at, connected_at, scopes, token_refreshed_at, last_checked_at, last_error, ...)."""
        return {
            **_key(self.account_id),
            **to_attributes(
                {
                    "account_id": self.account_id,
                    "status": self.status,
                    "token_secret_id": self.token_secret_id,
                    "username": self.username,
                    "token_expires_at": _iso_or_none(self.token_expires_at),
                    "subscribed_fields": list(self.subscribed_fields),
                    "status_detail": self.status_detail,
                    "last_webhook_at": self.last_webhook_at,
                    "connected_at": self.connected_at,
                    "reconciled_until": self.reconciled_until,
                    "history_imported_at": self.history_imported_at,
                    "paused_at": self.paused_at,
                    "messenger_profile": self.messenger_profile,
                    "profile_checked_at": self.profile_checked_at,
                    "last_checked_at": self.last_checked_at,
                }
            ),
        }

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> "Account":
        attributes = from_attributes(item)
        expires = attributes.get("token_expires_at")
        return cls(
            account_id=attributes["account_id"],
            status=attributes.get("status", ACTIVE),
            token_secret_id=attributes["token_secret_id"],
            username=attributes.get("username"),
            token_expires_at=int(datetime.fromisoformat(expires).timestamp()) if expires else None,
            subscribed_fields=tuple(f for f in attributes.get("subscribed_fields", []) if isinstance(f, str)),
            status_detail=attributes.get("status_detail"),
            last_webhook_at=attributes.get("last_webhook_at"),
            connected_at=attributes.get("connected_at"),
            reconciled_until=attributes.get("reconciled_until"),
            history_imported_at=attributes.get("history_imported_at"),
            paused_at=attributes.get("paused_at"),
            messenger_profile=attributes.get("messenger_profile"),
            profile_checked_at=attributes.get("profile_checked_at"),
            last_checked_at=attributes.get("last_checked_at"),
        )


@dataclass(frozen=True)
class RescuedToken:
    """A renewed token Secrets Manager refused, kept in the table (TOKEN_RESCUE#<account> / TOKEN) until a
    refresher run stores it there; it expires with the token."""

    document: TokenDocument
    rescued_at: str  # ISO 8601

    def to_item(self) -> dict[str, Any]:
        return {
            **_rescue_key(self.document.user_id),
            **to_attributes(
                {
                    "token": self.document.to_json(),
                    "rescued_at": self.rescued_at,
                    TTL_ATTRIBUTE: self.document.expires_at,  # none, for a token Meta gave no expiry
                }
            ),
        }

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> "RescuedToken":
        attributes = from_attributes(item)
        account_id = attributes["pk"].removeprefix(TOKEN_RESCUE_PK_PREFIX)
        return cls(TokenDocument.from_json(attributes["token"], account_id), attributes["rescued_at"])


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
            "ExpressionAttributeValues": to_attributes({":pk": ACCOUNTS_PK}),
            "ConsistentRead": True,
        }
        while True:
            page = self._dynamodb.query(**request)
            accounts.extend(Account.from_item(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return accounts
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def get(self, account_id: str) -> Account | None:
        item = self._dynamodb.get_item(TableName=self._table, Key=_key(account_id), ConsistentRead=True).get("Item")
        return Account.from_item(item) if item else None

    def save(self, document: TokenDocument, token_secret_id: str, *, now: float) -> Account:
        """An account (re)connected: active, with its new token's expiry. Keeps registered_at."""
        values: dict[str, Any] = {
            ":id": document.user_id,
            ":secret": token_secret_id,
            ":active": ACTIVE,
            ":now": _iso(now),
            ":scopes": list(document.scopes),
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
                values[f":{name}"] = value
        self._dynamodb.update_item(
            TableName=self._table,
            Key=_key(document.user_id),
            UpdateExpression=f"SET {', '.join(sets)} REMOVE {', '.join(removes)}",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=to_attributes(values),
        )
        return Account(document.user_id, ACTIVE, token_secret_id, document.username, document.expires_at)

    def record_refresh(self, account_id: str, document: TokenDocument, *, now: float) -> None:
        values = {":active": ACTIVE, ":now": _iso(now), ":refreshed": _iso(document.refreshed_at or now)}
        sets = ["#status = :active", "token_refreshed_at = :refreshed", "last_checked_at = :now"]
        if document.expires_at is not None:
            sets.append("token_expires_at = :expires")
            values[":expires"] = _iso(document.expires_at)
        self._update(account_id, f"SET {', '.join(sets)} REMOVE last_error, status_detail", values)

    def set_status(self, account_id: str, status: str, detail: str | None, *, now: float | None = None) -> None:
        values = {":status": status, ":now": _iso(time.time() if now is None else now)}
        expression = "SET #status = :status, status_changed_at = :now"
        if detail:
            expression += ", status_detail = :detail"
            values[":detail"] = detail[:500]
        else:
            expression += " REMOVE status_detail"
        self._update(account_id, expression, values)

    def record_check(
        self, account_id: str, *, now: float, subscribed_fields: list[str] | None = None, error: str | None = None
    ) -> None:
        values: dict[str, Any] = {":now": _iso(now)}
        sets = ["last_checked_at = :now"]
        if subscribed_fields is not None:
            sets.append("subscribed_fields = :fields")
            values[":fields"] = sorted(subscribed_fields)
        if error:
            sets.append("last_error = :error")
            values[":error"] = error[:500]
        self._update(account_id, f"SET {', '.join(sets)}" + ("" if error else " REMOVE last_error"), values)

    def set_paused(self, account_id: str, paused: bool, *, now: float) -> None:
        """Stop (or resume) sending for one account; inbound keeps flowing. An unknown account raises
        DynamoDB's ConditionalCheckFailedException: nothing is created."""
        if paused:
            self._update(account_id, "SET paused_at = if_not_exists(paused_at, :now)", {":now": _iso(now)})
        else:
            self._update(account_id, "REMOVE paused_at", {})

    def set_profile(self, account_id: str, profile_json: str, *, now: float) -> None:
        """The account's declared ice breakers and menu, as applied at ``now``."""
        self._update(
            account_id,
            "SET messenger_profile = :profile, profile_checked_at = :now",
            {":profile": profile_json, ":now": _iso(now)},
        )

    def record_profile_check(self, account_id: str, *, now: float) -> None:
        """Meta shows the declared profile (as found, or once restored)."""
        self._update(account_id, "SET profile_checked_at = :now", {":now": _iso(now)})

    def record_webhook(self, account_id: str, at: str) -> None:
        """Time of the latest webhook for a registered account (an unknown id creates nothing)."""
        self._update(account_id, "SET last_webhook_at = :at", {":at": at})

    def record_reconciled(self, account_id: str, until: float, *, history_imported_at: float | None = None) -> None:
        """The reconciler's watermark: every conversation updated before ``until`` has been read, its events
        stored. Written only once they are durable, so a run cut short starts again from the last one. With
        ``history_imported_at``, the account's history import (its first complete run) is done."""
        if history_imported_at is None:
            self._update(account_id, "SET reconciled_until = :until", {":until": _iso(until)})
            return
        self._update(
            account_id,
            "SET reconciled_until = :until, history_imported_at = :done",
            {":until": _iso(until), ":done": _iso(history_imported_at)},
        )

    def _update(self, account_id: str, expression: str, values: dict[str, Any]) -> None:
        """``values`` as plain values, by placeholder."""
        names = {"#status": "status"} if "#status" in expression else None
        self._dynamodb.update_item(
            TableName=self._table,
            Key=_key(account_id),
            UpdateExpression=expression,
            ConditionExpression="attribute_exists(pk)",
            **({"ExpressionAttributeValues": to_attributes(values)} if values else {}),
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
        self._dynamodb.put_item(TableName=self._table, Item=RescuedToken(document, _iso(now)).to_item())

    def get(self, account_id: str) -> TokenDocument | None:
        item = self._dynamodb.get_item(TableName=self._table, Key=_rescue_key(account_id), ConsistentRead=True).get(
            "Item"
        )
        return RescuedToken.from_item(item).document if item else None

    def drop(self, account_id: str) -> None:
        self._dynamodb.delete_item(TableName=self._table, Key=_rescue_key(account_id))


def _rescue_key(account_id: str) -> dict[str, Any]:
    return key(token_rescue_pk(account_id), TOKEN_RESCUE_SK)


def _key(account_id: str) -> dict[str, Any]:
    return key(ACCOUNTS_PK, account_sk(account_id))


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def _iso_or_none(epoch: int | None) -> str | None:
    return None if epoch is None else _iso(epoch)
