"""The shared layer holds what the deployed functions import, and nothing else; the functions import
nothing from the development kit, the tools or the tests."""

import ast
import json
import subprocess
import sys
from pathlib import Path

from local.aws.template import ROOT, Stack, load

LAYER = ROOT / "layers" / "shared"
PROBE = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
print(json.dumps(sorted(name for name in sys.modules)))
"""


def loaded_by(function_id: str) -> set[str]:
    """Every module a cold start of the function loads: its handler imported as Lambda does, with its code
    and the layer on the path (and nothing of the repository's root)."""
    stack = Stack("layer-test", load())
    code, handler = stack.function_code(function_id)
    module = handler.rpartition(".")[0]
    env = {"PYTHONPATH": f"{code}:{LAYER}", "POWERTOOLS_SERVICE_NAME": "t", "POWERTOOLS_METRICS_NAMESPACE": "t"}
    answer = subprocess.run(  # noqa: S603 - our own interpreter and probe, fixed arguments
        [sys.executable, "-c", PROBE, module],
        cwd="/",
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return set(json.loads(answer.stdout))


def imported_when_needed() -> set[str]:
    """The layer's modules that the functions' and the layer's code import inside a function, when first needed
    (a vendor's dialect, the outbound contract on the webhook's rare path): a cold start does not load them."""
    found: set[str] = set()
    for path in [*(ROOT / "functions").rglob("*.py"), *(LAYER / "igdm").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.ImportFrom) and inner.module and inner.module.startswith("igdm"):
                        found.add(inner.module)
                        found.update(f"{inner.module}.{alias.name}" for alias in inner.names)
    return found


def test_every_module_of_the_layer_is_imported_by_a_deployed_function() -> None:
    functions = Stack("layer-test", load()).resources("AWS::Serverless::Function")
    loaded = set().union(*(loaded_by(f) for f in functions)) | imported_when_needed()
    shipped = {
        ".".join(path.relative_to(LAYER).with_suffix("").parts).removesuffix(".__init__")
        for path in (LAYER / "igdm").rglob("*.py")
    }
    assert shipped - loaded == set(), "in the layer, imported by no function: move it to tools/ or local/"
    assert not {m for m in loaded if m.split(".")[0] in ("local", "tools", "tests", "bench", "chaos")}


def test_the_layer_ships_no_tests_or_tools() -> None:
    assert not [p for p in (LAYER / "igdm").rglob("*.py") if Path(p).name.startswith("test_")]
