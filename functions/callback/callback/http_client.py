"""POSTs to callback URLs, connecting only to addresses that passed the target check.

The host name is resolved here, every address it resolves to is checked, and the connection goes to
a checked address, with the name kept for the Host header, SNI and certificate verification. So a
name that resolves to a public address for the check and to 169.254.169.254 for the connection (DNS
rebinding) is never followed. urllib3 is used directly (it ships with requests and boto3) because
requests offers no way to choose the address a connection goes to.
"""

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import certifi
import urllib3
from urllib3.exceptions import HTTPError, NewConnectionError, TimeoutError

from igdm.contracts.callbacks import address_refusal, url_refusal

USER_AGENT = "instagram-dm-gateway-callbacks/1"
MAX_DRAINED_BYTES = 64 * 1024  # a longer answer is not read: the connection is closed instead
MAX_POOLS = 64


@dataclass(frozen=True)
class Delivered:
    status: int


@dataclass(frozen=True)
class RetryLater:
    reason: str  # low-cardinality, for metrics: timeout, connection, dns, http_503 ...
    detail: str
    retry_after: float | None = None  # the receiver's Retry-After, in seconds


@dataclass(frozen=True)
class Undeliverable:
    reason: str  # refused_target, redirect, gone
    detail: str


Result = Delivered | RetryLater | Undeliverable
Resolver = Callable[[str, int], list[str]]


def resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class CallbackClient:
    def __init__(
        self,
        *,
        allow_local: bool,
        connect_timeout: float,
        read_timeout: float,
        resolver: Resolver = resolve,
        ca_certs: str | None = None,
    ) -> None:
        self._allow_local = allow_local
        self._ca_certs = ca_certs or certifi.where()
        self._timeout = urllib3.Timeout(connect=connect_timeout, read=read_timeout)
        self._resolver = resolver
        self._pools: dict[tuple[str, str, int, str], urllib3.HTTPConnectionPool] = {}

    @property
    def longest_attempt_seconds(self) -> float:
        return float(self._timeout.connect_timeout or 0) + float(self._timeout.read_timeout or 0)  # type: ignore[arg-type]

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> Result:
        refusal = url_refusal(url, allow_local=self._allow_local)
        if refusal is not None:
            return Undeliverable("refused_target", refusal)
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        host = (parts.hostname or "").rstrip(".").lower()
        port = parts.port or (443 if scheme == "https" else 80)
        resolved = self._resolve(host, port)
        if not isinstance(resolved, list):
            return resolved
        pool = self._pool(scheme, resolved[0], port, host)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host_header = host if parts.port is None else f"{host}:{port}"
        try:
            response = pool.urlopen(
                "POST",
                target,
                body=body,
                headers={**headers, "Host": host_header, "User-Agent": USER_AGENT},
                redirect=False,
                retries=False,
                timeout=self._timeout,
                preload_content=False,
                assert_same_host=False,
            )
        except NewConnectionError as exc:  # before TimeoutError: urllib3 makes it a subclass of that
            return RetryLater("connection", f"{host}: could not connect ({type(exc).__name__})")
        except TimeoutError:
            return RetryLater("timeout", f"{host} did not answer in time")
        except HTTPError as exc:
            return RetryLater("connection", f"{host}: {type(exc).__name__}")
        retry_after = _retry_after(response.headers.get("Retry-After"))
        _finish(response)
        return _result(host, response.status, retry_after)

    def _resolve(self, host: str, port: int) -> list[str] | Result:
        """The host's addresses, every one allowed (DNS rebinding: each is judged, the first connected to);
        else why the callback cannot go there now."""
        try:
            addresses = self._resolver(host, port)
        except (OSError, UnicodeError) as exc:
            return RetryLater("dns", f"{host} does not resolve: {type(exc).__name__}")
        if not addresses:
            return RetryLater("dns", f"{host} has no address")
        for address in addresses:
            refusal = address_refusal(ipaddress.ip_address(address.split("%")[0]), allow_local=self._allow_local)
            if refusal is not None:
                return Undeliverable("refused_target", f"{host} resolves to a refused address: {refusal}")
        return addresses

    def _pool(self, scheme: str, address: str, port: int, host: str) -> urllib3.HTTPConnectionPool:
        key = (scheme, address, port, host)
        pool = self._pools.get(key)
        if pool is None:
            if len(self._pools) >= MAX_POOLS:  # many receivers: start again rather than grow without bound
                for old in self._pools.values():
                    old.close()
                self._pools.clear()
            connect_to = f"[{address}]" if ":" in address else address
            if scheme == "https":
                pool = urllib3.HTTPSConnectionPool(
                    connect_to,
                    port,
                    maxsize=2,
                    server_hostname=host,
                    assert_hostname=host,
                    cert_reqs="CERT_REQUIRED",
                    ca_certs=self._ca_certs,
                )
            else:
                pool = urllib3.HTTPConnectionPool(connect_to, port, maxsize=2)
            self._pools[key] = pool
        return pool


def _result(host: str, status: int, retry_after: float | None) -> Result:
    if 200 <= status < 300:
        return Delivered(status)
    if 300 <= status < 400:
        return Undeliverable("redirect", f"{host} answered {status}; redirects are not followed")
    if status == 410:
        return Undeliverable("gone", f"{host} answered 410 Gone")
    return RetryLater(f"http_{status}" if status < 500 else "http_5xx", f"{host} answered {status}", retry_after)


def _retry_after(value: str | None) -> float | None:
    if value is None or not value.strip().isdigit():
        return None  # an HTTP date is allowed too; our own backoff is as good
    return float(value.strip())


def _finish(response: Any) -> None:
    """Keep the connection for the next callback when the answer is short; close it otherwise."""
    remaining = response.length_remaining
    if remaining is not None and remaining <= MAX_DRAINED_BYTES:
        try:
            response.drain_conn()
            response.release_conn()
            return
        except HTTPError:
            pass
    response.close()
