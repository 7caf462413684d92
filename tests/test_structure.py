"""The layout rules README's "Layout" section states, checked on the source so they hold.

The engine (app/scheduling) knows no domain; HTTP errors are made in routes and app/errors.py
only; benchmarks share devkit with the tests, never the tests themselves; modules and
functions stay small enough to read in one go.
"""

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Accounts (app.auth) are not a domain here: every web layer, the jobs API's too, asks who
# the caller is.
DOMAINS = ("app.devices", "app.pings", "app.polls")
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 50


def modules(*folders: str) -> Iterator[Path]:
    for folder in folders:
        yield from sorted((ROOT / folder).rglob("*.py"))


def imported(path: Path) -> Iterator[tuple[str, list[str]]]:
    """(module, names) for every import in the file, at any depth."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module, [alias.name for alias in node.names]


def long_functions(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = node.end_lineno - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                yield f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length} lines)"


def test_app_modules_are_short() -> None:
    long = [
        f"{path.relative_to(ROOT)} ({lines} lines)"
        for path in modules("app")
        if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    ]
    assert not long


@pytest.mark.parametrize("folder", ["app", "bench", "devkit"])
def test_functions_are_short(folder: str) -> None:
    assert not [line for path in modules(folder) for line in long_functions(path)]


def test_benchmarks_import_nothing_from_the_tests() -> None:
    """What both need (servers, processes, waits, statistics) lives in devkit."""
    borrowed = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in modules("bench", "devkit")
        for module, _ in imported(path)
        if module == "tests" or module.startswith("tests.")
    ]
    assert not borrowed


def test_no_module_imports_a_conftest() -> None:
    importing = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in modules("tests", "bench", "devkit")
        for module, _ in imported(path)
        if module.split(".")[-1] == "conftest"
    ]
    assert not importing


def test_the_engine_imports_no_domain() -> None:
    upward = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in modules("app/scheduling")
        for module, _ in imported(path)
        if module.startswith(DOMAINS)
    ]
    assert not upward


def test_http_errors_are_raised_only_in_routes_and_errors() -> None:
    """Services raise domain errors; flask_smorest's abort belongs to the web layer."""
    allowed = {ROOT / "app" / "errors.py"}
    aborting = [
        str(path.relative_to(ROOT))
        for path in modules("app")
        if path.name != "routes.py" and path not in allowed
        for module, names in imported(path)
        if module == "flask_smorest" and "abort" in names
    ]
    assert not aborting
