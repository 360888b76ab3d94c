"""The outbound message contract (schema version 1): what a producer puts on the outbound queue.

Every documented Instagram limit is checked here, so an invalid message is refused with its exact
reason before Meta is called. Unknown fields are refused too: a misspelt field must not vanish.
`make schemas` exports schemas/outbound-message.v1.json from this module (a test keeps them equal),
and docs/messages.md shows an example of every kind.
"""

import math
import re
from typing import Annotated, Any, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

SCHEMA_VERSION: Literal["1"] = "1"
MAX_TEXT_BYTES = 1000  # Meta: message text is at most 1000 UTF-8 bytes
MAX_SPLIT_TEXT_BYTES = 20_000  # longer text is split; beyond 20 parts it is refused, not spammed
MAX_TITLE_CHARS = 80  # generic template title and subtitle
MAX_QUICK_REPLIES = 13
MAX_QUICK_REPLY_TITLE_CHARS = 20
MAX_PAYLOAD_CHARS = 1000  # quick reply and postback payloads (CM.com, Webex Connect; Meta is silent)
MAX_BUTTON_TEXT_CHARS = 640  # button template text: Messenger's limit, unconfirmed for Instagram
MAX_IMAGES = 10
MAX_ELEMENTS = 10
MAX_BUTTONS = 3

# SQS deduplication ids allow 1-128 alphanumeric and punctuation characters; the producer helper uses
# the idempotency key as one, so the key obeys the same rule.
IDEMPOTENCY_KEY_PATTERN = r"^[!-~]{1,128}$"
ID_PATTERN = r"^[!-~]{1,256}$"  # Meta's ids: digits or base64-like text
_URL = re.compile(r"^https?://[^\s/?#]+[^\s]*$", re.IGNORECASE)

Id = Annotated[str, Field(pattern=ID_PATTERN)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


def _url(value: str, *, https_only: bool = True) -> str:
    if len(value) > 2048 or not _URL.match(value):
        raise ValueError("must be an absolute http(s) URL of at most 2048 characters")
    if https_only and not value.lower().startswith("https://"):
        raise ValueError("must be an https URL: Meta fetches media and opens links only over https")
    return value


def _utf8_bytes(value: str) -> int:
    return len(value.encode("utf-8", "surrogatepass"))


def _https_or_none(value: str | None) -> str | None:
    return None if value is None else _url(value)


def _splittable_text(value: str) -> str:
    if not value.strip():
        raise ValueError("text is blank")
    if "\x00" in value:
        raise ValueError("text contains a NUL character")
    size = _utf8_bytes(value)
    if size > MAX_SPLIT_TEXT_BYTES:
        raise ValueError(
            f"text is {size} UTF-8 bytes; at most {MAX_SPLIT_TEXT_BYTES} are split into messages of {MAX_TEXT_BYTES}"
        )
    return value


class Media(_Strict):
    """A file Meta fetches from a public https URL, or one uploaded before (attachment id)."""

    url: str | None = Field(None, description="Public https URL, fetched by Meta without redirects.")
    attachment_id: Id | None = Field(None, description="From the Attachment Upload API.")

    @field_validator("url")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        return None if value is None else _url(value)

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.url is None) == (self.attachment_id is None):
            raise ValueError("give exactly one of url or attachment_id")
        return self


# Meta disabled these quick replies on every version on 2026-10-05 (../shared/reference/field-2026.md): the
# contract still knows them, so a producer learns why rather than reading "unknown content_type".
RETIRED_QUICK_REPLIES = frozenset({"user_email", "user_phone_number"})

# Message tags: HUMAN_AGENT is Instagram's only one. Meta retired three others on 2026-04-27 (field-2026), and
# CUSTOMER_FEEDBACK was never available on Instagram; the contract knows them so that a producer moving from
# Messenger learns which rule refused its message.
HUMAN_AGENT_TAG = "HUMAN_AGENT"
RETIRED_TAGS = frozenset({"ACCOUNT_UPDATE", "CONFIRMED_EVENT_UPDATE", "POST_PURCHASE_UPDATE", "CUSTOMER_FEEDBACK"})


class QuickReply(_Strict):
    content_type: Literal["text", "user_email", "user_phone_number"] = "text"
    title: str | None = Field(None, min_length=1, max_length=MAX_QUICK_REPLY_TITLE_CHARS)
    payload: str | None = Field(None, min_length=1, max_length=MAX_PAYLOAD_CHARS)

    @model_validator(mode="after")
    def _text_needs_title(self) -> Self:
        if self.content_type in RETIRED_QUICK_REPLIES:
            raise ValueError(
                f"{self.content_type} quick replies are disabled by Meta since 2026-10-05 (on every API version): "
                "ask with a text quick reply or a question instead"
            )
        if self.content_type == "text" and (self.title is None or self.payload is None):
            raise ValueError("a text quick reply needs a title and a payload")
        return self


class UrlButton(_Strict):
    type: Literal["web_url"]
    title: str = Field(min_length=1, max_length=MAX_TITLE_CHARS)
    url: str

    _https = field_validator("url")(_https_or_none)


class PostbackButton(_Strict):
    type: Literal["postback"]
    title: str = Field(min_length=1, max_length=MAX_TITLE_CHARS)
    payload: str = Field(min_length=1, max_length=MAX_PAYLOAD_CHARS)


Button = Annotated[UrlButton | PostbackButton, Field(discriminator="type")]


class DefaultAction(_Strict):
    url: str = Field(description="Opened when the element is tapped.")

    _https = field_validator("url")(_https_or_none)


class Element(_Strict):
    title: str = Field(min_length=1, max_length=MAX_TITLE_CHARS)
    subtitle: str | None = Field(None, min_length=1, max_length=MAX_TITLE_CHARS)
    image_url: str | None = None
    default_action: DefaultAction | None = None
    buttons: list[Button] = Field(default_factory=list, max_length=MAX_BUTTONS)

    _https = field_validator("image_url")(_https_or_none)

    @model_validator(mode="after")
    def _more_than_title(self) -> Self:
        if not (self.subtitle or self.image_url or self.default_action or self.buttons):
            raise ValueError("an element needs a subtitle, image_url, default_action or button besides its title")
        return self


# ------------------------------------------------------------------------------------------------ kinds


class Text(_Strict):
    """Text or links. Longer than 1000 UTF-8 bytes: split at word boundaries into ordered parts."""

    type: Literal["text"]
    text: str = Field(min_length=1)
    quick_replies: list[QuickReply] | None = Field(None, min_length=1, max_length=MAX_QUICK_REPLIES)

    _bytes = field_validator("text")(_splittable_text)


class Image(_Strict):
    """One image or GIF (url or attachment_id), or up to 10 in `items`."""

    type: Literal["image"]
    url: str | None = None
    attachment_id: Id | None = None
    items: list[Media] | None = Field(None, min_length=1, max_length=MAX_IMAGES)

    @model_validator(mode="after")
    def _one_form(self) -> Self:
        given = [self.url is not None, self.attachment_id is not None, self.items is not None]
        if sum(given) != 1:
            raise ValueError("give exactly one of url, attachment_id or items")
        if self.url is not None:
            _url(self.url)
        return self

    def media(self) -> list[Media]:
        return self.items or [Media(url=self.url, attachment_id=self.attachment_id)]


class Audio(Media):
    type: Literal["audio"]


class Video(Media):
    type: Literal["video"]


class File(Media):
    """A PDF."""

    type: Literal["file"]


class Sticker(_Strict):
    type: Literal["sticker"]
    sticker: Literal["like_heart"] = "like_heart"


class MediaShare(_Strict):
    """Shares one of the account's own published posts."""

    type: Literal["media_share"]
    media_id: Id


class GenericTemplate(_Strict):
    type: Literal["generic_template"]
    elements: list[Element] = Field(min_length=1, max_length=MAX_ELEMENTS)


class ButtonTemplate(_Strict):
    type: Literal["button_template"]
    text: str = Field(min_length=1, max_length=MAX_BUTTON_TEXT_CHARS)
    buttons: list[Button] = Field(min_length=1, max_length=MAX_BUTTONS)

    @field_validator("text")
    @classmethod
    def _bytes(cls, value: str) -> str:
        if _utf8_bytes(value) > MAX_TEXT_BYTES:
            raise ValueError(f"text is {_utf8_bytes(value)} UTF-8 bytes; at most {MAX_TEXT_BYTES}")
        return value


class React(_Strict):
    type: Literal["react"]
    message_id: Id = Field(description="The mid of the message to react to.")
    reaction: str = Field(min_length=1, max_length=32, description="An emoji, or 'love'.")


class Unreact(_Strict):
    type: Literal["unreact"]
    message_id: Id


class SenderAction(_Strict):
    """typing_on / typing_off, or mark_seen (marks the customer's latest message as seen)."""

    type: Literal["typing_on", "typing_off", "mark_seen"]


INSTAGRAM_INBOX_APP_ID = "1217981644879628"  # the Instagram Inbox, where people at the business answer
THREAD_CONTROL_KINDS = frozenset(
    {"pass_thread_control", "take_thread_control", "release_thread_control", "request_thread_control"}
)


class ThreadControl(_Strict):
    """Who answers the conversation (Meta's handover, now Conversation Routing): pass it to another app (the
    Instagram Inbox by default), take it back, release it, or ask its owner for it. Each is a call to Meta's
    endpoint of that name, not a message to the customer."""

    type: Literal["pass_thread_control", "take_thread_control", "release_thread_control", "request_thread_control"]
    target_app_id: Id | None = Field(
        None,
        description=f"pass_thread_control only: the app that takes the conversation; the Instagram Inbox "
        f"({INSTAGRAM_INBOX_APP_ID}) when absent.",
    )
    metadata: str | None = Field(None, min_length=1, max_length=1000, description="Handed to the other app.")

    @model_validator(mode="after")
    def _target(self) -> Self:
        if self.target_app_id is not None and self.type != "pass_thread_control":
            raise ValueError(f"target_app_id: only pass_thread_control names a target, not {self.type}")
        return self


# Portable kinds, as the commercial platforms offer them, transcoded to what Instagram supports.


class ChoiceOption(_Strict):
    title: str = Field(min_length=1, max_length=MAX_QUICK_REPLY_TITLE_CHARS)
    payload: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_PAYLOAD_CHARS,
        description="Sent back in the quick_reply event; defaults to the title.",
    )


class Choice(_Strict):
    """Text with reply choices: sent as quick replies."""

    type: Literal["choice"]
    text: str = Field(min_length=1)
    choices: list[ChoiceOption] = Field(min_length=1, max_length=MAX_QUICK_REPLIES)

    _bytes = field_validator("text")(_splittable_text)


class CardChoice(_Strict):
    """A card button: a URL to open, or a payload sent back as a postback."""

    title: str = Field(min_length=1, max_length=MAX_TITLE_CHARS)
    url: str | None = None
    payload: str | None = Field(None, min_length=1, max_length=MAX_PAYLOAD_CHARS)

    @model_validator(mode="after")
    def _one_action(self) -> Self:
        if (self.url is None) == (self.payload is None):
            raise ValueError("a card choice needs exactly one of url or payload")
        if self.url is not None:
            _url(self.url)
        return self


class CardContent(_Strict):
    title: str = Field(min_length=1, max_length=MAX_TITLE_CHARS)
    description: str | None = Field(None, min_length=1, max_length=MAX_TITLE_CHARS)
    media_url: str | None = Field(None, description="An image (Instagram cards show images only).")
    choices: list[CardChoice] = Field(default_factory=list, max_length=MAX_BUTTONS)

    _https = field_validator("media_url")(_https_or_none)

    @model_validator(mode="after")
    def _more_than_title(self) -> Self:
        if not (self.description or self.media_url or self.choices):
            raise ValueError("a card needs a description, media_url or choice besides its title")
        return self


class Card(CardContent):
    """One card: sent as a one-element generic template."""

    type: Literal["card"]


class Carousel(_Strict):
    """Cards side by side: sent as a generic template of up to 10 elements."""

    type: Literal["carousel"]
    cards: list[CardContent] = Field(min_length=1, max_length=MAX_ELEMENTS)


class Location(_Strict):
    """Sent as text with a maps link: Instagram has no location message."""

    type: Literal["location"]
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    title: str | None = Field(None, min_length=1, max_length=200)
    label: str | None = Field(None, min_length=1, max_length=200)

    @field_validator("latitude", "longitude")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value


class TextWithMedia(_Strict):
    """Text and a file: two sends, in order (text first, as Instagram displays them)."""

    type: Literal["text_with_media"]
    text: str = Field(min_length=1)
    media_type: Literal["image", "audio", "video", "file"]
    url: str | None = None
    attachment_id: Id | None = None

    _bytes = field_validator("text")(_splittable_text)

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        Media(url=self.url, attachment_id=self.attachment_id)  # the same rules as any other file
        return self


Message = Annotated[
    Text
    | Image
    | Audio
    | Video
    | File
    | Sticker
    | MediaShare
    | GenericTemplate
    | ButtonTemplate
    | React
    | Unreact
    | SenderAction
    | ThreadControl
    | Choice
    | Card
    | Carousel
    | Location
    | TextWithMedia,
    Field(discriminator="type"),
]

PRIVATE_REPLY_KINDS = frozenset({"text"})


class Recipient(_Strict):
    id: Id | None = Field(None, description="The customer's IGSID.")
    comment_id: Id | None = Field(None, description="A comment to answer privately (within 7 days of it).")

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.id is None) == (self.comment_id is None):
            raise ValueError("give exactly one of id or comment_id")
        return self


class OutboundMessage(_Strict):
    """One message for one customer, as put on the outbound queue."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        title="InstagramGatewayOutboundMessage",
        json_schema_extra={"$id": "https://instagram-dm-gateway/schemas/outbound-message.v1.json"},
    )

    schema_version: Literal["1"] = SCHEMA_VERSION
    idempotency_key: str = Field(
        pattern=IDEMPOTENCY_KEY_PATTERN,
        description=("Unique per message in this stack: a message with a key already seen is never sent again."),
    )
    account_id: Id | None = Field(
        None,
        description="The business account that sends (the id in its webhooks). "
        "Optional when the stack has exactly one account.",
    )
    recipient: Recipient
    message: Message
    reply_to_message_id: Id | None = Field(None, description="The mid of the message this one replies to.")
    human_agent: bool = Field(
        False,
        description="A person wrote this message. Only such messages may be sent "
        "between 24 hours and 7 days after the customer's last message (HUMAN_AGENT tag).",
    )
    tag: (
        Literal["HUMAN_AGENT", "ACCOUNT_UPDATE", "CONFIRMED_EVENT_UPDATE", "POST_PURCHASE_UPDATE", "CUSTOMER_FEEDBACK"]
        | None
    ) = Field(
        None,
        description="Messenger's message tag, for producers that send one: HUMAN_AGENT is the same as human_agent: "
        "true; the others are refused (Meta retired them on 2026-04-27; CUSTOMER_FEEDBACK never existed on "
        "Instagram). The gateway itself decides when the HUMAN_AGENT tag goes to Meta.",
    )
    correlation_id: str | None = Field(
        None, min_length=1, max_length=256, description="Yours; repeated on every status event of this message."
    )
    callback_url: str | None = Field(
        None, description="Each status change is POSTed here, signed (https only in a deployed stack)."
    )
    callback_data: str | None = Field(None, max_length=4096, description="Repeated in every callback.")
    dialect: Literal["webex-connect", "sinch", "cm"] | None = Field(
        None,
        description="The vendor format this message came in (docs/migrating.md): its status callbacks to "
        "callback_url go in that vendor's status report shape rather than as message_status events. Set by the "
        "compat routes and by the outbound queue's dialect message attribute.",
    )
    take_control: bool = Field(
        False,
        description="When another app (the Instagram Inbox) answers the conversation: take it back first "
        "(take_thread_control), then send. Without it such a message ends FAILED thread_owned_by_inbox.",
    )
    valid_until: AwareDatetime | None = Field(
        None,
        description="ISO 8601 with its offset. A message that cannot be sent before then (rate limits, retries, "
        "a paused account, or already past when it arrives) ends FAILED with reason expired, without reaching "
        "the customer late.",
    )

    @field_validator("callback_url")
    @classmethod
    def _callback(cls, value: str | None) -> str | None:
        return None if value is None else _url(value, https_only=False)

    @model_validator(mode="before")
    @classmethod
    def _human_agent_tag(cls, data: Any) -> Any:
        """The HUMAN_AGENT tag says a person wrote the message, as human_agent does."""
        if isinstance(data, dict) and data.get("tag") == HUMAN_AGENT_TAG and "human_agent" not in data:
            return {**data, "human_agent": True}
        return data

    @model_validator(mode="after")
    def _combinations(self) -> Self:
        # These rules span fields, so pydantic reports them at the top level: each reason names its field.
        kind = self.message.type
        if self.recipient.comment_id is not None and kind not in PRIVATE_REPLY_KINDS:
            raise ValueError(
                f"message.type: a private reply to a comment (recipient.comment_id) can only be text, not {kind}"
            )
        if self.recipient.comment_id is not None and isinstance(self.message, Text) and self.message.quick_replies:
            raise ValueError(
                "message.quick_replies: a private reply to a comment (recipient.comment_id) cannot carry quick replies"
            )
        if self.tag in RETIRED_TAGS:
            raise ValueError(
                f"tag: {self.tag} is not a message tag on Instagram (Meta retired ACCOUNT_UPDATE, "
                "CONFIRMED_EVENT_UPDATE and POST_PURCHASE_UPDATE on 2026-04-27; CUSTOMER_FEEDBACK never existed "
                "there): outside the 24-hour window only a message a person wrote may go, with human_agent: true"
            )
        if self.tag == HUMAN_AGENT_TAG and not self.human_agent:
            raise ValueError("tag: HUMAN_AGENT says a person wrote the message, but human_agent is false")
        if self.reply_to_message_id is not None and kind in {
            "react",
            "unreact",
            "typing_on",
            "typing_off",
            "mark_seen",
            *THREAD_CONTROL_KINDS,
        }:
            raise ValueError(f"reply_to_message_id: does not apply to {kind}")
        return self

    @property
    def kind(self) -> str:
        return self.message.type


def validation_reason(errors: list[Any]) -> str:
    """A producer-readable reason from pydantic's errors: where, and what is wrong, for each."""
    reasons = []
    for error in errors[:5]:
        where = ".".join(str(p) for p in _without_union_tags(error.get("loc", ())))
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        if error.get("type") == "string_unicode":
            # An unpaired surrogate escape (\ud800) in a key or a text: JSON allows it, Unicode does not.
            message = "not valid Unicode text (an unpaired surrogate escape such as \\ud800)"
            if not where:  # in a key of the body itself: pydantic names no field
                message = f"body must be a JSON object whose keys are valid Unicode text; one is {message}"
        reasons.append(f"{where}: {message}" if where else message)
    more = len(errors) - 5
    return "; ".join(reasons) + (f"; and {more} more" if more > 0 else "")


def _without_union_tags(location: Any) -> list[Any]:
    """pydantic puts the discriminator's value in error locations (message.text.text); drop it."""
    parts = list(location)
    kept: list[Any] = []
    for i, part in enumerate(parts):
        before = parts[i - 1] if i else None
        tag_position = before == "message" or (isinstance(before, int) and part in ("web_url", "postback"))
        if tag_position and isinstance(part, str) and part in _KIND_NAMES:
            continue
        kept.append(part)
    return kept


_KIND_NAMES = frozenset(
    {
        "text",
        "image",
        "audio",
        "video",
        "file",
        "sticker",
        "media_share",
        "generic_template",
        "button_template",
        "react",
        "unreact",
        "typing_on",
        "typing_off",
        "mark_seen",
        *THREAD_CONTROL_KINDS,
        "choice",
        "card",
        "carousel",
        "location",
        "text_with_media",
        "web_url",
        "postback",
    }
)


def json_schema() -> dict[str, Any]:
    return OutboundMessage.model_json_schema(mode="validation")
