"""Helpers for the tests that read back the question log a bot wrote."""

from __future__ import annotations

from pathlib import Path

from core.questionlog.factory import open_store_for_reading
from core.questionlog.interface import LoggedQuestion


def read_log(db: Path | str) -> list[LoggedQuestion]:
    """Every entry of the question log at `db` (a path or a PostgreSQL URL), read the way the
    review tools read it."""
    reader = open_store_for_reading(db)
    try:
        return reader.entries()
    finally:
        reader.close()
