"""Who may import whom, read from every import statement (a lazy import inside a function included):
the product imports nothing of the development kit, the tools or the tests, and nothing imports a test."""

import ast
from pathlib import Path

import pytest

from local.aws.template import ROOT

PRODUCT = ("functions", "layers")
KIT = ("local", "bench", "chaos", "tools")


def imported_packages(path: Path) -> set[str]:
    """The top-level package of every module the file imports (relative imports stay in their package)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "import_module" and node.args:
            name = node.args[0]
            if isinstance(name, ast.Constant) and isinstance(name.value, str):
                found.add(name.value.split(".")[0])
    return found


def sources(*tops: str) -> list[Path]:
    return sorted(p for top in tops for p in (ROOT / top).rglob("*.py") if "__pycache__" not in p.parts)


@pytest.mark.parametrize("path", sources(*PRODUCT), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_product_imports_nothing_of_the_kit_or_the_tests(path: Path) -> None:
    assert imported_packages(path) & {*KIT, "tests"} == set()


@pytest.mark.parametrize("path", sources(*KIT), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_outside_the_tests_imports_a_test(path: Path) -> None:
    assert "tests" not in imported_packages(path)


def test_the_checks_see_imports_of_every_form(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import tests.fakes\nfrom local.aws import template\n"
        "def later():\n    import chaos\n    importlib.import_module('tools.accounts')\n"
    )
    assert imported_packages(probe) >= {"tests", "local", "chaos", "tools"}
