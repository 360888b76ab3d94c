"""The one list that ties together the webhook fields an account is subscribed to, the permissions the
onboarding login asks for, and the event kinds the gateway's parser makes of what each field brings.

The template's defaults (WebhookFields, InstagramScopes) are held to it by tests/unit/layer/test_webhook_fields.py,
so a field added without its permission, or a kind the parser handles that no default field brings, fails
there. Field names are IG-WH's matrix (fact sheet §11); `message_edit` and the handover fields as Meta's 2026
webhook reference names them. Meta may refuse some on an account (the 2026 "Unified Login" list lacks
messaging_handover, standby and messaging_optins): subscribing reports those as unsupported and goes on.
"""

from igdm.contracts.events import EventKind

MESSAGES_SCOPE = "instagram_business_manage_messages"
COMMENTS_SCOPE = "instagram_business_manage_comments"
BASIC_SCOPE = "instagram_business_basic"

# field -> (the permission it needs, the event kinds its webhooks become)
WEBHOOK_FIELDS: dict[str, tuple[str, frozenset[EventKind]]] = {
    "messages": (
        MESSAGES_SCOPE,
        frozenset(
            {
                EventKind.TEXT,
                EventKind.ATTACHMENTS,
                EventKind.STORY_REPLY,
                EventKind.REPLY,
                EventKind.QUICK_REPLY,
                EventKind.ECHO,
                EventKind.MESSAGE_DELETED,
                EventKind.UNSUPPORTED,
            }
        ),
    ),
    "message_reactions": (MESSAGES_SCOPE, frozenset({EventKind.REACTION, EventKind.REACTION_REMOVED})),
    "messaging_postbacks": (MESSAGES_SCOPE, frozenset({EventKind.POSTBACK})),
    "messaging_seen": (MESSAGES_SCOPE, frozenset({EventKind.READ})),
    "messaging_referral": (MESSAGES_SCOPE, frozenset({EventKind.REFERRAL})),
    "messaging_optins": (MESSAGES_SCOPE, frozenset({EventKind.OPTIN})),
    "message_edit": (MESSAGES_SCOPE, frozenset({EventKind.MESSAGE_EDITED})),
    "messaging_handover": (MESSAGES_SCOPE, frozenset({EventKind.HANDOVER})),
    "standby": (MESSAGES_SCOPE, frozenset()),  # the same kinds, source standby, while another app owns a thread
    "comments": (COMMENTS_SCOPE, frozenset({EventKind.COMMENT})),
}
DEFAULT_FIELDS = tuple(WEBHOOK_FIELDS)

# Kinds no subscribed field brings: mentions come with the Facebook Login edge only (FBL); the rest the gateway
# makes itself (unknown: an item it could not read; gap, message_status, account_status, customer_forgotten: its
# own reports).
NOT_FROM_A_FIELD = frozenset(
    {
        EventKind.MENTION,
        EventKind.UNKNOWN,
        EventKind.GAP,
        EventKind.MESSAGE_STATUS,
        EventKind.ACCOUNT_STATUS,
        EventKind.CUSTOMER_FORGOTTEN,
    }
)


def scopes_for(fields: list[str] | tuple[str, ...]) -> list[str]:
    """The permissions a login must ask for to receive ``fields``: the basic one, then each field's."""
    needed = [BASIC_SCOPE]
    for name in fields:
        scope = WEBHOOK_FIELDS[name][0] if name in WEBHOOK_FIELDS else MESSAGES_SCOPE
        if scope not in needed:
            needed.append(scope)
    return needed
