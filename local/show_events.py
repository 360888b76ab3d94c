"""`make events`: the latest events the running local stack stored, one line each (when, kind, conversation,
text), oldest first. Read from the table as GET /v1/conversations/{id}/events reads it (igdm.store.history), so
nothing is taken off the events queue: its own readers still get every event. `LIMIT` sets how many (20)."""

import os
import sys
from typing import Any

import boto3

from igdm.store.accounts import AccountTable
from igdm.store.history import ConversationHistory
from local.aws.template import REGION
from local.narration import describe_event
from local.stack import LocalConfig, provision_stack, require_running

PER_CONVERSATION = 100  # the newest of each conversation; the latest LIMIT of all are shown


def line(event: dict[str, Any]) -> str:
    when = str(event.get("occurred_at", ""))[:19].replace("T", " ")
    return f"{when}  {describe_event(event)}"


def main() -> None:
    limit = int(os.environ.get("LIMIT") or 20)
    config = LocalConfig.from_environment()
    require_running(config)
    table = provision_stack(config).refs["GatewayTable"]
    os.environ.update(config.aws_environment())  # the emulator's dummy credentials, as make say's
    dynamodb = boto3.client("dynamodb", endpoint_url=config.endpoint, region_name=REGION)  # the emulator, never AWS
    history = ConversationHistory(dynamodb, table)
    found: list[dict[str, Any]] = []
    for account in AccountTable(dynamodb, table).all():
        conversations, _ = history.conversations(account.account_id, PER_CONVERSATION, None)
        for conversation in conversations:
            events, _ = history.events(account.account_id, str(conversation["customer_id"]), PER_CONVERSATION, None)
            found.extend(events)
    latest = sorted(found, key=lambda e: str(e.get("occurred_at", "")))[-limit:]
    if not latest:
        print("no events stored yet: try `make say`")
    for event in latest:
        print(line(event))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
