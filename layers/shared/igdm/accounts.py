"""The Instagram accounts a stack serves: an item per account in the table, a secret per token.

Accounts are keyed by the id Meta puts in webhooks (entry.id, the user_id of /me, never `id`). The
token lives in Secrets Manager (never in the table or a log) as a TokenDocument, read through
Powertools' cached provider, so a token the refresher renewed is picked up within the cache age, and at
once after Meta answers 190.

A renewed token is written as the secret's AWSPENDING version first and becomes AWSCURRENT only once
/me has accepted it (TokenVault.promote): a failed refresh, a failed write or a crash in between leaves
the working token current, and a pending token a crash left behind is found again by the next run.
"""

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.parameters import SecretsProvider
from botocore.exceptions import BotoCoreError, ClientError

from igdm.account_events import AccountChange
from igdm.observability import logger
from igdm.table import ACCOUNTS_PK, TOKEN_RESCUE_SK, TTL_ATTRIBUTE, account_sk, token_rescue_pk

ACTIVE = "active"
EXPIRING = "expiring"
NEEDS_REAUTHORISATION = "needs_reauthorisation"
STATUSES = (ACTIVE, EXPIRING, NEEDS_REAUTHORISATION)

CURRENT = "AWSCURRENT"
PENDING = "AWSPENDING"
PREVIOUS = "AWSPREVIOUS"


class AccountUnavailable(Exception):
    """No account to send from: unknown id, several accounts and none named, or no token."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class AccountLookupFailed(Exception):
    """DynamoDB or Secrets Manager did not answer: transient, try again later."""


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


@dataclass(frozen=True)
class TokenDocument:
    """The JSON of an account's token secret."""

    access_token: str = field(repr=False)
    user_id: str
    username: str | None = None
    scopes: tuple[str, ...] = ()
    expires_at: int | None = None  # epoch seconds; None when Meta never told us (pasted token)
    refreshed_at: int | None = None  # when issued or last refreshed; None when unknown

    def to_json(self) -> str:
        return json.dumps(
            {
                "access_token": self.access_token,
                "user_id": self.user_id,
                "username": self.username,
                "scopes": list(self.scopes),
                "expires_at": self.expires_at,
                "refreshed_at": self.refreshed_at,
                "token_type": "instagram_user_long_lived",  # nosec B105 # a kind of token
            }
        )

    @classmethod
    def from_json(cls, text: str, account_id: str) -> "TokenDocument":
        document = json.loads(text)
        if not isinstance(document, dict) or not isinstance(document.get("access_token"), str):
            raise ValueError("the secret holds no access_token")
        scopes = document.get("scopes")
        return cls(
            access_token=document["access_token"],
            user_id=str(document.get("user_id") or account_id),
            username=document.get("username") if isinstance(document.get("username"), str) else None,
            scopes=tuple(s for s in scopes if isinstance(s, str)) if isinstance(scopes, list) else (),
            expires_at=_epoch(document.get("expires_at")),
            # Secrets written before refreshed_at existed carry stored_at, the time of registration.
            refreshed_at=_epoch(document.get("refreshed_at", document.get("stored_at"))),
        )


class AccountDirectory:
    """The sender's view: accounts cached for a minute, tokens through Powertools' secret cache."""

    def __init__(
        self,
        dynamodb: Any,
        table: str,
        secretsmanager: Any,
        *,
        cache_seconds: float = 60,
        secret_max_age_seconds: int = 300,
        events: Any = None,
    ) -> None:
        self._dynamodb = dynamodb
        self._events = events  # an AccountEventPublisher: a token found dead is announced
        self._table = table
        self._secrets = SecretsProvider(boto3_client=secretsmanager)
        self._cache_seconds = cache_seconds
        self._secret_max_age = secret_max_age_seconds
        self._accounts: dict[str, Account] = {}
        self._loaded_at = -float("inf")

    def resolve(self, account_id: str | None) -> Account:
        accounts = self._all()
        if account_id is None:
            if len(accounts) == 1:
                return next(iter(accounts.values()))
            raise AccountUnavailable("no_account", f"account_id is required: this stack has {len(accounts)} accounts")
        account = accounts.get(account_id)
        if account is None or not account.can_send:
            accounts = self._all(refresh=True)  # registered, or re-authorised, since the cache was filled?
            account = accounts.get(account_id)
        if account is None:
            raise AccountUnavailable("no_account", f"account {account_id} is not registered in this stack")
        return account

    def token(self, account: Account, *, fresh: bool = False) -> str:
        try:
            # VersionStage named although AWSCURRENT is the default: moto's emulator otherwise keeps
            # answering with the version that was current before a stage move (the refresher's promote).
            document = self._secrets.get(
                account.token_secret_id,
                max_age=self._secret_max_age,
                transform="json",
                force_fetch=fresh,
                VersionStage=CURRENT,
            )
        except Exception as exc:  # Powertools wraps client errors in its own exception types
            raise AccountLookupFailed(f"token secret unreadable: {type(exc).__name__}") from None
        token = document.get("access_token") if isinstance(document, dict) else None
        if not isinstance(token, str) or not token:
            raise AccountUnavailable("token_invalid", f"account {account.account_id} has no access_token in its secret")
        return token

    def mark_needs_reauthorisation(self, account_id: str, detail: str) -> None:
        AccountTable(self._dynamodb, self._table).set_status(account_id, NEEDS_REAUTHORISATION, detail)
        self._loaded_at = -float("inf")
        if self._events is not None:
            change = AccountChange(
                account_id,
                NEEDS_REAUTHORISATION,
                "token_dead",
                reason="token_invalid",
                detail=f"Meta refused the token while sending: {detail}"[:500],
            )
            if self._events.publish([change], now=time.time()):
                # The status is recorded and the metric counted; only the event is missing.
                logger.error("account_status event not published", extra={"account_id": account_id})

    def _all(self, refresh: bool = False) -> dict[str, Account]:
        if refresh or time.monotonic() - self._loaded_at > self._cache_seconds:
            try:
                self._accounts = {a.account_id: a for a in AccountTable(self._dynamodb, self._table).all()}
            except (ClientError, BotoCoreError) as exc:
                raise AccountLookupFailed(f"accounts unreadable: {type(exc).__name__}") from None
            self._loaded_at = time.monotonic()
        return self._accounts


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


class TokenVault:
    """Reads and writes token secrets, version by version (no cache: the refresher needs what is there)."""

    def __init__(self, secretsmanager: Any, prefix: str) -> None:
        self._client = secretsmanager
        self._prefix = prefix

    def secret_name(self, account_id: str) -> str:
        return token_secret_name(self._prefix, account_id)

    def read(self, secret_id: str, account_id: str, stage: str = CURRENT) -> tuple[TokenDocument, str] | None:
        """The document at `stage` and its version id; None when no version carries that stage."""
        try:
            answer = self._client.get_secret_value(SecretId=secret_id, VersionStage=stage)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return None
            raise
        return TokenDocument.from_json(answer["SecretString"], account_id), answer["VersionId"]

    def store(self, document: TokenDocument) -> str:
        """Create the secret, or make `document` its current version (a new login proved the token)."""
        name = self.secret_name(document.user_id)
        try:
            self._client.create_secret(
                Name=name,
                SecretString=document.to_json(),
                Description=f"Instagram user token of account {document.user_id}",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceExistsException":
                raise
            self._client.put_secret_value(SecretId=name, SecretString=document.to_json())
        return name

    def stage(self, secret_id: str, document: TokenDocument) -> str:
        """Write `document` as the pending version; the current one stays what every reader gets."""
        answer = self._client.put_secret_value(
            SecretId=secret_id, SecretString=document.to_json(), VersionStages=[PENDING]
        )
        return str(answer["VersionId"])

    def make_current(self, secret_id: str, document: TokenDocument) -> str:
        """Write a token already proven as the current version at once (the old one becomes AWSPREVIOUS)."""
        answer = self._client.put_secret_value(SecretId=secret_id, SecretString=document.to_json())
        return str(answer["VersionId"])

    def promote(self, secret_id: str, version_id: str, current_version_id: str) -> None:
        """Make the pending version current in one call (the old one becomes AWSPREVIOUS), then clear the
        pending label so a later run does not mistake it for a token still to be tried."""
        self._client.update_secret_version_stage(
            SecretId=secret_id, VersionStage=CURRENT, MoveToVersionId=version_id, RemoveFromVersionId=current_version_id
        )
        self.discard_pending(secret_id, version_id)

    def discard_pending(self, secret_id: str, version_id: str) -> None:
        self._client.update_secret_version_stage(
            SecretId=secret_id, VersionStage=PENDING, RemoveFromVersionId=version_id
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


def token_secret_name(prefix: str, account_id: str) -> str:
    return f"{prefix}{account_id}"


def register_account(
    dynamodb: Any,
    secretsmanager: Any,
    *,
    table: str,
    secret_prefix: str,
    account_id: str,
    access_token: str,
    username: str | None = None,
    expires_at: int | None = None,
    refreshed_at: int | None = None,
    scopes: tuple[str, ...] = (),
    now: float | None = None,
) -> Account:
    """Store an account's token secret, then its item (the item is what makes it usable)."""
    now = time.time() if now is None else now
    document = TokenDocument(access_token, account_id, username, scopes, expires_at, refreshed_at)
    name = TokenVault(secretsmanager, secret_prefix).store(document)
    return AccountTable(dynamodb, table).save(document, name, now=now)


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


def _epoch(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def _iso_or_none(epoch: int | None) -> str | None:
    return None if epoch is None else _iso(epoch)
