"""`make run`: the whole gateway on this machine, with no AWS account and no Docker.

moto in server mode on 127.0.0.1 emulates DynamoDB, SQS and Secrets Manager; the template's tables,
queues and secrets are created in it from template.yaml; the template's HTTP routes are served on
127.0.0.1 by invoking the real handlers in this process with real API Gateway events; the template's
SQS event sources and the table's stream are polled as Lambda would; and a Graph API sandbox on 127.0.0.1 answers the
sender like Meta and sends the echo webhooks back (or GRAPH_API_BASE_URL names another endpoint).
A callback inbox on 127.0.0.1 receives the status callbacks `make send` asks for, and checks their
signatures.
"""

import base64
import dataclasses
import json
import logging
import os
import signal
import socket
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3

from local import narration
from local.aws.apigw import http_api_event
from local.aws.runtime import FunctionRuntime
from local.aws.sqs_poller import SqsPoller, pollers
from local.aws.stream_poller import StreamPoller, StreamSubscription, stream_pollers
from local.aws.template import REGION, ROOT, Route, Stack, provision
from local.callback_inbox import CallbackInbox
from local.console import console_pages
from local.meta.graph_sandbox import GraphSandbox

LOOPBACK = "127.0.0.1"
DEFAULT_APP_SECRET = "local-app-secret"  # noqa: S105 - a documented local default, never a real secret
DEFAULT_VERIFY_TOKEN = "local-verify-token"  # noqa: S105
DEFAULT_STACK_NAME = "instagram-gateway-local"
DEFAULT_ACCOUNT_ID = "17841400000000001"
DEFAULT_ACCESS_TOKEN = "local-access-token"  # noqa: S105 - the sandbox's, documented
DEFAULT_CUSTOMER_ID = "6543210987654321"
DEFAULT_CALLBACK_PORT = 8082
DEFAULT_CALLBACK_SIGNING_SECRET = "local-callback-signing-secret-0123456789"  # noqa: S105 - documented
DEFAULT_INSTAGRAM_APP_ID = "local-instagram-app-id"
DEFAULT_INSTAGRAM_APP_SECRET = "local-instagram-app-secret"  # noqa: S105 - the sandbox's, documented
DEFAULT_USERNAME = "local_account"
# An account the sandbox lets you log in as on its consent page, to try onboarding (make invite).
ONBOARDING_ACCOUNT_ID = "17841400000000002"
ONBOARDING_USERNAME = "local_shop"
API_PAYLOAD_LIMIT = 10 * 1024 * 1024


def callback_inbox_url(port: int = DEFAULT_CALLBACK_PORT) -> str:
    return f"http://{LOOPBACK}:{port}/callbacks"


@dataclass(frozen=True)
class LocalConfig:
    aws_port: int
    api_port: int
    app_secret: str
    verify_token: str
    stack_name: str
    account_id: str
    access_token: str
    graph_api_base_url: str | None  # None: run the Graph sandbox on graph_port
    graph_port: int
    callback_port: int
    callback_signing_secret: str
    instagram_app_id: str = DEFAULT_INSTAGRAM_APP_ID
    instagram_app_secret: str = DEFAULT_INSTAGRAM_APP_SECRET

    @classmethod
    def from_environment(cls) -> "LocalConfig":
        """Each setting from its environment variable; else, for a second terminal, from the running `make run`'s
        state file (local_state); else its default."""
        saved = running_state() or {}

        def setting(variable: str, field: str, default: str) -> str:
            return os.environ.get(variable) or str(saved.get(field) or default)

        return cls(
            aws_port=int(setting("LOCAL_AWS_PORT", "aws_port", "5000")),
            api_port=int(setting("LOCAL_API_PORT", "api_port", "3000")),
            app_secret=setting("APP_SECRET", "app_secret", DEFAULT_APP_SECRET),
            verify_token=setting("VERIFY_TOKEN", "verify_token", DEFAULT_VERIFY_TOKEN),
            stack_name=setting("LOCAL_STACK_NAME", "stack_name", DEFAULT_STACK_NAME),
            account_id=setting("IG_ACCOUNT_ID", "account_id", DEFAULT_ACCOUNT_ID),
            access_token=setting("IG_ACCESS_TOKEN", "access_token", DEFAULT_ACCESS_TOKEN),
            graph_api_base_url=setting("GRAPH_API_BASE_URL", "graph_api_base_url", "") or None,
            graph_port=int(setting("LOCAL_GRAPH_PORT", "graph_port", "8081")),
            callback_port=int(setting("LOCAL_CALLBACK_PORT", "callback_port", str(DEFAULT_CALLBACK_PORT))),
            callback_signing_secret=setting(
                "CALLBACK_SIGNING_SECRET", "callback_signing_secret", DEFAULT_CALLBACK_SIGNING_SECRET
            ),
            instagram_app_id=setting("INSTAGRAM_APP_ID", "instagram_app_id", DEFAULT_INSTAGRAM_APP_ID),
            instagram_app_secret=setting("INSTAGRAM_APP_SECRET", "instagram_app_secret", DEFAULT_INSTAGRAM_APP_SECRET),
        )

    @property
    def callback_url(self) -> str:
        return callback_inbox_url(self.callback_port)

    @property
    def api_url(self) -> str:
        return f"http://{LOOPBACK}:{self.api_port}"

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
        return {
            "AppSecret": json.dumps(
                {
                    "app_secrets": [self.app_secret],
                    "verify_token": self.verify_token,
                    "instagram_app_id": self.instagram_app_id,
                    "instagram_app_secret": self.instagram_app_secret,
                }
            ),
            "CallbackSigningSecret": json.dumps({"signing_secret": self.callback_signing_secret}),
        }

    def function_environment(self, graph_url: str) -> dict[str, str]:
        """What the local stack sets on top of the template: the emulator, the Graph endpoint, and what a
        deployed stack is never given: LOCAL_STACK, which lets the Graph and Instagram URLs be http to
        127.0.0.1 or localhost (the sandbox; a real host still needs https), and the permission to call
        back http URLs on 127.0.0.1. Instagram's login pages and token endpoint are the Graph sandbox's too."""
        return {
            **self.aws_environment(),
            "LOCAL_STACK": "true",
            "GRAPH_API_BASE_URL": graph_url,
            "ALLOW_LOCAL_CALLBACKS": "true",
            "INSTAGRAM_AUTHORIZE_URL": f"{graph_url}/oauth/authorize",
            "INSTAGRAM_TOKEN_URL": f"{graph_url}/oauth/access_token",
            "BUSINESS_NAME": "Local Coffee Shop",  # who the onboarding pages say asks; no logo: https only
        }


# Where `make run` says how to reach it (its ports, stack name and local secrets), so that `make say`, `send`,
# `refresh` ... in another terminal need no variables. Removed when it stops; ignored when its process is gone.
def state_file() -> Path:
    return Path(os.environ.get("LOCAL_STATE_DIR") or ROOT / ".local") / "stack.json"


def log_file() -> Path:
    """Where `make run` writes the functions' own logs (make logs tails it)."""
    return state_file().with_name("functions.log")


def write_state(config: LocalConfig) -> Path:
    path = state_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"pid": os.getpid(), **dataclasses.asdict(config)}, indent=2))
    path.chmod(0o600)  # the local secrets: this user's only
    return path


def running_state() -> dict[str, Any] | None:
    """The running `make run`'s state, or None (no file, an unreadable one, or its process gone)."""
    try:
        state = json.loads(state_file().read_text())
        os.kill(int(state["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return state if isinstance(state, dict) else None


def require_running(config: LocalConfig) -> None:
    """One line, not a traceback, when there is no local stack to talk to."""
    if not emulator_running(config):
        raise SystemExit(
            f"the local stack is not running (nothing on 127.0.0.1:{config.aws_port}): "
            "start it with `make run` in another terminal"
        )


def emulator_running(config: LocalConfig) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.3)
        return probe.connect_ex((LOOPBACK, config.aws_port)) == 0


def start_emulator(config: LocalConfig) -> Any:
    from moto.server import ThreadedMotoServer

    from local.aws import emulator_fixes

    if config.aws_port and emulator_running(config):
        raise SystemExit(f"port {config.aws_port} is taken: stop what uses it or set LOCAL_AWS_PORT")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per emulator call drowns the function logs
    # moto behaves as AWS does where a long run notices: the cost of a transaction or a send, memory, and
    # FIFO deduplication (local/aws/emulator_fixes.py).
    emulator_fixes.apply()
    server = ThreadedMotoServer(ip_address=LOOPBACK, port=config.aws_port, verbose=False)
    server.start()
    return server


def provision_stack(config: LocalConfig) -> Stack:
    os.environ.update(config.aws_environment())
    clients = {
        s: boto3.client(s, endpoint_url=config.endpoint, region_name=REGION)
        for s in ("dynamodb", "sqs", "secretsmanager")
    }
    return provision(clients, config.stack_name, config.secret_strings(), streams=True)  # the fan-out polls it


# (method, path, query, body) -> (status, headers, payload)
ConsolePages = Callable[[str, str, str, bytes], tuple[int, dict[str, str], bytes]]


class ApiServer(ThreadingHTTPServer):
    """The template's HttpApi routes; one invocation at a time, like one warm Lambda instance."""

    daemon_threads = True

    def __init__(self, port: int, routes: list[Route], runtime: FunctionRuntime | None = None) -> None:
        self.routes = routes
        # None until `make run` gives it one: it binds its port first, so the sandbox's webhooks know it.
        self._runtime = runtime
        self.invoke_lock = threading.Lock()
        # An authorizer's answers, by its identity sources' values, as API Gateway caches them (ReauthorizeEvery).
        self.authorized: dict[tuple[str, tuple[str, ...]], tuple[float, dict[str, Any]]] = {}
        # The local console's pages (local/console): not the template's, never deployed.
        self.console: ConsolePages | None = None
        super().__init__((LOOPBACK, port), _RouteHandler)

    @property
    def runtime(self) -> FunctionRuntime:
        if self._runtime is None:
            raise RuntimeError("the API server has no function runtime yet")
        return self._runtime

    @runtime.setter
    def runtime(self, runtime: FunctionRuntime) -> None:
        self._runtime = runtime

    def route(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self.routes:
            found = route.match(method, path)
            if found is not None:
                return route, found
        return None

    def authorize(self, route: Route, event: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
        """API Gateway's part of a Lambda authorizer (payload 2.0, simple responses): 401 without an identity
        source, the function's answer otherwise (cached), 403 when it is not authorized; the context it gives."""
        authorizer = route.authorizer
        if authorizer is None:
            return 200, None
        identity = tuple(event["headers"].get(h, "") for h in authorizer.headers)
        if not all(identity):
            return 401, None
        cached = self.authorized.get((authorizer.function_id, identity))
        if cached is None or cached[0] < time.monotonic():
            request = {**event, "type": "REQUEST", "identitySource": list(identity), "routeArn": "arn:local"}
            answer = self.runtime.invoke(authorizer.function_id, request)
            cached = (time.monotonic() + authorizer.cache_seconds, answer)
            self.authorized[(authorizer.function_id, identity)] = cached
        answer = cached[1]
        if not isinstance(answer, dict) or answer.get("isAuthorized") is not True:
            return 403, None
        return 200, dict(answer.get("context") or {})


class _RouteHandler(BaseHTTPRequestHandler):
    server: ApiServer
    protocol_version = "HTTP/1.1"
    # Without it each answer's last segment waits on the client's delayed ACK: ~40 ms per request.
    disable_nagle_algorithm = True

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
        if self.server.console is not None and (path == "/console" or path.startswith("/console/")):
            self._reply(*self.server.console(self.command, path, query, body))
            return
        matched = self.server.route(self.command, path)
        if matched is None:
            self._reply(404, {"Content-Type": "application/json"}, b'{"message":"Not Found"}')
            return
        route, parameters = matched
        event = http_api_event(
            self.command,
            path,
            query=query,
            headers=dict(self.headers.items()),
            body=body,
            route_key=f"{route.method} {route.path}",
            source_ip=self.client_address[0],
        )
        if parameters:
            event["pathParameters"] = parameters
        with self.server.invoke_lock:
            try:
                status, context = self.server.authorize(route, event)
                if status != 200:
                    message = b'{"message":"Unauthorized"}' if status == 401 else b'{"message":"Forbidden"}'
                    self._reply(status, {"Content-Type": "application/json"}, message)
                    return
                if context is not None:
                    event["requestContext"]["authorizer"] = {"lambda": context}
                result = self.server.runtime.invoke(route.function_id, event)
                if path == "/webhook" and self.command == "POST":
                    self.held = narration.webhook_held(body)
            except Exception as exc:  # Lambda answers an unhandled error with 500; so do we
                traceback.print_exc()  # into the functions' log, as Lambda's runtime logs it
                narration.say("error", f"{route.function_id} raised {type(exc).__name__}: {exc}", "bad")
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

    held: str | None = None  # what a POST to /webhook held, for its line

    def log_message(self, format: str, *args: Any) -> None:
        path = self.path.partition("?")[0]
        if path == "/console" or path.startswith("/console/"):
            return  # the console polls every second: its requests are not news
        status = str(args[1]) if len(args) > 1 else ""
        tone = "bad" if status.startswith("5") else "warn" if status.startswith("4") else "dim"
        if self.held is not None:
            narration.say("webhook", f"{self.held} -> {status}", tone)
            self.held = None
        else:
            narration.say("api", f"{self.command} {path} -> {status}", tone)


def banner(config: LocalConfig, stack: Stack, graph_url: str, sandboxed: bool, logs: Path | None) -> str:
    queues = [stack.attributes[(q, "QueueName")] for q in stack.resources("AWS::SQS::Queue")]
    events_queue = next(q for q in queues if q.endswith("-events.fifo"))
    table = stack.refs["GatewayTable"]
    where_logs = f"{_shown(logs)}   (make logs; VERBOSE=1 make run shows them here)" if logs else "inline (VERBOSE)"
    return "\n".join(
        [
            "Instagram DM gateway, local stack (no AWS account, no Docker)",
            f"  webhook URL   {config.api_url}/webhook   verify token {config.verify_token}",
            f"  console       {config.api_url}/console",
            f"  HTTP API      {config.api_url}/v1/...   (make key; docs/http-api.md)",
            f"  onboarding    make invite prints a link; log in as {ONBOARDING_USERNAME}",
            f"  account       {config.account_id} ({DEFAULT_USERNAME}), customer {DEFAULT_CUSTOMER_ID}",
            f"  Graph API     {graph_url}   ({'the local sandbox' if sandboxed else 'GRAPH_API_BASE_URL'})",
            f"  callbacks     {config.callback_url}",
            f"  AWS emulator  {config.endpoint}   ({len(queues)} queues, table {table})",
            f"  events queue  {events_queue}   (make events shows the latest)",
            f"  logs          {where_logs}",
            "  try           make say   then   make send   (in another terminal)",
            "ready",
        ]
    )


def _shown(path: Path) -> str:
    """A path as short as it reads: relative to the repository when it is inside."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def register_local_account(config: LocalConfig, stack: Stack, sandbox_url: str | None = None) -> None:
    """The IG_ACCOUNT_ID account, connected as the onboarding pages would (its /me, its webhook fields,
    an account_status event) when the sandbox answers; stored as given when GRAPH_API_BASE_URL is real."""
    # Imported here, after FunctionRuntime has set the template's environment: igdm's Metrics singleton
    # reads POWERTOOLS_METRICS_NAMESPACE when first imported, and every handler flushes through it.
    from igdm.meta.connect import AccountConnector
    from igdm.meta.instagram_login import LONG_LIVED_SECONDS, InstagramLogin
    from igdm.queues.account_publisher import AccountEventPublisher
    from igdm.store.accounts import AccountTable
    from igdm.store.tokens import TokenVault
    from tools.accounts import register_account

    clients = {
        s: boto3.client(s, endpoint_url=config.endpoint, region_name=REGION)
        for s in ("dynamodb", "secretsmanager", "sqs")
    }
    prefix = stack.resolve({"Fn::Sub": "${AWS::StackName}/accounts/"})
    now = int(time.time())
    if sandbox_url is None:
        register_account(
            clients["dynamodb"],
            clients["secretsmanager"],
            table=stack.refs["GatewayTable"],
            secret_prefix=prefix,
            account_id=config.account_id,
            access_token=config.access_token,
            username=DEFAULT_USERNAME,
        )
        return
    environment = stack.function_environment("RefresherFunction")
    login = InstagramLogin(graph_base_url=sandbox_url, api_version=environment["GRAPH_API_VERSION"], oauth_token_url="")
    connector = AccountConnector(
        login=login,
        vault=TokenVault(clients["secretsmanager"], prefix),
        accounts=AccountTable(clients["dynamodb"], stack.refs["GatewayTable"]),
        events=AccountEventPublisher(clients["sqs"], stack.refs["EventsQueue"]),
        webhook_fields=environment["WEBHOOK_FIELDS"].split(","),
    )
    connector.connect(config.access_token, expires_at=now + LONG_LIVED_SECONDS, refreshed_at=now, scopes=(), now=now)


def start_sandbox(config: LocalConfig) -> GraphSandbox | None:
    if config.graph_api_base_url:
        return None
    sandbox = GraphSandbox(
        port=config.graph_port,
        webhook_url=f"http://{LOOPBACK}:{config.api_port}/webhook",
        app_secret=config.app_secret,
        echo_delay_seconds=0.2,
        app_id=config.instagram_app_id,
        instagram_app_secret=config.instagram_app_secret,
    )
    sandbox.add_account(config.account_id, config.access_token, username=DEFAULT_USERNAME)
    sandbox.add_login(config.account_id, DEFAULT_USERNAME)
    sandbox.add_login(ONBOARDING_ACCOUNT_ID, ONBOARDING_USERNAME)
    return sandbox.start()


def run_scheduled(stack: Stack, invoke: Any) -> None:
    """What the template's schedules invoke (the token refresher, the reconciler), once, as `make run` starts."""
    for function_id in stack.scheduled_functions():
        name = function_id.removesuffix("Function").lower()
        try:
            narration.say(name, narration.summary(invoke(function_id, scheduler_event())), "good")
        except Exception as exc:  # a failed run is reported, and the stack keeps running
            traceback.print_exc()
            narration.say(name, f"failed: {type(exc).__name__}: {exc}", "bad")


def narrated_changes(stack: Stack, streams: Any) -> StreamPoller:
    """The table's stream read once more, for the terminal's event and message lines (narration.stored_changes)."""
    every_change = StreamSubscription("narration", "GatewayTable", 1000, (), report_batch_item_failures=False)
    return StreamPoller(
        streams, stack.attributes[("GatewayTable", "StreamArn")], narration.stored_changes, every_change, interval=0.1
    )


def scheduler_event() -> dict[str, Any]:
    """The event EventBridge Scheduler sends a Lambda target by default (an empty JSON object)."""
    return {}


def powertools_overrides() -> dict[str, str]:
    """POWERTOOLS_LOG_LEVEL=DEBUG make run and the like: the user's Powertools settings win over the template's."""
    return {k: v for k, v in os.environ.items() if k.startswith("POWERTOOLS_")}


def main() -> None:
    """The stack, its terminal showing one line per happening; a problem at start up in one line there too."""
    verbose = os.environ.get("VERBOSE", "") not in ("", "0")
    logs = None if verbose else log_file()
    narrator = narration.to_terminal(logs)
    try:
        run(narrator, logs)
    except SystemExit as stop:
        if isinstance(stop.code, str):
            narrator.plain(stop.code)
            raise SystemExit(1) from None
        raise
    except Exception as exc:
        traceback.print_exc()
        narrator.plain(f"the local stack failed: {type(exc).__name__}: {exc} (details in {logs or 'the output above'})")
        raise SystemExit(1) from None


def run(narrator: narration.Narrator, logs: Path | None) -> None:
    config = LocalConfig.from_environment()
    emulator = start_emulator(config)
    # A port of 0 (LOCAL_AWS_PORT=0 and the like) is any free one: from here on, config holds the ports taken,
    # which the banner and the state file for a second terminal show.
    config = dataclasses.replace(config, aws_port=emulator.get_host_and_port()[1])
    api: ApiServer | None = None
    sandbox: GraphSandbox | None = None
    inbox: CallbackInbox | None = None
    try:
        stack = provision_stack(config)
        api = ApiServer(config.api_port, stack.routes())  # bound before the sandbox, which sends webhooks to it
        config = dataclasses.replace(config, api_port=api.server_port)
        sandbox = start_sandbox(config)
        if sandbox:
            config = dataclasses.replace(config, graph_port=sandbox.port)
        graph_url = config.graph_api_base_url or (sandbox.base_url if sandbox else "")
        runtime = FunctionRuntime(stack, {**config.function_environment(graph_url), **powertools_overrides()})
        api.runtime = runtime
        register_local_account(config, stack, sandbox.base_url if sandbox else None)
        inbox = CallbackInbox(config.callback_signing_secret, config.callback_port, echo=True).start()
        config = dataclasses.replace(config, callback_port=inbox.server_port)
        api.console = console_pages(config, stack, inbox)
    except OSError as exc:
        if inbox:
            inbox.stop()
        if sandbox:
            sandbox.stop()
        if api:
            api.server_close()
        emulator.stop()
        raise SystemExit(
            f"cannot start a local server: {exc} (set LOCAL_API_PORT / LOCAL_GRAPH_PORT / LOCAL_CALLBACK_PORT)"
        ) from exc
    sqs = boto3.client("sqs", endpoint_url=config.endpoint, region_name=REGION)

    def invoke(function_id: str, event: dict[str, Any]) -> Any:
        with api.invoke_lock:  # one process: the API and the pollers take turns, like one warm instance each
            return runtime.invoke(function_id, event)

    streams = boto3.client("dynamodbstreams", endpoint_url=config.endpoint, region_name=REGION)
    queue_pollers: list[SqsPoller | StreamPoller] = [
        *pollers(stack, sqs, invoke, region=REGION),
        *stream_pollers(stack, streams, invoke),  # the table's stream -> the fan-out (event webhooks)
        narrated_changes(stack, streams),
    ]
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    threading.Thread(target=api.serve_forever, name="local-api", daemon=True).start()
    for poller in queue_pollers:
        poller.start()
    run_scheduled(stack, invoke)
    state = write_state(config)
    narrator.plain(banner(config, stack, graph_url, sandbox is not None, logs))
    stop.wait()
    state.unlink(missing_ok=True)
    for poller in queue_pollers:
        poller.stop()
    api.shutdown()
    inbox.stop()
    if sandbox:
        sandbox.stop()
    emulator.stop()
    narrator.plain("stopped")


if __name__ == "__main__":
    main()
