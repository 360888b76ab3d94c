"""The canonical event published on the events queue and stored in the table (schema version 1).

Downstream services depend on this shape: change it only by adding optional fields, or by bumping
SCHEMA_VERSION and documenting the change in docs/events.md. `make schemas` regenerates
schemas/inbound-event.v1.json from this module and a test fails when the two disagree.
"""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from igdm.contracts.event_kinds import CONTENT_KINDS as CONTENT_KINDS
from igdm.contracts.event_kinds import SCHEMA_VERSION as SCHEMA_VERSION
from igdm.contracts.event_kinds import EventKind as EventKind
from igdm.contracts.event_kinds import conversation_id as conversation_id


# extra="ignore" keeps the published JSON Schema open (no additionalProperties: false), so a consumer
# validating with this version's schema accepts events that carry fields added later.
class _Part(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Attachment(_Part):
    type: str = Field(
        description="Meta's attachment type as sent (image, video, audio, file, share, "
        "ig_post, ig_reel, reel, story_mention, or any type Meta adds later)."
    )
    url: str | None = Field(
        None,
        description="Meta's CDN URL. Media is never downloaded or stored; "
        "the URL expires (story media when the story does).",
    )
    title: str | None = None
    media_id: str | None = Field(None, description="Post or reel media id, when Meta sends one.")
    payload: dict[str, Any] = Field(default_factory=dict, description="The attachment payload as sent.")


class StoryRef(_Part):
    id: str | None = None
    url: str | None = None


class ReplyTo(_Part):
    message_id: str | None = Field(None, description="The mid of the message replied to.")
    story: StoryRef | None = Field(None, description="The business's story replied to.")


class Postback(_Part):
    title: str | None = None
    payload: str | None = Field(None, description="Absent on postbacks delivered on the standby channel.")


class Reaction(_Part):
    action: Literal["react", "unreact"]
    reaction: str | None = None
    emoji: str | None = None


class Referral(_Part):
    model_config = ConfigDict(extra="allow", frozen=True)
    ref: str | None = None
    source: str | None = None
    type: str | None = None
    ad_id: str | None = None


class Handover(_Part):
    type: str = Field(
        description="pass_thread_control, take_thread_control, request_thread_control, app_roles, or (the gateway's "
        "own call) release_thread_control."
    )
    previous_owner_app_id: str | None = None
    new_owner_app_id: str | None = None
    requested_owner_app_id: str | None = None
    metadata: str | None = None
    app_roles: dict[str, Any] | None = None


class Comment(_Part):
    field: str = Field(description="The webhook field: comments or live_comments.")
    comment_id: str | None = None
    parent_id: str | None = None
    text: str | None = None
    username: str | None = None
    media_id: str | None = None
    media_product_type: str | None = None


class Mention(_Part):
    media_id: str | None = None
    comment_id: str | None = None


class GraphError(_Part):
    """Meta's error object, as the Send API returned it."""

    http_status: int | None = None
    code: int | None = None
    subcode: int | None = None
    type: str | None = None
    message: str | None = None
    fbtrace_id: str | None = Field(None, description="Meta's trace id: quote it to Meta support (it expires).")


class MessageStatus(_Part):
    """What became of one outbound message (kind message_status)."""

    idempotency_key: str
    status: Literal["SENT", "DELIVERED", "READ", "FAILED", "UNKNOWN"]
    correlation_id: str | None = None
    callback_data: str | None = None
    message_ids: list[str] = Field(
        default_factory=list,
        description="Meta's message id of each part sent, "
        "in order (text split in parts and text with media make several).",
    )
    parts_total: int | None = Field(None, description="How many Send API calls the message takes.")
    reason: str | None = Field(
        None,
        description="For FAILED and UNKNOWN: a stable reason code, such as "
        "invalid_message, window_closed, meta_rejected, token_invalid, ambiguous_outcome, "
        "retries_exhausted or no_account.",
    )
    detail: str | None = Field(None, description="A readable explanation of the reason.")
    error: GraphError | None = Field(None, description="Meta's error, when Meta refused the message.")


class AccountStatus(_Part):
    """What the gateway found about one of its Instagram accounts (kind account_status)."""

    status: Literal["active", "expiring", "needs_reauthorisation", "disconnected"] = Field(
        description="The account's status after this change. needs_reauthorisation: nothing can be sent or "
        "refreshed until someone logs in again through the onboarding pages; disconnected: the account's owner "
        "removed the app (its token is deleted), until they connect it again."
    )
    change: Literal[
        "connected",
        "token_dead",
        "token_expiring",
        "subscription_restored",
        "subscription_lost",
        "recovered",
        "webhooks_silent",
        "history_imported",
        "paused",
        "resumed",
        "profile_restored",
        "deauthorized",
        "data_deleted",
    ] = Field(
        description="connected: onboarded or re-authorised; token_dead: Meta answered 190 (expired, revoked, "
        "password changed); token_expiring: within the alarm threshold of expiry and not refreshed; "
        "subscription_restored: Meta had dropped webhook fields and the gateway subscribed again; "
        "subscription_lost: they were dropped and could not be restored; recovered: a token "
        "marked dead works again; webhooks_silent: the reconciler found customer messages that came without "
        "their webhook while no other webhook came either (the subscription is checked, and restored, at once); "
        "history_imported: the reconciler's first complete run for the account read its conversations of the "
        "last HistoryImportDays; paused, resumed: an operator stopped or restarted sending for the account "
        "(tools.accounts pause, resume); inbound keeps flowing while it is paused; profile_restored: the refresher "
        "found the account's ice breakers or menu changed at Meta and applied the declared ones again; "
        "deauthorized: Meta's deauthorize callback said the owner removed the app (status disconnected); "
        "data_deleted: everything the gateway stored about the account was deleted (Meta's data-deletion "
        "callback, or an operator), its token included: delete what you keep about it too."
    )
    reason: str | None = Field(
        None, description="A stable code: token_expired, token_revoked, refresh_refused, fields_missing ..."
    )
    detail: str | None = Field(None, description="A readable explanation.")
    username: str | None = None
    token_expires_at: datetime | None = Field(None, description="When the current token expires, if known.")
    missing_fields: list[str] = Field(default_factory=list, description="Webhook fields Meta had dropped.")
    subscribed_fields: list[str] = Field(default_factory=list, description="Webhook fields subscribed now.")
    error: GraphError | None = Field(None, description="Meta's error, when Meta refused a call.")


class Erasure(_Part):
    """A request to delete everything about an id (kind customer_forgotten, and account_status data_deleted)."""

    confirmation_code: str = Field(
        description="The request's code: Meta's confirmation_code, shown on GET /meta/deletion-status?code=..."
    )
    requested_by: Literal["meta", "operator"] = Field(
        description="meta: Meta's data-deletion callback; operator: tools.accounts forget."
    )
    deleted: dict[str, int] = Field(
        default_factory=dict,
        description="How many items of each kind the gateway deleted (events, conversation_states, "
        "outbound_messages, message_ids, comments, ...), over all of the stack's accounts.",
    )


class InboundEvent(BaseModel):
    """One thing that happened in an Instagram conversation, as the gateway hands it on."""

    model_config = ConfigDict(
        extra="ignore",
        frozen=True,
        title="InstagramGatewayEvent",
        json_schema_extra={"$id": "https://instagram-dm-gateway/schemas/inbound-event.v1.json"},
    )

    schema_version: Literal["1"] = SCHEMA_VERSION
    event_id: str = Field(
        description="Deterministic: identical when Meta redelivers the same event, "
        "distinct for distinct events. Use it to deduplicate."
    )
    kind: EventKind
    account_id: str = Field(
        description="The business's Instagram account id (entry.id; user_id from /me?fields=user_id)."
    )
    customer_id: str | None = Field(
        description="The customer's IGSID (or commenter id), whatever the "
        "direction. None for mentions, and when Meta names no customer."
    )
    conversation_id: str = Field(description="account_id:customer_id; the ordering key on the queue.")
    direction: Literal["inbound", "outbound"]
    source: Literal["messaging", "standby", "changes", "gateway", "backfill"] = Field(
        description="Where Meta put the item. standby means another app owns the thread; gateway marks "
        "events the gateway itself raises (message_status, account_status); backfill marks messages the "
        "reconciler found in Instagram's Conversations API because their webhook never came (gap events too)."
    )
    user_initiated: bool = Field(
        description="True when the customer sent this (it opens or refreshes the 24-hour messaging window)."
    )
    occurred_at: datetime = Field(
        description="When it happened, UTC: the item's timestamp, or for items "
        "without one (comments, mentions) the time Meta sent the notification."
    )
    received_at: datetime = Field(description="When the gateway received the webhook, UTC.")
    message_id: str | None = Field(
        None,
        description="The mid this event is or is about (the target message for reactions, reads, edits and deletions).",
    )
    text: str | None = None
    attachments: list[Attachment] = Field(default_factory=list)
    reply_to: ReplyTo | None = None
    quick_reply_payload: str | None = None
    postback: Postback | None = None
    reaction: Reaction | None = None
    referral: Referral | None = None
    edit_count: int | None = Field(None, description="num_edit of a message_edited event.")
    optin: dict[str, Any] | None = None
    handover: Handover | None = None
    comment: Comment | None = None
    mention: Mention | None = None
    is_self: bool = Field(
        False, description="A message the account sent to itself (Meta's test feature); never a real customer."
    )
    app_id: str | None = Field(None, description="On echoes: the app that sent the message, when Meta says.")
    metadata: str | None = Field(None, description="On echoes: the metadata the sending app attached.")
    sent_by_gateway: bool | None = Field(
        None,
        description="On echoes: true when this gateway sent the message "
        "(its marker in metadata, or Meta's app_id is the gateway's app), false "
        "when another app or a person in the Instagram app did, absent when the "
        "echo does not say.",
    )
    content_deleted: bool = Field(
        False, description="The customer deleted this message: its text, media and raw content have been removed."
    )
    truncated: bool = Field(
        False,
        description="The event was too large for the queue: raw was dropped and, "
        "if that was not enough, long text and attachment payloads were cut.",
    )
    error: str | None = Field(None, description="On unknown events: why the item was not understood.")
    status: MessageStatus | None = Field(
        None, description="On message_status events: the outbound message's new status."
    )
    account: AccountStatus | None = Field(
        None, description="On account_status events: what changed about the account's token or webhook subscription."
    )
    erasure: Erasure | None = Field(
        None,
        description="On customer_forgotten events (and account_status data_deleted): the gateway deleted what it "
        "stored about the customer (or account); delete what you keep about them too.",
    )
    raw: dict[str, Any] = Field(description="The item exactly as Meta sent it.")


def json_schema() -> dict[str, Any]:
    return InboundEvent.model_json_schema(mode="serialization")
