"""Several `faqbot run` processes sharing one PostgreSQL database, against a real server.

Telegram: two processes, one elected; 2,000 questions from 200 chats, and the leader killed
with SIGKILL half-way. The standby takes over where Telegram's offset stands: every question is
answered, in order in each chat, and the question log holds each answered question once, those
the dead leader had logged and the new one answered again included (the rows still in the killed
writer's queue die with it: counted and reported). Discord: two processes with
shards 0 and 1 of two, 2,000 interactions, all answered and logged once. And processes starting
together on an empty database end with one schema and one key.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from bots.leadership import platform_lock
from core import FAQBot
from core.questionlog.interface import SCHEMA_VERSION
from tests.auxil.questionlog import read_log
from tests.auxil.reliability import (
    DISCORD_TOKEN,
    SEED,
    TELEGRAM_TOKEN,
    DiscordLedger,
    Figures,
    LogScanner,
    report,
)
from tests.auxil.telegram import group_chat, message_update, user
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.telegram_api import BOT_USERNAME, FakeTelegramAPI, Fault
from tests.reliability.test_discord_load import plan, push

pytestmark = pytest.mark.reliability

REPO = Path(__file__).resolve().parents[2]
CHATS, QUESTIONS = 200, 2_000
KILL_AFTER_REPLIES = QUESTIONS // 2 + 50  # half-way, in the middle of a batch of updates
BATCH = 100  # updates per getUpdates (its default limit)
TOPICS = ("horaires", "adresse", "livraison", "vous livrez le dimanche", "ou etes vous")
DISCORD_USERS = 200  # ten interactions each


class Process:
    """One `faqbot run` process, its standard error kept in a file (a pipe nobody reads
    would fill up and stop it)."""

    def __init__(self, args: list[str], env: dict[str, str], stderr: Path) -> None:
        self.stderr = stderr
        with stderr.open("wb") as sink:
            self.popen = subprocess.Popen([sys.executable, "-m", "bots.cli", "run", *args],
                                          cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                                          stdout=subprocess.DEVNULL, stderr=sink)

    async def stop(self, signum: int = signal.SIGTERM) -> int:
        """Send `signum` and wait for the exit; the exit code."""
        if self.popen.poll() is None:
            self.popen.send_signal(signum)
        return await asyncio.to_thread(self.popen.wait, 60)

    def errors(self) -> str:
        return self.stderr.read_text(errors="replace")


@asynccontextmanager
async def processes(*runs: tuple[list[str], dict[str, str], Path]) -> AsyncIterator[
        list[Process]]:
    """The processes, started together; any still running at the end is killed."""
    started = [Process(*run) for run in runs]
    try:
        yield started
    finally:
        for process in started:
            if process.popen.poll() is None:
                process.popen.kill()
                process.popen.wait()


def _env(db: str, **settings: str) -> dict[str, str]:
    env = {**os.environ, "FAQBOT_DB": db, "FAQBOT_RATE_LIMIT_MESSAGES": "100000",
           "NO_PROXY": "127.0.0.1,localhost", "PYTHONUNBUFFERED": "1", **settings}
    for token in ("TELEGRAM_BOT_TOKEN", "DISCORD_BOT_TOKEN", "FAQBOT_KB"):
        if token not in settings:
            env.pop(token, None)
    return env


# -- Telegram: leader and standby -----------------------------------------------------------------


def _questions() -> list[dict[str, Any]]:
    """Group messages from 200 chats, each with a question of its own (to check the log)."""
    updates = []
    for number in range(QUESTIONS):
        chat = group_chat(-3_000_000 - number % CHATS)
        sender = user(400_000 + number % CHATS, "fr")
        text = f"@{BOT_USERNAME} {TOPICS[number % len(TOPICS)]} {number}"
        updates.append(message_update(text, chat=chat, sender=sender))
    return updates


def _replies(api: FakeTelegramAPI, calls: list[Any] | None = None) -> list[tuple[int, int]]:
    """(chat, quoted message id) of every reply delivered, in order."""
    return [(call.params["chat_id"], call.params["reply_parameters"]["message_id"])
            for call in (calls if calls is not None else api.calls)
            if call.method == "sendMessage" and call.status == 200]


async def _leader_pid(url: str, platform: str) -> int:
    """The process id of the holder of `platform`'s leadership (named in its session)."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as connection:
        while True:
            row = await (await connection.execute(
                "SELECT activity.application_name FROM pg_locks AS lock JOIN pg_stat_activity "
                "AS activity ON activity.pid = lock.pid WHERE lock.locktype = 'advisory' "
                "AND lock.granted AND lock.objsubid = 2 AND lock.classid::bigint = %s "
                "AND lock.objid::bigint = %s", platform_lock(platform))).fetchone()
            if row:
                return int(row[0].rpartition(":")[2])
            await asyncio.sleep(0.1)


async def _logged_before_answered(url: str, api: FakeTelegramAPI,
                                  questions: dict[tuple[int, int], str]) -> None:
    """Wait until the log holds a question whose reply has not reached the fake; `questions`
    maps each (chat, message id) to its text."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as connection:
        while True:
            rows = await (await connection.execute("SELECT question FROM questions")).fetchall()
            answered = {questions[reply] for reply in _replies(api)}
            if {row[0] for row in rows} - answered:
                return
            await asyncio.sleep(0.05)


@pytest.mark.timeout(300)
@pytest.mark.usefixtures("info_level_logs")
async def test_telegram_standby_takes_over_from_a_killed_leader(
        api: FakeTelegramAPI, postgres_url: str, tiny_kb_path: Path, tmp_path: Path,
        log_scanner: LogScanner) -> None:
    env = _env(postgres_url, TELEGRAM_BOT_TOKEN=TELEGRAM_TOKEN, FAQBOT_KB=str(tiny_kb_path),
               FAQBOT_TELEGRAM_API_URL=api.base_url)
    updates = _questions()
    asked: dict[int, list[int]] = defaultdict(list)  # chat -> message ids, in order
    for update in updates:
        asked[update["message"]["chat"]["id"]].append(update["message"]["message_id"])
    message_text = {(update["message"]["chat"]["id"], update["message"]["message_id"]):
                    update["message"]["text"].removeprefix(f"@{BOT_USERNAME} ")
                    for update in updates}
    started = time.monotonic()
    async with processes(*[(["telegram"], env, tmp_path / f"{name}.log")
                           for name in ("a", "b")]) as (first, second):
        await api.wait_for("setMyCommands", lambda call: "language_code" not in call.params,
                           timeout=120)  # published once the leader receives updates
        leader_pid = await _leader_pid(postgres_url, "telegram")
        leader, standby = (first, second) if first.popen.pid == leader_pid else (second, first)
        # Replies take a little while, so that the kill finds some on their way.
        slow_replies = api.fault_picker = lambda method, _: (Fault(200, delay=0.05)
                                                             if method == "sendMessage" else None)
        texts = {api.push(update): update["message"]["text"].removeprefix(f"@{BOT_USERNAME} ")
                 for update in updates}
        await api.wait_until(lambda: len(_replies(api)) >= KILL_AFTER_REPLIES, timeout=120)
        # Then replies are held until the leader has logged a question it has not answered
        # yet: the kill surely falls in the window where the new leader answers it again.
        held = asyncio.Event()
        api.fault_picker = lambda method, _: (Fault(200, hold=held)
                                              if method == "sendMessage" else None)
        await _logged_before_answered(postgres_url, api, message_text)
        killed_exit = await leader.stop(signal.SIGKILL)
        killed_at = time.monotonic()
        api.fault_picker = slow_replies
        held.set()
        await asyncio.sleep(0.5)  # the replies the leader had sent reach the fake
        before_kill = len(api.calls)  # the standby starts serving TAKEOVER_GRACE s later
        await api.wait_until(lambda: len(set(_replies(api))) >= QUESTIONS, timeout=120)
        takeover = next(call.at for call in api.calls[before_kill:]
                        if call.method == "getMe") - killed_at
        assert await _leader_pid(postgres_url, "telegram") == standby.popen.pid
        standby_exit = await standby.stop()
    seconds = time.monotonic() - started
    for process in (leader, standby):
        log_scanner.scan(process.errors(), "faqbot run telegram")

    # The updates the leader had not confirmed (its last poll's offset was the first update not
    # finished, and a poll fetches at most BATCH from it): Telegram gives them again to the next
    # poller, which may answer again those the leader had answered.
    last_offset = [call.params.get("offset", 0) for call in api.calls[:before_kill]
                   if call.method == "getUpdates"][-1]
    unconfirmed = {texts[number] for number in range(last_offset, last_offset + BATCH)
                   if number in texts}
    by_leader = {message_text[reply] for reply in _replies(api, api.calls[:before_kill])}
    copies = Counter(message_text[reply] for reply in _replies(api))
    twice = {text for text, count in copies.items() if count > 1}
    logged = Counter(row.question for row in read_log(postgres_url))
    # Rows still in the killed writer's queue (it writes every 20 ms) die with the process.
    unlogged = {text for text in by_leader - unconfirmed if logged[text] == 0}
    report(Figures(f"telegram leader SIGKILLed after {len(by_leader)} replies, standby took "
                   f"over (its first request {takeover:.1f} s after the kill); "
                   f"{len(unconfirmed)} fetched but unconfirmed, answered again: {len(twice)}; "
                   f"question log: {sum(count > 1 for count in logged.values())} logged twice, "
                   f"{len(unlogged)} lost with the killed writer's queue",
                   sent=QUESTIONS, answered=len(copies), lost=QUESTIONS - len(copies),
                   twice=len(twice), seconds=seconds))
    assert killed_exit == -signal.SIGKILL and standby_exit == 0, standby.errors()
    assert "Traceback" not in standby.errors() and " ERROR " not in standby.errors()
    assert len(copies) == QUESTIONS  # every question answered
    assert set(copies.values()) <= {1, 2} and twice <= unconfirmed & by_leader
    order: dict[int, list[int]] = defaultdict(list)
    for chat, message_id in dict.fromkeys(_replies(api)):  # each reply at its first delivery
        order[chat].append(message_id)
    assert order == asked  # each chat answered in order, across the takeover
    # The question log: each answered question once, those the dead leader had logged and the
    # new one answered again (at least once) included; only the killed writer's queue is lost.
    assert all(logged[text] == 1 for text in copies.keys() - unlogged)
    assert len(unlogged) <= BATCH
    assert logged.keys() <= copies.keys()


# -- Discord: shards spread over processes --------------------------------------------------------


@pytest.mark.timeout(300)
@pytest.mark.usefixtures("info_level_logs")
async def test_discord_shards_in_two_processes_log_to_one_database(
        postgres_url: str, default_bot: FAQBot, tmp_path: Path, log_scanner: LogScanner) -> None:
    guilds = tuple((5000 + number) << 22 for number in range(10))
    async with FakeDiscord(token=DISCORD_TOKEN, guild_ids=guilds) as fake:
        env = _env(postgres_url, DISCORD_BOT_TOKEN=DISCORD_TOKEN,
                   FAQBOT_DISCORD_API_URL=fake.api_url,
                   FAQBOT_DISCORD_GATEWAY_URL=fake.gateway_url)
        stream = plan(default_bot, DISCORD_USERS, 1, SEED + 2)
        ledger = DiscordLedger(fake)
        started = time.monotonic()
        async with processes(*[(["discord", "--shards", "2", "--shard-ids", str(shard)], env,
                                tmp_path / f"shard{shard}.log") for shard in (0, 1)]) as shards:
            for shard in (0, 1):
                await fake.wait_for_session(shard, timeout=120)
            for planned in stream:
                await push(fake, ledger, planned)
            await ledger.settle()
            exits = [await process.stop() for process in shards]
        seconds = time.monotonic() - started
        per_shard = Counter(fake.shard_of(planned.guild) for planned in stream)
    for process in shards:
        log_scanner.scan(process.errors(), "faqbot run discord")
    answered, lost, twice = ledger.counts()
    logged = [row for row in read_log(postgres_url) if row.platform == "discord"]
    report(Figures(f"discord shards 0 and 1 in two processes ({per_shard[0]} and "
                   f"{per_shard[1]} interactions), one PostgreSQL log",
                   sent=len(stream), answered=answered, lost=lost, twice=twice,
                   seconds=seconds))
    assert exits == [0, 0], [process.errors() for process in shards]
    assert min(per_shard.values()) > len(stream) // 4  # both shards had their share
    assert (answered, lost, twice) == (len(stream), 0, 0)
    assert not ledger.wrong_text and not ledger.unexpected and not ledger.out_of_order()
    asked = Counter(planned.question for planned in stream if planned.question is not None)
    assert Counter(row.question for row in logged) == asked  # every question logged once
    clicks = len(stream) - asked.total()  # a click is recorded as the choice, not a question
    assert clicks > 0


# -- Schema: processes starting together ----------------------------------------------------------


# Each process imports everything, says it is ready, then opens the log when told to: the
# openings start within a millisecond of each other.
OPEN_WHEN_TOLD = """
import sys
from core.questionlog.factory import open_question_log_store
print("ready", flush=True)
sys.stdin.readline()
log = open_question_log_store(sys.argv[1])
print(log.pseudonym("telegram", 42))
log.close()
"""
OPENERS = 8


def test_processes_starting_together_make_one_schema_and_one_key(postgres_url: str) -> None:
    openers = [subprocess.Popen([sys.executable, "-c", OPEN_WHEN_TOLD, postgres_url], cwd=REPO,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for _ in range(OPENERS)]
    for opener in openers:
        assert opener.stdout is not None and opener.stdout.readline() == "ready\n"
    for opener in openers:
        assert opener.stdin is not None
        opener.stdin.write("\n")
        opener.stdin.flush()
    outputs = [opener.communicate(timeout=60) for opener in openers]
    assert all(not errors for _, errors in outputs), outputs
    assert len({pseudonym for pseudonym, _ in outputs}) == 1
    with psycopg.connect(postgres_url) as connection:
        meta = connection.execute("SELECT key, value FROM meta ORDER BY key").fetchall()
        tables = connection.execute("SELECT count(*) FROM pg_tables WHERE tablename IN "
                                    "('meta', 'questions')").fetchone()
    assert [key for key, _ in meta] == ["salt", "schema_version"]
    assert dict(meta)["schema_version"] == str(SCHEMA_VERSION)
    assert tables == (2,)
