"""Product bugs `make chaos` found, each reproduced deterministically (chaos/known.py describes them).

Each test states the behaviour the product should have. Those still failing are xfail(strict=True): once
fixed, strict turns the pass into a failure, so the marker and the entry in chaos/known.py are removed and
the scenario counts the bug as a failure again should it come back. The unmarked ones are fixed already and
stay as regression tests.
"""

import contextlib
import json
import random
import time
from typing import Any

from chaos.faults import AwsFaults
from chaos.fuzz_outbound import names_a_field
from chaos.refresher_faults import working_token
from chaos.sender_faults import dead_letters, drive, wrapped_send
from chaos.stacks import accounts_stack, outbound_stack, webhook_stack
from igdm.store.accounts import NEEDS_REAUTHORISATION
from igdm.store.outbound_records import FAILED
from local.aws.apigw import LambdaContext
from local.samples import meta as m
from local.samples import outbound as out
from refresher import handler as refresher_handler
from refresher.scheduled_run import RefreshIncomplete
from sender.graph import GraphClient, Outcome
from sender.service import _parse


def _nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


def _answered_whole(harness: Any, response: dict[str, Any], mid: str | None) -> None:
    """Stored (200) or refused with a reason (4xx, nothing kept): never a 5xx Meta would retry forever."""
    if response["statusCode"] == 200:
        assert [i["message_id"] for i in harness.event_items()] == [mid]
    else:
        assert 400 <= response["statusCode"] < 500 and json.loads(response["body"])["error"]
        assert harness.items() == [] and harness.drain() == []


def test_a_signed_body_with_a_deeply_nested_value_gets_an_answer() -> None:
    """Was a 500 (PydanticSerializationError from SerializedEvent.of at 256 levels)."""
    with webhook_stack() as harness:
        item = m.text(mid="m_deep")
        item["extra"] = _nested(300)  # unknown fields are kept, in raw
        _answered_whole(harness, harness.post(m.envelope(item)), "m_deep")


def test_a_signed_body_with_a_lone_surrogate_and_deep_nesting_gets_an_answer() -> None:
    """Was a 500 (RecursionError from replacing the lone surrogates, before nesting had a limit)."""
    with webhook_stack() as harness:
        body = (
            b'{"object":"instagram","entry":[{"id":"1","messaging":[{"t":"\\ud83d","x":'
            + b"[" * 1500
            + b"]" * 1500
            + b"}]}]}"
        )
        _answered_whole(harness, harness.post(raw=body), None)


def test_a_signed_body_with_an_absurd_entry_time_is_stored() -> None:
    with webhook_stack() as harness:
        response = harness.post(m.envelope(m.text(mid="m_time"), time=-1e306))  # entry.time is only a fallback
        assert response["statusCode"] == 200
        assert [i["message_id"] for i in harness.event_items()] == ["m_time"]


def test_an_unknown_message_is_not_settled_by_the_echo_of_another_message() -> None:
    """Was DELIVERED: the second file's echo reached the webhook before its mid was recorded, and matched the
    first by attachment type."""
    with outbound_stack(graph_timeout_seconds=0.5) as loop:
        loop.say()
        file = {"type": "file", "url": f"{out.HTTPS}/first.pdf"}
        loop.sandbox.inject("timeout", delay=2.5)  # Meta never gets the first file; the sender cannot know
        loop.enqueue(out.outbound("file", key="first-file", message=file))
        drive(loop, time.monotonic() + 20)
        assert [s["status"] for s in loop.statuses("first-file")] == ["UNKNOWN"]
        original = GraphClient.send

        def echo_first(client: GraphClient, token: str, body: dict[str, Any]) -> Outcome:
            outcome: Outcome = original(client, token, body)
            loop.sandbox.drain_webhooks(timeout=10)  # the echo reaches the webhook before the sender records
            return outcome

        with wrapped_send(lambda _, client, token, body: echo_first(client, token, body)):
            loop.enqueue(
                out.outbound("file", key="second-file", message={"type": "file", "url": f"{out.HTTPS}/second.pdf"})
            )
            drive(loop, time.monotonic() + 20)
        assert [s.body["message"]["attachment"]["payload"]["url"] for s in loop.sandbox.sent] == [
            f"{out.HTTPS}/second.pdf"
        ]
        assert "DELIVERED" not in [s["status"] for s in loop.statuses("first-file")], "settled by the second's echo"


def test_a_message_reported_delivered_had_every_part_delivered() -> None:
    """Was DELIVERED with its file never sent: the text's own echo settled the UNKNOWN message."""
    with outbound_stack(graph_timeout_seconds=0.5) as loop:
        loop.say()
        loop.sandbox.inject("timeout", delay=2.5, deliver=True)  # Meta takes the text, its answer comes late
        loop.enqueue(out.outbound("text_with_media", key="two-parts"))
        drive(loop, time.monotonic() + 20)
        statuses = loop.statuses("two-parts")
        assert statuses[0]["status"] == "UNKNOWN"
        assert len(loop.sandbox.sent) == 1  # the text; the file is never sent after an uncertain part
        assert (statuses[-1]["status"], statuses[-1]["reason"]) == ("FAILED", "partially_sent")


def test_a_transient_error_is_retried_before_the_message_is_given_up() -> None:
    """Was given up after one request: the limit of 3 counted SQS receives, skipped ones included."""
    with outbound_stack() as loop:
        loop.say()
        sends: dict[str, int] = {}

        def flaky(original: Any, client: GraphClient, token: str, body: dict[str, Any]) -> Outcome:
            text = body["message"]["text"]
            sends[text] = sends.get(text, 0) + 1
            # The first message fails twice, then goes; the second's first request fails once (code 2).
            if (text, sends[text]) in (("first", 1), ("first", 2), ("second", 1)):
                loop.sandbox.inject("http_5xx")
            result: Outcome = original(client, token, body)
            return result

        with wrapped_send(flaky):
            loop.enqueue(out.outbound("text", key="first", message={"type": "text", "text": "first"}))
            loop.enqueue(out.outbound("text", key="second", message={"type": "text", "text": "second"}))
            drive(loop, time.monotonic() + 30)
        assert sends["second"] >= 1
        statuses = [(s["status"], s["reason"]) for s in loop.statuses("second")]
        assert (FAILED, "retries_exhausted") not in statuses, f"gave up after {sends['second']} request(s)"


def test_a_message_waiting_behind_a_throttled_one_still_gets_a_status() -> None:
    """Was dead-lettered with no status: its receives went by waiting for the account's rate slot."""
    with outbound_stack(max_receive_count=3) as loop:  # the template's 10, lowered to keep the test short
        loop.say()
        loop.sandbox.inject("throttle", count=3, code=80002)  # Meta throttles the account three times
        loop.enqueue(out.outbound("text", key="head", message={"type": "text", "text": "head"}))
        loop.enqueue(out.outbound("text", key="behind", message={"type": "text", "text": "behind"}))
        drive(loop, time.monotonic() + 20)
        assert [(s["status"], s["reason"]) for s in loop.statuses("head")] == [(FAILED, "retries_exhausted")]
        assert loop.statuses("behind"), f"no status; in the dead-letter queue: {sorted(dead_letters(loop))}"


def _refresh_with_refused_writes(refusals: int, *, next_days: int = 0) -> bool:
    """A refresher run, Instagram revoking a refreshed token, the new token's first ``refusals`` writes
    refused, the retries Lambda makes of a run that reports itself incomplete, and ``next_days`` scheduled
    runs after them: whether the account then has a working token."""
    with accounts_stack(refresh_invalidates_old=True) as accounts:
        account = "17841400000000091"
        accounts.add(account, "token-91", age_days=40)
        faults = AwsFaults(random.Random(0)).attach("secretsmanager")
        for _ in range(refusals):
            faults.arm("secrets-manager", "refused", operation="PutSecretValue")
        retries = accounts.stack.template["Resources"]["RefresherFunction"]["Properties"]["EventInvokeConfig"][
            "MaximumRetryAttempts"
        ]
        for _ in range(1 + next_days):
            for _ in range(1 + retries):
                try:
                    refresher_handler.lambda_handler({}, LambdaContext("RefresherFunction", timeout_seconds=300))
                    break
                except RefreshIncomplete:  # raised when the refresh failed: Lambda retries it
                    continue
            if working_token(accounts, account):
                return True
        return False


def test_a_refused_write_of_the_new_token_is_retried() -> None:
    """Was: one refused PutSecretValue dropped the new token, the old one being revoked."""
    assert _refresh_with_refused_writes(1)


def test_an_account_whose_new_token_became_current_is_not_declared_dead() -> None:
    with accounts_stack(refresh_invalidates_old=True) as accounts:  # Instagram revoking the refreshed token
        account = "17841400000000092"
        accounts.add(account, "token-92", age_days=40)
        faults = AwsFaults(random.Random(0)).attach("secretsmanager")
        # The promotion's second step (clearing AWSPENDING) is done, but its answer is lost.
        faults.arm("secrets-manager", "lost", operation="UpdateSecretVersionStage", after=1)
        with contextlib.suppress(RefreshIncomplete):
            refresher_handler.lambda_handler({}, LambdaContext("RefresherFunction", timeout_seconds=300))
        assert working_token(accounts, account)  # the new token is current, and works
        changes = [e["account"]["change"] for e in accounts.account_events()]
        assert "token_dead" not in changes, "declared dead, needing a new login, with a working token"
        assert accounts.account(account).status != NEEDS_REAUTHORISATION


def test_the_new_token_survives_its_writes_being_refused_for_a_while() -> None:
    """Was: three refused writes in a row dropped the new token (now it waits in the table, and the retry
    puts it in place)."""
    assert _refresh_with_refused_writes(3), "the old token is revoked and the new one was dropped"
    # Refused for longer than Lambda retries the run: the next day's run puts it in place.
    assert _refresh_with_refused_writes(6, next_days=1), "the old token is revoked and the new one was dropped"


def test_an_invalid_message_with_a_lone_surrogate_still_ends_failed() -> None:
    """Was retried into the dead-letter queue: its record write could not encode the surrogate."""
    with outbound_stack() as loop:
        loop.enqueue(out.outbound("text", key="surrogate", correlation_id="order \ud83d"))  # sent as \\ud83d
        drive(loop, time.monotonic() + 1.5)  # a FAILED status comes from the first attempt, or not at all
        assert [(s["status"], s["reason"]) for s in loop.statuses("surrogate")] == [(FAILED, "invalid_message")]


def test_the_reason_a_private_reply_is_refused_names_its_field() -> None:
    """Was 'a private reply to a comment can only be text, not audio', naming no field."""
    body = json.dumps(out.outbound("audio", recipient={"comment_id": "17999999999999999"}))
    message, problem, _ = _parse(body)
    assert message is None and problem is not None
    field = problem.partition(": ")[0]
    assert field.split(".")[0] in ("recipient", "message"), problem
    assert names_a_field(problem, json.loads(body))
