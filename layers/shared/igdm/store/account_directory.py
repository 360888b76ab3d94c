"""The accounts as a function that calls Meta for them sees them (the sender, the reconciler): account items
cached for a minute, tokens through Powertools' secret cache, so a token the refresher renewed is picked up
within the cache age, and at once after Meta answers 190, which marks the account for re-authorisation."""

import time
from typing import Any

from aws_lambda_powertools.utilities.parameters import SecretsProvider
from botocore.exceptions import BotoCoreError, ClientError

from igdm.contracts.account_status import AccountChange
from igdm.runtime.observability import logger
from igdm.store.accounts import NEEDS_REAUTHORISATION, Account, AccountTable
from igdm.store.tokens import CURRENT


class AccountUnavailable(Exception):
    """No account to send from: unknown id, several accounts and none named, or no token."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class AccountLookupFailed(Exception):
    """DynamoDB or Secrets Manager did not answer: transient, try again later."""


class AccountDirectory:
    """Accounts cached for a minute, tokens through Powertools' secret cache."""

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

    def mark_needs_reauthorisation(self, account_id: str, detail: str, *, while_doing: str = "sending") -> None:
        AccountTable(self._dynamodb, self._table).set_status(account_id, NEEDS_REAUTHORISATION, detail)
        self._loaded_at = -float("inf")
        if self._events is not None:
            change = AccountChange(
                account_id,
                NEEDS_REAUTHORISATION,
                "token_dead",
                reason="token_invalid",
                detail=f"Meta refused the token while {while_doing}: {detail}"[:500],
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
