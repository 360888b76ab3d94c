"""`make run`'s terminal lines (local.narration): what each says, and the functions' output kept off the terminal."""

import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

from local import narration
from local.aws.template import ROOT


def test_a_webhook_line_says_what_metas_post_held() -> None:
    def held(*messaging: dict[str, object], changes: list[dict[str, object]] | None = None) -> str:
        entry = {"id": "1", "time": 1, "messaging": list(messaging), "changes": changes or []}
        return narration.webhook_held(json.dumps({"object": "instagram", "entry": [entry]}).encode())

    text = {"sender": {"id": "2"}, "recipient": {"id": "1"}, "timestamp": 1, "message": {"mid": "m", "text": "hi"}}
    echo = {**text, "message": {"mid": "m2", "is_echo": True, "text": "yes"}}
    read = {"sender": {"id": "2"}, "recipient": {"id": "1"}, "timestamp": 1, "read": {"mid": "m2"}}
    assert held(text) == "message"
    assert held(text, text, echo, read) == "2 message, echo, read"
    assert held(changes=[{"field": "comments", "value": {}}]) == "comments"
    assert held() == "no events"
    assert narration.webhook_held(b"not json") == "8 bytes, not Meta's JSON"
    assert narration.webhook_held(b'{"entry": 3}') == "12 bytes, not Meta's JSON"


def test_a_status_line_names_the_message_and_the_reason_it_failed() -> None:
    assert narration.describe_status({"status": "SENT", "idempotency_key": "k1"}) == "SENT      k1"
    failed = {"status": "FAILED", "idempotency_key": "k2", "reason": "window_closed", "detail": "24 h passed"}
    assert narration.describe_status(failed) == "FAILED    k2  window_closed: 24 h passed"
    assert narration.describe_status({**failed, "detail": None}) == "FAILED    k2  window_closed"


def test_an_event_line_has_its_kind_conversation_and_text() -> None:
    event = {"kind": "text", "conversation_id": "1:2", "text": "hello\nthere"}
    assert narration.describe_event(event) == "text             1:2  'hello\\nthere'"
    assert narration.describe_event({"kind": "read", "conversation_id": "1:2"}) == "read             1:2"
    status = {"kind": "message_status", "conversation_id": "1:2", "status": {"status": "READ", "idempotency_key": "k"}}
    assert narration.describe_event(status) == "message_status   1:2  'READ k'"


def test_a_scheduled_runs_summary_keeps_its_non_empty_parts() -> None:
    result = {"accounts": 2, "refreshed": ["1"], "refresh_failed": [], "errors": 0, "gaps": 3}
    assert narration.summary(result) == "accounts 2, refreshed 1, gaps 3"
    assert narration.summary({"accounts": 0}) == "accounts 0"
    assert narration.summary({"errors": 0}) == "nothing to do"


def test_lines_on_a_terminal_are_coloured_and_aligned_and_plain_elsewhere(capsys: object) -> None:
    terminal = io.StringIO()
    narration.Narrator(terminal, colour=True).say("callback", "SENT k (signature ok) -> 200", "good")
    narration.Narrator(terminal, colour=False).say("event", "text 1:2 'hi'")
    assert terminal.getvalue().splitlines() == [
        "\033[32mcallback   \033[0mSENT k (signature ok) -> 200",
        "event      text 1:2 'hi'",
    ]
    narration.Narrator().say("sqs SenderFunction", "the function raised")  # outside make run: stderr, as before
    assert capsys.readouterr().err == "sqs SenderFunction: the function raised\n"  # type: ignore[attr-defined]


def test_the_functions_output_goes_to_the_log_file_which_is_moved_aside_when_it_grows(tmp_path: Path) -> None:
    log = tmp_path / "functions.log"
    script = textwrap.dedent(
        f"""
        import sys, time, warnings
        from pathlib import Path
        from local import narration
        narration.LOG_ROTATE_BYTES = 1000
        narration.ROTATE_CHECK_SECONDS = 0.05
        narrator = narration.to_terminal(Path({str(log)!r}))
        warnings.warn("a library's warning")  # under the size that moves the file: it goes with what follows
        print("x" * 2000, flush=True)
        for _ in range(400):  # bounded: 20 s at most
            if Path({str(log)!r} + ".1").exists() and Path({str(log)!r}).exists():
                break
            time.sleep(0.05)
        print("after the move", flush=True)
        narrator.say("event", "one line")
        """
    )
    done = subprocess.run(  # noqa: S603 - our own interpreter, a fixed script
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith(" event      one line\n") and done.stdout.count("\n") == 1, done.stdout
    assert done.stderr == ""
    moved = Path(str(log) + ".1").read_text()
    assert "x" * 2000 in moved and "a library's warning" in moved
    assert log.read_text() == "after the move\n"
    assert log.stat().st_mode & 0o777 == 0o600
