"""Meta's deauthorize callback, POST /meta/deauthorize: the account's owner removed the app from their
Instagram settings. Meta sends a form field `signed_request` (igdm.meta.signed_request) naming the account's
user id; one that is not the app's, or is more than a day old, is answered 400 and changes nothing.

For an account of the stack: it becomes `disconnected` first (the sender, the refresher and the reconciler
stop using it), then its token secret is deleted without a recovery window, then an account_status event
(`deauthorized`) says so. Each step is idempotent, so Meta's retry of a callback that failed half way
finishes it. Connecting the account again (an invite link) makes it active with a new token. An id that is
no account of the stack is answered 200: there is nothing to remove.
"""

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from igdm.contracts.account_status import AccountChange
from igdm.runtime.http_api import HttpApiRequest, Reply
from igdm.runtime.observability import logger
from igdm.store.accounts import DISCONNECTED, Account
from onboarding.meta_callback import signed_request


class Accounts(Protocol):
    def get(self, account_id: str) -> Account | None: ...

    def set_status(self, account_id: str, status: str, detail: str | None, *, now: float | None = None) -> None: ...


class Vault(Protocol):
    def delete(self, secret_id: str) -> bool: ...


class AccountEvents(Protocol):
    def publish(self, changes: list[AccountChange], *, now: float) -> list[AccountChange]: ...


@dataclass
class Deauthorize:
    signing_secrets: Callable[[], Sequence[str]]  # the Instagram app's secret and the Meta app's
    accounts: Accounts
    vault: Vault
    events: AccountEvents
    clock: Callable[[], float] = field(default=time.time)

    def __call__(self, request: HttpApiRequest) -> Reply:
        now = self.clock()
        signed = signed_request(request, self.signing_secrets(), now, "deauthorize")
        if isinstance(signed, Reply):
            return signed
        account = self.accounts.get(signed.user_id)
        if account is None:
            logger.info("deauthorize callback for no account of this stack")
            return Reply.of_json(200, {"deauthorized": False})
        detail = "the account's owner removed the app (Meta's deauthorize callback); its token was deleted"
        self.accounts.set_status(account.account_id, DISCONNECTED, detail, now=now)
        self.vault.delete(account.token_secret_id)
        change = AccountChange(
            account.account_id,
            DISCONNECTED,
            "deauthorized",
            reason="app_removed",
            detail=detail,
            username=account.username,
        )
        if self.events.publish([change], now=now):
            raise RuntimeError("the account_status event was not published")  # a 503: Meta retries, all idempotent
        logger.warning("account deauthorized by its owner", extra={"account_id": account.account_id})
        return Reply.of_json(200, {"deauthorized": True})
