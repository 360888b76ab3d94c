"""AWS for the sender's bench (figure 3), over HTTP on loopback: moto's DynamoDB, SQS and Secrets Manager in a
process of its own, with a fixed latency on every request. Chosen with BENCH_SENDER_AWS=moto; the figure's default
is bench.dynamo_standin, since moto spends about 28 ms of CPU per send here (werkzeug and moto's routing, its
expression parser on every request, SQS's attribute building), more than a 2-core machine has to give at 100 sends
per second. tests/devkit/test_dynamo_standin.py sends the same requests to both.

bench.aws_standin answers with canned answers, which is enough for the webhook; the sender needs what it writes
to be kept, and DynamoDB's conditions: its claim is a conditional PutItem (refused when the record exists), its
rate limiter a conditional UpdateItem that returns the item when refused, its part_sent_linked a
TransactWriteItems cancelled as a whole when one condition fails. moto keeps all of that, with the fixes the
local stack applies (local/aws/emulator_fixes.py: defect 1, a transaction copies the items it names and not
whole tables, and the others). moto's server answers each request in a thread of its own and its DynamoDB
backend takes no lock, so a check and the write it guards could interleave with another request's, which
DynamoDB never lets happen: here moto handles one request at a time (the GIL allows no more anyway), and the
latency is spent outside that lock, half before moto handles the request and half after, as a round trip's
two halves.

    python -m bench.moto_standin <port file> [latency ms] [time limit s]

It binds 127.0.0.1 on a free port, writes the port to the file, and stops by itself after the time limit (or
when its parent ends it). `MotoStandIn` starts one, stops it, and reads its CPU time (`StandInProcess` does the
same for any stand-in module that takes those arguments).
"""

import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Self

from bench.common import LOOPBACK, REGION, ROOT, serve_bounded, stop_process

DEFAULT_LATENCY_MS = 5.0
DEFAULT_TIME_LIMIT = 600.0
START_TIME_LIMIT = 60.0  # importing moto's server takes a few seconds on a busy machine
CREDENTIALS = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}  # moto accepts any


class LatencyApp:
    """A WSGI application around moto's: the latency, and moto's own work under one lock."""

    def __init__(self, app: Callable[..., Iterable[bytes]], latency_seconds: float) -> None:
        self._app = app
        self._half = latency_seconds / 2
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if self._half:
            time.sleep(self._half)
        answered: list[Any] = []

        def keep(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
            answered[:] = [status, headers, exc_info]
            return lambda _: None  # moto returns its body; it never writes through this

        with self._lock:
            result = self._app(environ, keep)
            try:
                body = b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        if self._half:
            time.sleep(self._half)
        start_response(*answered)
        return [body]


def serve(latency_seconds: float) -> Any:
    """moto's server on 127.0.0.1 and a free port, in this process, with the fixes and the latency: a werkzeug
    server whose serve_forever() the caller runs (and shutdown() ends)."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    from local.aws import emulator_fixes

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # a line per request otherwise
    emulator_fixes.apply()
    app = LatencyApp(DomainDispatcherApplication(create_backend_app), latency_seconds)
    return make_server(LOOPBACK, 0, app, threaded=True, request_handler=MotoRequestHandler)


class StandInProcess:
    """A stand-in for AWS in its own process (``python -m <module> <port file> [arguments] <latency ms> <time limit
    s>``), for a `with` block: ``url`` is its endpoint."""

    module = "bench.moto_standin"

    def __init__(self, latency_ms: float = DEFAULT_LATENCY_MS, time_limit: float = DEFAULT_TIME_LIMIT) -> None:
        self.latency_ms = latency_ms
        self._scratch = tempfile.TemporaryDirectory(prefix="bench-aws-")
        port_file = Path(self._scratch.name) / "port"
        self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", self.module, str(port_file), *self.arguments(), str(latency_ms), str(time_limit)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        deadline = time.monotonic() + START_TIME_LIMIT
        while not port_file.exists() or not port_file.read_text().strip():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.module} did not start")
            time.sleep(0.05)
        self.url = f"http://{LOOPBACK}:{int(port_file.read_text())}"

    def arguments(self) -> list[str]:
        """What the module's main takes between the port file and the latency."""
        return []

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def clients(self) -> dict[str, Any]:
        """Plain boto3 clients of the stand-in, for provisioning and seeding (not the sender's)."""
        import boto3

        session = boto3.session.Session(
            aws_access_key_id=CREDENTIALS["aws_access_key_id"],
            aws_secret_access_key=CREDENTIALS["aws_secret_access_key"],
            region_name=REGION,
        )
        return {s: session.client(s, endpoint_url=self.url) for s in ("dynamodb", "sqs", "secretsmanager")}

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self._process.pid)

    def stop(self) -> None:
        stop_process(self._process, grace=10)
        self._scratch.cleanup()


class MotoStandIn(StandInProcess):
    """moto, as above, in its own process."""

    module = "bench.moto_standin"


def process_cpu_seconds(pid: int) -> float:
    """User and system CPU time of a running process (Linux's /proc); 0.0 where it cannot be read."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    # After the command's closing parenthesis: state is field 3, utime 14 and stime 15 (proc(5)).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(port_file: str, latency_ms: str = str(DEFAULT_LATENCY_MS), time_limit: str = str(DEFAULT_TIME_LIMIT)) -> None:
    server = serve(float(latency_ms) / 1000)
    serve_bounded(server, port_file, float(time_limit))


if __name__ == "__main__":
    main(*sys.argv[1:])
