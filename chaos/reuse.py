"""What chaos reuses from the test suite (imported, not copied): the integration harnesses and the webhook
parsing property's strategies.

They are loaded by name: mypy --strict follows static imports into the modules they name, and tests/ is
not written for --strict (untyped Powertools calls, Any returns). Here they are typed as Any, or by the
annotation below; tests/chaos exercises every one of them.
"""

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeAlias

from hypothesis import strategies as st

_conftest = importlib.import_module("tests.integration.conftest")
_outbound_loop = importlib.import_module("tests.integration.outbound_loop")
_accounts_harness = importlib.import_module("tests.integration.accounts_harness")
_parsing_property = importlib.import_module("tests.unit.webhook.test_parsing_never_crashes")

if TYPE_CHECKING:  # not `type X = Any`: mypy does not let such an alias be called, and these are constructed
    Harness: TypeAlias = Any  # noqa: UP040 - tests/integration/conftest.py: the webhook handler against moto
    Loop: TypeAlias = Any  # noqa: UP040 - tests/integration/outbound_loop.py: the outbound loop in one process
    AccountsHarness: TypeAlias = Any  # noqa: UP040 - tests/integration/accounts_harness.py: tokens, the sandbox
    Clock: TypeAlias = Any  # noqa: UP040
else:
    Harness = _conftest.Harness
    Loop = _outbound_loop.Loop
    AccountsHarness = _accounts_harness.AccountsHarness
    Clock = _accounts_harness.Clock

APP_SECRET: str = _conftest.APP_SECRET
INSTAGRAM_APP_SECRET: str = _conftest.INSTAGRAM_APP_SECRET
VERIFY_TOKEN: str = _conftest.VERIFY_TOKEN
reset_webhook_state: Callable[[], None] = _conftest.reset_function_state

OUTBOUND_APP_SECRET: str = _outbound_loop.APP_SECRET
SIGNING_SECRET: str = _outbound_loop.SIGNING_SECRET
ACCOUNT: str = _outbound_loop.ACCOUNT
TOKEN: str = _outbound_loop.TOKEN
reset_outbound_state: Callable[[], None] = _outbound_loop.reset_function_state

LOGIN_APP_ID: str = _accounts_harness.APP_ID
LOGIN_APP_SECRET: str = _accounts_harness.INSTAGRAM_APP_SECRET
reset_accounts_state: Callable[[], None] = _accounts_harness.reset_function_state

any_text: st.SearchStrategy[str] = _parsing_property.any_text
json_values: st.SearchStrategy[Any] = _parsing_property.json_values
meta_like: st.SearchStrategy[Any] = _parsing_property.meta_like
samples: st.SearchStrategy[dict[str, Any]] = _parsing_property.samples
items_in: Callable[[Any], int] = _parsing_property.items_in
mutate_sample: Callable[[dict[str, Any], str, Any], dict[str, Any]] = _parsing_property.mutate_sample
