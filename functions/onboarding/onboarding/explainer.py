"""The first page an invite link shows: who asks, for what, what it does not allow, how to undo it, and a
"Continue to Instagram" button to Instagram's own login page.

What is asked is said in plain words, from the permissions the login really asks for (InstagramScopes), so the
page never promises less than Instagram will show next: a permission this page does not know is announced as
"anything else Instagram lists", never left out.
"""

import html
import re
from collections.abc import Sequence

from igdm.meta.webhook_fields import BASIC_SCOPE, COMMENTS_SCOPE, MESSAGES_SCOPE
from igdm.runtime.http_api import Reply
from onboarding.pages import Block, Business, Button, Heading, Link, Note, Section, page

PUBLISH_SCOPE = "instagram_business_content_publish"
INSIGHTS_SCOPE = "instagram_business_manage_insights"
# What each permission lets the business do, as Meta's documentation describes the endpoints it opens.
ALLOWS: dict[str, tuple[str, ...]] = {
    BASIC_SCOPE: ("See your profile (username, name and picture) and your posts",),
    MESSAGES_SCOPE: (
        "Read the Direct messages people send you, and answer them from your account",
        "Set the suggested questions and the menu people see when they start a chat with you",
    ),
    COMMENTS_SCOPE: (
        "Read the comments on your posts, answer them (in public or in a private message), and hide or delete them",
    ),
    PUBLISH_SCOPE: ("Publish posts, reels and stories on your account",),
    INSIGHTS_SCOPE: ("See the statistics of your account and your posts",),
}
UNKNOWN_SCOPES = "Anything else Instagram lists on its page"
HOW_TO_DISCONNECT = "open Settings in Instagram, find Apps and websites, and remove the app"
CONTINUE_ID = "continue"
_CONTINUE_LINK = re.compile(rf'<a class="button" id="{CONTINUE_ID}" href="([^"]*)"')


def explainer(business: Business, scopes: Sequence[str], authorize_url: str, *, cookie: str) -> Reply:
    """The page, with `authorize_url` (Instagram's, with this login's state) behind its button."""
    who, subject = business.called(), business.called(starting_a_sentence=True)
    blocks: list[Block] = [
        f"{subject} asks to connect your Instagram professional account, so "
        "that it can read and answer your Direct messages.",
        Section(f"If you continue, {who} can:", _allowed(scopes)),
        Section(f"{subject} cannot:", _not_allowed(scopes)),
        Heading("You stay in control"),
        f"You can disconnect whenever you like: {HOW_TO_DISCONNECT}. {subject} then loses access at once.",
    ]
    if business.privacy_policy_url:
        possessive = f"{business.name}'s" if business.name else "the"
        blocks.append(Link(f"Read {possessive} privacy policy", business.privacy_policy_url, "privacy-policy"))
    blocks += [
        Button("Continue to Instagram", authorize_url, CONTINUE_ID),
        Note(
            "Instagram asks you to log in on its own page and shows what you allow. Only professional "
            "(business or creator) accounts can be connected."
        ),
    ]
    title = f"Connect your Instagram account to {business.name}" if business.name else "Connect your Instagram account"
    return page(200, title, blocks, outcome="explainer", business=business, cookie=cookie)


def _allowed(scopes: Sequence[str]) -> tuple[str, ...]:
    lines = [line for scope in scopes for line in ALLOWS.get(scope, ())]
    if any(scope not in ALLOWS for scope in scopes):
        lines.append(UNKNOWN_SCOPES)
    return tuple(lines)


def _not_allowed(scopes: Sequence[str]) -> tuple[str, ...]:
    lines = ["See your password: you log in on Instagram's own page, never on this one"]
    if PUBLISH_SCOPE not in scopes:
        lines.append("Post on your account, or publish stories or reels")
    if MESSAGES_SCOPE in scopes:
        # Instagram's messaging rules: a business only answers; a comment opens one private reply.
        whom = "wrote to you or commented on your posts" if COMMENTS_SCOPE in scopes else "wrote to you"
        lines.append(
            f"Message people who have not contacted you first: Instagram only lets it answer people who {whom}"
        )
    return tuple(lines)


def continue_url(explainer_page: str) -> str:
    """The address behind the page's button, for a script that walks the login without a browser (the test
    harnesses, the benchmark): read by the module that writes it, so the two always agree."""
    found = _CONTINUE_LINK.search(explainer_page)
    if found is None:
        raise ValueError("not the explainer page: it has no Continue button")
    return html.unescape(found.group(1))
