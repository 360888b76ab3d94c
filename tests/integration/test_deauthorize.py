"""Meta's deauthorize callback on the real onboarding handler behind the local API, moto as AWS: a signed
request built as Meta builds it disconnects the account (nothing more is sent, its token is gone, an
account_status event says so); a forged one changes nothing."""

import time
from urllib.parse import urlencode

import requests

from igdm.meta.signed_request import sign_request
from igdm.store.accounts import ACTIVE, DISCONNECTED
from local.harnesses.accounts import INSTAGRAM_APP_SECRET, AccountsHarness

A = "17841400000000031"


def post(
    accounts: AccountsHarness, user_id: str, secret: str = INSTAGRAM_APP_SECRET, age: float = 30
) -> requests.Response:
    signed = sign_request({"algorithm": "HMAC-SHA256", "issued_at": int(time.time() - age), "user_id": user_id}, secret)
    return requests.post(
        f"{accounts.api_url}/meta/deauthorize",
        data=urlencode({"signed_request": signed}),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=10,
    )


def test_a_deauthorize_callback_disconnects_the_account_deletes_its_token_and_says_so(
    accounts: AccountsHarness,
) -> None:
    accounts.add(A, "token-a", age_days=2)
    answer = post(accounts, A)
    assert (answer.status_code, answer.json()) == (200, {"deauthorized": True})
    account = accounts.account(A)
    assert account.status == DISCONNECTED and not account.can_send
    assert accounts.token(A) is None  # the secret is gone, with no recovery window
    [event] = accounts.account_events()
    assert (event["account"]["change"], event["account"]["status"], event["account"]["reason"]) == (
        "deauthorized",
        "disconnected",
        "app_removed",
    )
    assert post(accounts, A).status_code == 200  # Meta's retry: the same end state, no error
    report = accounts.run()  # the refresher leaves it alone: no daily token_dead for a removed app
    assert (report.accounts, report.needs_reauthorisation) == (0, [])


def test_a_forged_or_old_callback_is_refused_and_changes_nothing(accounts: AccountsHarness) -> None:
    accounts.add(A, "token-a", age_days=2)
    forged = post(accounts, A, secret="not-the-app-secret")
    old = post(accounts, A, age=2 * 86_400)
    assert (forged.status_code, old.status_code) == (400, 400)
    assert "not the app's" in forged.json()["error"] and "within the last day" in old.json()["error"]
    assert accounts.account(A).status == ACTIVE and accounts.token(A) is not None
    assert accounts.account_events() == []


def test_a_callback_for_no_account_of_the_stack_is_answered_and_creates_nothing(accounts: AccountsHarness) -> None:
    answer = post(accounts, "17841400000000099")
    assert (answer.status_code, answer.json()) == (200, {"deauthorized": False})
    assert accounts.table.all() == []
