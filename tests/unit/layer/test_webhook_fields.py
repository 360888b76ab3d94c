"""One list for the webhook fields, the login's permissions and the event kinds (igdm.meta.webhook_fields): the
template's defaults follow it, and every kind the parser handles comes from a default field."""

from igdm.contracts.events import EventKind
from igdm.meta.webhook_fields import DEFAULT_FIELDS, NOT_FROM_A_FIELD, WEBHOOK_FIELDS, scopes_for
from local.aws.template import load

PARAMETERS = load()["Parameters"]


def test_the_templates_default_fields_are_the_list() -> None:
    assert tuple(PARAMETERS["WebhookFields"]["Default"].split(",")) == DEFAULT_FIELDS
    assert {"message_edit", "messaging_handover", "standby"} <= set(DEFAULT_FIELDS)


def test_the_login_asks_for_every_permission_the_default_fields_need() -> None:
    scopes = PARAMETERS["InstagramScopes"]["Default"].split(",")
    assert scopes == scopes_for(DEFAULT_FIELDS)
    assert "instagram_business_manage_comments" in scopes  # comments are subscribed


def test_every_kind_the_parser_handles_comes_from_a_default_field_or_the_gateway() -> None:
    brought = set().union(*(kinds for _, kinds in WEBHOOK_FIELDS.values()))
    assert brought | NOT_FROM_A_FIELD == set(EventKind)
    assert not brought & NOT_FROM_A_FIELD


def test_without_comments_the_login_does_not_ask_to_manage_them() -> None:
    assert scopes_for(("messages", "messaging_seen")) == [
        "instagram_business_basic",
        "instagram_business_manage_messages",
    ]
