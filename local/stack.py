"""`make run`: the whole gateway on this machine, with no AWS account and no Docker.

moto in server mode on 127.0.0.1 emulates DynamoDB, SQS and Secrets Manager; the template's tables,
queues and secrets are created in it from template.yaml; the template's HTTP routes are served on
127.0.0.1 by invoking the real handlers in this process with real API Gateway events.
"""

import base64
import json
import logging
import os
import signal
import socket
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3

from local.apigw import http_api_event
from local.runtime import FunctionRuntime
from local.template import REGION, Route, Stack, provision

LOOPBACK = "127.0.0.1"
DEFAULT_APP_SECRET = "local-app-secret"  # noqa: S105 - a documented local default, never a real secret
DEFAULT_VERIFY_TOKEN = "local-verify-token"  # noqa: S105
DEFAULT_STACK_NAME = "instagram-gateway-local"
API_PAYLOAD_LIMIT = 10 * 1024 * 1024


@dataclass(frozen=True)
class LocalConfig:
    aws_port: int
    api_port: int
    app_secret: str
    verify_token: str
    stack_name: str

    @classmethod
    def from_environment(cls) -> "LocalConfig":
        return cls(
            aws_port=int(os.environ.get("LOCAL_AWS_PORT", "5000")),
            api_port=int(os.environ.get("LOCAL_API_PORT", "3000")),
            app_secret=os.environ.get("APP_SECRET", DEFAULT_APP_SECRET),
            verify_token=os.environ.get("VERIFY_TOKEN", DEFAULT_VERIFY_TOKEN),
            stack_name=os.environ.get("LOCAL_STACK_NAME", DEFAULT_STACK_NAME),
        )

    @property
    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.aws_port}"

    def aws_environment(self) -> dict[str, str]:
        """What every function and client sees: the emulator as its AWS endpoint, dummy credentials."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
        }

    def secret_strings(self) -> dict[str, str]:
        return {"AppSecret": json.dumps({"app_secrets": [self.app_secret], "verify_token": self.verify_token})}


def emulator_running(config: LocalConfig) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.3)
        return probe.connect_ex((LOOPBACK, config.aws_port)) == 0


def start_emulator(config: LocalConfig) -> Any:
    from moto.server import ThreadedMotoServer

    if emulator_running(config):
        raise SystemExit(f"port {config.aws_port} is taken: stop what uses it or set LOCAL_AWS_PORT")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per emulator call drowns the function logs
    server = ThreadedMotoServer(ip_address=LOOPBACK, port=config.aws_port, verbose=False)
    server.start()
    return server


def provision_stack(config: LocalConfig) -> Stack:
    os.environ.update(config.aws_environment())
    clients = {s: boto3.client(s, endpoint_url=config.endpoint, region_name=REGION)
               for s in ("dynamodb", "sqs", "secretsmanager")}
    return provision(clients, config.stack_name, config.secret_strings())


class ApiServer(ThreadingHTTPServer):
    """The template's HttpApi routes; one invocation at a time, like one warm Lambda instance."""

    daemon_threads = True

    def __init__(self, port: int, routes: list[Route], runtime: FunctionRuntime) -> None:
        self.routes = {(r.method, r.path): r for r in routes}
        self.runtime = runtime
        self.invoke_lock = threading.Lock()
        super().__init__((LOOPBACK, port), _RouteHandler)


class _RouteHandler(BaseHTTPRequestHandler):
    server: ApiServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        path, _, query = self.path.partition("?")
        try:
            body = self._body()
        except ValueError:
            self._reply(400, {"Content-Type": "application/json"}, b'{"message":"Bad Request"}')
            self.close_connection = True
            return
        if body is None:
            self._reply(413, {"Content-Type": "application/json"}, b'{"message":"Request Entity Too Large"}')
            self.close_connection = True
            return
        route = self.server.routes.get((self.command, path))
        if route is None:
            self._reply(404, {"Content-Type": "application/json"}, b'{"message":"Not Found"}')
            return
        event = http_api_event(self.command, path, query=query, headers=dict(self.headers.items()), body=body,
                               route_key=f"{route.method} {route.path}", source_ip=self.client_address[0])
        with self.server.invoke_lock:
            try:
                result = self.server.runtime.invoke(route.function_id, event)
            except Exception as exc:  # Lambda answers an unhandled error with 500; so do we
                sys.stderr.write(f"{route.function_id} raised {type(exc).__name__}: {exc}\n")
                self._reply(500, {"Content-Type": "application/json"}, b'{"message":"Internal Server Error"}')
                return
        self._reply_from_lambda(result)

    def _body(self) -> bytes | None:
        """The request body, or None past API Gateway's payload limit (HTTP API: 10 MB)."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                total += size
                if total > API_PAYLOAD_LIMIT:
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline()  # the CRLF after each chunk
        length = int(self.headers.get("Content-Length") or 0)
        if length > API_PAYLOAD_LIMIT:
            return None
        return self.rfile.read(length) if length else b""

    def _reply_from_lambda(self, result: Any) -> None:
        if not isinstance(result, dict) or "statusCode" not in result:
            # HTTP API turns a bare return value into a 200 JSON response.
            self._reply(200, {"Content-Type": "application/json"}, json.dumps(result).encode())
            return
        body = result.get("body") or ""
        payload = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode("utf-8")
        self._reply(int(result["statusCode"]), dict(result.get("headers") or {}), payload)

    def _reply(self, status: int, headers: dict[str, str], payload: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"api: {self.command} {self.path.partition('?')[0]} -> {args[1] if len(args) > 1 else ''}\n")


def banner(config: LocalConfig, stack: Stack) -> str:
    queues = [stack.attributes[(q, "QueueName")] for q in stack.resources("AWS::SQS::Queue")]
    tables = [stack.refs[t] for t in stack.resources("AWS::DynamoDB::Table")]
    routes = ", ".join(f"{r.method} {r.path}" for r in stack.routes())
    return "\n".join([
        "Instagram DM gateway, local stack (no AWS account, no Docker)",
        f"  webhook URL   http://{LOOPBACK}:{config.api_port}/webhook   ({routes})",
        f"  verify token  {config.verify_token}",
        "  app secret    from APP_SECRET (signs test webhooks; see README)",
        f"  AWS emulator  {config.endpoint}   (export AWS_ENDPOINT_URL={config.endpoint} to use the aws CLI)",
        f"  table         {', '.join(tables)}",
        f"  queues        {', '.join(queues)}",
        "ready",
    ])


def main() -> None:
    config = LocalConfig.from_environment()
    emulator = start_emulator(config)
    try:
        stack = provision_stack(config)
        runtime = FunctionRuntime(stack, config.aws_environment())
        api = ApiServer(config.api_port, stack.routes(), runtime)
    except OSError as exc:
        emulator.stop()
        raise SystemExit(f"cannot start the local API on port {config.api_port}: {exc} (set LOCAL_API_PORT)") from exc
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    threading.Thread(target=api.serve_forever, name="local-api", daemon=True).start()
    print(banner(config, stack), flush=True)
    stop.wait()
    api.shutdown()
    emulator.stop()
    print("stopped", flush=True)


if __name__ == "__main__":
    main()
