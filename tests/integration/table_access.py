"""Every DynamoDB request the real handlers make during the integration tests, judged against the role
template.yaml gives their function.

The emulator enforces no IAM, so a key family or an action missing from a role would only show in AWS,
as AccessDenied. This autouse fixture records each DynamoDB call (botocore's BaseClient._make_api_call,
which every client goes through, whichever thread or session made it), attributes it to the function
whose code made it (the innermost frame under a function's CodeUri; one function's code never calls
another's), and fails the test when that function's LeadingKeys-scoped statements would not allow it
(tests/table_access.py judges as IAM does). Calls from the tests and harnesses themselves (provisioning,
register_account, reading items back) have no function frame and are not judged.
"""

import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType
from typing import Any

import pytest
from botocore.client import BaseClient

from igdm.store.keys import PARTITION_KEY
from local.aws.template import ROOT, load
from tests.table_access import Authorisation, authorisations, authorised, table_grants

_TEMPLATE = load()
GRANTS = table_grants(_TEMPLATE, strict=False)  # tests/unit/project/test_table_access.py holds the scoping
CODE_DIRECTORIES: dict[str, str] = {
    f"{(ROOT / resource['Properties']['CodeUri']).resolve()}/": function
    for function, resource in _TEMPLATE["Resources"].items()
    if resource["Type"] == "AWS::Serverless::Function"
}


@dataclass(frozen=True)
class Access:
    function: str
    operation: str
    authorisation: Authorisation

    def describe(self) -> str:
        parts = "; ".join(f"{p.action} on {', '.join(sorted(set(p.keys))) or 'no key'}" for p in self.authorisation)
        return f"{self.function} {self.operation}: {parts}"


class TableAccessLog:
    def __init__(self) -> None:
        self.accesses: list[Access] = []
        self.problems: list[str] = []
        self._lock = threading.Lock()

    def record(self, operation: str, params: dict[str, Any]) -> None:
        function = calling_function()
        if function is None:
            return
        try:
            found = [Access(function, operation, a) for a in authorisations(operation, params, PARTITION_KEY)]
        except Exception as exc:  # never break the function under test: report it after the test
            with self._lock:
                self.problems.append(f"{function} {operation}: cannot tell which keys it touches ({exc!r})")
            return
        with self._lock:
            self.accesses.extend(found)

    def refused(self) -> list[Access]:
        return [a for a in self.accesses if not authorised(GRANTS[a.function], a.authorisation)]

    def actions(self, function: str) -> set[str]:
        return {p.action for a in self.accesses if a.function == function for p in a.authorisation}

    def clear(self) -> None:
        with self._lock:
            self.accesses.clear()
            self.problems.clear()


def calling_function() -> str | None:
    """The function whose code made this call: the innermost frame under one of the CodeUri directories
    (innermost, because a test may run one handler inside another, e.g. a webhook during a send)."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        for directory, function in CODE_DIRECTORIES.items():
            if filename.startswith(directory):
                return function
        frame = frame.f_back
    return None


@pytest.fixture(autouse=True)
def table_access(monkeypatch: pytest.MonkeyPatch) -> Iterator[TableAccessLog]:
    log = TableAccessLog()
    original = BaseClient._make_api_call  # type: ignore[attr-defined]

    def recording(client: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
        if client.meta.service_model.service_name == "dynamodb":
            log.record(operation_name, api_params)
        return original(client, operation_name, api_params)

    monkeypatch.setattr(BaseClient, "_make_api_call", recording)
    yield log
    refused = sorted({a.describe() for a in log.refused()})
    problems = sorted(set(log.problems))
    assert not refused and not problems, (
        "DynamoDB requests template.yaml does not grant (AccessDenied in AWS; the emulator allows them):\n  "
        + "\n  ".join(refused + problems)
    )
