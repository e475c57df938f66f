"""Helpers for the tests that read back the question log a bot wrote."""

from __future__ import annotations

from pathlib import Path

from core.questionlog import LoggedQuestion, open_for_reading


def read_log(path: Path) -> list[LoggedQuestion]:
    """Every entry of the question log at `path`, read the way the review tools read it."""
    reader = open_for_reading(path)
    try:
        return reader.entries()
    finally:
        reader.close()
