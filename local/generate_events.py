"""`make events`: writes events/*.json, API Gateway events signed with the local default app secret.

Deterministic (fixed request id and time) so a test can check the committed files are current.
"""

import json
from pathlib import Path
from typing import Any

from local import meta_samples as m
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


def render(event: dict[str, Any]) -> str:
    return json.dumps(event, indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    EVENTS_DIR.mkdir(exist_ok=True)
    for name, event in sample_events().items():
        Path(EVENTS_DIR / name).write_text(render(event), encoding="utf-8")
        print(f"wrote events/{name}")


if __name__ == "__main__":
    main()
