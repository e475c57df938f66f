"""Access: chats and servers outside FAQBOT_ALLOWED_CHATS / FAQBOT_ALLOWED_GUILDS get no answer
and are counted (faqbot_refusals_total); the webhook refuses every request without its secret;
and the log scanner the suite relies on does catch a secret.

Telegram stays silent in a refused chat: no reply, no notice, no flood warning. Discord must
answer every slash command and click within three seconds or show the user an error, so there
the refusal is a private notice; a mention in a refused server gets nothing.
"""

from __future__ import annotations

import logging

import discord
import pytest
from discord.gateway import DiscordWebSocket

from bots.frontdoor.texts import ui_text
from bots.metrics import Metrics
from bots.service import FAQService
from bots.telegram import receiving
from bots.telegram.config import WebhookOptions
from core import FAQBot
from tests.auxil.discord import autocomplete, click, serving, slash
from tests.auxil.network import free_port
from tests.auxil.reliability import (
    DISCORD_TOKEN,
    TELEGRAM_TOKEN,
    WEBHOOK_SECRET,
    Figures,
    LogScanner,
    report,
    telegram_serving,
)
from tests.auxil.telegram import (
    callback_update,
    group_chat,
    inline_update,
    message_update,
    user,
)
from tests.fakes.discord_api import (
    APPLICATION_COMMAND,
    AUTOCOMPLETE,
    EPHEMERAL,
    MESSAGE_COMPONENT,
    FakeDiscord,
    make_message,
)
from tests.fakes.telegram_api import BOT_USERNAME, FakeTelegramAPI

pytestmark = pytest.mark.reliability

ALLOWED_GROUP, REFUSED_GROUP = -4_000_001, -4_000_002
ALLOWED_USERS = range(400_000, 400_020)
REFUSED_USERS = range(410_000, 410_020)
ALLOWED_GUILD, REFUSED_GUILD = 4001 << 22, 4002 << 22


def refusals(metrics: Metrics, platform: str) -> int:
    return int(metrics.registry.get_sample_value("faqbot_refusals_total",
                                                 {"platform": platform}) or 0)


async def test_telegram_refused_chats_get_nothing_and_are_counted(
        api: FakeTelegramAPI, default_bot: FAQBot) -> None:
    metrics = Metrics()
    service = FAQService(default_bot, metrics=metrics)
    allowed = frozenset({*ALLOWED_USERS, ALLOWED_GROUP})
    refused_updates = 0
    async with telegram_serving(api, service, allowed_chats=allowed, rate_limit_messages=3,
                                rate_limit_seconds=3600):
        for allowed_user, refused_user in zip(ALLOWED_USERS, REFUSED_USERS, strict=True):
            api.push(message_update("Qu'est-ce que l'AMIAD ?", sender=user(allowed_user)))
            api.push(message_update("Qu'est-ce que l'AMIAD ?", sender=user(refused_user)))
            api.push(callback_update("a:amiad:fr", sender=user(refused_user)))
            api.push(inline_update("amiad", sender=user(refused_user)))
            refused_updates += 3
        for _ in range(10):  # a flood in a refused group: not even a flood warning
            api.push(message_update(f"@{BOT_USERNAME} amiad", chat=group_chat(REFUSED_GROUP),
                                    sender=user(REFUSED_USERS[0])))
            refused_updates += 1
        api.push(message_update(f"@{BOT_USERNAME} amiad", chat=group_chat(ALLOWED_GROUP),
                                sender=user(ALLOWED_USERS[0])))
        await api.wait_for("sendMessage", lambda call: call.params["chat_id"] == ALLOWED_GROUP,
                           timeout=60)
    # Stopping finishes every update fetched, so every refused one was screened by now.
    answered = {call.params["chat_id"] for call in api.calls_to("sendMessage")}
    to_refused = [call for call in api.calls
                  if call.params.get("chat_id") in {*REFUSED_USERS, REFUSED_GROUP}
                  or call.method == "answerCallbackQuery"]
    empty_inline = [call for call in api.calls_to("answerInlineQuery")
                    if call.params["results"] == []]
    report(Figures("telegram allow-list", sent=len(ALLOWED_USERS) + 1 + refused_updates,
                   answered=len(answered), refused=refusals(metrics, "telegram")))
    assert answered == {*ALLOWED_USERS, ALLOWED_GROUP}
    assert not to_refused
    assert len(empty_inline) == len(REFUSED_USERS)  # "no results", as silence would show
    assert refusals(metrics, "telegram") == refused_updates


@pytest.fixture
def _restore_discord_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    # build_client points these process-wide class attributes at the fake; undo it afterwards.
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    monkeypatch.setattr(DiscordWebSocket, "DEFAULT_GATEWAY", DiscordWebSocket.DEFAULT_GATEWAY)


@pytest.mark.usefixtures("_restore_discord_urls")
async def test_discord_refused_servers_get_no_answer_and_are_counted(
        default_bot: FAQBot) -> None:
    metrics = Metrics()
    service = FAQService(default_bot, metrics=metrics)
    async with FakeDiscord(token=DISCORD_TOKEN, guild_ids=(ALLOWED_GUILD, REFUSED_GUILD)) as fake, \
            serving(fake, service, allowed_guilds={ALLOWED_GUILD}):
        notices = []
        for number in range(10):
            asker = (500 + number) << 22
            ask = await fake.push_interaction(
                APPLICATION_COMMAND, slash(fake, "ask", question="Qu'est-ce que l'AMIAD ?"),
                guild_id=REFUSED_GUILD, user_id=asker)
            button = {"type": 2, "style": 2, "label": "?", "custom_id": "faqbot:a:amiad:fr"}
            message = make_message(fake.next_id(), fake.channel_of(REFUSED_GUILD),
                                   fake.bot_user, "", guild_id=REFUSED_GUILD,
                                   body={"components": [{"type": 1, "components": [button]}]})
            clicked = await fake.push_interaction(
                MESSAGE_COMPONENT, click("faqbot:a:amiad:fr"), guild_id=REFUSED_GUILD,
                user_id=asker, message=message)
            typing = await fake.push_interaction(
                AUTOCOMPLETE, autocomplete(fake, "ask", "question", "ami"),
                guild_id=REFUSED_GUILD, user_id=asker)
            await fake.push_message("amiad ?", guild_id=REFUSED_GUILD, mention_bot=True,
                                    author_id=asker)
            for interaction in (ask, clicked):
                notices.append((await fake.wait_for_callback(interaction)).body)
            choices = (await fake.wait_for_callback(typing)).body["data"]["choices"]
            assert choices == []
        allowed = await fake.push_interaction(
            APPLICATION_COMMAND, slash(fake, "ask", question="Qu'est-ce que l'AMIAD ?"),
            guild_id=ALLOWED_GUILD)
        answer = (await fake.wait_for_callback(allowed)).body["data"]
        direct = await fake.push_interaction(
            APPLICATION_COMMAND, slash(fake, "ask", question="Qu'est-ce que l'AMIAD ?"))
        in_private = (await fake.wait_for_callback(direct)).body["data"]
    posts = [call for call in fake.calls if call.path.startswith(("/channels/", "/webhooks/"))]
    report(Figures("discord allow-list", sent=42, answered=2,
                   refused=refusals(metrics, "discord")))
    assert all((notice["data"]["content"], notice["data"]["flags"])
               == (ui_text("not_here", "fr"), EPHEMERAL) for notice in notices)
    assert all(set(notice["data"]) <= {"content", "flags", "allowed_mentions", "tts"}
               for notice in notices)  # nothing else: no answer, no buttons
    assert not posts  # no mention answered, no follow-up anywhere
    assert answer["embeds"] and in_private["embeds"]  # allowed server and direct messages
    assert refusals(metrics, "discord") == 40  # slash, click, autocomplete and mention, x10


async def test_webhook_refuses_requests_without_its_secret(
        api: FakeTelegramAPI, default_bot: FAQBot, monkeypatch: pytest.MonkeyPatch) -> None:
    # The secret is random in production; fixed here so that the log scanner knows it.
    monkeypatch.setattr(receiving.secrets, "token_urlsafe", lambda _=None: WEBHOOK_SECRET)
    port = free_port()
    options = WebhookOptions(url=f"http://127.0.0.1:{port}/telegram/hook",
                                          port=port)
    statuses: list[int] = []
    async with telegram_serving(api, default_bot, webhook=options):
        assert api.webhook is not None and api.webhook.secret == WEBHOOK_SECRET
        for number in range(30):
            intruder = message_update("Qu'est-ce que l'AMIAD ?", sender=user(420_000 + number))
            secret = None if number % 3 == 0 else ("wrong" if number % 3 == 1
                                                   else WEBHOOK_SECRET.upper())
            statuses.append(await api.push_webhook(intruder, secret=secret))
        for number in range(10):
            genuine = message_update("Qu'est-ce que l'AMIAD ?", sender=user(430_000 + number))
            assert await api.push_webhook(genuine, secret=WEBHOOK_SECRET) == 200
        await api.wait_until(lambda: len(api.calls_to("sendMessage")) >= 10, timeout=60)
    answered = {call.params["chat_id"] for call in api.calls_to("sendMessage")}
    report(Figures("telegram webhook secret", sent=40, answered=len(answered),
                   refused=statuses.count(403)))
    assert statuses == [403] * 30
    assert answered == set(range(430_000, 430_010))


def test_the_log_scanner_catches_what_it_looks_for() -> None:
    # The suite's promise that no log line holds a secret is only as good as this scanner.
    scanner = LogScanner([TELEGRAM_TOKEN])
    logger = logging.getLogger("reliability.scanner-check")
    logger.propagate = False
    logger.addHandler(scanner)
    try:
        logger.warning("GET /bot%s/getMe", TELEGRAM_TOKEN)
        try:
            raise RuntimeError(f"while calling /bot{TELEGRAM_TOKEN}/sendMessage")
        except RuntimeError:
            logger.exception("a failure")
        logger.warning("question: %s", "amiad\u202e\x00")
        logger.warning("clean line")
    finally:
        logger.removeHandler(scanner)
    assert len(scanner.leaks) == 2
    assert len(scanner.unescaped) == 1
    assert scanner.lines >= 4
