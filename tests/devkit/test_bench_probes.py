"""make bench runs its cold-start probes as code in fresh interpreters, where a stale import shows only when
the bench is run: each probe is run here, in this process, without creating the clients."""

import time

import pytest

from bench import cold_start
from bench.common import CLIENTS, handler_module


@pytest.mark.parametrize("logical_id", sorted(CLIENTS))
def test_each_cold_start_probe_imports_what_it_measures(logical_id: str) -> None:
    probe = cold_start._HANDLER.format(module=handler_module(logical_id), clients=[])
    namespace: dict[str, object] = {"time": time}
    exec(compile(probe, f"cold start probe of {logical_id}", "exec"), namespace)  # noqa: S102 - our own probe
    assert "imported" in namespace and "aws" in namespace
