"""An account's ice breakers and menu, end to end on moto and the Graph sandbox: tools.accounts profile applies
them and keeps them on the account item; the refresher finds them drifted at Meta and applies them again."""

import json

import pytest

from local.harnesses.accounts import AccountsHarness
from tools.accounts import Target, listing, set_profile

A = "17841400000000021"
PROFILE = {
    "ice_breakers": [
        {
            "locale": "default",
            "call_to_actions": [
                {"question": "Where is my order?", "payload": "ORDER_STATUS"},
                {"question": "Can I talk to a person?", "payload": "HUMAN_AGENT"},
            ],
        }
    ],
    "persistent_menu": [
        {"locale": "default", "call_to_actions": [{"type": "web_url", "title": "Shop", "url": "https://shop.example/"}]}
    ],
}


def target(accounts: AccountsHarness) -> Target:
    return Target(
        accounts.clients,
        accounts.stack.refs["GatewayTable"],
        accounts.stack.refs["EventsQueue"],
        f"{accounts.stack.name}/accounts/",
        "",
        "",
        accounts.sandbox.base_url,
        "v24.0",
        accounts.fields,
    )


def test_a_profile_is_applied_kept_and_restored_by_the_refresher_after_it_drifted(accounts: AccountsHarness) -> None:
    accounts.add(A, "token-a", age_days=2)
    said = set_profile(target(accounts), A, json.dumps(PROFILE), now=accounts.clock.now)
    assert said.endswith("2 ice breakers, 1 menu buttons; the refresher keeps them")
    assert accounts.sandbox.messenger_profile(A) == PROFILE
    assert "2 ice breakers, 1 menu buttons (checked" in listing(target(accounts))

    assert accounts.run().profiles_restored == []  # as Meta shows it: only checked
    accounts.sandbox.drift_profile(A)  # someone cleared the ice breakers in another tool
    report = accounts.run()
    assert report.profiles_restored == [A] and accounts.sandbox.messenger_profile(A) == PROFILE
    changes = [e["account"]["change"] for e in accounts.account_events()]
    assert changes[-1] == "profile_restored"


def test_a_profile_meta_would_refuse_is_refused_before_any_call(accounts: AccountsHarness) -> None:
    accounts.add(A, "token-a", age_days=2)
    five = {"ice_breakers": [{"call_to_actions": [{"question": f"q{n}", "payload": "p"} for n in range(5)]}]}
    with pytest.raises(SystemExit, match="at most 4"):
        set_profile(target(accounts), A, json.dumps(five))
    assert accounts.sandbox.messenger_profile(A) == {} and accounts.account(A).messenger_profile is None
