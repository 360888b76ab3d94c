"""Meta's messaging windows, decided to the millisecond (instagram-platform.md §6)."""

from typing import Any

import pytest

from igdm.contracts.outbound import OutboundMessage
from local.samples import outbound as out
from sender.policy import HUMAN_AGENT_WINDOW_MS, STANDARD_WINDOW_MS, decide

NOW = 1_800_000_000_000
SECOND = 1000


def message(kind: str = "text", **fields: Any) -> OutboundMessage:
    return OutboundMessage.model_validate(out.outbound(kind, **fields))


@pytest.mark.parametrize(
    ("age_ms", "human", "allowed", "tagged"),
    [
        (0, False, True, False),
        (STANDARD_WINDOW_MS, False, True, False),  # the 24th hour still counts
        (STANDARD_WINDOW_MS + 1, False, False, False),
        (STANDARD_WINDOW_MS, True, True, False),  # a person's message inside 24 h needs no tag
        (STANDARD_WINDOW_MS + SECOND, True, True, True),
        (HUMAN_AGENT_WINDOW_MS, True, True, True),  # the 7th day still counts
        (HUMAN_AGENT_WINDOW_MS + 1, True, False, False),
        (HUMAN_AGENT_WINDOW_MS + 1, False, False, False),
    ],
)
def test_the_windows_to_the_millisecond(age_ms: int, human: bool, allowed: bool, tagged: bool) -> None:
    decision = decide(message(human_agent=human), NOW - age_ms, NOW)
    assert (decision.allowed, decision.human_agent_tag) == (allowed, tagged)
    if not allowed:
        assert decision.reason == "window_closed" and decision.detail


def test_a_customer_who_never_wrote_cannot_be_messaged() -> None:
    decision = decide(message(human_agent=True), None, NOW)
    assert (decision.allowed, decision.reason) == (False, "window_closed")
    assert "never messaged" in (decision.detail or "")


@pytest.mark.parametrize("kind", ["react", "unreact", "typing_on", "typing_off", "mark_seen"])
def test_a_sender_action_is_never_tagged_human_agent(kind: str) -> None:
    decision = decide(message(kind, human_agent=True), NOW - STANDARD_WINDOW_MS - SECOND, NOW)
    assert (decision.allowed, decision.human_agent_tag) == (False, False)


def test_a_private_reply_is_governed_by_its_comment_not_a_window() -> None:
    reply = OutboundMessage.model_validate(out.private_reply())
    assert decide(reply, None, NOW).allowed and decide(reply, NOW - HUMAN_AGENT_WINDOW_MS * 2, NOW).allowed


def test_the_reason_says_how_old_the_last_message_is() -> None:
    assert "30.0 hours old" in (decide(message(), NOW - 30 * 3_600_000, NOW).detail or "")
    assert "8.0 days old" in (decide(message(human_agent=True), NOW - 8 * 86_400_000, NOW).detail or "")
