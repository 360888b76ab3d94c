"""An account's ice breakers and menu (igdm.contracts.profile): Meta's rules before any call, the body sent,
and whether what Meta shows, in either form it answers, is what was declared."""

from typing import Any

import pytest
from pydantic import ValidationError

from igdm.contracts.profile import MessengerProfile, as_shown

BREAKERS = [{"locale": "default", "call_to_actions": [{"question": "Opening hours?", "payload": "HOURS"}]}]
MENU = [
    {
        "locale": "default",
        "call_to_actions": [{"type": "postback", "title": "Talk to a person", "payload": "HUMAN_AGENT"}],
    }
]


def test_the_body_names_the_platform_and_only_the_declared_parts() -> None:
    profile = MessengerProfile.model_validate({"ice_breakers": BREAKERS})
    assert profile.graph_body() == {"platform": "instagram", "ice_breakers": BREAKERS}
    assert profile.fields == ["ice_breakers"] and profile.summary() == "1 ice breakers, 0 menu buttons"


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ({}, "give ice_breakers, persistent_menu, or both"),
        ({"ice_breakers": [{**BREAKERS[0], "locale": "en_GB"}]}, "requires a 'default' locale"),
        (
            {"ice_breakers": [{"call_to_actions": [{"question": f"q{n}", "payload": "p"} for n in range(5)]}]},
            "at most 4",
        ),
        (
            {
                "persistent_menu": [
                    {"call_to_actions": [{"type": "web_url", "title": "Shop", "url": "http://x.example"}]}
                ]
            },
            "https",
        ),
        ({"persistent_menu": [{"call_to_actions": [{"type": "postback", "title": "Shop"}]}]}, "has a payload"),
        ({"ice_breakers": BREAKERS, "get_started": {}}, "Extra inputs are not permitted"),
    ],
    ids=["empty", "no-default-locale", "five-questions", "http-url", "postback-without-payload", "unknown-field"],
)
def test_what_meta_would_refuse_is_refused_before_any_call(document: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        MessengerProfile.model_validate(document)


def test_meta_showing_the_profile_in_either_form_matches_and_a_change_does_not() -> None:
    profile = MessengerProfile.model_validate({"ice_breakers": BREAKERS, "persistent_menu": MENU})
    messenger_form = {"data": [{"ice_breakers": BREAKERS, "persistent_menu": MENU}]}
    assert profile.shown_by(messenger_form)
    only_breakers = MessengerProfile.model_validate({"ice_breakers": BREAKERS})
    assert only_breakers.shown_by({"data": BREAKERS})  # the form Meta documents for fields=ice_breakers
    assert as_shown({"data": BREAKERS}) == {"ice_breakers": BREAKERS}
    changed = [{"locale": "default", "call_to_actions": [{"question": "Opening hours?", "payload": "OTHER"}]}]
    assert not profile.shown_by({"data": [{"ice_breakers": changed, "persistent_menu": MENU}]})
    assert not profile.shown_by({"data": []})  # Meta shows nothing
