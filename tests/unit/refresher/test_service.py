"""The refresher's run on in-memory ports: which tokens are renewed and installed, what is reported, and
which accounts' items and events say so. The refresh decision's edges are in test_refresh_decision.py."""

from dataclasses import dataclass, replace
from datetime import UTC, datetime

import pytest

from igdm.contracts.account_status import AccountChange
from igdm.contracts.profile import MessengerProfile
from igdm.store.accounts import ACTIVE, EXPIRING, NEEDS_REAUTHORISATION, Account
from igdm.store.tokens import PENDING, PREVIOUS, TokenDocument
from refresher.service import ACCOUNT_RESERVE_SECONDS, DAY, Refresher, RunReport, check_order
from tests.fakes.accounts import MemoryAccountEvents, MemoryAccountTable, MemoryRescue, MemoryVault
from tests.fakes.clock import ManualClock
from tests.fakes.instagram import FakeInstagram, LoginRequest, token_dead, unavailable

A, B, C = "17841400000000011", "17841400000000012", "17841400000000013"
NOW = 1_800_000_000.0
FIELDS = ["messages", "messaging_postbacks", "message_reactions", "messaging_seen"]


@dataclass
class World:
    clock: ManualClock
    table: MemoryAccountTable
    vault: MemoryVault
    rescue: MemoryRescue
    instagram: FakeInstagram
    events: MemoryAccountEvents
    refresher: Refresher

    def add(
        self,
        account_id: str,
        token: str,
        *,
        age_days: float = 0,
        expires_in_days: float = 60,
        refreshed_known: bool = True,
        subscribed: bool = True,
    ) -> None:
        """An account connected ``age_days`` ago, known to Instagram and the gateway alike."""
        issued = self.clock.now - age_days * DAY
        username = f"shop_{account_id[-2:]}"
        self.instagram.add_account(account_id, username, token, issued_at=issued, expires_in=expires_in_days * DAY)
        document = TokenDocument(
            token,
            account_id,
            username,
            ("instagram_business_basic", "instagram_business_manage_messages"),
            expires_at=int(issued + expires_in_days * DAY) if refreshed_known else None,
            refreshed_at=int(issued) if refreshed_known else None,
        )
        self.table.save(document, self.vault.store(document), now=issued)
        if subscribed:
            self.instagram.subscribe(token, FIELDS)
        self.instagram.requests.clear()

    def run(self) -> RunReport:
        return self.refresher.run()

    def account(self, account_id: str) -> Account:
        account = self.table.get(account_id)
        assert account is not None
        return account

    def current_token(self, account_id: str, stage: str = "AWSCURRENT") -> str | None:
        document = self.vault.token(account_id, stage)
        return document.access_token if document else None

    def changes(self) -> list[tuple[str, str, str | None]]:
        return [(c.account_id, c.change, c.reason) for c in self.events.take()]

    def refresh_calls(self) -> list[LoginRequest]:
        return [r for r in self.instagram.requests if r.endpoint == "refresh"]


def world(*, refresh_invalidates_old: bool = False) -> World:
    clock = ManualClock(NOW)
    table, vault, rescue, events = MemoryAccountTable(), MemoryVault(), MemoryRescue(), MemoryAccountEvents()
    instagram = FakeInstagram(clock, refresh_invalidates_old=refresh_invalidates_old)
    refresher = Refresher(
        accounts=table,
        vault=vault,
        rescue=rescue,
        login=instagram,
        events=events,
        webhook_fields=FIELDS,
        window_seconds=30 * DAY,
        warning_seconds=7 * DAY,
        clock=clock,
        sleep=clock.sleep,
    )
    return World(clock, table, vault, rescue, instagram, events, refresher)


# ---- renewing


def test_a_due_token_is_refreshed_proven_and_installed_and_the_old_one_kept_as_previous() -> None:
    w = world()
    w.add(A, "token-a", age_days=35)  # expires in 25 days: inside the 30-day window
    report = w.run()
    assert (report.refreshed, report.refresh_failed, report.retry_worthy) == ([A], [], False)
    current = w.vault.token(A)
    assert current is not None and current.access_token != "token-a" and w.instagram.alive(current.access_token)
    assert (current.refreshed_at, current.expires_at) == (int(NOW), int(NOW + 60 * DAY))
    assert current.username == "shop_11" and current.scopes == (
        "instagram_business_basic",
        "instagram_business_manage_messages",
    )
    assert w.current_token(A, PREVIOUS) == "token-a"
    assert w.current_token(A, PENDING) is None  # the pending label was cleared after promotion
    account = w.account(A)
    assert (account.status, account.token_expires_at) == (ACTIVE, current.expires_at)
    assert w.table.token_refreshed_at[A] == int(NOW) and A not in w.table.last_error
    assert report.earliest_expiry_days == pytest.approx(60)
    assert w.changes() == []


def test_a_token_not_due_is_left_as_it_is_and_only_checked() -> None:
    w = world()
    w.add(A, "token-a", age_days=2)  # 58 days left
    report = w.run()
    assert (report.accounts, report.refreshed, report.refresh_failed) == (1, [], [])
    assert w.refresh_calls() == []
    assert w.current_token(A) == "token-a" and w.current_token(A, PENDING) is None
    assert w.account(A).subscribed_fields == tuple(sorted(FIELDS))
    assert w.table.last_checked_at[A] == NOW and A not in w.table.last_error
    assert report.earliest_expiry_days == pytest.approx(58)
    assert w.changes() == []


def test_a_failed_refresh_is_reported_and_the_next_accounts_are_checked_all_the_same() -> None:
    w = world()
    w.add(A, "token-a", age_days=40)
    w.add(B, "token-b", age_days=40)
    w.add(C, "token-c", age_days=40)
    w.instagram.revoke(A)  # a password reset
    w.instagram.fail("refresh", unavailable("refresh_access_token"), account_id=B)
    report = w.run()
    assert (report.needs_reauthorisation, report.refresh_failed, report.refreshed) == ([A], [B], [C])
    assert report.retry_worthy  # B's refresh deserves another try soon
    assert w.current_token(B) == "token-b" and w.instagram.alive("token-b")
    assert w.account(B).status == ACTIVE
    assert w.table.last_error[B] == "refresh refused: refresh_access_token: An unexpected error has occurred"
    assert w.account(A).status == NEEDS_REAUTHORISATION
    assert w.changes() == [(A, "token_dead", "token_revoked")]
    w.clock.advance(DAY)  # the next day B is refreshed; A stays dead without a new event
    again = w.run()
    assert (again.refreshed, again.needs_reauthorisation) == ([B], [A])
    assert w.changes() == []


def test_an_account_whose_check_raises_is_reported_and_does_not_stop_the_next() -> None:
    w = world()
    w.add(A, "token-a", age_days=40)
    w.add(B, "token-b", age_days=40)
    w.vault.refusals.refuse("read", times=1)  # Secrets Manager fails A's read
    report = w.run()
    assert (report.check_failed, report.refreshed) == ([A], [B])
    assert report.retry_worthy
    assert w.current_token(A) == "token-a"


def test_a_pasted_token_too_young_to_refresh_is_not_a_failure() -> None:
    w = world()
    w.add(A, "pasted", age_days=0.5, refreshed_known=False)  # its age and expiry unknown to the gateway
    report = w.run()
    assert (report.refreshed, report.refresh_failed, report.needs_reauthorisation) == ([], [], [])
    assert len(w.refresh_calls()) == 1  # Meta said it is under a day old: tomorrow's run renews it
    assert w.current_token(A) == "pasted" and A not in w.table.last_error


# ---- installing a renewed token whatever fails


def test_a_new_token_that_fails_me_is_never_promoted() -> None:
    w = world()
    w.add(A, "token-a", age_days=40)
    w.instagram.fail("me", token_dead(467, "Invalid OAuth access token"), account_id=A)
    report = w.run()
    assert (report.refresh_failed, report.refreshed) == ([A], [])
    assert w.current_token(A) == "token-a" and w.current_token(A, PENDING) is None
    assert w.table.last_error[A] == "the new token failed /me: Invalid OAuth access token"


def test_a_failed_promotion_leaves_the_new_token_pending_and_the_next_run_promotes_it() -> None:
    w = world(refresh_invalidates_old=True)  # Meta may kill the old token on refresh: the new one must not be lost
    w.add(A, "token-a", age_days=40)
    w.vault.refusals.refuse("promote")  # for the whole run: promoting the pending token after /me fails too
    report = w.run()
    assert report.refresh_failed == [A]
    pending = w.current_token(A, PENDING)
    assert w.current_token(A) == "token-a" and pending is not None and w.instagram.alive(pending)
    assert not w.instagram.alive("token-a")
    w.vault.refusals.accept("promote")
    w.clock.advance(DAY)
    again = w.run()
    assert (again.refreshed, again.needs_reauthorisation) == ([A], [])
    assert w.current_token(A) == pending and w.account(A).status == ACTIVE
    assert w.changes() == []


def test_a_refused_promotion_is_made_good_in_the_same_run_once_the_old_token_proves_dead() -> None:
    w = world(refresh_invalidates_old=True)
    w.add(A, "token-a", age_days=40)
    w.vault.refusals.refuse("promote", times=1)
    report = w.run()
    assert (report.refresh_failed, report.refreshed, report.needs_reauthorisation) == ([A], [A], [])
    current = w.current_token(A)
    assert current is not None and current != "token-a" and w.instagram.alive(current)
    assert w.current_token(A, PENDING) is None and w.account(A).status == ACTIVE
    assert w.changes() == []


def test_a_new_token_secrets_manager_refuses_waits_in_the_table_until_a_run_puts_it_in_place() -> None:
    w = world(refresh_invalidates_old=True)
    w.add(A, "token-a", age_days=40)
    w.vault.refusals.refuse("stage")
    w.vault.refusals.refuse("make_current")
    first = w.run()
    assert (first.rescued, first.refresh_failed, first.needs_reauthorisation) == ([A], [A], [])
    kept = w.rescue.get(A)
    assert kept is not None and kept.access_token != "token-a" and w.instagram.alive(kept.access_token)
    assert w.clock.slept == [0.2, 0.4]  # three writes, backing off, before the table took it
    assert w.changes() == []  # a dead old token is no reason to ask for a new login
    # Meanwhile the sender meets the dead old token and marks the account.
    w.table.set_status(A, NEEDS_REAUTHORISATION, "Meta refused the token while sending")
    w.clock.advance(60)
    second = w.run()  # Lambda's retry, Secrets Manager still refusing: the token still waits
    assert second.refresh_failed == [A] and w.rescue.get(A) == kept
    w.vault.refusals.accept("stage")
    w.vault.refusals.accept("make_current")
    w.clock.advance(60)
    third = w.run()
    assert (third.refreshed, third.refresh_failed) == ([A], [])
    assert w.current_token(A) == kept.access_token and w.rescue.get(A) is None
    assert w.account(A).status == ACTIVE
    assert w.changes() == [(A, "recovered", "token_works")]


def test_a_new_token_nowhere_to_be_kept_leaves_the_working_one_current() -> None:
    w = world()
    w.add(A, "token-a", age_days=40)
    w.vault.refusals.refuse("stage")
    w.rescue.refusals.refuse("keep")
    # Time enough to start the account; once it is refreshing, none left to try again within the invocation.
    left = iter([ACCOUNT_RESERVE_SECONDS])
    w.refresher.remaining_seconds = lambda: next(left, 30.0)
    report = w.run()
    assert (report.refresh_failed, report.rescued, report.refreshed) == ([A], [], [])
    assert w.current_token(A) == "token-a" and w.rescue.get(A) is None
    assert w.table.last_error[A].startswith("the new token could not be stored: Secrets Manager: Unavailable")


# ---- more accounts than one run reaches


def test_tokens_to_renew_go_first_soonest_expiry_first_then_the_least_recently_checked() -> None:
    def account(account_id: str, expires_in_days: float | None, checked: str | None, status: str = ACTIVE) -> Account:
        expires = None if expires_in_days is None else int(NOW + expires_in_days * DAY)
        return Account(account_id, status, f"secret-{account_id}", token_expires_at=expires, last_checked_at=checked)

    accounts = [
        account("1", 50, "2027-01-03T00:00:00+00:00"),
        account("2", 20, "2027-01-03T00:00:00+00:00"),  # inside the 30-day window
        account("3", 50, None),  # never checked
        account("4", None, "2027-01-03T00:00:00+00:00"),  # a pasted token: renewed to learn its expiry
        account("5", 5, "2027-01-01T00:00:00+00:00"),
        account("6", 50, "2027-01-02T00:00:00+00:00"),
        account("7", -3, "2027-01-01T00:00:00+00:00", NEEDS_REAUTHORISATION),  # dead: waits its turn
    ]
    ordered = [a.account_id for a in check_order(accounts, NOW, 30 * DAY)]
    assert ordered == ["4", "5", "2", "3", "7", "6", "1"]


def test_a_run_out_of_time_leaves_the_rest_for_the_next_run_which_starts_with_them() -> None:
    w = world()
    ids = [f"178414000000001{i:02d}" for i in range(5)]
    for account_id in ids:
        w.add(account_id, f"token-{account_id}", age_days=2)  # none due: order is by last check
    time_for = iter([300.0, 300.0])  # the run has time for two accounts
    w.refresher.remaining_seconds = lambda: next(time_for, ACCOUNT_RESERVE_SECONDS - 1)

    first = w.run()
    assert (first.accounts, first.deferred, first.retry_worthy) == (2, ids[2:], False)  # not a failure
    assert sorted(w.table.last_checked_at) == ids[:2]
    assert first.summary()["deferred"] == 3

    w.clock.advance(6 * 3600)  # the next scheduled run, again with time for two
    time_for = iter([300.0, 300.0])
    second = w.run()
    assert (second.accounts, second.deferred) == (2, [ids[4], ids[0], ids[1]])
    assert {a for a, at in w.table.last_checked_at.items() if at == w.clock.now} == set(ids[2:4])

    w.clock.advance(6 * 3600)
    w.refresher.remaining_seconds = lambda: 300.0
    third = w.run()
    assert (third.accounts, third.deferred, third.retry_worthy) == (5, [], False)
    assert all(at == w.clock.now for at in w.table.last_checked_at.values())


# ---- dead and expiring tokens


def test_an_expired_token_marks_the_account_and_says_so_once() -> None:
    w = world()
    w.add(A, "token-a", age_days=61, subscribed=False)  # lapsed a day ago
    report = w.run()
    assert (report.needs_reauthorisation, report.refreshed, report.retry_worthy) == ([A], [], False)
    account = w.account(A)
    assert account.status == NEEDS_REAUTHORISATION
    assert account.status_detail == "token_expired: the token expired before it was refreshed"
    (change,) = w.events.take()
    assert (change.change, change.reason, change.status, change.token_expires_at) == (
        "token_dead",
        "token_expired",
        NEEDS_REAUTHORISATION,
        int(NOW - DAY),
    )
    assert w.run().needs_reauthorisation == [A]  # reported again, for the metric, without a second event
    assert w.changes() == []


def test_a_dead_account_whose_token_works_again_is_recovered() -> None:
    w = world()
    w.add(A, "token-a", age_days=2)
    w.table.set_status(A, NEEDS_REAUTHORISATION, "Meta refused the token while sending")  # in error
    report = w.run()
    assert report.needs_reauthorisation == []
    assert (w.account(A).status, w.account(A).status_detail) == (ACTIVE, None)
    assert w.changes() == [(A, "recovered", "token_works")]


def test_a_token_near_expiry_that_cannot_be_refreshed_makes_the_account_expiring_until_it_is() -> None:
    w = world()
    w.add(A, "token-a", age_days=55)  # 5 days left
    w.instagram.fail("refresh", unavailable("refresh_access_token"), times=2)
    report = w.run()
    assert (report.expiring, report.refresh_failed) == ([A], [A])
    assert report.earliest_expiry_days == pytest.approx(5.0)
    assert w.account(A).status == EXPIRING
    assert w.changes() == [(A, "token_expiring", "refresh_not_done")]
    w.clock.advance(DAY)
    assert w.run().refresh_failed == [A]  # still failing: no second event
    assert w.changes() == []
    w.clock.advance(DAY)
    assert w.run().refreshed == [A]
    assert w.account(A).status == ACTIVE


# ---- webhook subscriptions


def test_fields_meta_dropped_are_subscribed_again_and_reported() -> None:
    w = world()
    w.add(A, "token-a", age_days=2)
    w.add(B, "token-b", age_days=2)
    w.instagram.unsubscribe(B)  # Meta gave up on failing deliveries
    report = w.run()
    assert (report.resubscribed, report.subscription_failed) == ([B], [])
    assert w.instagram.subscriptions[B] == set(FIELDS)
    assert w.account(B).subscribed_fields == tuple(sorted(FIELDS))
    assert w.events.take() == [
        AccountChange(
            B,
            ACTIVE,
            "subscription_restored",
            reason="fields_missing",
            detail=f"Meta had dropped {', '.join(FIELDS)}; subscribed again",
            username="shop_12",
            missing_fields=FIELDS,
            subscribed_fields=FIELDS,
        )
    ]


def test_a_resubscription_meta_refuses_is_reported_as_a_lost_subscription() -> None:
    w = world()
    w.add(A, "token-a", age_days=2)
    w.instagram.unsubscribe(A)
    w.instagram.fail("subscribe", unavailable("subscribed_apps"))
    report = w.run()
    assert (report.resubscribed, report.subscription_failed, report.retry_worthy) == ([], [A], True)
    assert w.table.last_error[A] == "re-subscribing failed: subscribed_apps: An unexpected error has occurred"
    assert w.account(A).subscribed_fields == ()
    (change,) = w.events.take()
    assert (change.change, change.reason, change.missing_fields) == ("subscription_lost", "resubscribe_failed", FIELDS)
    assert change.error is not None and change.error["code"] == 2


def test_events_the_queue_did_not_take_make_the_run_worth_retrying() -> None:
    w = world()
    w.add(A, "token-a", age_days=2)
    w.instagram.revoke(A)
    w.events.refusing = True
    report = w.run()
    assert (report.needs_reauthorisation, report.events_unpublished, report.retry_worthy) == ([A], 1, True)


# ---- ice breakers and persistent menu

PROFILE = MessengerProfile.model_validate(
    {
        "ice_breakers": [
            {"call_to_actions": [{"question": "Where is my order?", "payload": "ORDER_STATUS"}], "locale": "default"}
        ],
        "persistent_menu": [
            {
                "locale": "default",
                "call_to_actions": [
                    {"type": "postback", "title": "Talk to a person", "payload": "HUMAN_AGENT"},
                    {"type": "web_url", "title": "Shop", "url": "https://shop.example.com/"},
                ],
            }
        ],
    }
)


def declared(w: World, account_id: str, token: str) -> None:
    """The account's profile was declared and applied (tools.accounts profile)."""
    w.table.accounts[account_id] = replace(w.account(account_id), messenger_profile=PROFILE.to_json())
    w.instagram.set_messenger_profile(token, PROFILE.graph_body())
    w.instagram.requests.clear()


def test_a_profile_meta_still_shows_is_only_checked() -> None:
    w = world()
    w.add(A, "token-a", age_days=2)
    declared(w, A, "token-a")
    report = w.run()
    assert (report.profiles_restored, report.profile_failed) == ([], [])
    assert [r.endpoint for r in w.instagram.requests if "profile" in r.endpoint] == ["messenger_profile"]
    assert w.account(A).profile_checked_at is not None and w.changes() == []


def test_ice_breakers_that_drifted_are_applied_again_and_reported() -> None:
    w = world()
    w.add(A, "token-a", age_days=2)
    declared(w, A, "token-a")
    w.instagram.profiles[A]["ice_breakers"] = []  # someone cleared them in another tool
    report = w.run()
    assert report.profiles_restored == [A]
    assert w.instagram.profiles[A] == {k: v for k, v in PROFILE.graph_body().items() if k != "platform"}
    assert w.changes() == [(A, "profile_restored", "profile_drifted")]


def test_a_profile_meta_will_not_show_is_reported_and_the_run_retried() -> None:
    w = world()
    w.add(A, "token-a", age_days=2)
    declared(w, A, "token-a")
    w.instagram.fail("messenger_profile", unavailable("messenger_profile"))
    report = w.run()
    assert (report.profile_failed, report.retry_worthy) == ([A], True)
    assert "ice breakers and menu not checked" in w.table.last_error[A]


def test_accounts_without_a_declared_profile_are_not_asked_for_one() -> None:
    w = world()
    w.add(A, "token-a", age_days=2)
    w.run()
    assert not [r for r in w.instagram.requests if "profile" in r.endpoint]


def test_each_run_reports_the_days_until_meta_retires_the_pinned_graph_version() -> None:
    w = world()
    w.refresher.graph_api_version = "v25.0"
    assert w.run().graph_api_sunset_days == pytest.approx((datetime(2028, 7, 29, tzinfo=UTC).timestamp() - NOW) / DAY)
    w.refresher.graph_api_version = "v99.0"
    assert w.run().graph_api_sunset_days is None  # unknown: logged, no metric


def test_fields_meta_does_not_offer_the_account_are_not_announced_as_dropped_every_day() -> None:
    w = world()
    w.refresher.webhook_fields = [*FIELDS, "standby"]
    w.instagram.not_offered = {"standby"}  # the 2026 Unified Login field list has no standby
    w.add(A, "token-a", age_days=2)
    report = w.run()
    assert (report.resubscribed, report.subscription_failed) == ([], [])
    assert w.changes() == [] and w.instagram.subscriptions[A] == set(FIELDS)
    w.instagram.subscriptions[A] = {"messages"}  # and when Meta does drop fields it offers, that is said
    report = w.run()
    assert report.resubscribed == [A]
    [(_, change, _)] = w.changes()
    assert change == "subscription_restored"
