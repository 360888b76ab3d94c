"""The Instagram accounts a stack sends for: an item per account in the table, a secret per token.

Accounts are keyed by the id Meta puts in webhooks (entry.id, the user_id of /me). The token lives in
Secrets Manager (never in the table or a log) and is read through Powertools' cached provider, so a
token the refresher renewed is picked up within the cache age, and at once after Meta answers 190.
"""

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.parameters import SecretsProvider
from botocore.exceptions import BotoCoreError, ClientError

from igdm.table import ACCOUNTS_PK, account_sk

ACTIVE = "active"
NEEDS_REAUTHORISATION = "needs_reauthorisation"


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


class AccountDirectory:
    def __init__(self, dynamodb: Any, table: str, secretsmanager: Any, *, cache_seconds: float = 60,
                 secret_max_age_seconds: int = 300) -> None:
        self._dynamodb = dynamodb
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
        if account is None:
            accounts = self._all(refresh=True)  # registered since the cache was filled?
            account = accounts.get(account_id)
        if account is None:
            raise AccountUnavailable("no_account", f"account {account_id} is not registered in this stack")
        return account

    def token(self, account: Account, *, fresh: bool = False) -> str:
        try:
            document = self._secrets.get(account.token_secret_id, max_age=self._secret_max_age,
                                         transform="json", force_fetch=fresh)
        except Exception as exc:  # Powertools wraps client errors in its own exception types
            raise AccountLookupFailed(f"token secret unreadable: {type(exc).__name__}") from None
        token = document.get("access_token") if isinstance(document, dict) else None
        if not isinstance(token, str) or not token:
            raise AccountUnavailable("token_invalid", f"account {account.account_id} has no access_token in its secret")
        return token

    def mark_needs_reauthorisation(self, account_id: str, detail: str) -> None:
        self._dynamodb.update_item(
            TableName=self._table,
            Key={"pk": {"S": ACCOUNTS_PK}, "sk": {"S": account_sk(account_id)}},
            UpdateExpression="SET #status = :status, status_detail = :detail, status_changed_at = :now",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":status": {"S": NEEDS_REAUTHORISATION}, ":detail": {"S": detail[:500]},
                                       ":now": {"S": datetime.now(UTC).isoformat()}},
        )
        self._loaded_at = -float("inf")

    def _all(self, refresh: bool = False) -> dict[str, Account]:
        if refresh or time.monotonic() - self._loaded_at > self._cache_seconds:
            try:
                self._accounts = self._query()
            except (ClientError, BotoCoreError) as exc:
                raise AccountLookupFailed(f"accounts unreadable: {type(exc).__name__}") from None
            self._loaded_at = time.monotonic()
        return self._accounts

    def _query(self) -> dict[str, Account]:
        accounts: dict[str, Account] = {}
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": ACCOUNTS_PK}},
            "ConsistentRead": True,
        }
        while True:
            page = self._dynamodb.query(**request)
            for item in page.get("Items", []):
                account = Account(
                    account_id=item["account_id"]["S"],
                    status=item.get("status", {}).get("S", ACTIVE),
                    token_secret_id=item["token_secret_id"]["S"],
                    username=item.get("username", {}).get("S"),
                )
                accounts[account.account_id] = account
            if "LastEvaluatedKey" not in page:
                return accounts
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def token_secret_name(prefix: str, account_id: str) -> str:
    return f"{prefix}{account_id}"


def register_account(dynamodb: Any, secretsmanager: Any, *, table: str, secret_prefix: str, account_id: str,
                     access_token: str, username: str | None = None, expires_at: int | None = None) -> Account:
    """Store an account's token secret, then its item (the item is what makes it usable)."""
    name = token_secret_name(secret_prefix, account_id)
    document = json.dumps({"access_token": access_token, "user_id": account_id, "username": username,
                           "expires_at": expires_at, "stored_at": int(time.time())})
    try:
        secretsmanager.create_secret(Name=name, SecretString=document)
    except secretsmanager.exceptions.ResourceExistsException:
        secretsmanager.put_secret_value(SecretId=name, SecretString=document)
    item: dict[str, Any] = {
        "pk": {"S": ACCOUNTS_PK}, "sk": {"S": account_sk(account_id)}, "account_id": {"S": account_id},
        "status": {"S": ACTIVE}, "token_secret_id": {"S": name},
        "registered_at": {"S": datetime.now(UTC).isoformat()},
    }
    if username:
        item["username"] = {"S": username}
    dynamodb.put_item(TableName=table, Item=item)
    return Account(account_id, ACTIVE, name, username)
