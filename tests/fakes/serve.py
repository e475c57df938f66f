"""A fake platform (or the tests' PostgreSQL server) in a process of its own, driven by JSON lines.

    PYTHONPATH=REPO python -m tests.fakes.serve telegram|discord|postgres

For code outside the test suite (the serving benchmark) that needs a fake but must not import
tests/. The first line written is `{"env": {...}}`: the variables that point `faqbot run` at the
fake (token included). Then, for a platform:
- each line read, `{"text": "...", "user": N}`, is a message from the N-th user (a private
  Telegram message, or a Discord /ask in a guild), noted as `{"pushed": KEY, "at": SECONDS}`;
- `{"ready": true}` once the bot has started and can answer;
- `{"replied": KEY, "at": SECONDS}` for each reply the bot sent.
KEY is the Telegram chat id or the Discord interaction's callback path (a reply and its message
may come in either order); SECONDS come from one clock of this process, so only differences
mean something. End of input stops the fake.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from tests.auxil import discord as discord_helpers
from tests.auxil import telegram as telegram_helpers
from tests.fakes.discord_api import APPLICATION_COMMAND, FakeDiscord
from tests.fakes.telegram_api import FakeTelegramAPI

DISCORD_GUILD = 1001 << 22
WAIT_STEP = 3600.0  # seconds a watcher waits for the fake's next call before looking again


def emit(line: dict[str, Any]) -> None:
    """Write one JSON line at once: the driver reads them as they come."""
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


async def read_lines() -> AsyncIterator[dict[str, Any]]:
    """The JSON lines of standard input, until its end."""
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        yield json.loads(line)


async def watch(fake: Any, ready: Callable[[], bool],
                replies: Callable[[int], list[tuple[Any, float]]]) -> None:
    """Write `ready` once, then every reply among the fake's new calls."""
    await fake.wait_until(ready, timeout=WAIT_STEP)
    emit({"ready": True})
    seen = 0
    while True:
        with contextlib.suppress(TimeoutError):
            await fake.wait_until(lambda seen=seen: len(fake.calls) > seen, timeout=WAIT_STEP)
        for key, at in replies(seen):
            emit({"replied": key, "at": at})
        seen = len(fake.calls)


@asynccontextmanager
async def telegram() -> AsyncIterator[Callable[[str, int], Awaitable[None]]]:
    """The fake Bot API; private messages in, `sendMessage` calls out."""
    api = FakeTelegramAPI(telegram_helpers.TOKEN)
    await api.start()
    emit({"env": {"TELEGRAM_BOT_TOKEN": telegram_helpers.TOKEN,
                  "FAQBOT_TELEGRAM_API_URL": api.base_url}})

    def ready() -> bool:  # the default command menu is the last step of the bot's start-up
        return any(call.method == "setMyCommands" and "language_code" not in call.params
                   for call in api.calls)

    def replies(seen: int) -> list[tuple[Any, float]]:
        return [(call.params["chat_id"], call.at) for call in api.calls[seen:]
                if call.method == "sendMessage" and call.status == 200]

    async def push(text: str, user: int) -> None:
        sender = telegram_helpers.user(1_000 + user, "fr")
        emit({"pushed": sender["id"], "at": time.monotonic()})  # the clock of `Call.at`
        api.push(telegram_helpers.message_update(text, sender=sender))

    watcher = asyncio.create_task(watch(api, ready, replies))
    try:
        yield push
    finally:
        watcher.cancel()
        await api.close()


@asynccontextmanager
async def discord() -> AsyncIterator[Callable[[str, int], Awaitable[None]]]:
    """The fake gateway and REST API; /ask interactions in, their callbacks out."""
    async with FakeDiscord(token=discord_helpers.TOKEN, guild_ids=(DISCORD_GUILD,)) as fake:
        emit({"env": {"DISCORD_BOT_TOKEN": discord_helpers.TOKEN,
                      "FAQBOT_DISCORD_API_URL": fake.api_url,
                      "FAQBOT_DISCORD_GATEWAY_URL": fake.gateway_url}})
        def ready() -> bool:  # slash commands published, gateway session up
            return bool(fake.commands) and fake.live_session() is not None

        def replies(seen: int) -> list[tuple[Any, float]]:  # an interaction's first answer
            return [(call.path, call.received_at) for call in fake.calls[seen:]
                    if call.path.endswith("/callback") and call.status < 300]

        async def push(text: str, user: int) -> None:
            pushed_at = time.perf_counter()  # the clock of `RecordedCall.received_at`
            interaction = await fake.push_interaction(
                APPLICATION_COMMAND, discord_helpers.slash(fake, "ask", question=text),
                guild_id=DISCORD_GUILD, user_id=(5_000 + user) << 22, locale="fr")
            emit({"pushed": interaction.callback_path, "at": pushed_at})

        watcher = asyncio.create_task(watch(fake, ready, replies))
        try:
            yield push
        finally:
            watcher.cancel()


async def serve_platform(name: str) -> None:
    """Run the fake until the end of input, pushing each message read."""
    fake = telegram() if name == "telegram" else discord()
    async with fake as push:
        async for line in read_lines():
            await push(str(line["text"]), int(line["user"]))


def serve_postgres() -> None:
    """A PostgreSQL server with one empty database, until the end of input."""
    from tests.auxil.postgres import PostgresServer

    server = PostgresServer()
    server.start()
    try:
        emit({"env": {"FAQBOT_DB": server.new_database()}})
        sys.stdin.read()
    finally:
        server.close()


def main(argv: list[str]) -> int:
    """`serve telegram|discord|postgres`; exit code 2 for anything else."""
    if argv not in (["telegram"], ["discord"], ["postgres"]):
        print("usage: python -m fakes.serve telegram|discord|postgres", file=sys.stderr)
        return 2
    if argv == ["postgres"]:
        serve_postgres()
        return 0
    # The fake keeps every call it saw, and the collector's full passes over them paused it for
    # about 100 ms in mid-run: time that the bench counted in the bot's replies (its paced p99).
    # The fake runs for one benchmark, so its memory stays bounded without the collector.
    gc.disable()
    asyncio.run(serve_platform(argv[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
