"""The Discord front door: the real discord.py bot against a fake gateway and REST API.

Every test runs `discord_client.serve` on real loopback sockets; after each one, every message the
bot sent is checked for restricted mentions and Discord's size limits, and the logs for the
token.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import discord
import pytest
from discord.gateway import DiscordWebSocket

from bots.discord import client as discord_client
from bots.frontdoor.texts import ui_text
from core import ConfigurationError, FAQBot
from tests.auxil.discord import (
    TOKEN,
    autocomplete,
    choose,
    click,
    custom_ids,
    select_options,
    sends_message,
    sent,
    serving,
    settings_for,
    slash,
)
from tests.auxil.engine import AMBIGUOUS
from tests.fakes.discord_api import (
    APPLICATION_COMMAND,
    AUTOCOMPLETE,
    EPHEMERAL,
    IDENTIFY,
    MESSAGE_COMPONENT,
    RESUME,
    FakeDiscord,
    Fault,
    RecordedCall,
)
from tests.fakes.engine import FailingBot

GUILD = 1001 << 22
OTHER_GUILD = 1002 << 22
MESSAGE_CONTENT_INTENT = 1 << 15
REPO = Path(__file__).resolve().parents[3]


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _restore_discord_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    # build_client points these process-wide class attributes at the fake; undo it afterwards.
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    monkeypatch.setattr(DiscordWebSocket, "DEFAULT_GATEWAY", DiscordWebSocket.DEFAULT_GATEWAY)


@pytest.fixture(autouse=True)
def _token_never_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.DEBUG)
    yield
    assert TOKEN not in caplog.text
    assert all(TOKEN not in record.getMessage() for record in caplog.records)


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(token=TOKEN, guild_ids=(GUILD,)) as server:
        yield server
        for call in server.calls:
            if sends_message(call):
                _assert_safe_message(sent(call))


def _assert_safe_message(message: dict[str, Any]) -> None:
    mentions = message.get("allowed_mentions")
    assert isinstance(mentions, dict), message
    assert mentions["parse"] == [], message  # no @everyone, @here, role or user pings
    assert "roles" not in mentions and "users" not in mentions, message
    assert len(str(message.get("content") or "")) <= 2000
    for embed in message.get("embeds") or []:
        assert len(embed.get("description", "")) <= 4096
        assert len(embed.get("title", "")) <= 256


async def ask_call(fake: FakeDiscord, question: str, *, locale: str = "fr",
                   guild_id: int | None = GUILD, user_id: int = 77 << 22,
                   **options: Any) -> RecordedCall:
    """Send /ask and return its callback."""
    interaction = await fake.push_interaction(
        APPLICATION_COMMAND, slash(fake, "ask", question=question, **options), locale=locale,
        guild_id=guild_id, user_id=user_id)
    call = await fake.wait_for_callback(interaction)
    assert call.body["type"] == 4
    return call


async def ask(fake: FakeDiscord, question: str, **context: Any) -> dict[str, Any]:
    """Send /ask and return the message of its callback."""
    return sent(await ask_call(fake, question, **context))


def created(callback: RecordedCall) -> dict[str, Any]:
    """The message, with its id, that the fake created for an interaction callback."""
    return copy.deepcopy(callback.response["resource"]["message"])


async def component(fake: FakeDiscord, data: dict[str, Any], message: dict[str, Any],
                    *, locale: str = "fr") -> dict[str, Any]:
    """Click or choose on a message the bot sent; return the message of the answer."""
    interaction = await fake.push_interaction(MESSAGE_COMPONENT, data, guild_id=GUILD,
                                              locale=locale, message=message)
    return sent(await fake.wait_for_callback(interaction))


# -- configuration -----------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "not a token at all",
                                   TOKEN.replace(".", ""), TOKEN + " extra"],
                         ids=["empty", "short", "tiny-parts", "words", "no-dots", "extra"])
def test_malformed_token_refused_without_echo(token: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        discord_client.check_token(token)
    assert "DISCORD_BOT_TOKEN" in str(caught.value)
    assert not token or token not in str(caught.value)


def test_token_with_bot_prefix_explained() -> None:
    with pytest.raises(ConfigurationError, match="'Bot ' prefix") as caught:
        discord_client.check_token("Bot " + TOKEN)
    assert TOKEN not in str(caught.value)
    discord_client.check_token(TOKEN)


async def test_refused_token_is_a_configuration_error(tiny_bot: FAQBot) -> None:
    async with FakeDiscord(token=TOKEN.replace("GaBcDe", "XxXxXx")) as server:
        with pytest.raises(ConfigurationError, match="refused") as caught:
            await discord_client.serve(tiny_bot, settings_for(server), asyncio.Event())
    assert TOKEN not in str(caught.value)


async def test_missing_token(tiny_bot: FAQBot, fake: FakeDiscord) -> None:
    settings = settings_for(fake).model_copy(update={"discord_bot_token": None})
    with pytest.raises(ConfigurationError, match="DISCORD_BOT_TOKEN is not set"):
        await discord_client.serve(tiny_bot, settings, asyncio.Event())


# -- commands ----------------------------------------------------------------------------------


async def test_command_sync_payload(fake: FakeDiscord, tiny_bot: FAQBot) -> None:
    async with serving(fake, tiny_bot):
        sync = await fake.wait_for_call(lambda c: c.method == "PUT")
    assert sync.path == f"/applications/{fake.application_id}/commands"  # global sync
    commands = {command["name"]: command for command in sync.body}
    assert set(commands) == {"ask", "faq"}
    ask_command = commands["ask"]
    assert ask_command["name_localizations"] == {"fr": "demander"}
    assert ask_command["description_localizations"] == {"fr": "Poser une question à la FAQ"}
    question, private = ask_command["options"]
    assert (question["name"], question["type"], question["required"]) == ("question", 3, True)
    assert question["autocomplete"] is True
    assert question["description_localizations"] == {"fr": "Votre question"}
    assert (private["name"], private["type"], private["required"]) == ("private", 5, False)
    assert private["name_localizations"] == {"fr": "privé"}
    assert commands["faq"]["description_localizations"] == {
        "fr": "Parcourir les questions auxquelles je sais répondre"}
    identify = next(frame for frame in fake.gateway_frames if frame.op == IDENTIFY)
    assert identify.data["intents"] & MESSAGE_CONTENT_INTENT == 0  # no privileged intent
    assert identify.data["token"] == "[token]"  # the fake checked it, then masked it


async def test_guild_sync_when_a_guild_is_set(fake: FakeDiscord, tiny_bot: FAQBot) -> None:
    async with serving(fake, tiny_bot, discord_guild=GUILD):
        sync = await fake.wait_for_call(lambda c: c.method == "PUT")
        assert sync.path == f"/applications/{fake.application_id}/guilds/{GUILD}/commands"
        reply = await ask(fake, "horaires")
    assert reply["embeds"][0]["description"] == "Ouvert de 9 h à 17 h."


async def test_ask_in_french_and_english(fake: FakeDiscord, default_bot: FAQBot) -> None:
    async with serving(fake, default_bot):
        french = await ask(fake, "c'est quoi l'AMIAD ?", locale="en-US")
        english = await ask(fake, "what is AMIAD?", locale="fr")
        by_locale = await ask(fake, "AMIAD", locale="en-GB")
    amiad = default_bot.kb.intent("amiad")
    assert amiad is not None
    assert french["embeds"][0]["title"] == amiad.question["fr"]
    assert french["embeds"][0]["description"] == amiad.answer["fr"]
    assert english["embeds"][0]["title"] == amiad.question["en"]
    assert english["embeds"][0]["description"] == amiad.answer["en"]
    # No clear language in the question: the user's Discord locale decides.
    assert by_locale["embeds"][0]["description"] == amiad.answer["en"]
    assert not french.get("flags")  # public by default
    related = custom_ids(french)[:-2]  # then "helpful" and "not helpful"
    assert related and all(cid.startswith("faqbot:a:") and cid.endswith(":fr")
                           for cid in related)


async def test_ask_privately(fake: FakeDiscord, tiny_bot: FAQBot) -> None:
    async with serving(fake, tiny_bot):
        reply = await ask(fake, "vous livrez ?", private=True)
    assert reply["flags"] == EPHEMERAL
    assert reply["embeds"][0]["description"] == "Oui, sous 48 heures."


async def test_autocomplete_ranks_questions_in_the_users_language(
        fake: FakeDiscord, tiny_bot: FAQBot) -> None:
    async with serving(fake, tiny_bot):
        typing_fr = await fake.push_interaction(
            AUTOCOMPLETE, autocomplete(fake, "ask", "question", "livr"), locale="fr")
        typing_en = await fake.push_interaction(
            AUTOCOMPLETE, autocomplete(fake, "ask", "question", ""), locale="en-US")
        french = (await fake.wait_for_callback(typing_fr)).body
        english = (await fake.wait_for_callback(typing_en)).body
        chosen = french["data"]["choices"][0]["value"]
        answer = await ask(fake, chosen)
    assert french["type"] == english["type"] == 8
    assert french["data"]["choices"][0]["name"] == "Livrez-vous à domicile ?"
    assert {c["name"] for c in english["data"]["choices"]} == {
        "What are the opening hours?", "Where is the shop?", "Do you deliver?"}
    assert all(len(c["name"]) <= 100 and len(c["value"]) <= 100
               for c in french["data"]["choices"])
    assert answer["embeds"][0]["title"] == "Livrez-vous à domicile ?"


async def test_autocomplete_holds_at_most_25_choices(fake: FakeDiscord,
                                                     default_bot: FAQBot) -> None:
    async with serving(fake, default_bot):
        typing = await fake.push_interaction(
            AUTOCOMPLETE, autocomplete(fake, "ask", "question", "accord " * 900))
        choices = (await fake.wait_for_callback(typing)).body["data"]["choices"]
    assert 0 < len(choices) <= 25


async def test_faq_menu_then_a_choice(fake: FakeDiscord, tiny_bot: FAQBot) -> None:
    async with serving(fake, tiny_bot):
        interaction = await fake.push_interaction(APPLICATION_COMMAND, slash(fake, "faq"),
                                                  guild_id=GUILD, locale="en-US")
        call = await fake.wait_for_callback(interaction)
        menu = sent(call)
        answer = await component(fake, choose(custom_ids(menu)[0], "address"), created(call),
                                 locale="en-US")
    assert sent(call)["content"] == ui_text("topics_title", "en")
    assert custom_ids(menu) == ["faqbot:t:en:0"]
    assert [(o["label"], o["value"]) for o in select_options(menu)] == [
        ("What are the opening hours?", "opening_hours"), ("Where is the shop?", "address"),
        ("Do you deliver?", "delivery")]
    assert answer["embeds"][0]["title"] == "Where is the shop?"
    assert answer["embeds"][0]["description"] == "At 1 rue de la Paix."


async def test_clarify_buttons_work_after_a_restart(fake: FakeDiscord,
                                                    clarifying_bot: FAQBot) -> None:
    async with serving(fake, clarifying_bot):
        clarify_call = await ask_call(fake, AMBIGUOUS)
    # A new process: the buttons of the old message still answer (persistent custom ids).
    async with serving(fake, clarifying_bot):
        answer = await component(fake, click("faqbot:a:address:fr"), created(clarify_call))
        none = await component(fake, click("faqbot:n:fr"), created(clarify_call))
        # A message sent before both platforms' payloads became one wrote "none:".
        before = created(clarify_call)
        before["components"][0]["components"][2]["custom_id"] = "faqbot:none:fr"
        none_before = await component(fake, click("faqbot:none:fr"), before)
        # A button whose topic left the knowledge base since the message was sent.
        old = created(clarify_call)
        old["components"][0]["components"][0]["custom_id"] = "faqbot:a:removed_topic:fr"
        stale = await component(fake, click("faqbot:a:removed_topic:fr"), old)
    clarify = sent(clarify_call)
    ids = custom_ids(clarify)
    assert clarify["content"] == "Je ne suis pas sûr d'avoir compris. Vouliez-vous dire :"
    assert ids == ["faqbot:a:address:fr", "faqbot:a:opening_hours:fr", "faqbot:n:fr"]
    labels = [c["label"] for row in clarify["components"] for c in row["components"]]
    assert labels == ["Où se trouve le magasin ?", "Quels sont les horaires d'ouverture ?",
                      ui_text("none_of_these", "fr")]
    assert answer["embeds"][0]["description"] == "Au 1 rue de la Paix."
    assert none["content"] == none_before["content"] == "Je ne sais pas répondre à cela."
    assert [o["value"] for o in select_options(none)] == ["opening_hours", "address",
                                                          "delivery"]
    assert (stale["content"], stale["flags"]) == (ui_text("stale_button", "fr"), EPHEMERAL)


# -- messages ----------------------------------------------------------------------------------


async def test_mention_answered_in_a_reply_and_other_messages_ignored(
        fake: FakeDiscord, tiny_bot: FAQBot) -> None:
    channel_posts = "/channels/"
    async with serving(fake, tiny_bot):
        await fake.push_message("quels sont vos horaires ?", guild_id=GUILD)  # not addressed
        await fake.push_message("horaires ?", guild_id=GUILD, mention_bot=True,
                                author_is_bot=True)  # bots never answer bots: no loops
        mention = await fake.push_message("où est le magasin ?", guild_id=GUILD,
                                          mention_bot=True)
        reply = await fake.wait_for_call(lambda c: c.path.startswith(channel_posts))
    posts = [call for call in fake.calls if call.path.startswith(channel_posts)]
    assert posts == [reply]
    assert reply.path == f"/channels/{fake.channel_of(GUILD)}/messages"
    assert reply.body["message_reference"]["message_id"] == int(mention["id"])
    assert reply.body["embeds"][0]["description"] == "Au 1 rue de la Paix."


async def test_direct_message_answered(fake: FakeDiscord, tiny_bot: FAQBot) -> None:
    user = 91 << 22
    async with serving(fake, tiny_bot):
        await fake.push_message("Do you deliver?", author_id=user)
        reply = await fake.wait_for_call(lambda c: c.path.startswith("/channels/"))
    assert reply.path == f"/channels/{fake.dm_channel_of(user)}/messages"
    assert reply.body["embeds"][0]["description"] == "Yes, within 48 hours."


async def test_mentions_in_questions_never_ping(fake: FakeDiscord, tiny_bot: FAQBot) -> None:
    async with serving(fake, tiny_bot):
        await fake.push_message("@everyone <@&123> help", guild_id=GUILD, mention_bot=True)
        reply = await fake.wait_for_call(lambda c: c.path.startswith("/channels/"))
        slash_reply = await ask(fake, "@everyone @here <@&123> aide")
    for message in (reply.body, slash_reply):
        assert message["allowed_mentions"] == {"parse": [], "replied_user": True}
    assert slash_reply["content"] == "Je réponds aux questions sur le magasin."


async def test_five_thousand_character_question(fake: FakeDiscord, tiny_bot: FAQBot) -> None:
    question = ("horaires " * 600)[:5000]
    async with serving(fake, tiny_bot):
        slash_reply = await ask(fake, question)
        await fake.push_message(question, guild_id=GUILD, mention_bot=True)
        message_reply = await fake.wait_for_call(lambda c: c.path.startswith("/channels/"))
    assert slash_reply["embeds"][0]["description"] == "Ouvert de 9 h à 17 h."
    assert message_reply.body["embeds"][0]["description"] == "Ouvert de 9 h à 17 h."


async def test_long_answers_are_split_within_limits(fake: FakeDiscord, tmp_path: Path,
                                                    tiny_kb_path: Path) -> None:
    long_answer = " ".join(f"Phrase {n} de la réponse." for n in range(400))  # ~9,000 chars
    long_fallback = " ".join(f"Ligne {n} du repli." for n in range(250))  # ~4,500 chars
    text = tiny_kb_path.read_text(encoding="utf-8")
    text = text.replace('"Au 1 rue de la Paix."', f'"{long_answer}"')
    text = text.replace('"Je ne sais pas répondre à cela."', f'"{long_fallback}"')
    kb_path = tmp_path / "long.yaml"
    kb_path.write_text(text, encoding="utf-8")
    def followups() -> list[dict[str, Any]]:
        return [sent(call) for call in fake.calls if call.path.startswith("/webhooks/")]

    async with serving(fake, FAQBot.from_path(kb_path)):
        first = await ask(fake, "adresse du magasin")
        await fake.wait_until(lambda: len(followups()) == 2)  # 9,000 characters: 3 embeds
        fallback = await ask(fake, "raconte une blague")
        await fake.wait_until(lambda: len(followups()) == 4)  # 4,500 characters: 3 messages
    answer_rest, fallback_rest = followups()[:2], followups()[2:]
    pieces = [first, *answer_rest]
    assert " ".join(m["embeds"][0]["description"] for m in pieces) == long_answer
    assert first["embeds"][0]["title"] == "Où se trouve le magasin ?"
    assert all("title" not in m["embeds"][0] for m in answer_rest)
    assert " ".join(m["content"] for m in [fallback, *fallback_rest]) == long_fallback
    assert not fallback.get("components")
    assert custom_ids(fallback_rest[-1]) == ["faqbot:t:fr:0"]  # the menu rides on the last piece


# -- failures, limits and the gateway ---------------------------------------------------------


async def test_failing_handler_then_a_good_answer(fake: FakeDiscord, tiny_bot: FAQBot,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    failing = FailingBot(tiny_bot.kb, tiny_bot.classifier)
    async with serving(fake, failing):
        error = await ask(fake, "boom", locale="en-US")
        await fake.push_message("boom", guild_id=GUILD, mention_bot=True)
        message_error = await fake.wait_for_call(lambda c: c.path.startswith("/channels/"))
        good = await ask(fake, "horaires")
    assert (error["content"], error["flags"]) == (ui_text("error", "en"), EPHEMERAL)
    assert message_error.body["content"] == ui_text("error", "fr")
    assert good["embeds"][0]["description"] == "Ouvert de 9 h à 17 h."
    failures = [r for r in caplog.records if r.name.startswith("bots.discord.")
                and r.levelno >= logging.ERROR]
    assert len(failures) == 2 and all(r.exc_info for r in failures)


async def test_http_429_and_500_are_retried_by_discord_py(fake: FakeDiscord,
                                                          tiny_bot: FAQBot) -> None:
    async with serving(fake, tiny_bot):
        fake.add_fault(Fault(429, method="POST", path=r"/callback$", retry_after=0.05))
        limited = await ask(fake, "horaires")
        fake.add_fault(Fault(500, method="POST", path=r"/channels/"))
        await fake.push_message("livraison ?", guild_id=GUILD, mention_bot=True)
        posted = await fake.wait_for_call(lambda c: c.path.startswith("/channels/")
                                          and c.status == 200)
    statuses = [c.status for c in fake.calls if c.path.endswith("/callback")]
    assert statuses == [429, 200]
    assert limited["embeds"][0]["description"] == "Ouvert de 9 h à 17 h."
    assert [c.status for c in fake.calls if c.path.startswith("/channels/")] == [500, 200]
    assert posted.body["embeds"][0]["description"] == "Oui, sous 48 heures."


async def test_gateway_reconnect_resumes_the_session(fake: FakeDiscord,
                                                     tiny_bot: FAQBot) -> None:
    async with serving(fake, tiny_bot):
        session = await fake.send_reconnect()
        await fake.wait_until(lambda: session.resumed == 1)
        reply = await ask(fake, "horaires")
    resume = next(frame for frame in fake.gateway_frames if frame.op == RESUME)
    assert resume.data["session_id"] == session.session_id
    assert sum(frame.op == IDENTIFY for frame in fake.gateway_frames) == 1  # resumed, not new
    assert reply["embeds"][0]["description"] == "Ouvert de 9 h à 17 h."


async def test_allow_list_refuses_other_guilds(fake: FakeDiscord, tiny_bot: FAQBot) -> None:
    async with serving(fake, tiny_bot, allowed_guilds={OTHER_GUILD}):
        refused = await ask(fake, "horaires", locale="en-US")
        await fake.push_message("horaires", guild_id=GUILD, mention_bot=True)  # ignored
        dm = await ask(fake, "horaires", guild_id=None)  # direct messages stay open
        typing = await fake.push_interaction(
            AUTOCOMPLETE, autocomplete(fake, "ask", "question", "hor"), guild_id=GUILD)
        suggestions = (await fake.wait_for_callback(typing)).body["data"]["choices"]
    assert (refused["content"], refused["flags"]) == (ui_text("not_here", "en"), EPHEMERAL)
    assert dm["embeds"][0]["description"] == "Ouvert de 9 h à 17 h."
    assert suggestions == []
    assert not [c for c in fake.calls if c.path.startswith("/channels/")]


async def test_rate_limit_sends_one_private_notice(fake: FakeDiscord, tiny_bot: FAQBot) -> None:
    flooder, other = 5 << 22, 6 << 22
    async with serving(fake, tiny_bot, rate_limit_messages=2, rate_limit_seconds=600):
        replies = [await ask(fake, "horaires", user_id=flooder) for _ in range(3)]
        dropped = await fake.push_interaction(
            APPLICATION_COMMAND, slash(fake, "ask", question="horaires"), guild_id=GUILD,
            user_id=flooder)
        unaffected = await ask(fake, "horaires", user_id=other)  # handled after `dropped`
    assert [bool(r.get("embeds")) for r in replies] == [True, True, False]
    assert (replies[2]["content"], replies[2]["flags"]) == (ui_text("rate_limited", "fr"),
                                                            EPHEMERAL)
    assert not [c for c in fake.calls if c.path == dropped.callback_path]
    assert unaffected["embeds"][0]["description"] == "Ouvert de 9 h à 17 h."


@pytest.mark.parametrize(("shard_count", "shard_ids", "identified"), [
    (0, None, [0, 1]),  # as many shards as /gateway/bot recommends: one here
    (2, [1], [1, 2]),  # this process runs shard 1 of 2 (another process would run shard 0)
])
async def test_sharded_bot(tiny_bot: FAQBot, shard_count: int, shard_ids: list[int] | None,
                           identified: list[int]) -> None:
    # One shard per case: discord.py waits five seconds between two IDENTIFYs, as Discord asks.
    shard_id, total = identified
    guilds = (GUILD, OTHER_GUILD)
    async with (FakeDiscord(token=TOKEN, guild_ids=guilds) as server,
                serving(server, tiny_bot, shard_count=shard_count, shard_ids=shard_ids,
                        first_shard=shard_id)):
        mine = next(guild for guild in guilds if server.shard_of(guild, total) == shard_id)
        reply = await ask(server, "horaires", guild_id=mine)
    assert [f.data["shard"] for f in server.gateway_frames if f.op == IDENTIFY] == [identified]
    assert any(call.path == "/gateway/bot" for call in server.calls) == (shard_count == 0)
    assert reply["embeds"][0]["description"] == "Ouvert de 9 h à 17 h."


@pytest.mark.parametrize(("shard_count", "shard_ids", "problem"), [
    (None, [0], "needs --shards"), (0, [0], "needs --shards"), (-1, None, "negative"),
    (2, [2], "between 0 and 1"), (2, [], "between 0 and 1")])
def test_bad_shard_options(tiny_bot: FAQBot, shard_count: int | None,
                           shard_ids: list[int] | None, problem: str) -> None:
    with pytest.raises(ConfigurationError, match=problem):
        discord_client.build_client(tiny_bot, settings_for(FakeDiscord()), shard_count=shard_count,
                                 shard_ids=shard_ids)


@pytest.mark.parametrize(("field", "url", "variable"), [
    ("discord_api_url", "127.0.0.1:80/api", "FAQBOT_DISCORD_API_URL"),
    ("discord_gateway_url", "http://127.0.0.1/gateway", "FAQBOT_DISCORD_GATEWAY_URL")])
def test_bad_urls_refused(tiny_bot: FAQBot, field: str, url: str, variable: str) -> None:
    settings = settings_for(FakeDiscord()).model_copy(update={field: url})
    with pytest.raises(ConfigurationError, match=variable):
        discord_client.build_client(tiny_bot, settings)


# -- the command line --------------------------------------------------------------------------


async def test_faqbot_run_discord_answers_and_stops_on_sigint(fake: FakeDiscord,
                                                              tiny_kb_path: Path) -> None:
    env = os.environ | {"DISCORD_BOT_TOKEN": TOKEN, "FAQBOT_DISCORD_API_URL": fake.api_url,
                        "FAQBOT_DISCORD_GATEWAY_URL": fake.gateway_url,
                        "NO_PROXY": "127.0.0.1,localhost"}
    env.pop("TELEGRAM_BOT_TOKEN", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bots.cli", "run", "discord", "--kb", str(tiny_kb_path),
        cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        await fake.wait_for_session(timeout=60)
        interaction = await fake.push_interaction(
            APPLICATION_COMMAND, slash(fake, "ask", question="Do you deliver?"), guild_id=GUILD)
        reply = sent(await fake.wait_for_callback(interaction))
        process.send_signal(signal.SIGINT)
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, stderr.decode()
    assert reply["embeds"][0]["description"] == "Yes, within 48 hours."
    assert TOKEN.encode() not in stderr


@pytest.mark.parametrize("token", ["Bot " + TOKEN, TOKEN.replace("GaBcDe", "XxXxXx")],
                         ids=["malformed", "refused"])
async def test_faqbot_run_discord_bad_token_exits_2(fake: FakeDiscord, tiny_kb_path: Path,
                                                   token: str) -> None:
    # A token with the "Bot " prefix is malformed; the other is well formed but refused.
    env = os.environ | {"DISCORD_BOT_TOKEN": token, "FAQBOT_DISCORD_API_URL": fake.api_url,
                        "FAQBOT_DISCORD_GATEWAY_URL": fake.gateway_url}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bots.cli", "run", "discord", "--kb", str(tiny_kb_path),
        cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    errors = [line for line in stderr.decode().splitlines() if "error" in line.lower()]
    assert process.returncode == 2, stderr.decode()
    assert len(errors) == 1 and "DISCORD_BOT_TOKEN" in errors[0]
    assert token.removeprefix("Bot ").encode() not in stderr
