"""`make say` and `make send`: try the whole loop by hand against `make run`.

    make say                       the sample customer writes to the local account (a signed webhook)
    make say TEXT="where is it?"
    make send                      the account answers (a text on the outbound queue), then its status
    make send KIND=choice          any kind from docs/messages.md (local/samples/outbound.py)
    make deauthorize               Meta's deauthorize callback for the local account (ACCOUNT=<id> for another)
    make delete-data ID=<id>       Meta's data deletion callback for a customer (or an account): everything
                                   stored about the id is deleted; prints the status page's address

Messages from `make send` ask for status callbacks to the local callback inbox, which prints each
one it receives with whether its signature checked out.
"""

import json
import os
import sys
import time
import uuid
from typing import Any
from urllib.error import HTTPError
from urllib.parse import urlencode
from urllib.request import Request, urlopen

import boto3

from igdm.meta.signed_request import sign_request
from igdm.store.keys import ACCOUNTS_PK, OUTBOUND_SK, account_sk, key, outbound_pk
from local.aws.template import REGION, Stack, load
from local.samples import outbound as outbound_samples
from local.stack import DEFAULT_CUSTOMER_ID, LOOPBACK, LocalConfig, require_running
from tools.producer import enqueue
from webhook.signature import sign

FINAL = {"DELIVERED", "READ", "FAILED"}
# Sender actions have no message id, so no echo: SENT is as far as they go.
ACTIONS = {"react", "unreact", "typing_on", "typing_off", "mark_seen"}


def say(config: LocalConfig, text: str) -> None:
    now = int(time.time() * 1000)
    document = {
        "object": "instagram",
        "entry": [
            {
                "id": config.account_id,
                "time": now,
                "messaging": [
                    {
                        "sender": {"id": DEFAULT_CUSTOMER_ID},
                        "recipient": {"id": config.account_id},
                        "timestamp": now,
                        "message": {"mid": f"m_local_{uuid.uuid4().hex[:16]}", "text": text},
                    }
                ],
            }
        ],
    }
    body = json.dumps(document, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(body, config.app_secret)}
    url = f"http://{LOOPBACK}:{config.api_port}/webhook"
    request = Request(url, data=body, method="POST", headers=headers)
    with urlopen(request, timeout=10) as response:  # noqa: S310  # nosec B310 # an http URL to loopback
        print(f"customer {DEFAULT_CUSTOMER_ID} said {text!r}: {response.status} {response.read().decode()}")


def send(config: LocalConfig, kind: str, text: str | None) -> None:
    if kind not in outbound_samples.KINDS:
        raise SystemExit(f"unknown KIND {kind!r}; one of: {', '.join(outbound_samples.KINDS)}")
    stack = Stack(config.stack_name, load())
    queue_name = stack.resolve(stack.template["Resources"]["OutboundQueue"]["Properties"]["QueueName"])
    sqs = boto3.client("sqs", endpoint_url=config.endpoint, region_name=REGION)
    table = boto3.client("dynamodb", endpoint_url=config.endpoint, region_name=REGION)
    table_name = next(t for t in table.list_tables()["TableNames"] if t.startswith(config.stack_name))
    key = f"local-{uuid.uuid4().hex[:12]}"
    message = outbound_samples.local_reply(kind, key, config.account_id, config.callback_url, text=text)
    enqueue(sqs, sqs.get_queue_url(QueueName=queue_name)["QueueUrl"], message)
    print(f"queued {kind} message {key}; its status:")
    seen = None
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        item = table.get_item(
            TableName=table_name, ConsistentRead=True, Key={"pk": {"S": outbound_pk(key)}, "sk": {"S": OUTBOUND_SK}}
        ).get("Item")
        status = item["status"]["S"] if item else "QUEUED"
        if status != seen:
            detail = item.get("detail", {}).get("S", "") if item else ""
            print(f"  {status}{': ' + detail if detail else ''}")
            seen = status
        if status in FINAL or (kind in ACTIONS and status == "SENT"):
            return
        time.sleep(0.2)
    if seen == "PENDING" and _paused(table, table_name, config.account_id):
        print(f"  (held: the account is paused; `make resume ACCOUNT={config.account_id}` sends it)")
        return
    if seen == "UNKNOWN":
        print("  (no echo within 15 s: the reconciler settles it, `make reconcile`, once it has waited 5 minutes)")
        return
    print("  (no final status within 15 s: is `make run` running?)")


def _paused(table: Any, table_name: str, account_id: str) -> bool:
    item = table.get_item(TableName=table_name, Key=key(ACCOUNTS_PK, account_sk(account_id))).get("Item") or {}
    return "paused_at" in item


def meta_callback(config: LocalConfig, path: str, user_id: str) -> tuple[int, str]:
    """One of Meta's callbacks (``path``: deauthorize, data-deletion) for ``user_id``, signed with the local
    Instagram app secret as Meta signs it; the status and the answer."""
    payload = {"algorithm": "HMAC-SHA256", "issued_at": int(time.time()), "user_id": user_id}
    body = urlencode({"signed_request": sign_request(payload, config.instagram_app_secret)}).encode()
    url = f"http://{LOOPBACK}:{config.api_port}/meta/{path}"
    request = Request(url, data=body, method="POST", headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urlopen(request, timeout=10) as response:  # noqa: S310  # nosec B310 # an http URL to loopback
            return response.status, response.read().decode()
    except HTTPError as error:
        return error.code, error.read().decode()


def deauthorize(config: LocalConfig, account_id: str) -> None:
    """As Meta sends it when the account's owner removes the app."""
    status, answer = meta_callback(config, "deauthorize", account_id)
    print(f"deauthorize {account_id}: {status} {answer}")


def delete_data(config: LocalConfig, user_id: str) -> None:
    """As Meta sends it when someone asks Meta to delete what the app holds about them: the eraser runs on the
    erasure queue within a second or two; the status page says when it is done and what it deleted."""
    status, answer = meta_callback(config, "data-deletion", user_id)
    if status != 200:
        raise SystemExit(f"data deletion for {user_id}: {status} {answer}")
    document = json.loads(answer)
    print(f"data deletion for {user_id}: confirmation code {document['confirmation_code']}")
    print(f"status page: {document['url']}")


def main() -> None:
    config = LocalConfig.from_environment()
    require_running(config)
    os.environ.update(config.aws_environment())  # the emulator's endpoint and dummy credentials
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command == "say":
        say(config, os.environ.get("TEXT") or "Hi! Is the blue hoodie in stock?")
    elif command == "send":
        send(config, os.environ.get("KIND") or "text", os.environ.get("TEXT"))
    elif command == "deauthorize":
        deauthorize(config, os.environ.get("ACCOUNT") or config.account_id)
    elif command == "delete-data" and os.environ.get("USER_ID"):
        delete_data(config, os.environ["USER_ID"])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
