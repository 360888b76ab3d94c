"""The Graph API sandbox (local.meta.graph_sandbox) with Meta's latency: every Send API answer leaves
LATENCY_SECONDS after the request arrived, and the rate window counts the request on arrival, as Meta's does.

GraphSandbox has rate limits but no latency setting. Until it has one, this subclass adds the delay to
the Send API's replies through the reply's `delay` field, which the sandbox's server already honours (its
timeout fault uses it) without holding the sandbox's lock.
"""

import dataclasses
from email.message import Message
from typing import Any

from local.meta.answers import Reply
from local.meta.graph_sandbox import GraphSandbox

LATENCY_SECONDS = 0.150  # Meta's Send API, as the issue sets it
LIMIT_PER_SECOND = 100  # Meta's per-account limit for text (the template's TextRatePerSecond default)
THROTTLING_CODES = frozenset({4, 17, 32, 613, 80002, 80006})


class SlowGraphSandbox(GraphSandbox):
    def __init__(self, *, latency_seconds: float = LATENCY_SECONDS, **options: Any) -> None:
        super().__init__(**options)
        self.latency_seconds = latency_seconds

    def _dispatch(self, method: str, target: str, headers: Message, raw: bytes) -> Reply:
        reply = super()._dispatch(method, target, headers, raw)
        if target.partition("?")[0].endswith("/messages"):
            return dataclasses.replace(reply, delay=reply.delay + self.latency_seconds)
        return reply
