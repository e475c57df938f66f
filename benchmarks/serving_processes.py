"""The processes of an end-to-end serving run (`benchmarks.serving`): a fake platform server
and `faqbot run PLATFORM`, each in a process of its own, and the CPU time and peak memory read
from /proc.

A fake is `python -m tests.fakes.serve KIND`, run from the checkout and driven over its standard
input and output: questions in, the bot's replies out.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

REPOSITORY = Path(__file__).resolve().parent.parent
START_TIMEOUT = 120.0  # a cold model cache means training first
RUN_TIMEOUT = 300.0  # then the replies that have not come are counted as lost
STOP_TIMEOUT = 30.0


class FakeStartError(RuntimeError):
    """A fake (or the tests' PostgreSQL server) ended before saying where it listens."""


def faqbot_command() -> list[str]:
    """The `faqbot` console script of this interpreter's environment, else `python -m`."""
    script = Path(sys.executable).with_name("faqbot")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "bots.cli"]


# ---------------------------------------------------------------------------------------------
# The fakes, each in a process of its own: questions in, the bot's replies out


@dataclass
class FakeProcess:
    """tests/fakes/serve.py running: what it said (tests/fakes/serve.py lists the lines)."""

    process: asyncio.subprocess.Process
    env: dict[str, str]  # what points `faqbot run` at the fake
    users: int = 1
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    pushed: list[tuple[Any, float]] = field(default_factory=list)  # (key, at)
    replied: list[tuple[Any, float]] = field(default_factory=list)  # (key, at)
    sent: int = 0
    _news: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def pid(self) -> int:
        """The fake's process id, for its CPU time."""
        return self.process.pid

    async def push(self, question: str) -> None:
        """Send one question from the next user: users take turns, each sending
        len(questions) / users messages."""
        assert self.process.stdin is not None
        self.sent += 1
        line = {"text": question, "user": self.sent % self.users}
        self.process.stdin.write(json.dumps(line).encode() + b"\n")
        await self.process.stdin.drain()

    async def read(self) -> None:
        """Note each line the fake writes, until its output ends."""
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            line = json.loads(raw)
            if "ready" in line:
                self.ready.set()
            elif "pushed" in line:
                self.pushed.append((line["pushed"], line["at"]))
            elif "replied" in line:
                self.replied.append((line["replied"], line["at"]))
            self._news.set()
        self._news.set()

    async def wait_replies(self) -> None:
        """Until every message pushed so far is answered, the fake ends, or RUN_TIMEOUT."""
        deadline = time.monotonic() + RUN_TIMEOUT
        while min(len(self.pushed), len(self.replied)) < self.sent:
            left = deadline - time.monotonic()
            if left <= 0 or self.process.stdout is None or self.process.stdout.at_eof():
                return
            self._news.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._news.wait(), left)


@asynccontextmanager
async def started_fake(kind: str, users: int = 1) -> AsyncIterator[FakeProcess]:
    """`python -m tests.fakes.serve KIND` run from the checkout; ended by closing its input."""
    path = str(REPOSITORY)
    with tempfile.TemporaryFile() as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.fakes.serve", kind, env=os.environ | {"PYTHONPATH": path},
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log)
        assert process.stdin is not None and process.stdout is not None
        reader: asyncio.Task[None] | None = None
        try:
            first = await asyncio.wait_for(process.stdout.readline(), START_TIMEOUT)
            if not first:
                raise FakeStartError(f"the fake {kind} did not start: {_tail(log)}")
            fake = FakeProcess(process, json.loads(first)["env"], users)
            reader = asyncio.create_task(fake.read())
            yield fake
        finally:
            process.stdin.close()
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
            except TimeoutError:
                process.kill()
                await process.wait()
            if reader is not None:
                await reader


def _tail(log: IO[bytes]) -> str:
    """The last lines a process wrote, for an error message."""
    log.seek(0)
    return log.read().decode(errors="replace").strip()[-800:]


# ---------------------------------------------------------------------------------------------
# The bot's process, CPU time


class _BotProcess:
    """`faqbot run PLATFORM` in its own process."""

    def __init__(self, platform: str, env: dict[str, str], log: IO[bytes]) -> None:
        self.process = subprocess.Popen([*faqbot_command(), "run", platform], env=env,
                                        stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        self.pid = self.process.pid
        self.peak_mb = 0.0
        self._log = log

    async def until(self, ready: Awaitable[object]) -> None:
        """Wait for `ready`; if the bot exits first, fail with the end of its log."""
        waiter = asyncio.ensure_future(ready)
        while not waiter.done():
            await asyncio.wait({waiter}, timeout=0.2)
            if not waiter.done() and self.process.poll() is not None:
                waiter.cancel()
                raise RuntimeError(f"the bot exited early: {self.log_tail()}")
        waiter.result()

    async def stop(self) -> None:
        """Note the peak memory, then SIGTERM, as a service manager stops the bot."""
        if self.process.returncode is None:
            self.peak_mb = _peak_mb(self.pid)
            self.process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(self.process.wait)

    def log_tail(self) -> str:
        """The last lines the bot wrote, for an error message."""
        return _tail(self._log)


@asynccontextmanager
async def bot_process(platform: str, env: dict[str, str]) -> AsyncIterator[_BotProcess]:
    """`faqbot run PLATFORM` for the time of the block, then stopped; an error if it did not
    end cleanly."""
    with tempfile.TemporaryFile() as log:
        bot = _BotProcess(platform, env, log)
        try:
            yield bot
        finally:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(bot.stop(), STOP_TIMEOUT)
            if bot.process.returncode is None:
                bot.process.kill()
                await bot.stop()
        if bot.process.returncode != 0:
            raise RuntimeError(f"the bot ended with exit code {bot.process.returncode}: "
                               f"{bot.log_tail()}")


@dataclass
class _CpuUse:
    bot_seconds: float | None = None
    fake_seconds: float | None = None


@contextmanager
def cpu_meter(bot_pid: int, fake_pid: int) -> Iterator[_CpuUse]:
    """CPU seconds used meanwhile by the bot's and the fake's processes (from /proc)."""
    use = _CpuUse()
    bot_before, fake_before = _process_cpu(bot_pid), _process_cpu(fake_pid)
    yield use
    use.bot_seconds = _cpu_since(bot_pid, bot_before)
    use.fake_seconds = _cpu_since(fake_pid, fake_before)


def _cpu_since(pid: int, before: float | None) -> float | None:
    after = _process_cpu(pid)
    return None if before is None or after is None else after - before


def _process_cpu(pid: int) -> float | None:
    """User + system CPU seconds of a live process (Linux), None where /proc is missing."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after the command name, field 3 comes first
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _peak_mb(pid: int) -> float:
    """The peak resident memory of a live process since its exec (VmHWM, Linux); 0 if unknown.

    Not wait4's figure: Linux adds to it the memory of the process that started this one.
    """
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0
