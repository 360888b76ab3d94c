"""`make sample-events`: writes events/*.json: API Gateway events signed with the local default app secret, and
SQS events carrying an outbound message of every kind, and a status callback job.

Deterministic (fixed request id and time) so a test can check the committed files are current.
"""

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from igdm.contracts.message_status import status_event
from igdm.contracts.serialized import SerializedEvent
from igdm.store.outbound_records import OutboundRecord
from local.aws.apigw import http_api_event
from local.aws.template import ROOT
from local.samples import meta as m
from local.samples import outbound as out
from local.stack import DEFAULT_APP_SECRET, DEFAULT_VERIFY_TOKEN, callback_inbox_url, scheduler_event
from webhook.signature import sign

EVENTS_DIR = ROOT / "events"
FIXED_TIME_MS = m.RECEIVED_MS


def _post(document: dict[str, Any], *, signature: str | None = None) -> dict[str, Any]:
    body = m.body(document)
    headers = {
        "content-type": "application/json",
        "user-agent": "facebookexternalua",
        "x-hub-signature-256": signature or sign(body, DEFAULT_APP_SECRET),
    }
    return _fixed(http_api_event("POST", "/webhook", headers=headers, body=body, now_ms=FIXED_TIME_MS))


def _fixed(event: dict[str, Any]) -> dict[str, Any]:
    event["requestContext"]["requestId"] = "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
    return event


def sample_events() -> dict[str, dict[str, Any]]:
    every_kind = m.envelope(
        m.text(),
        m.attachment("image"),
        m.post_share(),
        m.story_reply(),
        m.reply(),
        m.quick_reply(),
        m.postback(),
        m.reaction(),
        m.reaction(action="unreact"),
        m.read(),
        m.edited(),
        m.echo(),
        m.referral(),
        m.optin(),
        m.handover(),
        m.unsupported(),
        m.deleted(mid="m_reply"),
    )
    return {
        "apigw_webhook_verify.json": _fixed(
            http_api_event(
                "GET",
                "/webhook",
                now_ms=FIXED_TIME_MS,
                query=f"hub.mode=subscribe&hub.verify_token={DEFAULT_VERIFY_TOKEN}&hub.challenge=1158201444",
            )
        ),
        "apigw_webhook_text.json": _post(m.envelope(m.text())),
        "apigw_webhook_every_kind.json": _post(every_kind),
        # A customer taps the handover quick reply: the webhook queues a pass to the Instagram Inbox.
        "apigw_webhook_human_agent_tap.json": _post(
            m.envelope(
                m.inbound(
                    {"message": {"mid": "m_tap", "text": "Talk to a person", "quick_reply": {"payload": "HUMAN_AGENT"}}}
                )
            )
        ),
        "apigw_webhook_story_mention.json": _post(m.envelope(m.attachment("story_mention", mid="m_story"))),
        "apigw_webhook_comment.json": _post(
            {
                "object": "instagram",
                "entry": [{"id": m.ACCOUNT, "time": 1735690400, "changes": [m.comment_change(), m.mention_change()]}],
            }
        ),
        "apigw_webhook_bad_signature.json": _post(m.envelope(m.text()), signature="sha256=" + "0" * 64),
    }


def sqs_event(
    body: dict[str, Any],
    *,
    queue: str = "instagram-gateway-local-outbound.fifo",
    group: str | None = None,
    deduplication_id: str | None = None,
) -> dict[str, Any]:
    """The event Lambda's SQS integration delivers for one FIFO message (as the local poller builds it)."""
    text = json.dumps(body, ensure_ascii=False)
    group = group or f"{body.get('account_id', '-')}:{(body.get('recipient') or {}).get('id', '-')}"
    return {
        "Records": [
            {
                "messageId": "059f36b4-87a3-44ab-83d2-661975830a7d",
                "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
                "body": text,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": str(FIXED_TIME_MS),
                    "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                    "ApproximateFirstReceiveTimestamp": str(FIXED_TIME_MS),
                    "SequenceNumber": "18849496460467696128",
                    "MessageGroupId": group,
                    "MessageDeduplicationId": deduplication_id or body["idempotency_key"],
                },
                "messageAttributes": {},
                "md5OfBody": hashlib.md5(text.encode(), usedforsecurity=False).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:us-east-1:123456789012:{queue}",
                "awsRegion": "us-east-1",
            }
        ]
    }


def outbound_events() -> dict[str, dict[str, Any]]:
    events = {f"sqs_outbound_{kind}.json": sqs_event(out.outbound(kind)) for kind in out.KINDS}
    events["sqs_outbound_private_reply.json"] = sqs_event(out.private_reply())
    return events


def callback_events() -> dict[str, dict[str, Any]]:
    """A callback job as the sender queues it: the SENT status of the sample text, for the local stack's
    callback inbox (so `make invoke` with it calls nothing but 127.0.0.1)."""
    message = out.outbound("text")
    record = OutboundRecord(
        idempotency_key=message["idempotency_key"],
        status="SENT",
        account_id=out.ACCOUNT,
        customer_id=out.CUSTOMER,
        kind="text",
        payload_hash="-",
        parts_total=1,
        parts_sent=1,
        inflight_part=None,
        message_ids=["aWdfZAG1faWQZD"],
        correlation_id=message["correlation_id"],
        callback_url=callback_inbox_url(),
        callback_data="customer-42|order-123",
    )
    fixed = datetime.fromtimestamp(FIXED_TIME_MS / 1000, UTC)
    event = status_event(record).model_copy(update={"occurred_at": fixed, "received_at": fixed})
    job = {"url": record.callback_url, "event_id": event.event_id, "body": SerializedEvent.of(event).body}
    return {
        "sqs_callback_sent.json": sqs_event(
            job,
            queue="instagram-gateway-local-callbacks.fifo",
            group=record.idempotency_key,
            deduplication_id=event.event_id,
        )
    }


def schedule_events() -> dict[str, dict[str, Any]]:
    """What the schedules deliver (neither function reads anything from it): `make refresh`, `make reconcile`."""
    return {"scheduler_refresher.json": scheduler_event(), "scheduler_reconciler.json": scheduler_event()}


def render(event: dict[str, Any]) -> str:
    return json.dumps(event, indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    EVENTS_DIR.mkdir(exist_ok=True)
    for name, event in {**sample_events(), **outbound_events(), **callback_events(), **schedule_events()}.items():
        Path(EVENTS_DIR / name).write_text(render(event), encoding="utf-8")
        print(f"wrote events/{name}")


if __name__ == "__main__":
    main()
