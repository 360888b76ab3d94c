"""schemas/openapi.v1.json (local.openapi): a valid OpenAPI 3.1 document naming exactly the routes the template
gives the API function (its freshness is test_contracts.py's); tests/integration/test_http_api.py checks real
answers against it with `answers`."""

import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator, ValidationError
from openapi_spec_validator import validate

from local.aws.template import ROOT, Stack, load

DOCUMENT = json.loads((ROOT / "schemas" / "openapi.v1.json").read_text())


def answers(method: str, path: str, status: int, body: Any) -> None:
    """Raises unless ``body`` is what the document says ``method path`` answers with ``status``."""
    schema = DOCUMENT["paths"][path][method.lower()]["responses"][str(status)]["content"]["application/json"]["schema"]
    Draft202012Validator({**DOCUMENT, **schema}).validate(body)


def test_the_document_is_valid_openapi() -> None:
    validate(DOCUMENT)


def test_it_names_exactly_the_api_functions_routes() -> None:
    routes = {f"{r.method} {r.path}" for r in Stack("t", load()).routes() if r.function_id == "ApiFunction"}
    documented = {f"{method.upper()} {path}" for path, item in DOCUMENT["paths"].items() for method in item}
    assert documented == routes


def test_an_answer_that_is_not_the_documented_shape_is_refused() -> None:
    answers("POST", "/v1/messages", 202, {"idempotency_key": "k", "status": "QUEUED"})
    for wrong in ({"idempotency_key": "k"}, {"idempotency_key": "k", "status": "SENT"}):
        with pytest.raises(ValidationError, match=r"status|SENT"):
            answers("POST", "/v1/messages", 202, wrong)
