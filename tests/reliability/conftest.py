"""The reliability suite's shared fixtures, its scan of every log line, and its figures.

Every log record of the suite, at DEBUG and from every library, goes through one `LogScanner`
(the standard error of the processes the suite starts is fed to it too); the suite fails if a
single line holds a token or the webhook secret, or if a message carries a raw control
character. The figures of every test are printed at the end of the run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from tests.auxil.reliability import REPORTED, SECRETS, TELEGRAM_TOKEN, LogScanner

_SCANNER = LogScanner(SECRETS)


@pytest.fixture(scope="package", autouse=True)
def log_scanner() -> Iterator[LogScanner]:
    """The suite's log scanner, on the root logger at DEBUG while the suite runs."""
    root = logging.getLogger()
    previous = root.level
    root.addHandler(_SCANNER)
    root.setLevel(logging.DEBUG)
    try:
        yield _SCANNER
    finally:
        root.removeHandler(_SCANNER)
        root.setLevel(previous)
    assert not _SCANNER.leaks, f"secrets in {len(_SCANNER.leaks)} log lines: {_SCANNER.leaks[:3]}"
    assert not _SCANNER.unescaped, f"raw control characters in logs: {_SCANNER.unescaped[:3]}"


@pytest.fixture
def info_level_logs() -> Iterator[None]:
    """The root logger at INFO for one test (the scanner still reads every INFO line).

    For the load tests only: at DEBUG, python-telegram-bot and discord.py describe every update
    and request, which more than doubles the time of ten thousand messages. The fault tests run
    the same code paths at DEBUG, so every kind of line is scanned.
    """
    root = logging.getLogger()
    previous = root.level
    root.setLevel(logging.INFO)
    yield
    root.setLevel(previous)


@pytest.fixture
def telegram_token() -> str:
    """The suite's own token for the fake Bot API (tests/conftest.py's `api`): one of the
    SECRETS the log scan looks for."""
    return TELEGRAM_TOKEN


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print every reliability test's figures, and the log scan's."""
    if not REPORTED and not _SCANNER.lines:
        return
    terminalreporter.section("faqbot reliability figures")
    for figures in REPORTED:
        terminalreporter.write_line(figures.line())
    terminalreporter.write_line(
        f"log scan: {_SCANNER.lines} log lines read, {len(_SCANNER.leaks)} with a secret, "
        f"{len(_SCANNER.unescaped)} with a raw control character")
