"""180 days of the refresher, run daily on a clock the test controls, the sandbox's tokens ageing with it:
no token lapses, and a revoked token and a dropped subscription are each reported within one run."""

import pytest

from igdm.store.accounts import NEEDS_REAUTHORISATION
from local.harnesses.accounts import AccountsHarness
from refresher.service import DAY

A, B, C = "17841400000000021", "17841400000000022", "17841400000000023"
REVOKE_DAY = 45
UNSUBSCRIBE_DAY = 100


@pytest.mark.parametrize(
    "accounts",
    [{}, {"refresh_invalidates_old": True}],
    indirect=True,
    ids=["old-token-survives-refresh", "refresh-kills-old-token"],
)
def test_180_days_no_token_lapses_and_each_fault_is_reported_within_one_run(accounts: AccountsHarness) -> None:
    accounts.add(A, "token-a", age_days=0)
    accounts.add(B, "token-b", age_days=10)
    accounts.add(C, "token-c", age_days=50)  # ten days left at the start
    refreshes = {A: 0, B: 0, C: 0}
    revoked_reported = resubscribed_reported = None
    for day in range(1, 181):
        accounts.clock.advance(DAY)
        if day == REVOKE_DAY:
            accounts.sandbox.revoke(B)  # B's owner changed their password
        if day == UNSUBSCRIBE_DAY:
            accounts.sandbox.unsubscribe(C)  # Meta dropped C's subscription
        report = accounts.run()
        assert not report.refresh_failed and not report.check_failed, (day, report.summary())
        for account_id in report.refreshed:
            refreshes[account_id] += 1
        events = accounts.account_events()
        if B in report.needs_reauthorisation and revoked_reported is None:
            revoked_reported = day
            assert [(e["account_id"], e["account"]["change"]) for e in events] == [(B, "token_dead")]
        if C in report.resubscribed:
            assert resubscribed_reported is None, "a restored subscription stays restored"
            resubscribed_reported = day
            assert [(e["account_id"], e["account"]["change"]) for e in events] == [(C, "subscription_restored")]
        # Every account not revoked holds a token the sandbox accepts today, and well ahead of expiry.
        for account_id in (A, C) if day >= REVOKE_DAY else (A, B, C):
            assert accounts.token_alive(account_id), (day, account_id)
            document = accounts.token(account_id)
            assert document is not None and document.expires_at is not None
            assert document.expires_at - accounts.clock.now > 29 * DAY, (day, account_id)
    assert revoked_reported == REVOKE_DAY
    assert resubscribed_reported == UNSUBSCRIBE_DAY
    assert accounts.account(B).status == NEEDS_REAUTHORISATION
    # About one refresh a month each: the window is 30 days of a 60-day token.
    assert 5 <= refreshes[A] <= 6 and 5 <= refreshes[C] <= 7 and 1 <= refreshes[B] <= 2, refreshes
    assert sorted(accounts.sandbox.subscribed_fields(C)) == sorted(accounts.fields)
