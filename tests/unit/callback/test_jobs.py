"""The callback job's plain reader takes exactly the jobs pydantic's model takes, with the same values, and a
well-formed job never loads pydantic (its 70 ms stay off the callback function's cold start)."""

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from callback.job_model import CallbackJobModel
from callback.jobs import CallbackJob, HookDelivery, JobRefused, _plain, read_job

HOOK = {"webhook_id": "wh_1", "delivery_id": "dl_1"}
VALID: dict[str, Any] = {"url": "https://example.com/cb", "event_id": "evt-1", "body": '{"status":"SENT"}'}


def by_model(body: str) -> CallbackJob | None:
    try:
        model = CallbackJobModel.model_validate_json(body)
    except ValidationError:
        return None
    hook = None if model.hook is None else HookDelivery(model.hook.webhook_id, model.hook.delivery_id)
    return CallbackJob(model.url, model.event_id, model.body, hook)


def agree(body: str) -> None:
    """What the plain reader takes, the model takes with the same values; what the model refuses, it refuses."""
    plain, model = _plain(body), by_model(body)
    if plain is not None:
        assert plain == model, body
    if model is None:
        assert plain is None, body
        with pytest.raises(JobRefused):
            read_job(body)
    else:
        assert read_job(body) == model


@pytest.mark.parametrize(
    "job",
    [
        VALID,
        {**VALID, "hook": HOOK},
        {**VALID, "hook": None},
        {**VALID, "body": ""},
        {**VALID, "event_id": "e" * 128, "hook": {"webhook_id": "w" * 64, "delivery_id": "d" * 200}},
        {**VALID, "body": "é 😀 \u2028"},
    ],
    ids=["text", "hook", "hook-null", "empty-body", "longest", "unicode"],
)
def test_the_jobs_the_gateway_writes_are_read_without_the_model(job: dict[str, Any]) -> None:
    body = json.dumps(job)
    assert _plain(body) is not None
    agree(body)


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[]",
        "null",
        json.dumps({**VALID, "url": ""}),
        json.dumps({**VALID, "url": 5}),
        json.dumps({k: v for k, v in VALID.items() if k != "body"}),
        json.dumps({**VALID, "body": None}),
        json.dumps({**VALID, "event_id": "e" * 129}),
        json.dumps({**VALID, "hook": "wh_1"}),
        json.dumps({**VALID, "hook": {**HOOK, "webhook_id": "w" * 65}}),
        json.dumps({**VALID, "hook": {"webhook_id": "wh_1"}}),
        '{"url": "https://example.com/cb", "event_id": "evt-1", "body": "\\ud800"}',  # a lone surrogate
        '{"url": "https://example.com/cb", "event_id": "evt-1", "body": "x", "body": 1}',  # the last key counts
        json.dumps({**VALID, "extra": [1, 2]}),  # fields the gateway does not write: the model ignores them...
        json.dumps({**VALID, "hook": {**HOOK, "more": True}}),
        json.dumps({**VALID, "extra": "\ud800"}),  # ...or refuses them (a lone surrogate)
        '{"url": "x", "event_id": "e", "body": "", "extra": ' + "[" * 300 + "]" * 300 + "}",
        "[" * 100_000 + "]" * 100_000,  # deeper than json.loads goes: the model refuses it
    ],
)
def test_anything_else_is_the_models_to_read_or_refuse(body: str) -> None:
    assert _plain(body) is None
    agree(body)


def test_a_refused_job_keeps_the_models_wording() -> None:
    with pytest.raises(JobRefused) as refused:
        read_job(json.dumps({**VALID, "event_id": "", "hook": {"webhook_id": "wh_1"}}))
    assert refused.value.detail == (
        "event_id: String should have at least 1 character; hook.delivery_id: Field required"
    )


TEXTS = st.one_of(st.text(max_size=3), st.text(min_size=60, max_size=210), st.integers(), st.none())


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(st.sampled_from(["url", "event_id", "body", "hook", "other"]), TEXTS, max_size=5),
    st.one_of(st.none(), st.dictionaries(st.sampled_from(["webhook_id", "delivery_id", "x"]), TEXTS, max_size=3)),
)
def test_any_job_is_read_as_the_model_reads_it(job: dict[str, Any], hook: dict[str, Any] | None) -> None:
    agree(json.dumps(job if hook is None else {**job, "hook": hook}))


def test_a_well_formed_job_loads_no_pydantic() -> None:
    code = (
        "import json, sys\n"
        "from callback.service import CallbackDelivery\n"
        "from callback.jobs import read_job\n"
        f"job = read_job(json.dumps({VALID!r}))\n"
        "assert job.event_id == 'evt-1', job\n"
        "print('pydantic' in sys.modules)\n"
    )
    environment = {**os.environ, "POWERTOOLS_SERVICE_NAME": "instagram-gateway"}
    loaded = subprocess.run(  # noqa: S603 - our own interpreter and probe, fixed arguments
        [sys.executable, "-c", code], capture_output=True, text=True, env=environment, timeout=120, check=True
    )
    assert loaded.stdout.strip() == "False", loaded.stderr
