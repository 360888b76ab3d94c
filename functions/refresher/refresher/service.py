"""One run of the token refresher: every account's token renewed in time, proven, and its webhook
subscription kept whole.

For each account, independently (one account's failure never stops the others):
  1. refresh the token through refresh_access_token when it is at least a day old and expires within
     the window (or its expiry is unknown: a token pasted from the App Dashboard);
  2. write the new token as the secret's pending version, prove it with /me, then make it current, so
     no failure can leave a broken token where a working one was. Meta may have revoked the old token when
     it issued the new one, so the new one is never dropped: while Secrets Manager refuses it, it waits in
     the table (igdm.store.accounts.TokenRescue), and the next run (Lambda retries a run that reports it within
     minutes) moves it into Secrets Manager before anything else;
  3. otherwise prove the current token with /me; on 190 try a pending token an interrupted run left,
     and failing that mark the account needs_reauthorisation and say so on the events queue;
  4. compare subscribed_apps with the fields the gateway needs and subscribe again when Meta dropped any.
The run ends with the metrics the template's alarms watch.

Accounts are checked most urgent first: tokens to renew (soonest expiry first), then the rest, least recently
checked first. A run stops ACCOUNT_RESERVE_SECONDS before the invocation's end rather than be cut off, and
reports how many accounts it left (AccountsDeferred). That is not a failure: the next scheduled run starts with
them, since the accounts just checked have gone to the back. So a gateway with more accounts than one run
reaches still renews every due token first, and checks everyone within a few runs; a shorter RefreshSchedule
adds runs when AccountsDeferred stays above 0.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from igdm.contracts.account_status import AccountChange
from igdm.contracts.profile import MessengerProfile
from igdm.meta.instagram_login import LONG_LIVED_SECONDS, IssuedToken, LoginError, Profile, missing_fields
from igdm.meta.versions import days_to_sunset
from igdm.runtime.observability import logger
from igdm.store.accounts import ACTIVE, DISCONNECTED, EXPIRING, NEEDS_REAUTHORISATION, Account
from igdm.store.tokens import CURRENT, PENDING, TokenDocument

DAY = 86_400
MIN_TOKEN_AGE_SECONDS = DAY  # Meta refreshes only tokens at least 24 hours old
STAGE_ATTEMPTS = 3  # writes of a new token to Secrets Manager before it is kept in the table instead
STAGE_BACKOFF_SECONDS = 0.2
# Should neither Secrets Manager nor the table take a new token, both are tried again for this long (never
# closer than KEEP_RESERVE_SECONDS to the invocation's end): giving up loses the token.
KEEP_BUDGET_SECONDS = 60.0
KEEP_RESERVE_SECONDS = 30.0
# No account is started with less time left than this: its check then ends (the keep loop above stopping
# KEEP_RESERVE_SECONDS before the end) before Lambda cuts the run off, and the run reports what it left.
ACCOUNT_RESERVE_SECONDS = KEEP_RESERVE_SECONDS + 15.0

REFRESH = "refresh"
NOT_DUE = "not_due"
TOO_YOUNG = "too_young"
EXPIRED = "expired"

# Meta's 190 subcodes (fact sheet §8), as the stable reasons of account_status events.
DEAD_TOKEN_REASONS = {
    458: "app_deauthorised",
    459: "checkpoint_required",
    460: "token_revoked",
    463: "token_expired",
    464: "user_unconfirmed",
    467: "token_invalid",
}


class Accounts(Protocol):
    """The account items (igdm.store.accounts.AccountTable)."""

    def all(self) -> list[Account]: ...

    def record_refresh(self, account_id: str, document: TokenDocument, *, now: float) -> None: ...

    def set_status(self, account_id: str, status: str, detail: str | None, *, now: float | None = None) -> None: ...

    def record_check(
        self, account_id: str, *, now: float, subscribed_fields: list[str] | None = None, error: str | None = None
    ) -> None: ...

    def record_profile_check(self, account_id: str, *, now: float) -> None: ...


class Vault(Protocol):
    """The token secrets, version by version (igdm.store.tokens.TokenVault)."""

    def read(self, secret_id: str, account_id: str, stage: str = CURRENT) -> tuple[TokenDocument, str] | None: ...

    def stage(self, secret_id: str, document: TokenDocument) -> str: ...

    def make_current(self, secret_id: str, document: TokenDocument) -> str: ...

    def promote(self, secret_id: str, version_id: str, current_version_id: str) -> None: ...

    def discard_pending(self, secret_id: str, version_id: str) -> None: ...


class Rescue(Protocol):
    """Where a renewed token waits while Secrets Manager refuses it (igdm.store.accounts.TokenRescue)."""

    def keep(self, document: TokenDocument, *, now: float) -> None: ...

    def get(self, account_id: str) -> TokenDocument | None: ...

    def drop(self, account_id: str) -> None: ...


class Login(Protocol):
    """Meta's token and subscription calls (igdm.meta.instagram_login.InstagramLogin)."""

    def refresh(self, token: str) -> IssuedToken: ...

    def me(self, token: str) -> Profile: ...

    def subscribed_fields(self, token: str) -> set[str]: ...

    def subscribe(self, token: str, wanted: list[str]) -> tuple[list[str], list[str]]: ...

    def messenger_profile(self, token: str, fields: list[str]) -> dict[str, Any]: ...

    def set_messenger_profile(self, token: str, body: dict[str, Any]) -> None: ...


class AccountEvents(Protocol):
    """account_status events on the events queue (igdm.queues.account_publisher.AccountEventPublisher)."""

    def publish(self, changes: list[AccountChange], *, now: float) -> list[AccountChange]: ...


def refresh_decision(now: float, *, refreshed_at: float | None, expires_at: float | None, window_seconds: float) -> str:
    """Whether to call refresh_access_token now. An expired token cannot be refreshed (only a new login
    helps); one younger than a day is refused by Meta; an unknown expiry is learnt by refreshing."""
    if expires_at is not None and expires_at <= now:
        return EXPIRED
    if refreshed_at is not None and now - refreshed_at < MIN_TOKEN_AGE_SECONDS:
        return TOO_YOUNG
    if expires_at is None or expires_at - now <= window_seconds:
        return REFRESH
    return NOT_DUE


@dataclass
class RunReport:
    accounts: int = 0
    refreshed: list[str] = field(default_factory=list)
    refresh_failed: list[str] = field(default_factory=list)
    needs_reauthorisation: list[str] = field(default_factory=list)
    expiring: list[str] = field(default_factory=list)
    resubscribed: list[str] = field(default_factory=list)
    subscription_failed: list[str] = field(default_factory=list)
    check_failed: list[str] = field(default_factory=list)
    earliest_expiry_days: float | None = None
    events_unpublished: int = 0
    rescued: list[str] = field(default_factory=list)  # new tokens kept in the table, Secrets Manager refusing
    profiles_restored: list[str] = field(default_factory=list)  # ice breakers or menu applied again after drift
    profile_failed: list[str] = field(default_factory=list)  # Meta would not show or take the profile
    graph_api_sunset_days: float | None = None  # until Meta retires the pinned Graph API version (None: unknown)
    deferred: list[str] = field(default_factory=list)  # not checked: the run's time was up (the next run's first)

    @property
    def retry_worthy(self) -> bool:
        """Failures another attempt soon may fix (Meta or AWS not answering); dead tokens are not, nor accounts
        the run had no time for (the next run starts with them: retrying at once would raise an error alarm
        every day for a gateway that simply has many accounts)."""
        return bool(
            self.refresh_failed
            or self.check_failed
            or self.subscription_failed
            or self.events_unpublished
            or self.profile_failed
        )

    def summary(self) -> dict[str, object]:
        return {
            "accounts": self.accounts,
            "refreshed": self.refreshed,
            "refresh_failed": self.refresh_failed,
            "needs_reauthorisation": self.needs_reauthorisation,
            "expiring": self.expiring,
            "resubscribed": self.resubscribed,
            "subscription_failed": self.subscription_failed,
            "check_failed": self.check_failed,
            "events_unpublished": self.events_unpublished,
            "rescued": self.rescued,
            "profiles_restored": self.profiles_restored,
            "profile_failed": self.profile_failed,
            "deferred": len(self.deferred),  # a count: there may be thousands
            "graph_api_sunset_days": (
                None if self.graph_api_sunset_days is None else round(self.graph_api_sunset_days, 1)
            ),
            "earliest_expiry_days": (
                None if self.earliest_expiry_days is None else round(self.earliest_expiry_days, 2)
            ),
        }


class TokenNotKept(Exception):
    """Neither Secrets Manager nor the table took a refreshed token in the time there was."""


class Refresher:
    def __init__(
        self,
        *,
        accounts: Accounts,
        vault: Vault,
        rescue: Rescue,
        login: Login,
        events: AccountEvents,
        webhook_fields: list[str],
        window_seconds: float,
        warning_seconds: float,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        graph_api_version: str | None = None,
    ) -> None:
        self.graph_api_version = graph_api_version
        self.accounts = accounts
        self.vault = vault
        self.rescue = rescue
        self.sleep = sleep
        self.remaining_seconds: Callable[[], float] = lambda: 300.0  # the handler sets the invocation's
        self.login = login
        self.events = events
        self.webhook_fields = webhook_fields
        self.window_seconds = window_seconds
        self.warning_seconds = warning_seconds
        self.clock = clock

    def run(self) -> RunReport:
        now = self.clock()
        report = RunReport()
        if self.graph_api_version is not None:
            report.graph_api_sunset_days = days_to_sunset(self.graph_api_version, now)
            if report.graph_api_sunset_days is None:
                logger.warning(
                    "the Graph API version's sunset date is unknown: add it to igdm/meta/versions.py",
                    extra={"graph_api_version": self.graph_api_version},
                )
        changes: list[AccountChange] = []
        connected = [a for a in self.accounts.all() if a.status != DISCONNECTED]  # removed: no token to check
        ordered = check_order(connected, now, self.window_seconds)
        for position, account in enumerate(ordered):
            if self.remaining_seconds() < ACCOUNT_RESERVE_SECONDS:
                report.deferred = [a.account_id for a in ordered[position:]]
                logger.warning(
                    "refresher run out of time: the accounts left go first next time",
                    extra={"checked": report.accounts, "deferred": len(report.deferred)},
                )
                break
            report.accounts += 1
            try:
                _AccountRun(self, account, now, report, changes).check()
            except Exception as exc:  # isolation: the next account is checked whatever this one raised
                logger.error(
                    "account check failed", extra={"account_id": account.account_id, "error": type(exc).__name__}
                )
                report.check_failed.append(account.account_id)
        if changes:
            report.events_unpublished = len(self.events.publish(changes, now=now))
        return report


def check_order(accounts: list[Account], now: float, window_seconds: float) -> list[Account]:
    """Tokens to renew first, soonest expiry first (an unknown expiry is renewed to learn it); then every other
    account, least recently checked first (never checked: first of all), so that consecutive runs that each
    reach only some of the accounts go round all of them. A dead account's token cannot be renewed: it waits
    its turn with the rest."""

    def due(account: Account) -> bool:
        expires = account.token_expires_at
        return account.status != NEEDS_REAUTHORISATION and (expires is None or expires - now <= window_seconds)

    renew = sorted((a for a in accounts if due(a)), key=lambda a: a.token_expires_at or 0)
    rest = sorted((a for a in accounts if not due(a)), key=lambda a: a.last_checked_at or "")
    return renew + rest


class _AccountRun:
    def __init__(
        self, refresher: Refresher, account: Account, now: float, report: RunReport, changes: list[AccountChange]
    ) -> None:
        self.r = refresher
        self.account = account
        self.now = now
        self.report = report
        self.changes = changes
        self.id = account.account_id
        self.error: str | None = None  # the latest problem, kept on the account item as last_error

    def check(self) -> None:
        adopted = self._adopt_rescued()
        if adopted is None:  # a new token still waits in the table: nothing else until it is in place
            self.r.accounts.record_check(self.id, now=self.now, error=self.error)
            return
        stored = self.r.vault.read(self.account.token_secret_id, self.id)
        if stored is None:
            self._dead(None, None, "token_missing", "the account's token secret has no current version")
            return
        document, version = stored
        if self.account.status == NEEDS_REAUTHORISATION and not adopted:
            self._check_dead_account(document)
            return
        current = (document, version, True) if adopted else self._renewed_if_due(document, version)
        if current is None:
            return  # dead, reported
        healthy = self._healthy(*current)
        if healthy is None:
            return  # dead, reported
        document, subscribed = healthy
        self._check_profile(document)
        self.r.accounts.record_check(self.id, now=self.now, subscribed_fields=subscribed, error=self.error)
        self._note_expiry(document)

    def _check_profile(self, document: TokenDocument) -> None:
        """The account's declared ice breakers and menu, applied again when Meta no longer shows them (an
        edit in another tool, or Meta dropping them)."""
        if not self.account.messenger_profile:
            return
        try:
            profile = MessengerProfile.model_validate_json(self.account.messenger_profile)
        except ValueError:
            self.error = "the declared messenger profile is unreadable; set it again with tools.accounts profile"
            self.report.profile_failed.append(self.id)
            return
        try:
            shown = self.r.login.messenger_profile(document.access_token, profile.fields)
            if profile.shown_by(shown):
                self.r.accounts.record_profile_check(self.id, now=self.now)
                return
            self.r.login.set_messenger_profile(document.access_token, profile.graph_body())
        except LoginError as error:
            self.report.profile_failed.append(self.id)
            self.error = f"ice breakers and menu not checked: {error.detail}"
            return
        logger.warning("messenger profile drifted; applied again", extra={"account_id": self.id})
        self.r.accounts.record_profile_check(self.id, now=self.now)
        self.report.profiles_restored.append(self.id)
        self.changes.append(
            AccountChange(
                self.id,
                self.account.status,
                "profile_restored",
                reason="profile_drifted",
                detail=f"Meta no longer showed the declared {profile.summary()}; applied again",
                username=self.account.username,
            )
        )

    def _renewed_if_due(self, document: TokenDocument, version: str) -> tuple[TokenDocument, str, bool] | None:
        """The token to go on with (refreshed when due), and whether it is proven; None when the account turned
        out dead (reported)."""
        decision = refresh_decision(
            self.now,
            refreshed_at=document.refreshed_at,
            expires_at=document.expires_at,
            window_seconds=self.r.window_seconds,
        )
        if decision == EXPIRED:
            # Our record says it lapsed; a pending token left by an interrupted refresh may still save it.
            if not self._dead(document, version, "token_expired", "the token expired before it was refreshed"):
                return None
            return self._current()
        if decision == REFRESH:
            return self._refresh(document, version)
        return document, version, False

    def _healthy(
        self, document: TokenDocument, version: str, proven: bool
    ) -> tuple[TokenDocument, list[str] | None] | None:
        """The token proven with /me (unless it is already), and the webhook fields subscribed after the check
        (None when Meta did not answer: the run is retried); None when the account turned out dead."""
        try:
            if not proven:
                try:
                    self.r.login.me(document.access_token)
                except LoginError as error:
                    if not error.token_dead:
                        raise
                    if not self._dead(document, version, _dead_reason(error), error.detail, error):
                        return None
                    document, version, _ = self._current()
            return document, self._check_subscription(document)
        except LoginError as error:  # Meta did not answer: the expiry is still noted, the run retried
            self.report.check_failed.append(self.id)
            self.error = f"health check failed: {error.detail}"
            return document, None

    # --- refresh ---

    def _refresh(self, document: TokenDocument, version: str) -> tuple[TokenDocument, str, bool] | None:
        try:
            issued = self.r.login.refresh(document.access_token)
        except LoginError as error:
            if error.token_dead:
                if not self._dead(document, version, _dead_reason(error), error.detail, error):
                    return None
                return self._current()
            if document.refreshed_at is None and error.code == 100:
                # A pasted token of unknown age: Meta refuses one younger than a day. Not a failure;
                # its age is now known to be under a day, and tomorrow's run refreshes it.
                logger.info("token too young to refresh", extra={"account_id": self.id})
                return document, version, False
            self._refresh_failed(f"refresh refused: {error.detail}")
            return document, version, False
        renewed = replace(
            document,
            access_token=issued.access_token,
            refreshed_at=int(self.now),
            expires_at=int(self.now + (issued.expires_in or LONG_LIVED_SECONDS)),
        )
        return self._install(document, version, renewed)

    def _install(
        self, document: TokenDocument, version: str, renewed: TokenDocument
    ) -> tuple[TokenDocument, str, bool] | None:
        """Make a renewed token current: kept (in Secrets Manager, or the table), proven, promoted. Whatever
        fails, the working token stays current; None when the renewed one waits in the table."""
        secret = self.account.token_secret_id
        try:
            pending = self._keep(secret, renewed)
        except TokenNotKept as exc:
            logger.error(
                "a refreshed token could not be stored anywhere", extra={"account_id": self.id, "error": str(exc)}
            )
            self._refresh_failed(f"the new token could not be stored: {exc}")
            return document, version, False
        if pending is None:
            # Meta may have revoked the old token, so it is not checked now (a dead old token is no reason to
            # ask for a new login); the run is retried, and the retry puts the new token in place.
            self.report.rescued.append(self.id)
            self._refresh_failed(
                "Secrets Manager refused the new token; it is kept in the table until a later run writes it there"
            )
            self.r.accounts.record_check(self.id, now=self.now, error=self.error)
            return None
        profile = self._proven_pending(secret, pending, renewed)
        if profile is None:
            return document, version, False
        try:
            self.r.vault.promote(secret, pending, version)
        except Exception as exc:
            # The promotion may have happened all the same (its answer lost, or only clearing the pending
            # label failed): what counts is which token is current now.
            if not self._is_current(secret, renewed):
                # Left pending: the old token stays current, and a run that finds it dead promotes this one.
                self._refresh_failed(f"the new token could not be made current: {type(exc).__name__}")
                return document, version, False
        renewed = replace(renewed, username=profile.username or renewed.username)
        self.r.accounts.record_refresh(self.id, renewed, now=self.now)
        self.report.refreshed.append(self.id)
        logger.info("token refreshed", extra={"account_id": self.id, "expires_at": renewed.expires_at})
        return renewed, pending, True

    def _proven_pending(self, secret: str, pending: str, renewed: TokenDocument) -> Profile | None:
        """/me's answer for the renewed token, when it names this account; None (and the failure reported)
        when it does not, the pending version discarded if Meta handed out a token it refuses."""
        try:
            profile = self.r.login.me(renewed.access_token)
        except LoginError as error:
            if error.token_dead:  # Meta handed out a token it does not accept: never promote it
                self.r.vault.discard_pending(secret, pending)
            self._refresh_failed(f"the new token failed /me: {error.detail}")
            return None
        if profile.user_id != self.id:
            self.r.vault.discard_pending(secret, pending)
            self._refresh_failed(f"the new token belongs to account {profile.user_id}")
            return None
        return profile

    def _keep(self, secret: str, renewed: TokenDocument) -> str | None:
        """The new token's pending version in Secrets Manager; None when only the table took it."""
        budget = min(KEEP_BUDGET_SECONDS, self.r.remaining_seconds() - KEEP_RESERVE_SECONDS)
        deadline = time.monotonic() + max(budget, 0.0)
        attempt = 0
        while True:
            try:
                return self.r.vault.stage(secret, renewed)
            except Exception as exc:
                failure = f"Secrets Manager: {type(exc).__name__}"
            attempt += 1
            if attempt >= STAGE_ATTEMPTS:
                try:
                    self.r.rescue.keep(renewed, now=self.now)
                    logger.warning(
                        "new token kept in the table: Secrets Manager refused it",
                        extra={"account_id": self.id, "error": failure},
                    )
                    return None
                except Exception as exc:
                    failure += f"; the table: {type(exc).__name__}"
            if time.monotonic() >= deadline:
                raise TokenNotKept(failure)
            self.r.sleep(min(STAGE_BACKOFF_SECONDS * 2 ** (attempt - 1), 5.0))

    def _adopt_rescued(self) -> bool | None:
        """A new token an earlier run could only keep in the table, put in Secrets Manager as the current one
        (it is proven first). True when that happened, False when none waits (or it no longer works), None
        when it still waits: the run reports the account failed, so it is retried."""
        rescued = self.r.rescue.get(self.id)
        if rescued is None:
            return False
        try:
            profile = self.r.login.me(rescued.access_token)
        except LoginError as error:
            if not error.token_dead:
                self._refresh_failed(f"the new token kept in the table could not be checked: {error.detail}")
                return None
            logger.warning("the new token kept in the table no longer works; dropped", extra={"account_id": self.id})
            self.r.rescue.drop(self.id)
            return False
        if profile.user_id != self.id:
            self.r.rescue.drop(self.id)  # never made current: it is not this account's
            return False
        secret = self.account.token_secret_id
        try:
            self.r.vault.make_current(secret, rescued)
        except Exception as exc:
            if not self._is_current(secret, rescued):
                self._refresh_failed(
                    f"Secrets Manager still refuses the new token kept in the table: {type(exc).__name__}"
                )
                return None
        self.r.rescue.drop(self.id)  # only now: until Secrets Manager has it, this is its one copy
        rescued = replace(rescued, username=profile.username or rescued.username)
        self.r.accounts.record_refresh(self.id, rescued, now=self.now)
        self.report.refreshed.append(self.id)
        logger.info("new token kept in the table is now current", extra={"account_id": self.id})
        if self.account.status == NEEDS_REAUTHORISATION:  # marked by the sender while the old token was dead
            self.changes.append(
                AccountChange(
                    self.id,
                    ACTIVE,
                    "recovered",
                    reason="token_works",
                    detail="the refreshed token Secrets Manager had refused is current",
                    username=self.account.username,
                    token_expires_at=rescued.expires_at,
                )
            )
        return True

    def _is_current(self, secret: str, renewed: TokenDocument) -> bool:
        try:
            stored = self.r.vault.read(secret, self.id)
        except Exception:
            return False  # unknown: the old token is taken as current, as the next run will check
        return stored is not None and stored[0].access_token == renewed.access_token

    def _refresh_failed(self, detail: str) -> None:
        logger.warning("token refresh failed", extra={"account_id": self.id, "detail": detail[:300]})
        self.report.refresh_failed.append(self.id)
        self.error = detail

    def _current(self) -> tuple[TokenDocument, str, bool]:
        stored = self.r.vault.read(self.account.token_secret_id, self.id)
        if stored is None:
            raise RuntimeError("the token secret lost its current version")
        return stored[0], stored[1], True

    # --- dead tokens ---

    def _dead(
        self,
        document: TokenDocument | None,
        version: str | None,
        reason: str,
        detail: str,
        error: LoginError | None = None,
    ) -> bool:
        """The current token is dead. True when a pending token (from a refresh whose promotion did not
        happen) works and is now current; otherwise the account needs a new login, and says so."""
        if document is not None and version is not None and self._promote_pending(document, version):
            return True
        self.r.accounts.set_status(self.id, NEEDS_REAUTHORISATION, f"{reason}: {detail}", now=self.now)
        self.report.needs_reauthorisation.append(self.id)
        self.changes.append(
            AccountChange(
                self.id,
                NEEDS_REAUTHORISATION,
                "token_dead",
                reason=reason,
                detail=detail[:500],
                username=self.account.username,
                token_expires_at=document.expires_at if document else None,
                error=error.as_graph_error() if error and error.code is not None else None,
            )
        )
        logger.error("account needs re-authorisation", extra={"account_id": self.id, "reason": reason})
        return False

    def _promote_pending(self, document: TokenDocument, version: str) -> bool:
        stored = self.r.vault.read(self.account.token_secret_id, self.id, PENDING)
        if stored is None or stored[1] == version or stored[0].access_token == document.access_token:
            return False
        pending, pending_version = stored
        try:
            profile = self.r.login.me(pending.access_token)
        except LoginError:
            return False
        if profile.user_id != self.id:
            return False
        self.r.vault.promote(self.account.token_secret_id, pending_version, version)
        self.r.accounts.record_refresh(self.id, pending, now=self.now)
        self.report.refreshed.append(self.id)
        logger.info("pending token promoted", extra={"account_id": self.id})
        return True

    def _check_dead_account(self, document: TokenDocument) -> None:
        """Only a new login brings an account back, but a token that works again (Meta answered 190 in
        error, or a pending token) is noticed rather than left unused."""
        try:
            self.r.login.me(document.access_token)
        except LoginError:
            self.report.needs_reauthorisation.append(self.id)
            return
        self.r.accounts.set_status(self.id, ACTIVE, None, now=self.now)
        self.changes.append(
            AccountChange(
                self.id,
                ACTIVE,
                "recovered",
                reason="token_works",
                detail="the token marked dead passed /me again",
                username=self.account.username,
                token_expires_at=document.expires_at,
            )
        )

    # --- subscription and expiry ---

    def _check_subscription(self, document: TokenDocument) -> list[str]:
        """The fields subscribed after the check (re-subscribing when Meta dropped any)."""
        subscribed = self.r.login.subscribed_fields(document.access_token)
        missing = missing_fields(self.r.webhook_fields, subscribed)
        if not missing:
            return sorted(subscribed)
        logger.warning("webhook fields missing", extra={"account_id": self.id, "missing": missing})
        try:
            fields, unsupported = self.r.login.subscribe(document.access_token, self.r.webhook_fields)
        except LoginError as error:
            self.report.subscription_failed.append(self.id)
            self.error = f"re-subscribing failed: {error.detail}"
            self.changes.append(
                AccountChange(
                    self.id,
                    self.account.status,
                    "subscription_lost",
                    reason="resubscribe_failed",
                    detail=error.detail[:500],
                    username=self.account.username,
                    missing_fields=missing,
                    subscribed_fields=sorted(subscribed),
                    error=error.as_graph_error() if error.code else None,
                )
            )
            return sorted(subscribed)
        dropped = [f for f in missing if f not in unsupported]
        if not dropped:
            # Fields Meta does not offer this account at all (the 2026 Unified Login list lacks the handover
            # fields): nothing was dropped, so nothing is announced; the next run asks again, in case it does.
            logger.info("webhook fields Meta does not offer", extra={"account_id": self.id, "fields": unsupported})
            return sorted(fields)
        missing = dropped
        self.report.resubscribed.append(self.id)
        detail = f"Meta had dropped {', '.join(missing)}; subscribed again"
        if unsupported:
            detail += f" (Meta accepts no spelling of {', '.join(unsupported)})"
        self.changes.append(
            AccountChange(
                self.id,
                self.account.status,
                "subscription_restored",
                reason="fields_missing",
                detail=detail,
                username=self.account.username,
                missing_fields=missing,
                subscribed_fields=fields,
            )
        )
        return sorted(fields)

    def _note_expiry(self, document: TokenDocument) -> None:
        if document.expires_at is None:
            return
        days = (document.expires_at - self.now) / DAY
        if self.report.earliest_expiry_days is None or days < self.report.earliest_expiry_days:
            self.report.earliest_expiry_days = days
        if document.expires_at - self.now > self.r.warning_seconds:
            if self.account.status == EXPIRING and self.id not in self.report.refreshed:
                self.r.accounts.set_status(self.id, ACTIVE, None, now=self.now)
            return
        self.report.expiring.append(self.id)
        if self.account.status != EXPIRING:
            detail = f"the token expires in {days:.1f} days and has not been refreshed"
            self.r.accounts.set_status(self.id, EXPIRING, detail, now=self.now)
            self.changes.append(
                AccountChange(
                    self.id,
                    EXPIRING,
                    "token_expiring",
                    reason="refresh_not_done",
                    detail=detail,
                    username=self.account.username,
                    token_expires_at=document.expires_at,
                )
            )


def _dead_reason(error: LoginError) -> str:
    return DEAD_TOKEN_REASONS.get(error.subcode or 0, "token_invalid")
