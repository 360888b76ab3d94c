"""AWS for the bench, over HTTP on loopback: a process of its own that answers the JSON protocol requests
(DynamoDB, SQS, Secrets Manager) of a function under measurement with bench.aws_ledger.StubAnswers, after an
optional latency. The function's botocore therefore does all it does in Lambda (serialise, sign, send through
urllib3, read and parse the answer), and the stand-in's own CPU is another process's: it is not counted.

    python -m bench.aws_standin <port file> <secret string> [latency ms] [time limit s]

It binds 127.0.0.1 on a free port, writes the port to the file, and stops by itself after the time limit (or
when its parent kills it). `StandIn` starts one and stops it.
"""

import sys
import time
from http.server import ThreadingHTTPServer

from bench.aws_ledger import StubAnswers
from bench.common import LOOPBACK, JsonAnswers, serve_bounded
from bench.moto_standin import StandInProcess

# X-Amz-Target's prefix: the service it addresses (JSON protocol).
SERVICES = {"DynamoDB_20120810": "dynamodb", "AmazonSQS": "sqs", "secretsmanager": "secretsmanager"}
DEFAULT_TIME_LIMIT = 600.0


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, answers: StubAnswers, latency: float) -> None:
        self.answers = answers
        self.latency = latency
        super().__init__((LOOPBACK, 0), _Handler)


class _Handler(JsonAnswers):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, as AWS's endpoints: botocore's pool reuses the connection
    disable_nagle_algorithm = True

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        prefix, _, operation = (self.headers.get("X-Amz-Target") or "").partition(".")
        service = SERVICES.get(prefix)
        if service is None:
            self.answer(400, {"__type": "UnknownOperationException", "message": f"no target {prefix!r}"})
            return
        try:
            answer = self.server.answers.answer(service, operation, body)
        except NotImplementedError as exc:
            self.answer(400, {"__type": "UnknownOperationException", "message": str(exc)})
            return
        if self.server.latency:
            time.sleep(self.server.latency)
        self.answer(200, answer)


class StandIn(StandInProcess):
    """The stand-in in its own process, for a `with` block: ``url`` is its endpoint."""

    module = "bench.aws_standin"

    def __init__(self, secret_string: str, latency_ms: float = 0.0, time_limit: float = DEFAULT_TIME_LIMIT) -> None:
        self._secret_string = secret_string
        super().__init__(latency_ms, time_limit)

    def arguments(self) -> list[str]:
        return [self._secret_string]


def main(port_file: str, secret_string: str, latency_ms: str = "0", time_limit: str = str(DEFAULT_TIME_LIMIT)) -> None:
    server = _Server(StubAnswers(secret_string), float(latency_ms) / 1000)
    serve_bounded(server, port_file, float(time_limit))


if __name__ == "__main__":
    main(*sys.argv[1:])
