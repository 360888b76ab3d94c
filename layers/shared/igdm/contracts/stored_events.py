"""An event as its item in the table keeps it (igdm.store.event_items): the event's JSON without the fields that
hold their defaults (null, [], false), which a text message's event mostly is. DynamoDB bills a write by the
kilobyte, and without them a text message's item fits in one (about 850 bytes instead of 1,200).

Readers that hand an event on as the contract's JSON (the fan-out to event webhooks, the conversation history)
take it from expanded(); readers of a few fields read the stored JSON as it is, an absent field being its
default. Items written before this held the whole JSON, which expanded() gives back unchanged."""


def expanded(stored: str) -> str:
    """The event's JSON as it was published, from its stored form: every field, in the contract's order."""
    from igdm.contracts.events import InboundEvent  # the readers' path, not the webhook's: pydantic is fine here

    return InboundEvent.model_validate_json(stored).model_dump_json(ensure_ascii=True)
