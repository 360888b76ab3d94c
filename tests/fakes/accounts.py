"""In-memory stand-ins for where accounts live: the account items (igdm.store.accounts.AccountTable), the
token secrets version by version (igdm.store.tokens.TokenVault), the table's rescue of a renewed token
(igdm.store.accounts.TokenRescue) and the account_status events (igdm.queues.account_publisher)."""

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from igdm.contracts.account_status import AccountChange
from igdm.store.accounts import ACTIVE, Account
from igdm.store.tokens import CURRENT, PENDING, PREVIOUS, TokenDocument


class Unavailable(Exception):
    """An AWS service refused the call (the adapters raise botocore's ClientError)."""


class _Refusals:
    """Operations a fake refuses, each a given number of times."""

    def __init__(self) -> None:
        self._left: dict[str, int] = {}

    def refuse(self, operation: str, times: int = 1_000_000) -> None:
        self._left[operation] = times

    def accept(self, operation: str) -> None:
        self._left.pop(operation, None)

    def check(self, operation: str) -> None:
        if self._left.get(operation, 0) > 0:
            self._left[operation] -= 1
            raise Unavailable(f"{operation} refused (injected)")


class MemoryAccountTable:
    """The account items, with what the refresher keeps on them besides an Account: last_error, the last
    check and refresh. Updating an account that has no item fails, as the table's condition does."""

    def __init__(self) -> None:
        self.accounts: dict[str, Account] = {}
        self.last_error: dict[str, str] = {}
        self.last_checked_at: dict[str, float] = {}
        self.token_refreshed_at: dict[str, int | None] = {}
        self.scopes: dict[str, tuple[str, ...]] = {}

    def all(self) -> list[Account]:
        return [self.accounts[k] for k in sorted(self.accounts)]  # the table's sort key order

    def get(self, account_id: str) -> Account | None:
        return self.accounts.get(account_id)

    def save(self, document: TokenDocument, token_secret_id: str, *, now: float) -> Account:
        before = self.accounts.get(document.user_id)
        self.accounts[document.user_id] = Account(
            document.user_id,
            ACTIVE,
            token_secret_id,
            document.username,
            document.expires_at,
            before.subscribed_fields if before else (),
        )
        self.scopes[document.user_id] = document.scopes
        self.token_refreshed_at[document.user_id] = document.refreshed_at
        self.last_error.pop(document.user_id, None)
        return Account(document.user_id, ACTIVE, token_secret_id, document.username, document.expires_at)

    def record_refresh(self, account_id: str, document: TokenDocument, *, now: float) -> None:
        account = self._existing(account_id)
        expires = document.expires_at if document.expires_at is not None else account.token_expires_at
        self.accounts[account_id] = replace(
            account, status=ACTIVE, token_expires_at=expires, status_detail=None, last_checked_at=_iso(now)
        )
        self.token_refreshed_at[account_id] = document.refreshed_at or int(now)
        self.last_checked_at[account_id] = now
        self.last_error.pop(account_id, None)

    def set_status(self, account_id: str, status: str, detail: str | None, *, now: float | None = None) -> None:
        account = self._existing(account_id)
        self.accounts[account_id] = replace(account, status=status, status_detail=detail[:500] if detail else None)

    def record_profile_check(self, account_id: str, *, now: float) -> None:
        account = self._existing(account_id)
        self.accounts[account_id] = replace(account, profile_checked_at=datetime.fromtimestamp(now, UTC).isoformat())

    def record_check(
        self, account_id: str, *, now: float, subscribed_fields: list[str] | None = None, error: str | None = None
    ) -> None:
        account = replace(self._existing(account_id), last_checked_at=_iso(now))
        if subscribed_fields is not None:
            account = replace(account, subscribed_fields=tuple(sorted(subscribed_fields)))
        self.accounts[account_id] = account
        self.last_checked_at[account_id] = now
        if error:
            self.last_error[account_id] = error[:500]
        else:
            self.last_error.pop(account_id, None)

    def record_reconciled(self, account_id: str, until: float, *, history_imported_at: float | None = None) -> None:
        account = self._existing(account_id)
        done = account.history_imported_at
        if history_imported_at is not None:
            done = datetime.fromtimestamp(history_imported_at, UTC).isoformat(timespec="seconds")
        self.accounts[account_id] = replace(
            account,
            reconciled_until=datetime.fromtimestamp(until, UTC).isoformat(timespec="seconds"),
            history_imported_at=done,
        )

    def _existing(self, account_id: str) -> Account:
        account = self.accounts.get(account_id)
        if account is None:
            raise Unavailable(f"no account item for {account_id} (ConditionalCheckFailed)")
        return account


@dataclass
class _Version:
    version_id: str
    document: TokenDocument
    stages: set[str] = field(default_factory=set)


class MemoryVault:
    """Token secrets as Secrets Manager keeps them: versions carrying the staging labels AWSCURRENT,
    AWSPENDING and AWSPREVIOUS, each label on one version at most."""

    def __init__(self, prefix: str = "accounts/") -> None:
        self.prefix = prefix
        self.secrets: dict[str, list[_Version]] = {}
        self.refusals = _Refusals()

    def secret_name(self, account_id: str) -> str:
        return f"{self.prefix}{account_id}"

    def read(self, secret_id: str, account_id: str, stage: str = CURRENT) -> tuple[TokenDocument, str] | None:
        self.refusals.check("read")
        version = self._labelled(secret_id, stage)
        return (version.document, version.version_id) if version else None

    def store(self, document: TokenDocument) -> str:
        self.refusals.check("store")
        name = self.secret_name(document.user_id)
        self._put(name, document, CURRENT)
        return name

    def stage(self, secret_id: str, document: TokenDocument) -> str:
        self.refusals.check("stage")
        return self._put(secret_id, document, PENDING)

    def make_current(self, secret_id: str, document: TokenDocument) -> str:
        self.refusals.check("make_current")
        return self._put(secret_id, document, CURRENT)

    def promote(self, secret_id: str, version_id: str, current_version_id: str) -> None:
        self.refusals.check("promote")
        current = self._labelled(secret_id, CURRENT)
        if current is None or current.version_id != current_version_id:
            raise Unavailable("AWSCURRENT is not on the version named to remove it from")
        self._move(secret_id, CURRENT, version_id)
        self.discard_pending(secret_id, version_id)

    def discard_pending(self, secret_id: str, version_id: str) -> None:
        self.refusals.check("discard_pending")
        for version in self.secrets.get(secret_id, []):
            if version.version_id == version_id:
                version.stages.discard(PENDING)

    # --- what a test looks at

    def token(self, account_id: str, stage: str = CURRENT) -> TokenDocument | None:
        version = self._labelled(self.secret_name(account_id), stage)
        return version.document if version else None

    # --- plumbing

    def _put(self, secret_id: str, document: TokenDocument, stage: str) -> str:
        versions = self.secrets.setdefault(secret_id, [])
        version_id = f"v{len(versions) + 1}"
        versions.append(_Version(version_id, document))
        self._move(secret_id, stage, version_id)
        return version_id

    def _move(self, secret_id: str, stage: str, version_id: str) -> None:
        """Put ``stage`` on ``version_id``; moving AWSCURRENT makes the version that had it AWSPREVIOUS."""
        before = self._labelled(secret_id, stage)
        if before is not None:
            before.stages.discard(stage)
            if stage == CURRENT:
                for version in self.secrets[secret_id]:
                    version.stages.discard(PREVIOUS)
                before.stages.add(PREVIOUS)
        for version in self.secrets[secret_id]:
            if version.version_id == version_id:
                version.stages.add(stage)

    def _labelled(self, secret_id: str, stage: str) -> _Version | None:
        return next((v for v in self.secrets.get(secret_id, []) if stage in v.stages), None)


class MemoryRescue:
    """Renewed tokens waiting in the table while Secrets Manager refuses them."""

    def __init__(self) -> None:
        self.kept: dict[str, TokenDocument] = {}
        self.refusals = _Refusals()

    def keep(self, document: TokenDocument, *, now: float) -> None:
        self.refusals.check("keep")
        self.kept[document.user_id] = document

    def get(self, account_id: str) -> TokenDocument | None:
        return self.kept.get(account_id)

    def drop(self, account_id: str) -> None:
        self.kept.pop(account_id, None)


class MemoryAccountEvents:
    """The account_status events the events queue took; while ``refusing``, it takes none."""

    def __init__(self) -> None:
        self.published: list[AccountChange] = []
        self.refusing = False

    def publish(self, changes: list[AccountChange], *, now: float) -> list[AccountChange]:
        if self.refusing:
            return list(changes)
        self.published.extend(changes)
        return []

    def take(self) -> list[AccountChange]:
        """The events published since the last take."""
        taken, self.published = self.published, []
        return taken


def _iso(epoch: float) -> str:
    """As the table keeps its times (igdm.store.accounts)."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")
