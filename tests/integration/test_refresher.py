"""The token refresher against moto and the Graph sandbox, on a clock the test moves."""

from typing import Any

import pytest
from botocore.exceptions import ClientError

from igdm.store.account_directory import AccountDirectory
from igdm.store.accounts import ACTIVE, EXPIRING, NEEDS_REAUTHORISATION
from igdm.store.tokens import PREVIOUS
from local.harnesses.accounts import AccountsHarness
from refresher.service import DAY

A, B, C = "17841400000000011", "17841400000000012", "17841400000000013"


def test_a_due_token_is_refreshed_proven_and_promoted_and_the_old_one_kept_as_previous(
    accounts: AccountsHarness,
) -> None:
    accounts.add(A, "token-a", age_days=35)  # expires in 25 days: inside the 30-day window
    report = accounts.run()
    assert report.refreshed == [A] and not report.refresh_failed
    current = accounts.token(A)
    assert current is not None and current.access_token != "token-a"
    assert current.refreshed_at == int(accounts.clock.now)
    assert current.expires_at == int(accounts.clock.now + 60 * DAY)
    previous = accounts.token(A, PREVIOUS)
    assert previous is not None and previous.access_token == "token-a"
    assert accounts.pending(A) is None  # the pending label was cleared after promotion
    assert accounts.account(A).token_expires_at == current.expires_at
    assert accounts.account(A).status == ACTIVE
    assert accounts.token_alive(A)


@pytest.mark.parametrize(
    ("age_days", "expires_in_days", "refreshed"),
    [
        (23 / 24, 1.5, False),  # 23 hours old: Meta would refuse, so no call (even this close to expiry)
        (1.0, 1.5, True),  # a day old and inside the window
        (29.5, 60, False),  # 30.5 days left: outside the window
        (30.5, 60, True),  # 29.5 days left: inside
    ],
)
def test_refresh_decision_edges_against_the_sandbox(
    accounts: AccountsHarness, age_days: float, expires_in_days: float, refreshed: bool
) -> None:
    accounts.add(A, "token-a", age_days=age_days, expires_in_days=expires_in_days)
    report = accounts.run()
    assert (report.refreshed == [A]) is refreshed
    assert not report.refresh_failed and not report.needs_reauthorisation
    refresh_calls = [r for r in accounts.sandbox.requests if r.path == "/refresh_access_token"]
    assert len(refresh_calls) == int(refreshed)


def test_an_expired_token_marks_the_account_and_publishes_token_dead(accounts: AccountsHarness) -> None:
    accounts.add(A, "token-a", age_days=61, subscribed=False)  # lapsed a day ago
    report = accounts.run()
    assert report.needs_reauthorisation == [A] and not report.refreshed
    assert accounts.account(A).status == NEEDS_REAUTHORISATION
    [event] = accounts.account_events()
    assert event["account_id"] == A and event["account"]["change"] == "token_dead"
    assert event["account"]["reason"] == "token_expired" and event["account"]["status"] == NEEDS_REAUTHORISATION
    # The next run reports it again (for the metric) without a second event.
    assert accounts.run().needs_reauthorisation == [A]
    assert accounts.account_events() == []


def test_one_accounts_failures_never_stop_the_others(accounts: AccountsHarness) -> None:
    accounts.add(A, "token-a", age_days=40)
    accounts.add(B, "token-b", age_days=40)
    accounts.add(C, "token-c", age_days=40)
    accounts.sandbox.revoke(A)  # a password reset
    accounts.sandbox.inject("http_5xx", endpoint="refresh", account_id=B)
    report = accounts.run()
    assert report.needs_reauthorisation == [A]
    assert report.refresh_failed == [B]
    assert report.refreshed == [C]
    assert accounts.token(B) is not None and accounts.token(B).access_token == "token-b"  # type: ignore[union-attr]
    assert accounts.account(B).status == ACTIVE and accounts.token_alive(B)
    events = accounts.account_events()
    assert [(e["account_id"], e["account"]["change"], e["account"]["reason"]) for e in events] == [
        (A, "token_dead", "token_revoked")
    ]
    assert report.retry_worthy  # B's refresh deserves another try soon
    # The next day B is refreshed; A stays dead without a new event.
    accounts.clock.advance(DAY)
    again = accounts.run()
    assert again.refreshed == [B] and again.needs_reauthorisation == [A]


def _failing(client: Any, operation: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "InternalServiceError", "Message": "injected"}}, operation)

    monkeypatch.setattr(
        client,
        {"PutSecretValue": "put_secret_value", "UpdateSecretVersionStage": "update_secret_version_stage"}[operation],
        refuse,
    )


def test_a_failed_write_keeps_the_old_token_current(accounts: AccountsHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    accounts.add(A, "token-a", age_days=40)
    _failing(accounts.clients["secretsmanager"], "PutSecretValue", monkeypatch)
    report = accounts.run()
    assert report.refresh_failed == [A] and not report.refreshed
    assert accounts.token(A).access_token == "token-a"  # type: ignore[union-attr]
    assert accounts.token_alive(A)
    assert "kept in the table" in _last_error(accounts, A)


@pytest.mark.parametrize("accounts", [{"refresh_invalidates_old": True}], indirect=True)
def test_a_new_token_secrets_manager_refuses_waits_in_the_table_until_a_run_puts_it_in_place(
    accounts: AccountsHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Meta may kill the old token on refresh (unconfirmed): the new one must outlive any refused write."""
    accounts.add(A, "token-a", age_days=40)
    with monkeypatch.context() as patch:
        _failing(accounts.clients["secretsmanager"], "PutSecretValue", patch)
        first = accounts.run()
        assert (first.rescued, first.refresh_failed, first.needs_reauthorisation) == ([A], [A], [])
        kept = accounts.rescue.get(A)
        assert kept is not None and kept.access_token != "token-a" and accounts.login().me(kept.access_token)
        assert not accounts.token_alive(A)  # the sandbox killed token-a when it refreshed
        assert accounts.account_events() == []  # a dead old token is no reason to ask for a new login
        # Meanwhile the sender meets the dead old token and marks the account.
        accounts.table.set_status(A, NEEDS_REAUTHORISATION, "Meta refused the token while sending")
        accounts.clock.advance(60)
        second = accounts.run()  # Lambda's retry, Secrets Manager still refusing: the token still waits
        assert second.refresh_failed == [A] and accounts.rescue.get(A) == kept
    accounts.clock.advance(60)
    third = accounts.run()
    assert third.refreshed == [A] and not third.refresh_failed
    assert accounts.token(A) is not None and accounts.token(A).access_token == kept.access_token  # type: ignore[union-attr]
    assert accounts.token_alive(A) and accounts.account(A).status == ACTIVE
    assert accounts.rescue.get(A) is None
    assert [e["account"]["change"] for e in accounts.account_events()] == ["recovered"]


def _last_error(accounts: AccountsHarness, account_id: str) -> str:
    item = accounts.clients["dynamodb"].get_item(
        TableName=accounts.stack.refs["GatewayTable"],
        Key={"pk": {"S": "ACCOUNTS"}, "sk": {"S": f"ACCOUNT#{account_id}"}},
    )["Item"]
    return str(item.get("last_error", {}).get("S", ""))


@pytest.mark.parametrize("accounts", [{"refresh_invalidates_old": True}], indirect=True)
def test_a_failed_promotion_leaves_the_new_token_pending_and_the_next_run_promotes_it(
    accounts: AccountsHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Meta may kill the old token on refresh (unconfirmed): the new one must never be lost."""
    accounts.add(A, "token-a", age_days=40)
    with monkeypatch.context() as patch:
        _failing(accounts.clients["secretsmanager"], "UpdateSecretVersionStage", patch)
        report = accounts.run()
    assert report.refresh_failed == [A]
    assert accounts.token(A).access_token == "token-a"  # type: ignore[union-attr]
    pending = accounts.pending(A)
    assert pending is not None and pending.access_token != "token-a"
    assert not accounts.token_alive(A)  # the sandbox killed token-a when it refreshed
    accounts.clock.advance(DAY)
    again = accounts.run()
    assert again.refreshed == [A] and not again.needs_reauthorisation
    assert accounts.token(A).access_token == pending.access_token  # type: ignore[union-attr]
    assert accounts.token_alive(A) and accounts.account(A).status == ACTIVE
    assert accounts.account_events() == []


def test_a_new_token_that_fails_me_is_never_promoted(accounts: AccountsHarness) -> None:
    accounts.add(A, "token-a", age_days=40)
    accounts.sandbox.inject("error", endpoint="me", status=400, code=190, subcode=467, account_id=A)
    report = accounts.run()
    assert report.refresh_failed == [A] and not report.refreshed
    assert accounts.token(A).access_token == "token-a"  # type: ignore[union-attr]
    assert accounts.pending(A) is None


def test_a_dropped_subscription_is_restored_and_reported(accounts: AccountsHarness) -> None:
    accounts.add(A, "token-a", age_days=2)
    accounts.add(B, "token-b", age_days=2)
    assert accounts.run().resubscribed == []
    accounts.sandbox.unsubscribe(B)  # Meta gave up on failing deliveries
    report = accounts.run()
    assert report.resubscribed == [B]
    assert sorted(accounts.sandbox.subscribed_fields(B)) == sorted(accounts.fields)
    [event] = accounts.account_events()
    assert event["account_id"] == B and event["account"]["change"] == "subscription_restored"
    assert sorted(event["account"]["missing_fields"]) == sorted(accounts.fields)
    assert sorted(accounts.account(B).subscribed_fields) == sorted(accounts.fields)


@pytest.mark.parametrize("accounts", [{"subscription_field_spelling": "send_doc"}], indirect=True)
def test_the_other_spelling_of_field_names_is_used_when_meta_lists_it(accounts: AccountsHarness) -> None:
    accounts.add(A, "token-a", age_days=2)  # subscribes, answering the refusal with the other spellings
    fields = accounts.sandbox.subscribed_fields(A)
    assert "messaging_reactions" in fields and "messaging_referrals" in fields
    report = accounts.run()
    assert report.resubscribed == [] and report.subscription_failed == []


def test_a_token_near_expiry_that_cannot_be_refreshed_makes_the_account_expiring(accounts: AccountsHarness) -> None:
    accounts.add(A, "token-a", age_days=55)  # 5 days left
    accounts.sandbox.inject("http_5xx", count=2, endpoint="refresh")
    report = accounts.run()
    assert report.expiring == [A] and report.refresh_failed == [A]
    assert report.earliest_expiry_days == pytest.approx(5.0)
    assert accounts.account(A).status == EXPIRING
    [event] = accounts.account_events()
    assert event["account"]["change"] == "token_expiring"
    accounts.clock.advance(DAY)
    assert accounts.run().refresh_failed == [A]  # still failing: no second event
    assert accounts.account_events() == []
    accounts.clock.advance(DAY)
    assert accounts.run().refreshed == [A]
    assert accounts.account(A).status == ACTIVE


def test_the_sender_picks_up_a_refreshed_token_without_a_redeploy(accounts: AccountsHarness) -> None:
    accounts.add(A, "token-a", age_days=40)
    directory = AccountDirectory(
        accounts.clients["dynamodb"],
        accounts.stack.refs["GatewayTable"],
        accounts.clients["secretsmanager"],
        secret_max_age_seconds=300,
    )
    account = directory.resolve(A)
    assert directory.token(account) == "token-a"
    accounts.run()
    renewed = accounts.token(A)
    assert renewed is not None
    # Within the cache age the old token is still served (it still works); the sender's 190 path reads
    # again with fresh=True, and a new execution environment reads the new token at once.
    assert directory.token(account) == "token-a"
    assert directory.token(account, fresh=True) == renewed.access_token


def test_the_handler_runs_every_account_and_emits_the_metrics_the_alarms_watch(
    accounts: AccountsHarness, capsys: pytest.CaptureFixture[str]
) -> None:
    """The deployed wiring: settings from the template's environment, EMF metrics on stdout."""
    import json
    import time

    from local.aws.apigw import LambdaContext
    from refresher import handler
    from refresher.scheduled_run import RefreshIncomplete

    accounts.clock.now = time.time()  # the handler's clock is the real one
    accounts.add(A, "token-a", age_days=40)
    accounts.add(B, "token-b", age_days=2)
    accounts.sandbox.revoke(B)  # dead: reported, but no reason to retry the run
    accounts.sandbox.inject("http_5xx", endpoint="subscribed_apps", account_id=A)  # worth a retry
    capsys.readouterr()
    with pytest.raises(RefreshIncomplete):
        handler.lambda_handler(
            {}, LambdaContext(function_name="refresher", memory_limit_in_mb=256, timeout_seconds=300)
        )
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    values = {
        m["Name"]: document[m["Name"]][0]
        for document in emitted
        for directive in document["_aws"]["CloudWatchMetrics"]
        for m in directive["Metrics"]
    }
    assert values["Accounts"] == 2 and values["AccountsNeedingReauthorisation"] == 1
    assert values["TokenRefreshes"] == 1 and values["AccountCheckFailures"] == 1
    assert values["DaysUntilEarliestTokenExpiry"] == pytest.approx(60, abs=0.01)  # A's new token
    assert all(d.get("service") == "instagram-gateway" for d in emitted)
