"""What the functions write to their logs, what crossed the wire, and the secrets among it, for the
no-secrets-in-logs test.

* capture_logs: every line the functions write, as Lambda would ship it to CloudWatch Logs: stdout and
  stderr at the file-descriptor level (Powertools' JSON lines, the EMF metric lines, anything printed),
  plus a handler on the gateway's logger and on the root logger (at WARNING, the level Lambda's root
  logger has) and the Python warnings raised meanwhile, so a record sent anywhere else is seen too.
* WireTap: every HTTP request made in this process. requests (the sender, the login calls, the Graph
  sandbox's webhooks, the test's browser) and the callback client both go through urllib3's connection
  pools, so one spy sees every Authorization header, signature, code and state actually sent.
* Secrets: the values that must never be logged, with a label each, and the search that reports a line
  holding one, with every secret in it masked.
"""

import json
import logging
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from urllib3.connectionpool import HTTPConnectionPool

from igdm.runtime.observability import logger

# Shorter values cannot be searched for without false alarms (the accounts harness's verify token is "t");
# every secret this test chooses is longer.
MIN_SECRET_LENGTH = 8

# Fields of the stack's Secrets Manager documents whose values are secret (ids, usernames and dates are not).
SECRET_FIELDS = ("access_token", "app_secrets", "verify_token", "instagram_app_secret", "signing_secret", "state_key")
# Query and form parameters that carry a credential: an OAuth code, a state and an invite are bearer
# credentials while they are valid; a verify token guess may be a near miss of the real one.
SECRET_PARAMETERS = ("access_token", "client_secret", "code", "state", "invite", "hub.verify_token")
SIGNATURE_HEADERS = ("x-hub-signature-256", "x-gateway-signature-256")


@dataclass(frozen=True)
class Line:
    source: str  # stdout, stderr, logging or warning
    text: str


@dataclass
class CapturedLogs:
    lines: list[Line] = field(default_factory=list)

    def json_lines(self) -> list[dict[str, Any]]:
        documents = []
        for line in self.lines:
            if line.source == "stdout" and line.text.startswith("{"):
                try:
                    documents.append(json.loads(line.text))
                except ValueError:
                    continue
        return documents

    def function_names(self) -> set[str]:
        """The Lambda function names Powertools' inject_lambda_context put on the lines written to stdout."""
        return {str(d["function_name"]) for d in self.json_lines() if "function_name" in d}

    def metric_lines(self) -> list[dict[str, Any]]:
        return [d for d in self.json_lines() if "_aws" in d]


class _Collector(logging.Handler):
    def __init__(self, level: int, into: list[Line], *, skip: str | None = None) -> None:
        super().__init__(level)
        self._into = into
        self._skip = skip
        self.setFormatter(logger.registered_formatter)  # as the function writes it, tracebacks included

    def emit(self, record: logging.LogRecord) -> None:
        if record.name != self._skip:
            self._into.extend(Line("logging", text) for text in self.format(record).splitlines())


@contextmanager
def capture_logs(capfd: pytest.CaptureFixture[str], recwarn: pytest.WarningsRecorder) -> Iterator[CapturedLogs]:
    captured = CapturedLogs()
    records: list[Line] = []
    # Powertools' handler holds the sys.stdout of the moment the module was imported (pytest's collection-time
    # capture, which capfd does not see): point it at this test's stdout, which is fd 1 under capfd.
    stdout_handler = logger.registered_handler
    previous_stream = stdout_handler.setStream(sys.stdout)  # type: ignore[attr-defined]
    gateway_logger = logging.getLogger(logger.name)
    gateway_collector = _Collector(logging.NOTSET, records)
    # The gateway's records propagate to the root too: counted once, by the collector above.
    root_collector = _Collector(logging.WARNING, records, skip=logger.name)
    gateway_logger.addHandler(gateway_collector)
    logging.getLogger().addHandler(root_collector)
    capfd.readouterr()  # the fixtures' own output is not the functions'
    try:
        yield captured
    finally:
        logging.getLogger().removeHandler(root_collector)
        gateway_logger.removeHandler(gateway_collector)
        stdout_handler.setStream(previous_stream)  # type: ignore[attr-defined]
        out, err = capfd.readouterr()
        captured.lines.extend(Line("stdout", text) for text in out.splitlines())
        captured.lines.extend(Line("stderr", text) for text in err.splitlines())
        captured.lines.extend(records)
        captured.lines.extend(Line("warning", f"{w.category.__name__}: {w.message}") for w in recwarn.list)


def invoke_like_lambda(handler: Callable[[Any, Any], Any], event: Any, context: Any) -> Any:
    """Call a handler directly; an exception it raises is written to stderr as Lambda's runtime logs it
    (message and traceback), then returned instead of raised."""
    try:
        return handler(event, context)
    except Exception as exc:
        sys.stderr.write(f"[ERROR] {type(exc).__name__}: {exc}\n{traceback.format_exc()}")
        return exc


@dataclass(frozen=True)
class WireRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: str


class WireTap:
    def __init__(self) -> None:
        self.requests: list[WireRequest] = []

    @classmethod
    def install(cls, monkeypatch: pytest.MonkeyPatch) -> "WireTap":
        tap = cls()
        original = HTTPConnectionPool.urlopen

        # urllib3 calls itself again positionally on a retry or redirect, hence *args.
        def urlopen(
            pool: HTTPConnectionPool,
            method: str,
            url: str,
            body: Any = None,
            headers: Any = None,
            *args: Any,
            **kwargs: Any,
        ) -> Any:
            tap.requests.append(
                WireRequest(method, url, {str(k).lower(): str(v) for k, v in (headers or {}).items()}, _text(body))
            )
            return original(pool, method, url, body, headers, *args, **kwargs)

        monkeypatch.setattr(HTTPConnectionPool, "urlopen", urlopen)
        return tap


def _text(body: Any) -> str:
    if isinstance(body, bytes):
        return body.decode("utf-8", "replace")
    return body if isinstance(body, str) else ""


class Secrets:
    def __init__(self) -> None:
        self._labels: dict[str, str] = {}

    def add(self, label: str, value: Any) -> None:
        if isinstance(value, str) and len(value) >= MIN_SECRET_LENGTH:
            self._labels.setdefault(value, label)

    def labelled(self, label: str) -> list[str]:
        return [value for value, known in self._labels.items() if known == label]

    def __contains__(self, value: str) -> bool:
        return value in self._labels

    def __len__(self) -> int:
        return len(self._labels)

    def harvest_vault(self, secretsmanager: Any) -> None:
        """Every version of every secret in Secrets Manager: app secrets, verify tokens, signing secret,
        state key, and every access token ever stored (current, previous and pending)."""
        for page in secretsmanager.get_paginator("list_secrets").paginate():
            for secret in page["SecretList"]:
                versions = secretsmanager.list_secret_version_ids(SecretId=secret["ARN"], IncludeDeprecated=True)
                for version in versions["Versions"]:
                    value = secretsmanager.get_secret_value(SecretId=secret["ARN"], VersionId=version["VersionId"])
                    document = json.loads(value["SecretString"])
                    for name in SECRET_FIELDS:
                        values = document.get(name)
                        for item in values if isinstance(values, list) else [values]:
                            self.add(name, item)

    def harvest_wire(self, tap: WireTap) -> None:
        for request in tap.requests:
            for name, value in request.headers.items():
                if name == "authorization":
                    self.add("Authorization header", value)
                    self.add("bearer token", value.partition(" ")[2])
                elif name in SIGNATURE_HEADERS:
                    self.add(name, value)
                    self.add(f"{name} digest", value.partition("=")[2])
                elif name == "cookie":
                    for cookie in value.split(";"):
                        self.add("cookie", cookie.partition("=")[2].strip())
            parameters = parse_qsl(urlsplit(request.url).query)
            if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
                parameters += parse_qsl(request.body)
            for name, value in parameters:
                if name in SECRET_PARAMETERS:
                    self.add(name, value)
                    for part in value.split("."):  # a state's nonce and MAC, an invite's MAC, on their own
                        if len(part) >= 16:
                            self.add(f"{name} part", part)

    def mask(self, text: str) -> str:
        # Longest first, so "Bearer <token>" is masked whole rather than around its token.
        for value in sorted(self._labels, key=len, reverse=True):
            text = text.replace(value, f"<{self._labels[value]}>")
        return text

    def leaks(self, lines: Iterable[Line]) -> list[str]:
        """One entry per line that holds a secret: where it was, which secrets, the line masked. A line seen
        in several places (stdout and the logging handler) is reported once."""
        found: dict[str, tuple[list[str], list[str]]] = {}
        for line in lines:
            held = sorted({label for value, label in self._labels.items() if value in line.text})
            if held:
                sources, _ = found.setdefault(self.mask(line.text), ([], held))
                sources.append(line.source)
        return [
            f"[{', '.join(dict.fromkeys(sources))}] {', '.join(held)} in: {masked[:2000]}"
            for masked, (sources, held) in found.items()
        ]
