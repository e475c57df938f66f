"""What `faqbot run` adds around the adapters: the question log, live reload, metrics, health,
structured logs. The adapters run for real against the fake Telegram Bot API on 127.0.0.1."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import os
import signal
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import discord
import pytest
import yaml
from discord.gateway import DiscordWebSocket

from bots.logs import JsonFormatter, SecretFilter
from bots.metrics import Metrics, MetricsServer
from bots.operations import open_question_log
from bots.reload import KnowledgeBaseWatcher
from bots.service import Asker, FAQService
from bots.telegram import receiving
from bots.telegram.config import WebhookOptions
from core import FAQBot, Settings
from core.questionlog.interface import NONE_OF_THESE, LoggedQuestion
from core.questionlog.sqlite import SQLiteQuestionLog
from core.questionlog.writer import BackgroundQuestionLog
from tests.auxil.discord import TOKEN as DISCORD_TOKEN
from tests.auxil.discord import click, slash
from tests.auxil.discord import serving as serving_discord
from tests.auxil.engine import AMBIGUOUS
from tests.auxil.network import free_port
from tests.auxil.questionlog import read_log
from tests.auxil.telegram import TOKEN, callback_update, message_update, serving, user
from tests.fakes.discord_api import APPLICATION_COMMAND, MESSAGE_COMPONENT, FakeDiscord
from tests.fakes.metrics import WatchedMetrics
from tests.fakes.telegram_api import FakeTelegramAPI, Fault

REPO = Path(__file__).resolve().parents[2]
OPENING_FR = "Ouvert de 9 h à 17 h."
NEW_OPENING_FR = "Ouvert de 8 h à 20 h, même le dimanche."


def replies_to(api: FakeTelegramAPI, chat_id: int) -> list[str]:
    return [call.params["text"] for call in api.calls_to("sendMessage")
            if call.params["chat_id"] == chat_id and call.status == 200]


# -- the question log, fed by a real adapter ----------------------------------------------------


async def test_questions_and_clarify_choices_are_logged_under_pseudonyms(
        api: FakeTelegramAPI, clarifying_bot: FAQBot, tmp_path: Path) -> None:
    path = tmp_path / "questions.sqlite3"
    log = BackgroundQuestionLog(SQLiteQuestionLog(path))
    metrics = Metrics()
    service = FAQService(clarifying_bot, log=log, metrics=metrics)
    asker = user(738291046, "fr")
    async with serving(api, service):
        api.push(message_update("horaires", sender=asker))
        api.push(message_update(AMBIGUOUS, sender=asker))
        api.push(callback_update("a:address:fr", sender=asker))
        api.push(message_update(AMBIGUOUS, sender=asker))
        api.push(callback_update("n:fr", sender=asker))
        await api.wait_for("sendMessage", lambda call: len(replies_to(api, 738291046)) == 5)
    await asyncio.to_thread(log.close)
    rows = read_log(path)
    assert [(row.question, row.kind, row.choice) for row in rows] == [
        ("horaires", "answer", None), (AMBIGUOUS, "clarify", "address"),
        (AMBIGUOUS, "clarify", NONE_OF_THESE)]
    assert rows[0].platform == "telegram" and rows[0].intent == "opening_hours"
    assert set(rows[1].suggestions) == {"opening_hours", "address"}
    assert all(row.latency_ms > 0 for row in rows)
    assert {row.user for row in rows} == {rows[0].user} and "738291046" not in rows[0].user
    stored = b"".join(part.read_bytes() for part in tmp_path.iterdir())
    assert b"738291046" not in stored
    exposition = metrics.exposition().decode()
    assert 'faqbot_replies_total{kind="clarify",platform="telegram"} 2.0' in exposition
    assert 'faqbot_replies_total{kind="fallback",platform="telegram"} 1.0' in exposition
    assert 'faqbot_replies_total{kind="answer",platform="telegram"} 2.0' in exposition


async def test_text_is_not_kept_when_told_not_to(clarifying_bot: FAQBot, tmp_path: Path) -> None:
    log = BackgroundQuestionLog(SQLiteQuestionLog(tmp_path / "q.sqlite3"))
    service = FAQService(clarifying_bot, log=log, log_text=False)
    service.answer("mon numéro est le 0612345678", asker=None)  # no asker: not recorded
    service.answer("mon numéro est le 0612345678", asker=Asker("discord", 1, 2))
    rows = log.entries()
    log.close()
    assert [(row.question, row.kind, row.platform) for row in rows] == [
        (None, "fallback", "discord")]


async def test_discord_questions_choices_and_health(clarifying_bot: FAQBot, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # build_client points these process-wide class attributes at the fake; undo it afterwards.
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    monkeypatch.setattr(DiscordWebSocket, "DEFAULT_GATEWAY", DiscordWebSocket.DEFAULT_GATEWAY)
    guild, user_id = 1001 << 22, 77 << 22
    log = BackgroundQuestionLog(SQLiteQuestionLog(tmp_path / "q.sqlite3"))
    metrics = WatchedMetrics()
    service = FAQService(clarifying_bot, log=log, metrics=metrics)
    async with FakeDiscord(token=DISCORD_TOKEN, guild_ids=(guild,)) as fake, \
            serving_discord(fake, service):
        await metrics.until_healthy()
        asked = await fake.push_interaction(
            APPLICATION_COMMAND, slash(fake, "ask", question=AMBIGUOUS),
            guild_id=guild, user_id=user_id)
        clarify = await fake.wait_for_callback(asked)
        clicked = await fake.push_interaction(
            MESSAGE_COMPONENT, click("faqbot:n:fr"), guild_id=guild, user_id=user_id,
            message=copy.deepcopy(clarify.response["resource"]["message"]))
        await fake.wait_for_callback(clicked)
    rows = await asyncio.to_thread(log.entries)
    await asyncio.to_thread(log.close)
    assert [(row.platform, row.kind, row.choice) for row in rows] == [
        ("discord", "clarify", NONE_OF_THESE)]
    assert str(user_id) not in rows[0].user and str(guild + 1) not in rows[0].chat
    assert 'faqbot_replies_total{kind="fallback",platform="discord"} 1.0' in (
        metrics.exposition().decode())


async def test_database_locked_at_start_is_reported_then_used(
        clarifying_bot: FAQBot, tmp_path: Path) -> None:
    path = tmp_path / "questions.sqlite3"
    SQLiteQuestionLog(path).close()
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # another process holds the lock as faqbot starts
    metrics = Metrics(["telegram"])
    metrics.set_connected("telegram", True)
    log = open_question_log(Settings(db=path), metrics)
    service = FAQService(clarifying_bot, log=log, metrics=metrics)
    endpoint = MetricsServer(metrics, "127.0.0.1", 0)
    await endpoint.start()
    base = f"http://127.0.0.1:{endpoint.port}"
    asker = Asker("telegram", 5, 6)
    try:
        for question in ("horaires", "adresse", "livraison"):  # answered all the same
            assert service.answer(question, asker=asker).kind == "answer"
        assert await asyncio.to_thread(log.flush, 60)
        status, _, body = await _get(f"{base}/healthz")
        assert status == 200 and body.startswith("ok\nquestion log not open, trying again (")
        assert "database is locked" in body and "3 writes lost so far" in body
        exposition = (await _get(f"{base}/metrics"))[2].splitlines()
        assert {"faqbot_question_log_up 0.0",
                "faqbot_question_log_failures_total 3.0"} <= set(exposition)
        blocker.execute("ROLLBACK")
        blocker.close()
        for _ in range(600):
            if log.up:
                break
            await asyncio.sleep(0.1)
        service.answer("horaires ?", asker=asker)
        rows = await asyncio.to_thread(log.entries)
        assert [row.question for row in rows] == ["horaires ?"]
        assert (await _get(f"{base}/healthz"))[::2] == (200, "ok\n")
        assert "faqbot_question_log_up 1.0" in (await _get(f"{base}/metrics"))[2].splitlines()
    finally:
        await endpoint.close()
        await asyncio.to_thread(log.close)


def test_unusable_database_path_leaves_the_bot_answering(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    log = open_question_log(Settings(db=blocker / "questions.sqlite3"), Metrics())
    log.record(LoggedQuestion(at=datetime.now(UTC), platform="telegram", chat="", user="",
                              lang="fr", question="horaires", kind="answer",
                              intent="opening_hours", confidence=0.9), 1, 1)
    assert log.flush(timeout=30) and not log.up and log.failures == 1
    assert "cannot open the question log" in (log.problem() or "")
    log.close()


# -- live reload ---------------------------------------------------------------------------------


def _edited_kb(source: Path, opening_fr: str) -> str:
    kb = yaml.safe_load(source.read_text(encoding="utf-8"))
    kb["intents"][0]["answer"]["fr"] = opening_fr
    return yaml.safe_dump(kb, allow_unicode=True)


async def test_live_reload_during_a_stream_loses_and_doubles_nothing(
        api: FakeTelegramAPI, tiny_kb_path: Path, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    kb_file = tmp_path / "faq.yaml"
    kb_file.write_text(tiny_kb_path.read_text(encoding="utf-8"), encoding="utf-8")
    service = FAQService(FAQBot.from_path(kb_file))
    outcomes: asyncio.Queue[str] = asyncio.Queue()
    requests = asyncio.Event()
    watcher = KnowledgeBaseWatcher(kb_file, service, interval=0.05, requests=requests,
                                   on_outcome=outcomes.put_nowait)
    chats = list(range(5001, 5011))
    asked: dict[int, list[str]] = {chat: [] for chat in chats}

    def ask(phase: str) -> None:
        for chat in chats:
            api.push(message_update("horaires", sender=user(chat, "fr")))
            asked[chat].append(phase)

    caplog.set_level(logging.INFO, logger="bots.reload")
    async with serving(api, service) as stop:
        watching = asyncio.create_task(watcher.run(stop))
        ask("before")
        kb_file.write_text(_edited_kb(tiny_kb_path, NEW_OPENING_FR), encoding="utf-8")
        ask("during")
        assert await asyncio.wait_for(outcomes.get(), 30) == "reloaded"
        ask("after")
        kb_file.write_text("version: 1\nintents: [oops\n", encoding="utf-8")  # invalid YAML
        ask("during")
        assert await asyncio.wait_for(outcomes.get(), 30) == "refused"
        ask("after")
        requests.set()  # what SIGHUP does: the broken file is refused again
        assert await asyncio.wait_for(outcomes.get(), 30) == "refused"
        ask("after")
        total = sum(len(phases) for phases in asked.values())
        await api.wait_for("sendMessage", lambda call: len(api.calls_to("sendMessage")) >= total)
    await asyncio.wait_for(watching, 10)
    assert len(api.calls_to("sendMessage")) == total  # nothing doubled
    for chat in chats:
        replies = replies_to(api, chat)
        assert len(replies) == len(asked[chat])  # nothing lost
        assert set(replies) <= {f"{OPENING_FR}\n\nVoir aussi :",
                                f"{NEW_OPENING_FR}\n\nVoir aussi :"}
        # Once a chat got the new answer it never gets the old one again; after the swap,
        # every question gets the new one.
        first_new = next(i for i, text in enumerate(replies) if text.startswith(NEW_OPENING_FR))
        assert all(text.startswith(NEW_OPENING_FR) for text in replies[first_new:])
        assert first_new <= asked[chat].index("after")
    refusals = [record for record in caplog.records if "not reloaded" in record.getMessage()]
    assert len(refusals) == 2  # one line for the change, one for the explicit request
    assert "invalid YAML" in refusals[0].getMessage()
    assert service.bot.kb.intents[0].answer["fr"] == NEW_OPENING_FR


# -- metrics and health --------------------------------------------------------------------------


async def _get(url: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, response.headers["Content-Type"], await response.text()


async def test_metrics_and_health_endpoints(api: FakeTelegramAPI, clarifying_bot: FAQBot) -> None:
    metrics = Metrics()
    service = FAQService(clarifying_bot, metrics=metrics)
    endpoint = MetricsServer(metrics, "127.0.0.1", 0)
    await endpoint.start()
    base = f"http://127.0.0.1:{endpoint.port}"
    try:
        assert (await _get(f"{base}/healthz"))[0] == 503  # no platform yet
        async with serving(api, service) as stop:
            status, _, body = await _get(f"{base}/healthz")
            assert (status, body) == (200, "ok\n")
            api.push(message_update("horaires", sender=user(1001)))
            api.push(message_update("tell me a joke", sender=user(1002, "en")))
            await api.wait_for("sendMessage", lambda call: len(api.calls_to("sendMessage")) == 2)
            metrics.log_failures.inc()
            status, content_type, text = await _get(f"{base}/metrics")
            stop.set()
        assert (await _get(f"{base}/healthz"))[0] == 503  # Telegram stopped
    finally:
        await endpoint.close()
    assert status == 200 and content_type.startswith("text/plain")
    fingerprint = clarifying_bot.kb.fingerprint()
    for line in ['faqbot_replies_total{kind="answer",platform="telegram"} 1.0',
                 'faqbot_replies_total{kind="fallback",platform="telegram"} 1.0',
                 "faqbot_answer_seconds_count 2.0",
                 f'faqbot_knowledge_base_info{{fingerprint="{fingerprint}"}} 1.0',
                 "faqbot_knowledge_base_intents 5.0",
                 "faqbot_question_log_failures_total 1.0",
                 'faqbot_platform_connected{platform="telegram"} 1.0']:
        assert line in text.splitlines(), line
    assert 'faqbot_answer_seconds_bucket{le="0.05"}' in text


def test_json_log_lines_carry_no_secret() -> None:
    formatter, secret_filter = JsonFormatter(), SecretFilter([TOKEN])
    try:
        raise RuntimeError(f"request to /bot{TOKEN}/getMe failed")
    except RuntimeError as error:
        record = logging.LogRecord("telegram.Bot", logging.ERROR, __file__, 1,
                                   "call to %s failed", (f"/bot{TOKEN}/getMe",),
                                   (type(error), error, error.__traceback__))
    secret_filter.filter(record)
    line = formatter.format(record)
    event = json.loads(line)
    assert "\n" not in line and TOKEN not in line
    assert event["level"] == "ERROR" and event["logger"] == "telegram.Bot"
    assert event["message"] == "call to /bot[redacted]/getMe failed"
    assert "RuntimeError" in event["error"]


# -- `faqbot run`, end to end --------------------------------------------------------------------


async def _until(condition: Any, timeout: float = 60.0) -> None:
    """Poll an HTTP condition (a process's endpoint offers nothing to await) until it holds."""
    async with asyncio.timeout(timeout):
        while not await condition():
            await asyncio.sleep(0.1)


@pytest.mark.slow
async def test_faqbot_run_with_metrics_reload_and_json_logs(api: FakeTelegramAPI,
                                                            tiny_kb_path: Path,
                                                            tmp_path: Path) -> None:
    kb_file, db = tmp_path / "faq.yaml", tmp_path / "data" / "questions.sqlite3"
    kb_file.write_text(tiny_kb_path.read_text(encoding="utf-8"), encoding="utf-8")
    FAQBot.from_path(kb_file)  # cached: the bot starts as a restarted one, without training
    port = free_port()
    env = {**os.environ, "TELEGRAM_BOT_TOKEN": TOKEN, "FAQBOT_TELEGRAM_API_URL": api.base_url,
           "FAQBOT_KB": str(kb_file), "FAQBOT_DB": str(db), "PYTHONUNBUFFERED": "1",
           "NO_PROXY": "127.0.0.1,localhost"}
    env.pop("DISCORD_BOT_TOKEN", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bots.cli", "run", "telegram", "--metrics-port", str(port),
        "--log-json", cwd=REPO, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"

    async def healthy() -> bool:
        try:
            return (await _get(f"{base}/healthz"))[0] == 200
        except aiohttp.ClientError:
            return False

    async def reloads(count: int) -> bool:
        return f'faqbot_knowledge_base_reloads_total{{outcome="reloaded"}} {count}.0' in (
            await _get(f"{base}/metrics"))[2]

    asker = user(738291046, "fr")
    try:
        await _until(healthy)
        api.push(message_update("horaires", sender=asker))
        first = await api.wait_for("sendMessage")
        kb_file.write_text(_edited_kb(tiny_kb_path, NEW_OPENING_FR), encoding="utf-8")
        await _until(lambda: reloads(1))
        process.send_signal(signal.SIGHUP)
        await _until(lambda: reloads(2))
        mark = len(api.calls)
        api.push(message_update("horaires", sender=asker))
        second = await api.wait_for("sendMessage", since=mark)
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, stderr.decode()
    assert first.params["text"].startswith(OPENING_FR)
    assert second.params["text"].startswith(NEW_OPENING_FR)
    events = [json.loads(line) for line in stderr.decode().splitlines()]  # every line is JSON
    messages = [event["message"] for event in events]
    assert any(message.startswith("knowledge base reloaded") for message in messages)
    # The encoder's weights load before the bot serves, not in its first questions' time.
    def first(start: str) -> list[int]:
        return [i for i, message in enumerate(messages) if message.startswith(start)]
    assert len(first("sentence encoder loaded")) == 1
    assert first("sentence encoder loaded") < first("serving;")
    assert TOKEN not in stderr.decode() and "738291046" not in stderr.decode()
    assert [row.question for row in read_log(db)] == ["horaires", "horaires"]


# -- health that follows the platform, and a token refused at any time ---------------------------


async def test_health_follows_telegram_polls(api: FakeTelegramAPI, clarifying_bot: FAQBot) -> None:
    metrics = WatchedMetrics()
    endpoint = MetricsServer(metrics, "127.0.0.1", 0)
    await endpoint.start()
    base = f"http://127.0.0.1:{endpoint.port}"
    gauge = 'faqbot_platform_connected{platform="telegram"}'
    outage = True
    api.fault_picker = lambda method, _: Fault(502) if method == "getUpdates" and outage else None
    try:
        async with serving(api, FAQService(clarifying_bot, metrics=metrics)):
            await api.wait_for("getUpdates", status=502)
            await metrics.until(lambda: not metrics.healthy)
            down = (await _get(f"{base}/healthz"))[0], (await _get(f"{base}/metrics"))[2]
            outage = False
            api.push(message_update("horaires", sender=user(1001)))
            await api.wait_for("sendMessage", timeout=30)
            up = (await _get(f"{base}/healthz"))[0], (await _get(f"{base}/metrics"))[2]
    finally:
        await endpoint.close()
    assert down[0] == 503 and f"{gauge} 0.0" in down[1].splitlines()
    assert up[0] == 200 and f"{gauge} 1.0" in up[1].splitlines()


async def test_health_follows_the_telegram_webhook(api: FakeTelegramAPI, clarifying_bot: FAQBot,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(receiving, "WEBHOOK_CHECK_SECONDS", 0.1)
    metrics = WatchedMetrics()
    port = free_port()
    options = WebhookOptions(url=f"http://127.0.0.1:{port}/hook", port=port)
    async with serving(api, FAQService(clarifying_bot, metrics=metrics), webhook=options):
        await metrics.until_healthy()
        registered, api.webhook = api.webhook, None  # deleted behind the bot's back
        await metrics.until(lambda: not metrics.healthy)
        api.webhook = registered
        await metrics.until_healthy()
    assert [connected for _, connected in metrics.changes[:2]] == [False, True]


async def test_health_follows_the_discord_gateway(clarifying_bot: FAQBot,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    monkeypatch.setattr(DiscordWebSocket, "DEFAULT_GATEWAY", DiscordWebSocket.DEFAULT_GATEWAY)
    metrics = WatchedMetrics()
    async with FakeDiscord(token=DISCORD_TOKEN) as fake, \
            serving_discord(fake, FAQService(clarifying_bot, metrics=metrics)):
        await metrics.until_healthy()
        await fake.drop_gateway()
        await metrics.until(lambda: len(metrics.changes) >= 4 and metrics.healthy)
    assert metrics.changes[:4] == [("discord", False), ("discord", True), ("discord", False),
                                   ("discord", True)]


def _run_env(tmp_path: Path, **variables: str) -> dict[str, str]:
    env = {**os.environ, "FAQBOT_KB": str(REPO / "tests" / "data" / "tiny_kb.yaml"),
           "FAQBOT_DB": str(tmp_path / "questions.sqlite3"), "NO_PROXY": "127.0.0.1,localhost",
           "PYTHONUNBUFFERED": "1", **variables}
    for token in {"TELEGRAM_BOT_TOKEN", "DISCORD_BOT_TOKEN"} - set(variables):
        env.pop(token, None)
    return env


async def _faqbot_run(platform: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bots.cli", "run", platform, cwd=REPO, env=env,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)


def _assert_one_error_line(stderr: bytes, error: str, token: str) -> None:
    """Besides the INFO lines of a start, standard error holds exactly one line: `error`."""
    text = stderr.decode()
    not_info = [line for line in text.splitlines() if " INFO " not in line]
    assert not_info == [f"faqbot: error: {error}"], text
    assert token not in text and "Unclosed" not in text and "Traceback" not in text


async def test_refused_telegram_token_exits_2_with_one_line(tmp_path: Path) -> None:
    fake = FakeTelegramAPI("123456789:AAAnotherTokenTheFakeExpects-0123456789")
    await fake.start()
    try:
        process = await _faqbot_run("telegram", _run_env(
            tmp_path, TELEGRAM_BOT_TOKEN=TOKEN, FAQBOT_TELEGRAM_API_URL=fake.base_url))
        _, stderr = await asyncio.wait_for(process.communicate(), 60)
    finally:
        await fake.close()
    assert process.returncode == 2
    _assert_one_error_line(stderr, "Telegram refused TELEGRAM_BOT_TOKEN (unauthorized)", TOKEN)


async def test_telegram_token_revoked_mid_run_exits_2_with_one_line(
        api: FakeTelegramAPI, tmp_path: Path) -> None:
    process = await _faqbot_run("telegram", _run_env(
        tmp_path, TELEGRAM_BOT_TOKEN=TOKEN, FAQBOT_TELEGRAM_API_URL=api.base_url))
    try:
        await api.wait_for("setMyCommands", lambda call: "language_code" not in call.params,
                           timeout=60)
        api.push(message_update("horaires", sender=user(1001)))
        await api.wait_for("sendMessage")
        api.revoke_token()
        _, stderr = await asyncio.wait_for(process.communicate(), 60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 2
    _assert_one_error_line(stderr, "Telegram refused TELEGRAM_BOT_TOKEN (unauthorized)", TOKEN)


async def test_refused_discord_token_exits_2_with_one_line(tmp_path: Path) -> None:
    async with FakeDiscord(token=DISCORD_TOKEN.replace("fake", "else")) as fake:
        process = await _faqbot_run("discord", _run_env(
            tmp_path, DISCORD_BOT_TOKEN=DISCORD_TOKEN, FAQBOT_DISCORD_API_URL=fake.api_url,
            FAQBOT_DISCORD_GATEWAY_URL=fake.gateway_url))
        _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2
    _assert_one_error_line(stderr, "DISCORD_BOT_TOKEN: Discord refused the token", DISCORD_TOKEN)
