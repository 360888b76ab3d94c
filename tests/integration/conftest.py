"""The integration tests' fixtures: the harnesses of local/harnesses, each set up and stopped per test."""

from collections.abc import Iterator
from typing import Any

import pytest

from local.harnesses.accounts import AccountsHarness, accounts_harness
from local.harnesses.outbound import Loop, outbound_loop
from local.harnesses.webhook import Harness, webhook_harness
from tests.integration.table_access import table_access  # noqa: F401 - autouse: each request vs its role


@pytest.fixture
def harness(monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    """The webhook handler against moto."""
    with webhook_harness(monkeypatch) as running:
        yield running


@pytest.fixture
def loop(monkeypatch: pytest.MonkeyPatch) -> Iterator[Loop]:
    """The outbound loop: sender, callback and webhook handlers, the Graph sandbox, a callback inbox."""
    with outbound_loop(monkeypatch) as running:
        yield running


@pytest.fixture
def accounts(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[AccountsHarness]:
    """Onboarding and the refresher on a clock the test moves; the sandbox's options from indirect parameters."""
    options: dict[str, Any] = getattr(request, "param", {})
    with accounts_harness(monkeypatch, **options) as running:
        yield running
