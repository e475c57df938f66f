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
TEST_MODULES = {"tests"} | {path.stem for path in (REPOSITORY / "tests").iterdir()
                            if path.suffix == ".py" or (path / "__init__.py").is_file()}
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
    for module in ("core/bot.py", "bots/cli.py", "intents/__init__.py"):
        assert module in wheel_names
    assert any(name.startswith("intents/") and name.endswith(".yaml") for name in wheel_names)


def test_wheel_holds_no_benchmark_or_test_code(wheel_names: list[str]) -> None:
    top_levels = {name.split("/")[0] for name in wheel_names if "/" in name}
    assert not top_levels & {"benchmarks", "tests", "fakes"}
    assert not [name for name in wheel_names if "bench" in name.rsplit("/", 1)[-1]]


def _test_imports(path: Path) -> list[str]:
    """The imports of test modules in `path`, and every change of sys.path."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            names = []
        found += [f"{path}:{node.lineno}: import {name}" for name in names
                  if name.split(".")[0] in TEST_MODULES]
        if (isinstance(node, ast.Attribute) and node.attr == "path"
                and isinstance(node.value, ast.Name) and node.value.id == "sys"):
            found.append(f"{path}:{node.lineno}: sys.path")
    return found


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
        "import fakes.telegram_api", "sys.path"]
