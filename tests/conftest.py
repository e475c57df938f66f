"""Shared fixtures: loopback-only networking, small knowledge bases and the bots trained on them,
the fake Bot API, a real PostgreSQL server."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import yaml

from core import FAQBot, load_knowledge_base
from tests.auxil.engine import pinned_bot
from tests.auxil.postgres import PostgresServer
from tests.auxil.telegram import TOKEN
from tests.fakes.telegram_api import FakeTelegramAPI

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


@pytest.fixture(scope="session")
def tiny_bot(tiny_kb_path: Path) -> FAQBot:
    """A bot trained on the tiny knowledge base, tuned as `faqbot` tunes any knowledge base."""
    return FAQBot.from_path(tiny_kb_path)


@pytest.fixture(scope="session")
def clarifying_bot(tiny_kb_path: Path) -> FAQBot:
    """A bot on the tiny knowledge base that asks for clarification on `AMBIGUOUS`
    (tests/auxil/engine.py), whatever the engine's tuning."""
    return pinned_bot(load_knowledge_base(tiny_kb_path))


@pytest.fixture(scope="session")
def default_bot() -> FAQBot:
    """The shipped knowledge base, trained once for the run."""
    return FAQBot.default()


@pytest.fixture
def translation_elsewhere_kb(tiny_kb_path: Path, tmp_path: Path) -> Path:
    """The tiny knowledge base with a French delivery question, and its English translation
    filed under address: the mistake `faqbot validate` warns about across languages."""
    kb = yaml.safe_load(tiny_kb_path.read_text(encoding="utf-8"))
    kb["intents"][2]["examples"]["fr"].append("combien coûte la livraison en Belgique")
    kb["intents"][1]["examples"]["en"].append("how much does delivery to Belgium cost")
    path = tmp_path / "translation_elsewhere.yaml"
    path.write_text(yaml.safe_dump(kb, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture
def telegram_token() -> str:
    """The token the fake Bot API expects. Overridden where a suite has a token of its own
    (the reliability suite's log scan looks for its token, so it must be the one in use)."""
    return TOKEN


@pytest.fixture
async def api(telegram_token: str) -> AsyncIterator[FakeTelegramAPI]:
    """The fake Telegram Bot API on 127.0.0.1, for one test."""
    fake = FakeTelegramAPI(telegram_token)
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the whole run. A server that cannot start fails the tests
    that need it (never a skip): the README's test command installs everything it needs."""
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def postgres_url(postgres: PostgresServer) -> str:
    """The URL of a new, empty database on the test server, for one test."""
    return postgres.new_database()
