"""The README's quickstart, run as written from a second terminal against a started local stack, so that its
commands cannot drift from what the stack does. Only the ports change: the test's stack runs on free ports
(a developer's own `make run` may hold 3000 and 5000), so 127.0.0.1:3000, :5000, :8081 and :8082 are rewritten
to them; every other character of each block runs as printed."""

import re
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from local.aws.template import ROOT
from tests.e2e.test_local_stack import RunningStack, second_terminal, started_stack

pytestmark = pytest.mark.e2e

# Commands the quickstart shows that are not run here: the install and the stack itself (the fixture's), the suite.
NOT_RUN = {"make install", "make run", "make test"}
# What each block must print, besides ending with exit status 0: the answers the README promises (a tuple: one of).
PROMISED: list[list[str | tuple[str, ...]]] = [
    ["1158201444", '{"received": 1, "published": 1, "duplicates": 0, "stale": 0}', '"text":"Hi, is this in stock?"'],
    ["said 'Hi! Is the blue hoodie in stock?': 200", "DELIVERED", "queued choice message"],
    ['"MessageId"'],
    ['"status": "QUEUED"}', ('"history": [{"status": "PENDING"', "it may not be processed yet")],
    ["/oauth/start?invite=", "17841400000000001", "accounts"],
    ["confirmation", "deauthorized"],
]


def quickstart_blocks() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Quickstart") : readme.index("## Deploying to AWS")]
    blocks = re.findall(r"^```sh\n(.*?)^```", section, re.M | re.S)
    return [b for b in blocks if not {line.strip() for line in b.splitlines() if line.strip()} <= NOT_RUN]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """A stack with the README's own secrets: local-app-secret, local-verify-token (the defaults)."""
    yield from started_stack(tmp_path_factory, {})


def on_the_tests_ports(block: str, stack: RunningStack) -> str:
    env: dict[str, Any] = stack.env
    ports = {
        "127.0.0.1:3000": f"127.0.0.1:{env['LOCAL_API_PORT']}",
        "127.0.0.1:5000": f"127.0.0.1:{env['LOCAL_AWS_PORT']}",
        "127.0.0.1:8081": f"127.0.0.1:{env['LOCAL_GRAPH_PORT']}",
        "127.0.0.1:8082": f"127.0.0.1:{env['LOCAL_CALLBACK_PORT']}",
    }
    for default, used in ports.items():
        block = block.replace(default, used)
    return block


def test_the_quickstart_shows_the_blocks_this_test_runs() -> None:
    assert len(quickstart_blocks()) == len(PROMISED), "a block was added or removed: say what it must print"


def test_the_readmes_quickstart_runs_as_written_from_a_second_terminal(stack: RunningStack) -> None:
    for block, promised in zip(quickstart_blocks(), PROMISED, strict=True):
        done = subprocess.run(  # noqa: S603 - bash on the README's own text, against loopback only
            ["/bin/bash", "-e", "-o", "pipefail", "-c", on_the_tests_ports(block, stack)],
            cwd=ROOT,
            env=second_terminal(stack),
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        shown = f"\n--- block:\n{block}\n--- stdout:\n{done.stdout}\n--- stderr:\n{done.stderr}"
        assert done.returncode == 0, shown
        for answer in promised:
            one_of = answer if isinstance(answer, tuple) else (answer,)
            assert any(a in done.stdout for a in one_of), f"{answer!r} not printed" + shown
