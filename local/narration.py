"""What `make run` shows on its terminal: the banner, then one short line per thing that happens (a webhook and
what it held, an event stored and published, an outbound message queued, sent, delivered or failed with its
reason, a callback received, a scheduled run's result, a problem), coloured on a terminal.

The functions' own output (Powertools' JSON logs, EMF metrics, library warnings) goes to a log file under the
local state folder (`make logs` tails it), or inline with VERBOSE=1. The redirection is done on file descriptors 1
and 2, not on sys.stdout: Powertools' handler keeps the stream of the moment its logger was created, and a
library may write to the descriptor itself; a dup of the terminal's descriptor carries the narration.

Outside `make run` (tests, the bench), lines go to stderr as ``topic: text``, as they always have.
"""

import os
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

# Past this size the log file is moved aside (functions.log.1, replacing an older one) and a new one begun: a
# stack left running for days keeps at most twice this on disk.
LOG_ROTATE_BYTES = 20 * 1024 * 1024
ROTATE_CHECK_SECONDS = 10.0

_COLOURS = {"good": "32", "bad": "31", "warn": "33", "dim": "2", "info": "36"}
_TOPIC_WIDTH = 11


class Narrator:
    """One line per happening, written whole under a lock (the API, the pollers and the inbox are threads)."""

    def __init__(self, stream: TextIO | None = None, *, colour: bool = False, timestamps: bool = False) -> None:
        self._stream = stream  # None: sys.stderr at the time of each line, which pytest's capture replaces
        self._colour = colour
        self._timestamps = timestamps
        self._lock = threading.Lock()

    def say(self, topic: str, text: str, tone: str = "") -> None:
        if self._stream is None:
            sys.stderr.write(f"{topic}: {text}\n")
            return
        label = topic.ljust(_TOPIC_WIDTH)
        if self._colour:
            label = f"\033[{_COLOURS.get(tone, '1')}m{label}\033[0m"
        when = time.strftime("%H:%M:%S ") if self._timestamps else ""
        with self._lock:
            self._stream.write(f"{when}{label}{text}\n")
            self._stream.flush()

    def plain(self, text: str) -> None:
        """The banner and other text of its own, uncoloured."""
        stream = self._stream or sys.stderr
        with self._lock:
            stream.write(text + "\n")
            stream.flush()


_narrator = Narrator()


def say(topic: str, text: str, tone: str = "") -> None:
    _narrator.say(topic, text, tone)


def narrator() -> Narrator:
    return _narrator


def to_terminal(log_path: Path | None) -> Narrator:
    """From now on the narration goes to this process's terminal (its stdout as it was), and, when ``log_path``
    is given, everything else written to stdout and stderr goes to that file instead. Returns the narrator."""
    global _narrator
    sys.stdout.flush()
    sys.stderr.flush()
    terminal = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1, encoding="utf-8", errors="replace")
    colour = terminal.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"
    if log_path is not None:
        _LogFile(log_path).start()
    _narrator = Narrator(terminal, colour=colour, timestamps=True)
    return _narrator


class _LogFile:
    """fds 1 and 2 appended to one file, moved aside once it passes LOG_ROTATE_BYTES."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def start(self) -> None:
        self._point_at(self.path)
        threading.Thread(target=self._watch, name="log-rotation", daemon=True).start()

    def _point_at(self, path: Path) -> None:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for target in (1, 2):
                os.dup2(descriptor, target)  # atomic: no write is lost between the old file and the new
        finally:
            os.close(descriptor)

    def _watch(self) -> None:
        while True:
            time.sleep(ROTATE_CHECK_SECONDS)
            try:
                if self.path.stat().st_size > LOG_ROTATE_BYTES:
                    self._rotate()
            except OSError:
                continue  # removed by hand: the next check tries again

    def _rotate(self) -> None:
        """The writes go to a new file first, then the names move: once functions.log.1 and functions.log both
        exist again, everything written since is in the new functions.log."""
        sys.stdout.flush()
        sys.stderr.flush()
        fresh = self.path.with_name(self.path.name + ".new")
        self._point_at(fresh)
        os.replace(self.path, self.path.with_name(self.path.name + ".1"))
        os.replace(fresh, self.path)


# ---- what the lines say ----


def describe_event(event: dict[str, Any]) -> str:
    """An event (canonical, as published) in a few words: its kind, its conversation, its text or status."""
    kind = str(event.get("kind", "?"))
    text = event.get("text")
    status = event.get("status")
    if not text and isinstance(status, dict):
        text = " ".join(describe_status(status).split())
    conversation = event.get("conversation_id") or event.get("customer_id") or event.get("account_id") or ""
    shown = f"{str(text)[:80]!r}" if text else ""
    return f"{kind:<16} {conversation}  {shown}".rstrip()


def describe_status(status: dict[str, Any]) -> str:
    """A message_status event's status: ``DELIVERED  local-1a2b``, with the reason when it failed."""
    text = f"{status.get('status', '?'):<10}{status.get('idempotency_key', '')}"
    if status.get("reason"):
        text += f"  {status['reason']}: {status.get('detail') or ''}".rstrip(": ")
    return text


def webhook_held(body: bytes) -> str:
    """What a POST to /webhook held, in a few words (Meta's kinds: message, echo, read, reaction, comments ...)."""
    import json

    try:
        document = json.loads(body)
        kinds = list(_kinds(document.get("entry") or []))
    except (ValueError, AttributeError, TypeError):
        return f"{len(body)} bytes, not Meta's JSON"
    if not kinds:
        return "no events"
    counted = {k: kinds.count(k) for k in dict.fromkeys(kinds)}
    return ", ".join(f"{n} {k}" if n > 1 else k for k, n in counted.items())


def _kinds(entries: Iterable[Any]) -> Iterable[str]:
    for entry in entries:
        for item in entry.get("messaging") or []:
            message = item.get("message")
            if isinstance(message, dict):
                yield "echo" if message.get("is_echo") else "message"
            else:
                yield next((k for k in item if k not in ("sender", "recipient", "timestamp")), "event")
        for change in entry.get("changes") or []:
            yield str(change.get("field", "change"))


def summary(result: Any) -> str:
    """A scheduled function's summary (counts and lists of ids) as its non-empty parts: ``accounts 1, ...``."""
    if not isinstance(result, dict):
        return str(result)
    parts = []
    for name, value in result.items():
        shown = len(value) if isinstance(value, list | dict) else value
        if shown or name == "accounts":
            parts.append(f"{name.replace('_', ' ')} {shown}")
    return ", ".join(parts) or "nothing to do"


def stored_changes(event: dict[str, Any]) -> None:
    """The table's stream, read as the fan-out reads it (every record, unfiltered): one line per stored event
    (which the webhook published before it answered 200) and per status an outbound message reaches."""
    from fanout.service import events_of
    from igdm.store import outbound_records as records
    from igdm.store.attributes import from_attributes
    from igdm.store.keys import OUTBOUND_SK

    for record in event.get("Records") or []:
        change = record.get("dynamodb") or {}
        if record.get("eventName") == "INSERT" and from_attributes(change.get("Keys") or {}).get("sk") == OUTBOUND_SK:
            new = records.OutboundRecord.from_item(change.get("NewImage") or {})
            to = f" to {new.customer_id}" if new.customer_id else ""
            say("message", f"sending {new.kind} {new.idempotency_key}{to}", "dim")
            continue
        for _, stored, _ in events_of(record):
            status = stored.get("status")
            if isinstance(status, dict):
                tone = {"FAILED": "bad", "UNKNOWN": "warn"}.get(str(status.get("status")), "good")
                say("message", describe_status(status), tone)
            else:
                say("event", describe_event(stored), "info")
