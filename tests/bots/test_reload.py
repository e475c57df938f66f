"""Live reload of the knowledge base: what the watcher notices, what it swaps, what it refuses."""

from __future__ import annotations

import asyncio
import gc
import logging
import weakref
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from bots.reload import KnowledgeBaseWatcher, file_signature
from bots.service import Asked, Asker, FAQService
from core import FAQBot, KnowledgeBaseError

POLL = 0.02  # seconds between two looks at the file
SETTLE = 20 * POLL  # long enough for any change to be acted on


class Loads:
    """The watcher's `load`: hands out the next bot, or raises the next error, and counts."""

    def __init__(self, *results: FAQBot | Exception) -> None:
        self.results = list(results)
        self.calls = 0

    def __call__(self, path: Path) -> FAQBot:
        self.calls += 1
        result = self.results.pop(0)
        if isinstance(result, Exception):
            raise result
        return result


class Outcomes:
    """The watcher's `on_outcome`, awaitable."""

    def __init__(self) -> None:
        self.heard: list[str] = []
        self._changed = asyncio.Event()

    def __call__(self, outcome: str) -> None:
        self.heard.append(outcome)
        self._changed.set()

    async def wait_for(self, count: int) -> list[str]:
        async with asyncio.timeout(30):
            while len(self.heard) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.heard


@pytest.fixture
def kb_file(tmp_path: Path, tiny_kb_path: Path) -> Path:
    path = tmp_path / "faq.yaml"
    path.write_bytes(tiny_kb_path.read_bytes())
    return path


@pytest.fixture
async def watching(kb_file: Path,
                   tiny_bot: FAQBot) -> AsyncIterator[Callable[..., KnowledgeBaseWatcher]]:
    """Start a watcher of `kb_file` serving the tiny bot; stopped after the test."""
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []

    def start(load: Loads, outcomes: Outcomes) -> KnowledgeBaseWatcher:
        watcher = KnowledgeBaseWatcher(kb_file, FAQService(tiny_bot), interval=POLL, load=load,
                                       on_outcome=outcomes)
        tasks.append(asyncio.create_task(watcher.run(stop)))
        return watcher

    yield start
    stop.set()
    async with asyncio.timeout(10):
        await asyncio.gather(*tasks)  # `run` returns once `stop` is set


def append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as file:
        file.write(text)


def test_file_signature_follows_writes_and_replacements(tmp_path: Path) -> None:
    path = tmp_path / "faq.yaml"
    assert file_signature(path) is None
    path.write_text("a: 1\n", encoding="utf-8")
    written = file_signature(path)
    append(path, "# more\n")
    appended = file_signature(path)
    replacement = tmp_path / "new.yaml"
    replacement.write_text("a: 1\n", encoding="utf-8")
    replacement.replace(path)  # an editor's atomic save: a new inode
    replaced = file_signature(path)
    assert None not in (written, appended, replaced)
    assert len({written, appended, replaced}) == 3
    assert file_signature(path) == replaced


async def test_reload_swaps_the_served_bot(kb_file: Path, tiny_bot: FAQBot,
                                           clarifying_bot: FAQBot) -> None:
    service, outcomes = FAQService(tiny_bot), Outcomes()
    watcher = KnowledgeBaseWatcher(kb_file, service, load=Loads(clarifying_bot),
                                   on_outcome=outcomes)
    assert await watcher.reload() is True
    assert service.bot is clarifying_bot
    assert outcomes.heard == ["reloaded"]


async def test_a_replaced_bot_is_freed_without_the_garbage_collector(kb_file: Path) -> None:
    # `faqbot run` freezes what start-up loaded, the first bot with it (bots/launch.py): the
    # collector no longer sees that bot, so a reference cycle through it would keep its model
    # for good once a reload replaced it.
    served = FAQBot.from_path(kb_file)
    service = FAQService(served)
    service.answer("horaires")
    service.answer_many_with_feedback([Asked("horaires ?", None, Asker("telegram", 1, 2))])
    gone = weakref.ref(served)
    del served
    gc.disable()
    try:
        watcher = KnowledgeBaseWatcher(kb_file, service, on_outcome=Outcomes())
        assert await watcher.reload() is True
        assert gone() is None
    finally:
        gc.enable()


@pytest.mark.parametrize("error", [KnowledgeBaseError("intent 'x': no answer"),
                                   MemoryError("the trainer ran out")])
async def test_a_refused_reload_keeps_the_bot_serving_with_one_error_line(
        kb_file: Path, tiny_bot: FAQBot, error: Exception,
        caplog: pytest.LogCaptureFixture) -> None:
    service, outcomes = FAQService(tiny_bot), Outcomes()
    watcher = KnowledgeBaseWatcher(kb_file, service, load=Loads(error), on_outcome=outcomes)
    with caplog.at_level(logging.ERROR, logger="bots.reload"):
        assert await watcher.reload() is False
    assert service.bot is tiny_bot
    assert outcomes.heard == ["refused"]
    [line] = [record.getMessage() for record in caplog.records]
    assert f"still serving fingerprint {tiny_bot.kb.fingerprint()}" in line
    assert str(error) in line


async def test_a_change_is_reloaded_once(watching: Callable[..., KnowledgeBaseWatcher],
                                         kb_file: Path, clarifying_bot: FAQBot) -> None:
    load, outcomes = Loads(clarifying_bot), Outcomes()
    watcher = watching(load, outcomes)
    await asyncio.sleep(SETTLE)
    assert load.calls == 0  # the file as it was at the start is the one being served
    append(kb_file, "# edited\n")
    assert await outcomes.wait_for(1) == ["reloaded"]
    await asyncio.sleep(SETTLE)
    assert load.calls == 1
    assert watcher.service.bot is clarifying_bot


async def test_a_refused_version_is_not_retried_until_it_changes(
        watching: Callable[..., KnowledgeBaseWatcher], kb_file: Path,
        clarifying_bot: FAQBot) -> None:
    load = Loads(KnowledgeBaseError("bad"), clarifying_bot)
    outcomes = Outcomes()
    watching(load, outcomes)
    append(kb_file, "# broken\n")
    assert await outcomes.wait_for(1) == ["refused"]
    await asyncio.sleep(SETTLE)
    assert load.calls == 1
    append(kb_file, "# fixed\n")
    assert await outcomes.wait_for(2) == ["refused", "reloaded"]


async def test_a_request_reloads_an_unchanged_file(
        watching: Callable[..., KnowledgeBaseWatcher], clarifying_bot: FAQBot,
        tiny_bot: FAQBot) -> None:
    load, outcomes = Loads(clarifying_bot, tiny_bot), Outcomes()
    watcher = watching(load, outcomes)
    watcher.request_reload()
    assert await outcomes.wait_for(1) == ["reloaded"]
    assert watcher.service.bot is clarifying_bot
    watcher.request_reload()  # SIGHUP again: the same file, reloaded again
    assert await outcomes.wait_for(2) == ["reloaded", "reloaded"]
    assert watcher.service.bot is tiny_bot
