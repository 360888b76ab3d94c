"""Starts `make run`'s local stack as a process and drives it over HTTP, as a user would."""

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

from local.aws.template import ROOT
from local.samples import meta as m
from webhook.signature import sign

pytestmark = pytest.mark.e2e

APP_SECRET = "e2e-app-secret-0123456789"
VERIFY_TOKEN = "e2e-verify-token"
STARTUP_SECONDS = 60


PORTS = ("LOCAL_AWS_PORT", "LOCAL_API_PORT", "LOCAL_GRAPH_PORT", "LOCAL_CALLBACK_PORT")


@contextmanager
def unused_port() -> Iterator[int]:
    """A port of 127.0.0.1 nothing listens on, and nothing can take (the other pytest-xdist worker included)
    while it is held: bound, never listening, so a connection to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


@dataclass
class RunningStack:
    api: str
    aws: Any
    output: list[str]
    env: dict[str, str]  # the stack's environment, for tools run against it (python -m tools.accounts --local)
    startup_events: list[dict[str, Any]] = field(default_factory=list)

    def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, str, dict[str, str]]:
        req = urllib.request.Request(  # noqa: S310 - self.api is http://127.0.0.1
            self.api + path, data=body or None, method=method, headers=headers or {}
        )
        try:
            with urllib.request.urlopen(req, timeout=15) as resp:  # noqa: S310 - loopback only
                return resp.status, resp.read().decode(), dict(resp.headers)
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode(), dict(err.headers)

    def post_signed(self, document: dict[str, Any], secret: str = APP_SECRET) -> tuple[int, dict[str, Any]]:
        body = m.body(document)
        status, text, _ = self.request(
            "POST", "/webhook", body, {"Content-Type": "application/json", "X-Hub-Signature-256": sign(body, secret)}
        )
        return status, json.loads(text)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    yield from started_stack(tmp_path_factory, {"APP_SECRET": APP_SECRET, "VERIFY_TOKEN": VERIFY_TOKEN})


def started_stack(tmp_path_factory: pytest.TempPathFactory, settings: dict[str, str]) -> Iterator[RunningStack]:
    """`python -m local.stack` on free ports with ``settings`` on top of the defaults, until the module is done.
    Each port is 0, any free one, which the stack takes as it binds: a port picked here and released could be
    taken meanwhile (pytest-xdist's other worker starts servers all the time). The ports it took are in its
    state file once it is ready; ``env`` gets them, as a second terminal would."""
    state_dir = tmp_path_factory.mktemp("local-state")  # never a developer's own make run's
    env = {
        **os.environ,
        "LOCAL_STATE_DIR": str(state_dir),
        **dict.fromkeys(PORTS, "0"),
        "PYTHONPATH": os.pathsep.join(sys.path),  # as the Makefile sets it
        "PYTHONUNBUFFERED": "1",
        **settings,
    }
    # As from a plain shell: tests/conftest.py sets Powertools' variables, which the stack must set itself.
    for inherited in (
        "AWS_ENDPOINT_URL",
        "GRAPH_API_BASE_URL",
        "IG_ACCOUNT_ID",
        "IG_ACCESS_TOKEN",
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_METRICS_NAMESPACE",
    ):
        env.pop(inherited, None)
    process = subprocess.Popen(
        [sys.executable, "-m", "local.stack"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    ready = threading.Event()

    def pump() -> None:  # keep reading so the stack never blocks on a full pipe
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            if line.strip() == "ready":
                ready.set()

    threading.Thread(target=pump, daemon=True).start()
    try:
        if not ready.wait(STARTUP_SECONDS):
            pytest.fail("local stack did not start:\n" + "".join(output[-40:]))
        taken = json.loads((state_dir / "stack.json").read_text())  # written before "ready"
        env.update({name: str(taken[name.removeprefix("LOCAL_").lower()]) for name in PORTS})
        session = boto3.session.Session(
            aws_access_key_id="local", aws_secret_access_key="local", region_name="us-east-1"
        )
        endpoint = f"http://127.0.0.1:{env['LOCAL_AWS_PORT']}"
        aws = {s: session.client(s, endpoint_url=endpoint) for s in ("dynamodb", "sqs")}
        running = RunningStack(f"http://127.0.0.1:{env['LOCAL_API_PORT']}", aws, output, env)
        # make run connects its account (as onboarding would) before it prints "ready": one event.
        running.startup_events = drain(running)
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def queue_url(stack: RunningStack) -> str:
    urls = stack.aws["sqs"].list_queues()["QueueUrls"]
    return str(next(u for u in urls if u.endswith("-events.fifo")))


def table_name(stack: RunningStack) -> str:
    return str(stack.aws["dynamodb"].list_tables()["TableNames"][0])


def drain(stack: RunningStack) -> list[dict[str, Any]]:
    sqs, url = stack.aws["sqs"], queue_url(stack)
    events: list[dict[str, Any]] = []
    for _ in range(200):  # bounded: at most 2000 messages
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            break
        events.extend(json.loads(msg["Body"]) for msg in got)
        sqs.delete_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": msg["ReceiptHandle"]} for i, msg in enumerate(got)]
        )
    return events


def event_count(stack: RunningStack) -> int:
    return int(
        stack.aws["dynamodb"].scan(
            TableName=table_name(stack),
            Select="COUNT",
            FilterExpression="begins_with(sk, :e)",
            ExpressionAttributeValues={":e": {"S": "EVT#"}},
        )["Count"]
    )


def test_banner_names_the_webhook_url_token_queues_and_table(stack: RunningStack) -> None:
    banner = "".join(stack.output)
    assert f"{stack.api}/webhook" in banner
    assert VERIFY_TOKEN in banner
    assert "-events.fifo" in banner and "-GatewayTable" in banner


def test_make_run_connects_its_account_and_runs_the_refresher_and_the_reconciler_at_start(stack: RunningStack) -> None:
    # The reconciler's first run imports the new account's history: none in a fresh sandbox, but it is done.
    assert [(e["kind"], e["account"]["change"]) for e in stack.startup_events] == [
        ("account_status", "connected"),
        ("account_status", "history_imported"),
    ]
    # One line each, the summary's non-empty parts: an error count would show.
    refresher = [line for line in stack.output if line[9:].startswith("refresher ")]
    reconciler = [line for line in stack.output if line[9:].startswith("reconciler ")]
    assert len(refresher) == 1 and "accounts 1" in refresher[0] and "failed" not in refresher[0], stack.output
    assert len(reconciler) == 1 and "accounts 1" in reconciler[0] and "errors" not in reconciler[0], stack.output


def test_meta_verification_handshake(stack: RunningStack) -> None:
    status, body, headers = stack.request(
        "GET", f"/webhook?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1158201444"
    )
    assert (status, body) == (200, "1158201444")
    assert headers["Content-Type"] == "text/plain"
    assert stack.request("GET", "/webhook?hub.mode=subscribe&hub.verify_token=x&hub.challenge=1")[0] == 403


def test_signed_webhook_lands_in_the_table_and_on_the_queue_once(stack: RunningStack) -> None:
    # As Meta sends them now: older events are ignored (local.samples.meta.recent).
    document = m.recent(m.envelope(m.text(mid="e2e-1"), m.story_reply(mid="e2e-2"), m.reaction(mid="e2e-1")))
    before = event_count(stack)
    status, result = stack.post_signed(document)
    assert (status, result["published"]) == (200, 3)
    events = drain(stack)
    assert [e["kind"] for e in events] == ["text", "story_reply", "reaction"]
    assert event_count(stack) == before + 3

    status, again = stack.post_signed(document)  # Meta redelivers
    assert (status, again["published"], again["duplicates"]) == (200, 0, 3)
    assert drain(stack) == []
    assert event_count(stack) == before + 3


def test_bad_signature_is_401_and_stores_nothing(stack: RunningStack) -> None:
    before = event_count(stack)
    status, result = stack.post_signed(m.envelope(m.text(mid="forged")), secret="not-the-secret")
    assert status == 401 and "does not match" in result["error"]
    assert event_count(stack) == before and drain(stack) == []


def test_unknown_route_is_404(stack: RunningStack) -> None:
    assert stack.request("GET", "/nope")[0] == 404


def test_a_chunked_request_body_is_read_whole(stack: RunningStack) -> None:
    body = m.body(m.recent(m.envelope(m.text(mid="e2e-chunked"))))
    host, port = stack.api.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=15)
    connection.putrequest("POST", "/webhook")
    for name, value in {
        "Content-Type": "application/json",
        "Transfer-Encoding": "chunked",
        "X-Hub-Signature-256": sign(body, APP_SECRET),
    }.items():
        connection.putheader(name, value)
    connection.endheaders()
    for start in range(0, len(body), 50):
        piece = body[start : start + 50]
        connection.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
    connection.send(b"0\r\n\r\n")
    response = connection.getresponse()
    assert (response.status, json.loads(response.read())["published"]) == (200, 1)
    connection.close()
    assert [e["message_id"] for e in drain(stack)] == ["e2e-chunked"]


def test_an_outbound_message_goes_through_the_sender_and_the_sandbox_and_ends_delivered(stack: RunningStack) -> None:
    from local.samples import outbound as out
    from tools.producer import enqueue

    customer = "5550001112223334"
    status, _ = stack.post_signed(m.recent(m.envelope(m.text(mid="m_e2e_outbound", customer=customer))))
    assert status == 200  # the customer wrote: the window is open
    urls = stack.aws["sqs"].list_queues()["QueueUrls"]
    outbound_url = next(u for u in urls if u.endswith("-outbound.fifo"))
    enqueue(stack.aws["sqs"], outbound_url, out.outbound("text", key="e2e-outbound-1", recipient={"id": customer}))
    deadline = time.monotonic() + 60  # the loop ends at DELIVERED; the bound is for a loaded machine
    seen: list[str] = []
    while time.monotonic() < deadline and (not seen or seen[-1] != "DELIVERED"):
        item = (
            stack.aws["dynamodb"]
            .get_item(
                TableName=table_name(stack),
                ConsistentRead=True,
                Key={"pk": {"S": "OUT#e2e-outbound-1"}, "sk": {"S": "MESSAGE"}},
            )
            .get("Item")
        )
        if item and (not seen or seen[-1] != item["status"]["S"]):
            seen.append(item["status"]["S"])
        time.sleep(0.1)
    assert seen and seen[-1] == "DELIVERED", "".join(stack.output[-30:])


def second_terminal(stack: RunningStack) -> dict[str, str]:
    """A plain shell beside `make run`: none of the stack's variables, only where the project keeps its state."""
    names = (*PORTS, "APP_SECRET", "VERIFY_TOKEN")
    return {k: v for k, v in stack.env.items() if k not in names}


def run_module(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``python -m <args>`` from the repository, as a make target runs it: its output, never raising."""
    return subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_a_second_terminal_reaches_the_running_stack_with_no_variables(stack: RunningStack) -> None:
    before = event_count(stack)
    said = run_module(["local.try_it", "say"], {**second_terminal(stack), "TEXT": "from the second terminal"})
    assert said.returncode == 0, said.stdout + said.stderr
    assert event_count(stack) == before + 1
    drain(stack)


def test_without_a_running_stack_a_command_says_so_in_one_line(tmp_path: Any) -> None:
    with unused_port() as port:
        env = {**os.environ, "LOCAL_STATE_DIR": str(tmp_path), "LOCAL_AWS_PORT": str(port)}
        for command in (
            ["local.try_it", "say"],
            ["local.invoke", "RefresherFunction", "events/scheduler_refresher.json"],
        ):
            done = run_module(command, env)
            assert done.returncode != 0
            assert done.stdout == "" and done.stderr.strip().count("\n") == 0, done.stderr
            assert "the local stack is not running" in done.stderr and "make run" in done.stderr


def test_make_events_prints_the_latest_stored_events_and_leaves_the_queue_as_it_is(stack: RunningStack) -> None:
    said = run_module(["local.try_it", "say"], {**second_terminal(stack), "TEXT": "what make events shows"})
    assert said.returncode == 0, said.stdout + said.stderr
    shown = run_module(["local.show_events"], {**second_terminal(stack), "LIMIT": "3"})
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.strip().splitlines()
    assert 1 <= len(lines) <= 3 and "text" in lines[-1] and "'what make events shows'" in lines[-1]
    assert [e["text"] for e in drain(stack) if e["kind"] == "text"] == ["what make events shows"]  # still queued


def test_make_run_shows_one_short_line_per_happening_and_writes_the_functions_logs_to_a_file(
    stack: RunningStack,
) -> None:
    said = run_module(["local.try_it", "say"], {**second_terminal(stack), "TEXT": "a narrated hello"})
    assert said.returncode == 0, said.stdout + said.stderr
    sent = run_module(["local.try_it", "send"], second_terminal(stack))
    assert sent.returncode == 0 and "DELIVERED" in sent.stdout, sent.stdout + sent.stderr
    key = sent.stdout.split()[3].rstrip(";")  # "queued text message <key>; its status:"

    def shown(fragment: str) -> list[str]:
        deadline = time.monotonic() + 60  # the stream is read every 0.1 s: a loaded machine, not a slow one
        while time.monotonic() < deadline:
            found = [line for line in list(stack.output) if fragment in line]
            if found:
                return found
            time.sleep(0.2)
        raise AssertionError(f"no line with {fragment!r} in:\n" + "".join(stack.output[-30:]))

    assert shown("webhook    message -> 200")
    assert shown("event      text") and shown("'a narrated hello'")
    assert shown(f"message    sending text {key} to ")
    for status in ("SENT", "DELIVERED"):
        assert shown(f"message    {status:<10}{key}")
        assert shown(f"callback   {status} {key} (signature ok) -> 200")
    # Each status called back once (a SENT once came twice locally: the sender's and the echo's).
    assert len([line for line in stack.output if f"callback   SENT {key} " in line]) == 1, stack.output
    # The functions' JSON logs, metrics and library warnings are in the log file, not on the terminal. A loaded
    # machine may add a poller's problem line (a timeout of the emulator's), which may be longer: not counted.
    assert not [line for line in stack.output if line.lstrip().startswith("{") or "Warning" in line]
    happenings = [line for line in stack.output if not line[9:].startswith(("sqs ", "stream ", "error "))]
    assert all(len(line) <= 160 for line in happenings), max(happenings, key=len)
    logged = (Path(stack.env["LOCAL_STATE_DIR"]) / "functions.log").read_text()
    assert '"message":"webhook accepted"' in logged and '"CloudWatchMetrics"' in logged
