"""Telegram under load and under fire: the real adapter (python-telegram-bot) against the fake
Bot API, with the shipped knowledge base and the question log.

Load: 10,000 messages from 500 users (400 in private chats, 100 in 20 groups), interleaved;
every one answered exactly once, each chat's replies in the order asked. Faults: the fake fails
a seeded random share of the calls (429, 500, 502, answers past the client timeout, connections
dropped before or after the call took effect) and delivers some updates twice; nothing is lost,
a reply is sent again only when the bot never heard that the first copy arrived, each chat's
replies stay in order, and the bot still serves at the end.
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import pytest

from bots.service import FAQService
from bots.telegram.config import REQUEST_TIMEOUTS
from core import FAQBot
from core.questionlog.sqlite import SQLiteQuestionLog
from core.questionlog.writer import BackgroundQuestionLog
from tests.auxil.reliability import (
    SEED,
    Figures,
    TelegramChaos,
    TelegramLedger,
    build_stream,
    expect_all,
    report,
    telegram_serving,
)
from tests.fakes.telegram_api import FakeTelegramAPI, Fault

pytestmark = pytest.mark.reliability

USERS = 500
PRIVATE_USERS = 400  # the other 100 talk in groups of five (GROUP_SIZE)
FAULT_USERS = 100  # the fault test: 2,000 messages (see FAULT_RATE)
FAULT_RATE = 0.15
# The fault test shortens the client's read timeout so that "slower than the timeout" takes
# seconds, not the production ten.
READ_TIMEOUT = 2.0
SLOW = READ_TIMEOUT + 1.0


@pytest.mark.timeout(600)
@pytest.mark.usefixtures("info_level_logs")
async def test_ten_thousand_messages_from_500_users(api: FakeTelegramAPI, default_bot: FAQBot,
                                                    tmp_path: Path) -> None:
    stream = build_stream(default_bot, USERS, PRIVATE_USERS, SEED)
    ledger = TelegramLedger(api)
    expect_all(ledger, stream)
    log = BackgroundQuestionLog(SQLiteQuestionLog(tmp_path / "questions.sqlite3"))
    service = FAQService(default_bot, log=log)
    started = time.monotonic()
    async with telegram_serving(api, service):
        for asked in stream:
            api.push(asked.update)
        await ledger.settle()
    seconds = time.monotonic() - started
    logged = await asyncio.to_thread(log.entries)
    await asyncio.to_thread(log.close)
    answered, lost, twice = ledger.counts()
    report(Figures("telegram load: 10,000 messages, 500 users", sent=len(stream),
                   answered=answered, lost=lost, twice=twice, seconds=seconds))
    assert (len(stream), answered, lost, twice) == (USERS * 20, len(stream), 0, 0)
    assert not ledger.out_of_order_chats()
    assert not ledger.unexpected
    assert len(logged) == len(stream)  # the question log holds every question, once


@pytest.mark.timeout(600)
async def test_faults_lose_nothing_and_resend_only_the_unconfirmed(
        api: FakeTelegramAPI, default_bot: FAQBot, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(REQUEST_TIMEOUTS, "read_timeout", READ_TIMEOUT)
    transient = [("429", Fault(429, retry_after=1)), ("500", Fault(500)), ("502", Fault(502)),
                 ("dropped before", Fault(drop="before")),
                 ("dropped after", Fault(drop="after"))]
    chaos = TelegramChaos({"sendMessage": [*transient, ("slow", Fault(200, delay=SLOW))],
                           "getUpdates": transient}, rate=FAULT_RATE)
    stream = build_stream(default_bot, FAULT_USERS, FAULT_USERS * 4 // 5, SEED + 1)
    ledger = TelegramLedger(api)
    expect_all(ledger, stream)
    twice_delivered = set(random.Random(SEED).sample(range(len(stream)), len(stream) // 20))
    started = time.monotonic()
    async with telegram_serving(api, default_bot):
        api.fault_picker = chaos
        for index, asked in enumerate(stream):
            api.push(asked.update, duplicate=index in twice_delivered)
        await ledger.settle()
        api.fault_picker = None
        last = build_stream(default_bot, 1, 1, SEED, first_user=900_000)[0]  # still serving
        ledger.expect(last.chat, last.reply)
        api.push(last.update)
        await ledger.settle()
    seconds = time.monotonic() - started
    answered, lost, twice = ledger.counts()
    survived = _survived(api, ledger, chaos)
    faults = chaos.total + len(twice_delivered)
    report(Figures(f"telegram faults on {chaos.total / chaos.calls:.0%} of {chaos.calls} calls "
                   f"{dict(sorted(chaos.injected.items()))}, "
                   f"{len(twice_delivered)} updates delivered twice", sent=len(stream) + 1,
                   answered=answered, lost=lost, twice=twice, faults=faults,
                   survived=survived + len(twice_delivered), seconds=seconds))
    assert chaos.total >= 0.10 * chaos.calls, "fewer faults than the issue asks for"
    assert lost == 0
    assert not ledger.confirmed_twice()  # a second copy only after an unconfirmed one
    assert not ledger.out_of_order_chats()
    assert not ledger.unexpected
    assert survived == chaos.total


def _survived(api: FakeTelegramAPI, ledger: TelegramLedger, chaos: TelegramChaos) -> int:
    """Faults after which the call still went through: the reply was delivered, or a poll
    from the same offset or a later one was answered (the offset only moves forward, and
    moves while a failed poll waits to be tried again, as the updates in hand finish)."""
    polled = [call.params.get("offset", 0) for call in api.calls_to("getUpdates")
              if call.status == 200 and not call.client_gone]
    survived = 0
    for method, params in chaos.hit:
        if method == "getUpdates":
            survived += any(offset >= params.get("offset", 0) for offset in polled)
        else:
            quoted = (params.get("reply_parameters") or {}).get("message_id")
            survived += bool(ledger.deliveries.get((params["chat_id"], params["text"], quoted)))
    return survived
