"""Which callback targets may be called, how a callback is signed, and the HTTP client that connects
only to checked addresses (with TLS still verified against the URL's host name)."""

import ipaddress
import json
import random
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import trustme

from callback.http_client import CallbackClient, Delivered, RetryLater, Undeliverable
from callback.service import CallbackDelivery
from igdm.contracts.callbacks import (
    address_refusal,
    embedded_ipv4,
    signature,
    signed_headers,
    standard_webhooks_secret,
    url_refusal,
    verify,
)
from igdm.runtime.fifo_consumer import Retry

SECRET = "a-signing-secret-of-some-length-0123456789"


@pytest.mark.parametrize(
    ("url", "refused_because"),
    [
        ("https://hooks.example.com/cb?x=1", None),
        ("https://93.184.215.14:8443/cb", None),
        ("https://[2606:4700::1111]/cb", None),
        ("http://hooks.example.com/cb", "must be https"),
        ("ftp://hooks.example.com/cb", "must be https"),
        ("https:///cb", "no host"),
        ("https://user:pass@hooks.example.com/cb", "credentials"),
        ("https://localhost/cb", "loopback name"),
        ("https://api.localhost./cb", "loopback name"),
        ("https://127.0.0.1/cb", "private, loopback"),
        ("https://10.0.0.8/cb", "private, loopback"),
        ("https://172.16.3.4/cb", "private, loopback"),
        ("https://192.168.1.1/cb", "private, loopback"),
        ("https://100.64.0.1/cb", "private, loopback"),
        ("https://169.254.169.254/latest/meta-data", "private, loopback"),
        ("https://[::1]/cb", "private, loopback"),
        ("https://[fd00::1]/cb", "private, loopback"),
        ("https://[::ffff:127.0.0.1]/cb", "private, loopback"),
        # IPv6 forms that carry an IPv4 address, which a translator or tunnel delivers to: judged by it.
        ("https://[::127.0.0.1]/cb", "embeds 127.0.0.1"),  # IPv4-compatible (deprecated, RFC 4291)
        ("https://[::a9fe:a9fe]/cb", "embeds 169.254.169.254"),
        ("https://[::2]/cb", "embeds 0.0.0.2"),
        ("https://[::ffff:0:a9fe:a9fe]/cb", "embeds 169.254.169.254"),  # IPv4-translated (SIIT, RFC 2765)
        ("https://[64:ff9b::a9fe:a9fe]/cb", "embeds 169.254.169.254"),  # NAT64 well-known prefix (RFC 6052)
        ("https://[64:ff9b::10.0.0.8]/cb", "embeds 10.0.0.8"),
        ("https://[64:ff9b:1::a9fe:a9fe]/cb", "embeds 169.254.169.254"),  # NAT64 local-use (RFC 8215), as /96
        ("https://[64:ff9b:1:808:7f:0:100:0]/cb", "embeds 127.0.0.1"),  # ... as /64 (RFC 6052 §2.2)
        ("https://[2002:a9fe:a9fe::1]/cb", "embeds 169.254.169.254"),  # 6to4 (RFC 3056)
        ("https://[2002:808:808::1]/cb", "private, loopback"),  # 6to4 of a public address: 2002::/16 itself
        ("https://[2001:0:a9fe:a9fe::1]/cb", "embeds 169.254.169.254"),  # Teredo server (RFC 4380)
        ("https://[2001:0:808:808:0:0:80ff:fffe]/cb", "embeds 127.0.0.1"),  # Teredo client, obfuscated
        ("https://[64:ff9b::808:808]/cb", None),  # NAT64 of a public address: how IPv6-only networks reach it
        ("https://[2a00:1450:4001:82a::200e]/cb", None),
        ("https://0.0.0.0/cb", "not a host address"),
        ("https://224.0.0.1/cb", "not a host address"),
        ("https://hooks.example.com:99999/cb", "cannot be parsed"),
        ("https://hooks.example.com/" + "x" * 2048, "longer than 2048"),
    ],
)
def test_a_deployed_stack_calls_back_only_public_https_urls(url: str, refused_because: str | None) -> None:
    refusal = url_refusal(url, allow_local=False)
    assert (refusal is None) if refused_because is None else (refused_because in (refusal or "")), refusal


@pytest.mark.parametrize(
    ("address", "embedded"),
    [
        ("::ffff:169.254.169.254", ["169.254.169.254"]),
        ("::127.0.0.1", ["127.0.0.1"]),
        ("::8.8.8.8", ["8.8.8.8"]),
        ("::ffff:0:10.0.0.1", ["10.0.0.1"]),
        ("64:ff9b::a9fe:a9fe", ["169.254.169.254"]),
        ("2002:a9fe:a9fe::1", ["169.254.169.254"]),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", ["65.54.227.120", "192.0.2.45"]),  # RFC 4380's own example
        # The local-use NAT64 prefix, read at each RFC 6052 length: /96, /64, /56, /48 (10.1.2.3 behind each).
        ("64:ff9b:1::a01:203", ["10.1.2.3", "0.0.0.10", "0.0.0.0"]),  # noqa: S104 - read out, not bound to
        ("64:ff9b:1:0:a:102:300:0", ["3.0.0.0", "10.1.2.3", "0.10.1.2", "0.0.10.1"]),
        ("64:ff9b:1:a:1:203::", ["0.0.0.0", "1.2.3.0", "10.1.2.3", "0.10.1.2"]),  # noqa: S104
        ("64:ff9b:1:a01:2:300::", ["0.0.0.0", "2.3.0.0", "1.2.3.0", "10.1.2.3"]),  # noqa: S104
        ("::", []),
        ("::1", []),  # loopback, not the IPv4-compatible 0.0.0.1
        ("2606:4700::1111", []),
        ("10.0.0.1", []),
    ],
)
def test_every_ipv6_form_that_carries_an_ipv4_address_is_unwrapped(address: str, embedded: list[str]) -> None:
    assert [str(a) for a in embedded_ipv4(ipaddress.ip_address(address))] == embedded


def test_an_embedded_ipv4_address_is_judged_only_where_private_addresses_are_refused() -> None:
    nat64_metadata = ipaddress.ip_address("64:ff9b::a9fe:a9fe")
    assert address_refusal(nat64_metadata, allow_local=False) == (
        "64:ff9b::a9fe:a9fe embeds 169.254.169.254: 169.254.169.254 is a private, loopback, link-local or "
        "reserved address"
    )
    assert address_refusal(nat64_metadata, allow_local=True) is None
    assert address_refusal(ipaddress.ip_address("64:ff9b::808:808"), allow_local=False) is None


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://127.0.0.1:8082/callbacks", True),
        ("http://localhost:8082/callbacks", True),
        ("https://10.1.2.3/cb", True),
        ("http://0.0.0.0:8082/cb", False),
        ("http://[::ffff:127.0.0.1]:8082/cb", True),
        ("http://[::127.0.0.1]:8082/cb", True),
        ("http://[64:ff9b::7f00:1]:8082/cb", True),
        ("ftp://127.0.0.1/cb", False),
    ],
)
def test_the_local_stack_also_allows_http_and_private_addresses(url: str, allowed: bool) -> None:
    assert (url_refusal(url, allow_local=True) is None) is allowed


def test_a_signed_callback_verifies_and_any_change_breaks_it() -> None:
    body = b'{"event_id":"e1","status":{"status":"SENT"}}'
    headers = signed_headers(SECRET, "e1", body, now=1_700_000_000)
    assert headers["X-Gateway-Signature-256"] == signature(SECRET, 1_700_000_000, body)
    assert headers["X-Gateway-Signature-256"].startswith("sha256=") and len(headers["X-Gateway-Signature-256"]) == 71
    stamp, mac = headers["X-Gateway-Timestamp"], headers["X-Gateway-Signature-256"]
    assert verify(SECRET, body, stamp, mac, now=1_700_000_100)
    assert not verify(SECRET, body + b" ", stamp, mac, now=1_700_000_100)  # body changed
    assert not verify(SECRET + "x", body, stamp, mac, now=1_700_000_100)  # another secret
    assert not verify(SECRET, body, "1700000001", mac, now=1_700_000_100)  # timestamp changed
    assert not verify(SECRET, body, stamp, mac, now=1_700_000_000 + 301)  # replayed too late
    assert not verify(SECRET, body, None, mac) and not verify(SECRET, body, stamp, None)
    assert not verify(SECRET, body, "-5", mac)
    assert not verify(SECRET, body, "\u00b2", mac)  # a digit to isdigit(), not to int()
    assert not verify(SECRET, body, stamp, "sha256=\u00e9" + mac[8:], now=1_700_000_100)  # non-ASCII header


def test_a_callback_verifies_with_the_standard_webhooks_library_and_any_change_breaks_it() -> None:
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError

    body = b'{"event_id":"e1","status":{"status":"SENT"}}'
    headers = signed_headers(SECRET, "e1", body)  # now: the library checks the timestamp against its clock
    receiver = Webhook(standard_webhooks_secret(SECRET))
    assert receiver.verify(body, headers) == {"event_id": "e1", "status": {"status": "SENT"}}
    assert headers["webhook-id"] == headers["X-Gateway-Event-Id"] == "e1"
    assert headers["webhook-timestamp"] == headers["X-Gateway-Timestamp"]
    for changed_body, changed_headers, secret in (
        (body + b" ", headers, SECRET),
        (body, {**headers, "webhook-id": "e2"}, SECRET),
        (body, headers, SECRET + "x"),
        (body, {**headers, "webhook-timestamp": str(int(headers["webhook-timestamp"]) - 600)}, SECRET),
    ):
        with pytest.raises(WebhookVerificationError):
            Webhook(standard_webhooks_secret(secret)).verify(changed_body, changed_headers)


# ------------------------------------------------------------------ the HTTP client, against 127.0.0.1


class _Receiver(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Any

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.seen.append((self.path, dict(self.headers.items()), body))
        status, headers, delay = self.server.answers.pop(0) if self.server.answers else (204, {}, 0.0)
        time.sleep(delay)
        self.send_response(status)
        for name, value in {**headers, "Content-Length": "0"}.items():
            self.send_header(name, value)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _serve(context: ssl.SSLContext | None = None) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.daemon_threads = True
    server.seen = []  # type: ignore[attr-defined]
    server.answers = []  # type: ignore[attr-defined]
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def receiver() -> Iterator[ThreadingHTTPServer]:
    server = _serve()
    yield server
    server.shutdown()
    server.server_close()


def loopback(host: str, port: int) -> list[str]:
    return ["127.0.0.1"]


def test_a_name_that_resolves_to_a_private_address_is_never_connected_to() -> None:
    # The URL passes the check on its face; the address it resolves to does not (DNS rebinding).
    resolved: list[str] = []

    def metadata(host: str, port: int) -> list[str]:
        resolved.append(host)
        return ["93.184.215.14", "169.254.169.254"]

    client = CallbackClient(allow_local=False, connect_timeout=0.5, read_timeout=0.5, resolver=metadata)
    result = client.post("https://rebind.example.com/cb", b"{}", {})
    assert resolved == ["rebind.example.com"]
    assert isinstance(result, Undeliverable) and result.reason == "refused_target"
    assert "169.254.169.254" in result.detail


@pytest.mark.parametrize(
    "address",
    ["::127.0.0.1", "64:ff9b::a9fe:a9fe", "2002:a9fe:a9fe::1", "2001:0:808:808::80ff:fffe", "::ffff:0:a9fe:a9fe"],
)
def test_a_name_that_resolves_to_an_ipv6_address_embedding_a_refused_ipv4_is_never_connected_to(
    monkeypatch: pytest.MonkeyPatch, address: str
) -> None:
    client = CallbackClient(
        allow_local=False,
        connect_timeout=0.5,
        read_timeout=0.5,
        resolver=lambda host, port: ["2606:4700::1111", address],
    )
    monkeypatch.setattr(client, "_pool", lambda *args: pytest.fail(f"a connection was made to {args[1]}"))
    result = client.post("https://nat64.example.com/cb", b"{}", {})
    assert isinstance(result, Undeliverable) and result.reason == "refused_target", result
    assert "nat64.example.com resolves to a refused address" in result.detail and "embeds" in result.detail


def test_the_connection_goes_to_the_checked_address_with_the_urls_host_name(receiver: Any) -> None:
    port = receiver.server_address[1]
    client = CallbackClient(allow_local=True, connect_timeout=1, read_timeout=1, resolver=loopback)
    result = client.post(f"http://hooks.example.test:{port}/cb?tenant=7", b'{"a":1}', {"X-Test": "1"})
    assert result == Delivered(204)
    ((path, headers, body),) = receiver.seen
    assert (path, body) == ("/cb?tenant=7", b'{"a":1}')
    assert headers["Host"] == f"hooks.example.test:{port}" and headers["X-Test"] == "1"


def test_answers_are_classified(receiver: Any) -> None:
    port = receiver.server_address[1]
    receiver.answers.extend(
        [
            (500, {}, 0.0),
            (429, {"Retry-After": "42"}, 0.0),
            (302, {"Location": "/x"}, 0.0),
            (410, {}, 0.0),
            (400, {}, 0.0),
            (200, {}, 0.6),
        ]
    )
    client = CallbackClient(allow_local=True, connect_timeout=1, read_timeout=0.3, resolver=loopback)
    url = f"http://127.0.0.1:{port}/cb"
    results = [client.post(url, b"{}", {}) for _ in range(6)]
    assert results[0] == RetryLater("http_5xx", "127.0.0.1 answered 500")
    assert results[1] == RetryLater("http_429", "127.0.0.1 answered 429", retry_after=42.0)
    assert isinstance(results[2], Undeliverable) and results[2].reason == "redirect"
    assert isinstance(results[3], Undeliverable) and results[3].reason == "gone"
    assert results[4] == RetryLater("http_400", "127.0.0.1 answered 400")
    assert isinstance(results[5], RetryLater) and results[5].reason == "timeout"  # a timeout is not a delivery


def test_nothing_listening_is_retried_later() -> None:
    server = _serve()
    port = server.server_address[1]
    server.shutdown()
    server.server_close()
    client = CallbackClient(allow_local=True, connect_timeout=0.5, read_timeout=0.5, resolver=loopback)
    result = client.post(f"http://127.0.0.1:{port}/cb", b"{}", {})
    assert isinstance(result, RetryLater) and result.reason == "connection"


def test_https_to_the_checked_address_still_verifies_the_certificate_for_the_urls_host() -> None:
    authority = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("hooks.example.test").configure_cert(context)
    server = _serve(context)
    port = server.server_address[1]
    try:
        with authority.cert_pem.tempfile() as ca_file:
            client = CallbackClient(
                allow_local=True, connect_timeout=1, read_timeout=1, resolver=loopback, ca_certs=ca_file
            )
            assert client.post(f"https://hooks.example.test:{port}/cb", b"{}", {}) == Delivered(204)
            wrong_name = client.post(f"https://other.example.test:{port}/cb", b"{}", {})
        untrusted = CallbackClient(allow_local=True, connect_timeout=1, read_timeout=1, resolver=loopback)
        unknown_ca = untrusted.post(f"https://hooks.example.test:{port}/cb", b"{}", {})
    finally:
        server.shutdown()
        server.server_close()
    assert isinstance(wrong_name, RetryLater) and wrong_name.reason == "connection"
    assert isinstance(unknown_ca, RetryLater) and unknown_ca.reason == "connection"
    assert len(server.seen) == 1  # type: ignore[attr-defined]


# ------------------------------------------------------------------ the delivery decisions


class _FakeClient:
    longest_attempt_seconds = 13.0

    def __init__(self, *results: Any) -> None:
        self.results = list(results)
        self.posts: list[tuple[str, bytes, dict[str, str]]] = []

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> Any:
        self.posts.append((url, body, headers))
        return self.results.pop(0)


class _FakeDeadLetters:
    def __init__(self) -> None:
        self.jobs: list[dict[str, Any]] = []

    def put(self, job_body: str, **fields: Any) -> None:
        self.jobs.append({"body": job_body, **fields})


class _FakeMetrics:
    def __init__(self) -> None:
        self.counted: list[tuple[str, dict[str, str]]] = []

    def count(self, name: str, value: int = 1, **dimensions: str) -> None:
        self.counted.append((name, dimensions))


JOB = '{"url": "https://hooks.example.com/cb", "event_id": "e1", "body": "{\\"x\\":1}"}'


def delivery(client: _FakeClient, **fields: Any) -> tuple[Any, _FakeDeadLetters, _FakeMetrics]:
    dead, metrics = _FakeDeadLetters(), _FakeMetrics()
    return (
        CallbackDelivery(
            client=client,
            signing_secret=lambda: SECRET,
            dead_letters=dead,
            metrics=metrics,
            clock=lambda: 1_700_000_000,
            **fields,
        ),
        dead,
        metrics,
    )


def test_the_body_is_posted_as_queued_and_signed() -> None:
    client = _FakeClient(Delivered(200))
    service, dead, metrics = delivery(client)
    assert service.process(JOB, sqs_message_id="m1", group_id="k1", receive_count=1) == "delivered"
    ((url, body, headers),) = client.posts
    assert (url, body) == ("https://hooks.example.com/cb", b'{"x":1}')
    assert headers["X-Gateway-Event-Id"] == "e1"
    assert verify(SECRET, body, headers["X-Gateway-Timestamp"], headers["X-Gateway-Signature-256"], now=1_700_000_000)
    assert dead.jobs == [] and metrics.counted == [("CallbacksDelivered", {})]


def test_retry_delays_double_with_jitter_honour_retry_after_and_stop_at_the_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(random, "random", lambda: 1.0)  # the ceiling of each jitter range
    delays = []
    for receive_count in range(1, 10):
        service, _, _ = delivery(_FakeClient(RetryLater("http_5xx", "x")), max_receive_count=12)
        with pytest.raises(Retry) as raised:
            service.process(JOB, sqs_message_id="m", group_id="k", receive_count=receive_count)
        delays.append(raised.value.delay)
    assert delays == [5, 10, 20, 40, 80, 160, 320, 640, 900]
    service, _, _ = delivery(_FakeClient(RetryLater("http_429", "x", retry_after=120)))
    with pytest.raises(Retry) as raised:
        service.process(JOB, sqs_message_id="m", group_id="k", receive_count=1)
    assert raised.value.delay == 120


def test_an_unusable_job_and_the_last_attempt_go_to_the_dead_letter_queue_with_their_reasons() -> None:
    service, dead, metrics = delivery(
        _FakeClient(RetryLater("timeout", "hooks.example.com did not answer")), max_receive_count=4
    )
    assert service.process("{not json", sqs_message_id="m1", group_id="k1", receive_count=1) == "dead_lettered"
    assert service.process(JOB, sqs_message_id="m2", group_id="k2", receive_count=4) == "dead_lettered"
    assert [(j["reason"], j["group_id"], j["deduplication_id"]) for j in dead.jobs] == [
        ("invalid_job", "k1", "invalid-m1"),
        ("retries_exhausted", "k2", "e1"),
    ]
    assert dead.jobs[1]["body"] == JOB and dead.jobs[1]["detail"].startswith("4 attempts; the last: hooks")
    assert [name for name, _ in metrics.counted] == ["CallbacksUndeliverable", "CallbacksUndeliverable"]


def test_an_invocation_about_to_time_out_hands_the_job_back_without_calling() -> None:
    client = _FakeClient(Delivered(200))
    service, _, _ = delivery(client, remaining_seconds=lambda: 5.0)
    with pytest.raises(Retry):
        service.process(JOB, sqs_message_id="m", group_id="k", receive_count=1)
    assert client.posts == []


HOOK_JOB = json.dumps(
    {
        "url": "https://hooks.example.com/in",
        "event_id": "e2",
        "body": '{"kind":"text"}',
        "hook": {"webhook_id": "0123456789ab", "delivery_id": "1796560001500-e2"},
    }
)


class _Log:
    def __init__(self, fail: bool = False) -> None:
        self.attempts: list[tuple[str, str, str, int | None]] = []
        self.fail = fail

    def attempted(self, webhook_id: str, delivery_id: str, state: str, *, http_status: int | None, detail: str) -> None:
        if self.fail:
            raise RuntimeError("ResourceNotFoundException")
        self.attempts.append((webhook_id, delivery_id, state, http_status))


def test_an_event_webhooks_attempts_are_logged_and_a_status_callbacks_are_not() -> None:
    log = _Log()
    service, _, _ = delivery(_FakeClient(RetryLater("http_5xx", "503"), Delivered(204), Delivered(200)), log=log)
    with pytest.raises(Retry):
        service.process(HOOK_JOB, sqs_message_id="m", group_id="g", receive_count=1)
    assert service.process(HOOK_JOB, sqs_message_id="m", group_id="g", receive_count=2) == "delivered"
    assert service.process(JOB, sqs_message_id="m", group_id="g", receive_count=1) == "delivered"
    assert log.attempts == [
        ("0123456789ab", "1796560001500-e2", "pending", None),
        ("0123456789ab", "1796560001500-e2", "delivered", 204),
    ]


def test_a_log_that_cannot_be_written_never_posts_the_delivery_again() -> None:
    client = _FakeClient(Delivered(200))
    service, _, metrics = delivery(client, log=_Log(fail=True))
    assert service.process(HOOK_JOB, sqs_message_id="m", group_id="g", receive_count=1) == "delivered"
    assert len(client.posts) == 1 and ("DeliveryLogMisses", {}) in metrics.counted


def test_one_event_failing_at_two_webhooks_is_parked_twice() -> None:
    other = json.loads(HOOK_JOB)
    other["hook"]["webhook_id"] = "ba9876543210"
    service, dead, _ = delivery(_FakeClient(Undeliverable("gone", "410"), Undeliverable("gone", "410")))
    service.process(HOOK_JOB, sqs_message_id="m1", group_id="g1", receive_count=1)
    service.process(json.dumps(other), sqs_message_id="m2", group_id="g2", receive_count=1)
    assert len({j["deduplication_id"] for j in dead.jobs}) == 2
