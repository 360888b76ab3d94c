"""`make events`: writes events/*.json: API Gateway events signed with the local default app secret, and
SQS events carrying an outbound message of every kind.

Deterministic (fixed request id and time) so a test can check the committed files are current.
"""

import hashlib
import json
from pathlib import Path
from typing import Any

from local import meta_samples as m
from local import outbound_samples as out
from local.apigw import http_api_event
from local.stack import DEFAULT_APP_SECRET, DEFAULT_VERIFY_TOKEN
from local.template import ROOT
from webhook.signature import sign

EVENTS_DIR = ROOT / "events"
FIXED_TIME_MS = 1735689601000


def _post(document: dict[str, Any], *, signature: str | None = None) -> dict[str, Any]:
    body = m.body(document)
    headers = {"content-type": "application/json", "user-agent": "facebookexternalua",
               "x-hub-signature-256": signature or sign(body, DEFAULT_APP_SECRET)}
    return _fixed(http_api_event("POST", "/webhook", headers=headers, body=body, now_ms=FIXED_TIME_MS))


def _fixed(event: dict[str, Any]) -> dict[str, Any]:
    event["requestContext"]["requestId"] = "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
    return event


def sample_events() -> dict[str, dict[str, Any]]:
    every_kind = m.envelope(
        m.text(), m.attachment("image"), m.post_share(), m.story_reply(), m.reply(), m.quick_reply(),
        m.postback(), m.reaction(), m.reaction(action="unreact"), m.read(), m.edited(), m.echo(), m.referral(),
        m.optin(), m.handover(), m.unsupported(), m.deleted(mid="m_reply"),
    )
    return {
        "apigw_webhook_verify.json": _fixed(http_api_event(
            "GET", "/webhook", now_ms=FIXED_TIME_MS,
            query=f"hub.mode=subscribe&hub.verify_token={DEFAULT_VERIFY_TOKEN}&hub.challenge=1158201444")),
        "apigw_webhook_text.json": _post(m.envelope(m.text())),
        "apigw_webhook_every_kind.json": _post(every_kind),
        "apigw_webhook_story_mention.json": _post(m.envelope(m.attachment("story_mention", mid="m_story"))),
        "apigw_webhook_comment.json": _post({"object": "instagram", "entry": [
            {"id": m.ACCOUNT, "time": 1735690400, "changes": [m.comment_change(), m.mention_change()]}]}),
        "apigw_webhook_bad_signature.json": _post(m.envelope(m.text()), signature="sha256=" + "0" * 64),
    }


def sqs_event(body: dict[str, Any], *, queue: str = "instagram-gateway-local-outbound.fifo") -> dict[str, Any]:
    """The event Lambda's SQS integration delivers for one FIFO message (as the local poller builds it)."""
    text = json.dumps(body, ensure_ascii=False)
    group = f"{body.get('account_id', '-')}:{(body.get('recipient') or {}).get('id', '-')}"
    return {"Records": [{
        "messageId": "059f36b4-87a3-44ab-83d2-661975830a7d",
        "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
        "body": text,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": str(FIXED_TIME_MS),
                       "SenderId": "AIDAIENQZJOLO23YVJ4VO", "ApproximateFirstReceiveTimestamp": str(FIXED_TIME_MS),
                       "SequenceNumber": "18849496460467696128", "MessageGroupId": group,
                       "MessageDeduplicationId": body["idempotency_key"]},
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(text.encode(), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:us-east-1:123456789012:{queue}",
        "awsRegion": "us-east-1",
    }]}


def outbound_events() -> dict[str, dict[str, Any]]:
    events = {f"sqs_outbound_{kind}.json": sqs_event(out.outbound(kind)) for kind in out.KINDS}
    events["sqs_outbound_private_reply.json"] = sqs_event(out.private_reply())
    return events


def render(event: dict[str, Any]) -> str:
    return json.dumps(event, indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    EVENTS_DIR.mkdir(exist_ok=True)
    for name, event in {**sample_events(), **outbound_events()}.items():
        Path(EVENTS_DIR / name).write_text(render(event), encoding="utf-8")
        print(f"wrote events/{name}")


if __name__ == "__main__":
    main()
