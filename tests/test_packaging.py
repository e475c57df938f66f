"""What ships: the wheel holds the product (core, bots, intents) and no benchmark or test code,
and no code outside tests/ imports tests/ or puts it on the import path."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parent.parent
OUTSIDE_TESTS = ("core", "bots", "intents", "benchmarks")
# Top-level names under which the test suite's modules are imported (tests/ is on the path).
# What code would import to reach tests/: the package, or its parts by their own names if
# tests/ were put on sys.path (tests/core/ and tests/bots/ share names with the real packages,
# which only `tests.` reaches).
TEST_MODULES = {"tests"} | {path.stem for path in (REPOSITORY / "tests").iterdir()
                            if path.suffix == ".py" or (path / "__init__.py").is_file()
                            } - set(OUTSIDE_TESTS)
SOURCES = ("pyproject.toml", "README.md", *OUTSIDE_TESTS, "tests")


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The files setuptools builds for the wheel (`build_py`: the packages and their data, all a
    pure-Python wheel holds besides its metadata), from a copy of the checkout, offline."""
    source, built = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("built")
    for name in SOURCES:
        origin = REPOSITORY / name
        if origin.is_dir():
            shutil.copytree(origin, source / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy(origin, source / name)
    subprocess.run([sys.executable, "-c", "from setuptools import setup; setup()", "--quiet",
                    "build_py", "--build-lib", str(built)],
                   cwd=source, check=True, capture_output=True, timeout=300)
    return sorted(path.relative_to(built).as_posix() for path in built.rglob("*")
                  if path.is_file())


def test_wheel_holds_the_product(wheel_names: list[str]) -> None:
    # Every module of every package, sub-packages included (a package left out of pyproject's
    # list would install a faqbot that fails on import).
    product = sorted(path.relative_to(REPOSITORY).as_posix() for top in ("core", "bots", "intents")
                     for path in (REPOSITORY / top).rglob("*.py"))
    assert "core/classifier/model.py" in product and "bots/telegram/app.py" in product
    assert not set(product) - set(wheel_names)
    assert any(name.startswith("intents/") and name.endswith(".yaml") for name in wheel_names)


def test_wheel_holds_no_benchmark_or_test_code(wheel_names: list[str]) -> None:
    top_levels = {name.split("/")[0] for name in wheel_names if "/" in name}
    assert not top_levels & {"benchmarks", "tests", "fakes"}
    assert not [name for name in wheel_names if "bench" in name.rsplit("/", 1)[-1]]


def _test_imports(path: Path) -> list[str]:
    """The imports of test modules in `path`, and every change of sys.path."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import | ast.ImportFrom):
            found += [f"{path}:{node.lineno}: import {name}" for name in
                      sorted(_imported_names(node)) if name.split(".")[0] in TEST_MODULES]
        elif (isinstance(node, ast.Attribute) and node.attr == "path"
                and isinstance(node.value, ast.Name) and node.value.id == "sys"):
            found.append(f"{path}:{node.lineno}: sys.path")
    return found


def _imported_names(node: ast.Import | ast.ImportFrom) -> set[str]:
    """The modules an import statement names: `from a import b` names a and a.b (b may be a
    module); relative imports name nothing outside their package."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    if node.level or not node.module:
        return set()
    return {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}


def test_nothing_outside_tests_imports_tests() -> None:
    offending = [line for folder in OUTSIDE_TESTS
                 for path in sorted((REPOSITORY / folder).rglob("*.py"))
                 for line in _test_imports(path)]
    assert offending == []


def test_the_scan_finds_both_ways_of_importing_tests(tmp_path: Path) -> None:
    module = tmp_path / "module.py"
    module.write_text("import sys\nfrom fakes.telegram_api import FakeTelegramAPI\n"
                      "sys.path.insert(0, 'tests')\n", encoding="utf-8")
    assert [line.split(": ", 1)[1] for line in _test_imports(module)] == [
        "import fakes.telegram_api", "import fakes.telegram_api.FakeTelegramAPI", "sys.path"]


def _imported_modules(path: Path, candidates: set[str]) -> set[str]:
    """Which of `candidates` the module at `path` imports, at its top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import | ast.ImportFrom):
            found |= _imported_names(node)
    return found & candidates


def test_benchmark_modules_import_each_other_one_way() -> None:
    paths = {f"benchmarks.{path.stem}": path
             for path in (REPOSITORY / "benchmarks").glob("*.py") if path.stem != "__init__"}
    imports = {name: _imported_modules(path, set(paths) - {name}) for name, path in paths.items()}
    for name in paths:  # follow the imports from each module: it must never come back to it
        reached, frontier = set(), set(imports[name])
        while frontier:
            reached |= frontier
            frontier = set().union(*(imports[module] for module in frontier)) - reached
        assert name not in reached, f"{name} imports itself through {sorted(reached)}"


# A module that does several jobs shows first in its length (the redesign of issue 14).
MAX_MODULE_LINES = 400


def test_no_module_is_over_the_line_limit() -> None:
    lengths = {str(path.relative_to(REPOSITORY)): len(path.read_text(encoding="utf-8").splitlines())
               for folder in OUTSIDE_TESTS for path in (REPOSITORY / folder).rglob("*.py")}
    assert lengths  # the scan found the modules
    assert {path: lines for path, lines in lengths.items() if lines > MAX_MODULE_LINES} == {}
