"""Shared fixtures: loopback-only networking and small knowledge bases."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

# Proxy variables would send loopback traffic to the fakes through a proxy that is not there.
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"
# Trained models are cached per user; tests (and the processes they start) use their own.
_CACHE_DIR = tempfile.mkdtemp(prefix="faqbot-test-cache-")
os.environ["FAQBOT_CACHE_DIR"] = _CACHE_DIR
# `faqbot run` logs questions; test runs must not fill the user's own question log.
_DB_DIR = tempfile.mkdtemp(prefix="faqbot-test-db-")
os.environ["FAQBOT_DB"] = str(Path(_DB_DIR) / "q.sqlite3")
for _directory in (_CACHE_DIR, _DB_DIR):
    atexit.register(shutil.rmtree, _directory, ignore_errors=True)

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def tiny_kb_path() -> Path:
    """A three-topic knowledge base in both languages, small enough to reason about."""
    return DATA / "tiny_kb.yaml"
