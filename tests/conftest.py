"""Shared fixtures: loopback-only networking and small knowledge bases."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Proxy variables would send loopback traffic to the fakes through a proxy that is not there.
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"
# Trained models are cached per user; tests (and the processes they start) use their own.
os.environ["FAQBOT_CACHE_DIR"] = tempfile.mkdtemp(prefix="faqbot-test-cache-")
# `faqbot run` logs questions; test runs must not fill the user's own question log.
os.environ["FAQBOT_DB"] = str(Path(tempfile.mkdtemp(prefix="faqbot-test-db-")) / "q.sqlite3")

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def tiny_kb_path() -> Path:
    """A three-topic knowledge base in both languages, small enough to reason about."""
    return DATA / "tiny_kb.yaml"
