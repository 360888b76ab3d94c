"""Meta's messaging windows, decided before any call (../shared/reference/instagram-platform.md §6).

Within 24 hours of the customer's last message anything may be sent. From 24 hours to 7 days only
a message a person wrote, tagged HUMAN_AGENT. Past 7 days, or when the customer never wrote, nothing.
HUMAN_AGENT is put only where it is needed and only on a human's message: never on automation.
Private replies to comments are governed by the comment, not by a conversation window; thread control
(pass, take, release, request) sends the customer nothing, so no window applies to it either.
"""

from dataclasses import dataclass

from igdm.contracts.outbound import THREAD_CONTROL_KINDS, OutboundMessage

HOUR_MS = 3_600_000
STANDARD_WINDOW_MS = 24 * HOUR_MS
HUMAN_AGENT_WINDOW_MS = 7 * 24 * HOUR_MS
_MESSAGE_KINDS_EXCLUDED_FROM_TAG = frozenset({"react", "unreact", "typing_on", "typing_off", "mark_seen"})


@dataclass(frozen=True)
class Decision:
    allowed: bool
    human_agent_tag: bool = False
    reason: str | None = None
    detail: str | None = None


def decide(message: OutboundMessage, last_user_message_at_ms: int | None, now_ms: int) -> Decision:
    if message.recipient.comment_id is not None or message.kind in THREAD_CONTROL_KINDS:
        return Decision(True)  # a comment's rules apply; thread control sends the customer nothing
    if last_user_message_at_ms is None:
        return Decision(
            False,
            reason="window_closed",
            detail="the customer has never messaged this account: Instagram lets a business "
            "message only people who wrote first",
        )
    age = now_ms - last_user_message_at_ms
    if age <= STANDARD_WINDOW_MS:
        return Decision(True)
    hours = age / HOUR_MS
    if age <= HUMAN_AGENT_WINDOW_MS and message.human_agent and message.kind not in _MESSAGE_KINDS_EXCLUDED_FROM_TAG:
        return Decision(True, human_agent_tag=True)
    if age <= HUMAN_AGENT_WINDOW_MS:
        return Decision(
            False,
            reason="window_closed",
            detail=f"the customer's last message is {hours:.1f} hours old: past 24 hours only a "
            "message written by a person (human_agent: true) may be sent, until 7 days",
        )
    return Decision(
        False,
        reason="window_closed",
        detail=f"the customer's last message is {hours / 24:.1f} days old: past 7 days nothing "
        "may be sent until the customer writes again",
    )
