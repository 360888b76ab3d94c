"""What an event webhook may ask for and what it is sent (docs/http-api.md, "Event webhooks").

Without a dialect, each delivery's body is the event exactly as it is on the events queue (schemas/
inbound-event.v1.json). With `sinch`, Sinch's webhook shapes (igdm.contracts.dialects.sinch.event_bodies), and
the kinds may be named by Sinch's triggers (MESSAGE_INBOUND, MESSAGE_DELIVERY, EVENT_INBOUND, UNSUPPORTED). With
`cm`, CM.com's status reports: message_status only (the gateway has no CM.com inbound shape yet, and a kind it
cannot send is refused at registration rather than dropped at delivery).

Event webhooks carry what the gateway stores: every conversation event the webhook function received (each
inbound kind, echoes, comments, gaps from the reconciler) and every status an outbound message reaches. The
gateway's account_status and customer_forgotten events are on the events queue only.
"""

from typing import Any

from igdm.contracts.event_kinds import EventKind

DIALECTS = ("sinch", "cm")
NOT_STORED = frozenset({EventKind.ACCOUNT_STATUS.value, EventKind.CUSTOMER_FORGOTTEN.value})
KINDS = tuple(k.value for k in EventKind if k.value not in NOT_STORED)


def kinds_wanted(requested: Any, dialect: str | None) -> tuple[str, ...]:
    """The registration's kinds (ValueError says what is wrong): the gateway's kinds, "*" for every one, and with
    the sinch dialect Sinch's trigger names too."""
    from igdm.contracts.dialects.sinch import TRIGGERS

    if requested is None:
        requested = ["*"]
    if not isinstance(requested, list) or not requested or not all(isinstance(k, str) for k in requested):
        raise ValueError('kinds: a non-empty list of event kinds, or ["*"] for all')
    kinds: list[str] = []
    for name in requested:
        if name == "*":
            kinds.extend(KINDS)
        elif dialect == "sinch" and name in TRIGGERS:
            kinds.extend(TRIGGERS[name])
        elif name in NOT_STORED:
            raise ValueError(f"kinds: {name} events are on the events queue only, not sent to event webhooks")
        elif name in KINDS:
            kinds.append(name)
        else:
            triggers = f", or Sinch's triggers {', '.join(TRIGGERS)}" if dialect == "sinch" else ""
            raise ValueError(f"kinds: {name!r} is not one of the gateway's event kinds{triggers}")
    if dialect == "cm" and set(kinds) != {"message_status"}:
        raise ValueError('kinds: the cm dialect sends CM.com\'s status reports only: ask for ["message_status"]')
    return tuple(dict.fromkeys(kinds))


def bodies(dialect: str | None, event: dict[str, Any], canonical: str) -> list[str]:
    """The bodies to POST for one event (``canonical``: the event's own JSON, as published)."""
    if dialect is None:
        return [canonical]
    from igdm.contracts.dialects import dialect as vendor
    from igdm.contracts.dialects.sinch import event_bodies
    from igdm.store.webhooks import as_json

    if dialect == "sinch":
        return [as_json(body) for body in event_bodies(event)]
    if event.get("kind") == "message_status":
        return [as_json(vendor(dialect).status_report(event))]
    return []
