"""Fixtures the Graph sandbox's test modules share. Each module defines its own ``make_sandbox`` (its
accounts and logins); ``sandbox`` here starts the one a test asks for through it."""

from collections.abc import Callable, Iterator

import pytest
import requests

from local.meta.graph_sandbox import GraphSandbox


@pytest.fixture
def sandbox(make_sandbox: Callable[..., GraphSandbox]) -> GraphSandbox:
    return make_sandbox()


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.trust_env = False  # no proxy from the environment between the test and 127.0.0.1
        yield session
