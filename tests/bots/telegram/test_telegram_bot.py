"""The Telegram front door, run for real (python-telegram-bot, HTTP on 127.0.0.1) on a fake API."""

from __future__ import annotations

import asyncio
import hmac
import html
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from bots.frontdoor.replies import Choice, layout
from bots.frontdoor.texts import ui_text
from bots.metrics import Metrics
from bots.service import FAQService
from bots.telegram import receiving
from bots.telegram.app import MAX_WAITING_PER_CHAT, serve
from bots.telegram.config import WebhookOptions, api_base_url, check_token
from bots.telegram.replying import html_pieces, render
from core import ConfigurationError, FAQBot, load_knowledge_base
from tests.auxil.engine import AMBIGUOUS, pinned_bot
from tests.auxil.network import free_port
from tests.auxil.telegram import (
    TOKEN,
    bot_message,
    callback_update,
    entities,
    group_chat,
    inline_update,
    message_update,
    serving,
    settings_for,
    user,
)
from tests.fakes.telegram_api import BOT_USERNAME, Call, FakeTelegramAPI, Fault

MENTION = f"@{BOT_USERNAME}"
REPO = Path(__file__).resolve().parents[3]


# ---------------------------------------------------------------------------------------------
# Fixtures


class _LogRecorder(logging.Handler):
    """Keeps every record, formatted with its traceback, to search for secrets."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.lines.append(self.format(record))


@pytest.fixture(scope="module", autouse=True)
def logs() -> Iterator[_LogRecorder]:
    """Every log line of this module, at DEBUG; the token must appear in none of them."""
    root = logging.getLogger()
    recorder, previous_level = _LogRecorder(), root.level
    root.addHandler(recorder)
    root.setLevel(logging.DEBUG)
    yield recorder
    root.removeHandler(recorder)
    root.setLevel(previous_level)
    leaks = [line for line in recorder.lines if TOKEN in line]
    assert not leaks, f"{len(leaks)} log lines hold the token, the first from {leaks[0][:30]}"


@pytest.fixture(scope="module")
def html_bot(tiny_kb_path: Path, tmp_path_factory: pytest.TempPathFactory) -> FAQBot:
    """The tiny shop knowledge base, but its delivery answer has HTML-like text, and is very
    long in English; pinned, so that `AMBIGUOUS` is a clarification (tests/auxil/engine.py)."""
    kb = yaml.safe_load(tiny_kb_path.read_text(encoding="utf-8"))
    delivery = next(intent for intent in kb["intents"] if intent["id"] == "delivery")
    delivery["answer"]["fr"] = "Oui, sous 48 heures <sauf dimanche> & jours fériés."
    paragraph = "Terms <and> conditions & fees: delivery within 48 hours, anywhere. "
    delivery["answer"]["en"] = (paragraph * 12 + "\n\n") * 8  # about 6,500 characters
    path = tmp_path_factory.mktemp("kb") / "shop.yaml"
    path.write_text(yaml.safe_dump(kb, allow_unicode=True), encoding="utf-8")
    return pinned_bot(load_knowledge_base(path))


def to_chat(chat_id: int) -> Any:
    return lambda call: call.params["chat_id"] == chat_id


def buttons(call: Call) -> list[tuple[str, str]]:
    """(label, callback_data) of every button of a sent message."""
    markup = call.params.get("reply_markup") or {"inline_keyboard": []}
    return [(button["text"], button["callback_data"])
            for row in markup["inline_keyboard"] for button in row]


def sent_texts(api: FakeTelegramAPI, chat_id: int) -> list[str]:
    return [call.params["text"] for call in api.calls_to("sendMessage")
            if call.params["chat_id"] == chat_id and call.status == 200]


# ---------------------------------------------------------------------------------------------
# Configuration


@pytest.mark.parametrize("token", ["", "123456", "abc:defghijklmnopqrstuvwxyz0123",
                                   "123:short", " 123456789:AAFakeTokenForTestsOnly-0123456789"])
def test_malformed_token_is_refused_without_echo(token: str) -> None:
    with pytest.raises(ConfigurationError, match="TELEGRAM_BOT_TOKEN is malformed") as caught:
        check_token(token)
    assert not token.strip() or token.strip() not in str(caught.value)


def test_well_formed_token_passes() -> None:
    check_token(TOKEN)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8081/bot", "http://127.0.0.1:8081/bot/",
                                 "http://127.0.0.1:8081", "http://127.0.0.1:8081/"])
def test_api_base_url_tolerates_slashes(url: str) -> None:
    assert api_base_url(url) == "http://127.0.0.1:8081/bot"


def test_every_button_fits_in_callback_data(default_bot: FAQBot) -> None:
    for intent in default_bot.kb.intents:
        for lang in default_bot.kb.languages:
            assert len(Choice(intent.question[lang], lang, intent.id).payload.encode()) <= 64
    assert len(Choice(ui_text("none_of_these", "fr"), "fr").payload.encode()) <= 64


def test_keyboards_are_built_once_and_follow_the_reply(default_bot: FAQBot) -> None:
    fallback = render(layout(default_bot.fallback("fr"))).keyboard
    again = render(layout(default_bot.fallback("fr"))).keyboard
    assert fallback is not None and again is not None
    assert all(mine is its for mine, its in zip(fallback["inline_keyboard"],
                                                  again["inline_keyboard"], strict=True))
    english = render(layout(default_bot.fallback("en"))).keyboard
    assert english is not None and english != fallback
    labels = [row[0]["text"] for row in english["inline_keyboard"]]
    assert labels == [topic.question for topic in default_bot.topics("en")][:len(labels)]
    answer = render(layout(default_bot.reply_for("amiad", "fr"))).keyboard
    assert answer is not None and answer != fallback


def test_html_pieces_escape_and_fit() -> None:
    text = "<&>" * 3000  # escaping multiplies the length by more than four
    pieces = html_pieces(text)
    assert all(len(piece) <= 4096 for piece in pieces)
    assert "".join(html.unescape(piece) for piece in pieces) == text


async def test_wrong_token_is_a_configuration_error(api: FakeTelegramAPI,
                                                    html_bot: FAQBot) -> None:
    settings = settings_for(api, telegram_bot_token="987654321:AnotherWellFormedButUnknownTok")
    with pytest.raises(ConfigurationError, match="refused TELEGRAM_BOT_TOKEN"):
        await serve(html_bot, settings, asyncio.Event())


# ---------------------------------------------------------------------------------------------
# Private chats, commands, buttons


async def test_start_publishes_commands_in_french_and_english(api: FakeTelegramAPI,
                                                              html_bot: FAQBot) -> None:
    async with serving(api, html_bot):
        update_id = api.push(message_update("horaires", sender=user(1001)))
        await api.wait_for("sendMessage")
    menus = {call.params.get("language_code"): [command["command"]
                                               for command in call.params["commands"]]
             for call in api.calls_to("setMyCommands")}
    assert menus == {"fr": ["start", "help", "faq", "ask"], "en": ["start", "help", "faq", "ask"],
                     None: ["start", "help", "faq", "ask"]}
    deletions = api.calls_to("deleteWebhook")
    assert deletions and deletions[0].params.get("drop_pending_updates") in (None, "false")
    # The last getUpdates confirms what was handled, without a long poll.
    last_poll = api.calls_to("getUpdates")[-1].params
    assert (last_poll["timeout"], last_poll["offset"]) == (0, update_id + 1)


async def test_private_question_gets_the_curated_answer(api: FakeTelegramAPI,
                                                        default_bot: FAQBot) -> None:
    async with serving(api, default_bot):
        api.push(message_update("Qu'est-ce que l'AMIAD ?", sender=user(1001, "en")))
        french = await api.wait_for("sendMessage", to_chat(1001))
        api.push(message_update("What is AMIAD?", sender=user(1002, "fr")))
        english = await api.wait_for("sendMessage", to_chat(1002))
    expected = default_bot.answer("Qu'est-ce que l'AMIAD ?")
    assert expected.kind == "answer"
    assert french.params["parse_mode"] == "HTML"
    assert french.params["text"] == (html.escape(expected.answer, quote=False) + "\n\n"
                                     + ui_text("related", "fr"))
    related = [(s.question, f"a:{s.intent}:fr") for s in expected.suggestions]
    assert buttons(french)[:-2] == related  # then "helpful" and "not helpful"
    assert "reply_parameters" not in french.params  # no quoting in a private chat
    assert english.params["text"].startswith(
        html.escape(default_bot.reply_for("amiad", "en").answer, quote=False))


async def test_start_greets_with_topics_keyboard(api: FakeTelegramAPI,
                                                 default_bot: FAQBot) -> None:
    async with serving(api, default_bot):
        api.push(message_update("/start", sender=user(1001, "en")))
        call = await api.wait_for("sendMessage", to_chat(1001))
    assert call.params["text"] == html.escape(ui_text("start", "en"), quote=False)
    assert buttons(call) == [(topic.question, f"a:{topic.intent}:en")
                             for topic in default_bot.topics("en")]


async def test_faq_and_help_commands(api: FakeTelegramAPI, html_bot: FAQBot) -> None:
    async with serving(api, html_bot):
        api.push(message_update("/faq", sender=user(1001, "fr")))
        topics = await api.wait_for("sendMessage", to_chat(1001))
        api.push(message_update("/help", sender=user(1002, "en")))
        helped = await api.wait_for("sendMessage", to_chat(1002))
    assert topics.params["text"] == ui_text("topics_title", "fr")
    assert [data for _, data in buttons(topics)] == [
        "a:opening_hours:fr", "a:address:fr", "a:delivery:fr"]
    assert MENTION in helped.params["text"] and "/ask" in helped.params["text"]


async def test_unknown_command_gets_help(api: FakeTelegramAPI, html_bot: FAQBot) -> None:
    async with serving(api, html_bot):
        api.push(message_update("/weather", sender=user(1001, "en")))
        call = await api.wait_for("sendMessage", to_chat(1001))
    assert call.params["text"] == ui_text("help", "en").format(bot=BOT_USERNAME)


def _photo(caption: str | None, **kwargs: Any) -> dict[str, Any]:
    update = message_update("", **kwargs)
    photo = update["message"]
    del photo["text"]
    photo["photo"] = [{"file_id": "p1", "file_unique_id": "u1", "width": 90, "height": 90}]
    if caption is not None:
        photo["caption"] = caption
        photo["caption_entities"] = entities(caption)
    return update


async def test_media_is_answered_from_its_caption(api: FakeTelegramAPI, html_bot: FAQBot) -> None:
    group = group_chat()
    async with serving(api, html_bot):
        api.push(_photo(None))
        fallback = await api.wait_for("sendMessage", to_chat(1001))
        api.push(_photo(f"{MENTION} ou etes vous ?", chat=group))
        answer = await api.wait_for("sendMessage", to_chat(group["id"]))
    assert fallback.params["text"] == html_bot.fallback("fr").answer
    assert answer.params["text"] == "Au 1 rue de la Paix."


async def test_topic_button_is_acknowledged_and_answered(api: FakeTelegramAPI,
                                                         html_bot: FAQBot) -> None:
    async with serving(api, html_bot):
        api.push(callback_update("a:opening_hours:en", sender=user(1001, "fr")))
        answered = await api.wait_for("sendMessage", to_chat(1001))
    acknowledgement = api.calls_to("answerCallbackQuery")[0]
    assert "text" not in acknowledgement.params
    assert answered.params["text"] == "Open from 9 am to 5 pm.\n\nSee also:"
    assert buttons(answered) == [("Where is the shop?", "a:address:en")]


async def test_clarify_flow_with_none_of_these(api: FakeTelegramAPI, html_bot: FAQBot) -> None:
    async with serving(api, html_bot):
        api.push(message_update(AMBIGUOUS))
        clarify = await api.wait_for("sendMessage", to_chat(1001))
        mark = len(api.calls)
        api.push(callback_update("n:fr"))
        fallback = await api.wait_for("sendMessage", to_chat(1001), since=mark)
        mark = len(api.calls)
        api.push(callback_update(buttons(clarify)[1][1]))
        chosen = await api.wait_for("sendMessage", to_chat(1001), since=mark)
    reply = html_bot.answer(AMBIGUOUS)
    assert reply.kind == "clarify"
    assert buttons(clarify) == [*[(s.question, f"a:{s.intent}:fr") for s in reply.suggestions],
                                (ui_text("none_of_these", "fr"), "n:fr")]
    assert fallback.params["text"] == html.escape(html_bot.fallback("fr").answer, quote=False)
    assert len(buttons(fallback)) == len(html_bot.topics("fr"))
    assert chosen.params["text"].startswith(
        html_bot.reply_for(reply.suggestions[1].intent, "fr").answer)
    assert len(api.calls_to("answerCallbackQuery")) == 2


@pytest.mark.parametrize("data", ["a:vanished_topic:fr", "garbage", "a::", "n:"])
async def test_stale_button_gets_a_polite_notice(api: FakeTelegramAPI, html_bot: FAQBot,
                                                 data: str) -> None:
    async with serving(api, html_bot):
        api.push(callback_update(data, sender=user(1001, "en")))
        notice = await api.wait_for("answerCallbackQuery")
    assert notice.params["text"] == ui_text("stale_button", "en")
    assert not api.calls_to("sendMessage")


# ---------------------------------------------------------------------------------------------
# Groups


async def test_group_chatter_is_ignored(api: FakeTelegramAPI, html_bot: FAQBot) -> None:
    group = group_chat()
    ignored = [message_update(text, chat=group) for text in
               ("horaires", "/ask@other_bot horaires", "/start@other_bot", "hello @someone")]
    sentinel = message_update(f"{MENTION} livraison", chat=group)
    async with serving(api, html_bot):
        for update in ignored:
            api.push(update)
        api.push(sentinel)  # same chat: handled strictly after the ignored ones
        await api.wait_for("sendMessage", to_chat(group["id"]))
    replies = api.calls_to("sendMessage")
    assert len(replies) == 1
    assert replies[0].params["reply_parameters"]["message_id"] == sentinel["message"]["message_id"]


async def test_group_mention_and_reply_to_bot_are_answered_quoting(api: FakeTelegramAPI,
                                                                  html_bot: FAQBot) -> None:
    group = group_chat()
    mention = message_update(f"{MENTION} ou etes vous ?", chat=group)
    reply = message_update("et les horaires ?", chat=group, reply_to=bot_message(group))
    async with serving(api, html_bot):
        api.push(mention)
        api.push(reply)
        await api.wait_for("sendMessage", lambda call: len(sent_texts(api, group["id"])) == 2)
    first, second = api.calls_to("sendMessage")
    assert first.params["text"] == "Au 1 rue de la Paix."
    assert first.params["reply_parameters"]["message_id"] == mention["message"]["message_id"]
    assert second.params["text"].startswith("Ouvert de 9 h à 17 h.")
    assert second.params["reply_parameters"]["message_id"] == reply["message"]["message_id"]


async def test_ask_command_in_groups(api: FakeTelegramAPI, html_bot: FAQBot) -> None:
    group = group_chat()
    async with serving(api, html_bot):
        api.push(message_update(f"/ask{MENTION} livraison ?", chat=group))
        api.push(message_update("/ask", chat=group))
        api.push(message_update("/ask where is the shop", chat=group))
        await api.wait_for("sendMessage", lambda call: len(sent_texts(api, group["id"])) == 3)
    delivery, usage, address = sent_texts(api, group["id"])
    assert delivery.startswith("Oui, sous 48 heures &lt;sauf dimanche&gt; &amp; jours fériés.")
    assert usage == html.escape(ui_text("ask_usage", "fr"), quote=False)
    assert address == "At 1 rue de la Paix."


# ---------------------------------------------------------------------------------------------
# Inline mode


async def test_inline_query_offers_answers(api: FakeTelegramAPI, html_bot: FAQBot) -> None:
    async with serving(api, html_bot):
        api.push(inline_update("where is the shop", sender=user(1001, "fr")))
        call = await api.wait_for("answerInlineQuery")
    results = call.params["results"]
    ids = [result["id"] for result in results]
    assert ids[0] == "address" and len(set(ids)) == len(ids)
    assert all(result["type"] == "article" and len(result["id"].encode()) <= 64
               for result in results)
    content = results[0]["input_message_content"]
    assert content == {"message_text": "At 1 rue de la Paix.", "parse_mode": "HTML"}
    assert results[0]["title"] == "Where is the shop?"


# ---------------------------------------------------------------------------------------------
# Delivery: flood control, server errors, size, escaping, order


async def test_flood_control_is_honoured_and_the_message_delivered(api: FakeTelegramAPI,
                                                                   html_bot: FAQBot) -> None:
    api.inject("sendMessage", Fault(status=429, retry_after=1))
    async with serving(api, html_bot):
        api.push(message_update("horaires"))
        await api.wait_for("sendMessage", to_chat(1001))
    statuses = [call.status for call in api.calls_to("sendMessage")]
    assert statuses == [429, 200]


async def test_stopping_does_not_wait_out_a_long_flood_pause(api: FakeTelegramAPI,
                                                             html_bot: FAQBot,
                                                             logs: _LogRecorder) -> None:
    api.inject("sendMessage", Fault(status=429, retry_after=50))
    async with serving(api, html_bot):  # would take 50 s to leave if the retry were awaited
        api.push(message_update("horaires"))
        await api.wait_for("sendMessage", status=429)
    abandoned = [record for record in logs.records if record.name == "bots.telegram.handlers"
                 and record.levelno == logging.ERROR and record.exc_info
                 and "RetryAfter" in record.getMessage()]
    assert abandoned, "the undelivered answer must be logged, not dropped silently"


async def test_server_error_is_retried(api: FakeTelegramAPI, html_bot: FAQBot) -> None:
    api.inject("sendMessage", Fault(status=500))
    api.inject("sendMessage", Fault(status=502))
    async with serving(api, html_bot):
        api.push(message_update("horaires"))
        await api.wait_for("sendMessage", to_chat(1001))
    assert [call.status for call in api.calls_to("sendMessage")] == [500, 502, 200]


async def test_6000_character_message_is_answered(api: FakeTelegramAPI, html_bot: FAQBot,
                                                  logs: _LogRecorder) -> None:
    errors_before = sum(record.levelno >= logging.ERROR for record in logs.records)
    async with serving(api, html_bot):
        api.push(message_update("horaires " + "x" * 5991))
        call = await api.wait_for("sendMessage", to_chat(1001))
    assert len(call.params["text"]) <= 4096
    assert sum(record.levelno >= logging.ERROR for record in logs.records) == errors_before


async def test_long_answer_is_split_with_buttons_on_the_last_piece(api: FakeTelegramAPI,
                                                                   html_bot: FAQBot) -> None:
    async with serving(api, html_bot):
        api.push(callback_update("a:delivery:en"))
        api.push(message_update("/faq"))  # same chat: comes after every piece
        await api.wait_for("sendMessage", lambda call: "reply_markup" in call.params
                           and call.params["text"] == ui_text("topics_title", "fr"))
    pieces = sent_texts(api, 1001)[:-1]
    assert len(pieces) >= 2
    assert all(len(piece) <= 4096 for piece in pieces)
    whole = html_bot.reply_for("delivery", "en").answer
    assert " ".join(html.unescape(piece) for piece in pieces).split() == whole.split()


async def test_html_looking_input_and_answers_are_escaped(api: FakeTelegramAPI,
                                                          html_bot: FAQBot) -> None:
    async with serving(api, html_bot):
        api.push(message_update("<b>livrez-vous</b> à domicile & <i>le dimanche</i> ?"))
        api.push(message_update("<script>alert(1)</script>"))
        api.push(message_update(f"/help <b>{MENTION}</b>"))
        await api.wait_for("sendMessage", lambda call: "/ask" in call.params["text"])
    texts = sent_texts(api, 1001)
    assert len(texts) == 3
    assert texts[0].startswith("Oui, sous 48 heures &lt;sauf dimanche&gt; &amp; jours fériés.")
    assert all("<" not in text and ">" not in text for text in texts)


async def test_one_chat_in_order_other_chats_meanwhile(api: FakeTelegramAPI,
                                                       html_bot: FAQBot) -> None:
    release = asyncio.Event()
    api.inject("sendMessage", Fault(status=200, hold=release))  # the first answer hangs
    questions = ["horaires", "adresse", "vous livrez ?"]
    async with serving(api, html_bot):
        for question in questions:
            api.push(message_update(question, sender=user(1001)))
        api.push(message_update("horaires", sender=user(2002)))
        await api.wait_for("sendMessage", to_chat(2002))  # served while chat 1001 waits
        release.set()
        await api.wait_for("sendMessage", lambda call: len(sent_texts(api, 1001)) == 3)
    # Chat 2002 was answered while chat 1001's first answer was held (the wait above), and
    # chat 1001's answers still arrived in the order asked.
    assert [text[:6] for text in sent_texts(api, 1001)] == ["Ouvert", "Au 1 r", "Oui, s"]


async def test_duplicate_update_is_answered_once(api: FakeTelegramAPI, html_bot: FAQBot) -> None:
    async with serving(api, html_bot):
        api.push(message_update("horaires"), duplicate=True)
        api.push(message_update("adresse"))
        await api.wait_for("sendMessage", lambda call: call.params["text"].startswith("Au 1"))
    assert len(sent_texts(api, 1001)) == 2


async def test_flood_from_one_user_gets_one_notice(api: FakeTelegramAPI,
                                                   html_bot: FAQBot) -> None:
    group = group_chat()
    flooder, other = user(1001, "en"), user(2002)
    async with serving(api, html_bot, rate_limit_messages=2, rate_limit_seconds=3600):
        for _ in range(6):
            api.push(message_update(f"{MENTION} horaires", chat=group, sender=flooder))
        api.push(message_update(f"{MENTION} adresse", chat=group, sender=other))
        await api.wait_for("sendMessage", lambda call: call.params["text"].startswith("Au 1"))
    texts = sent_texts(api, group["id"])
    assert texts[2] == ui_text("rate_limited", "en")
    assert len(texts) == 4  # two answers, one notice, then the other user's answer


async def test_allow_list_refuses_other_chats_in_silence(api: FakeTelegramAPI,
                                                         html_bot: FAQBot) -> None:
    async with serving(api, html_bot, allowed_chats=frozenset({2002})):
        api.push(message_update("horaires", sender=user(1001, "en")))
        api.push(message_update("horaires", sender=user(2002)))
        allowed = await api.wait_for("sendMessage", to_chat(2002))
        api.push(inline_update("horaires", sender=user(1001)))
        inline = await api.wait_for("answerInlineQuery")
    # Stopping finishes every update fetched: the refused chat's message was screened by now.
    assert not [call for call in api.calls_to("sendMessage") if call.params["chat_id"] == 1001]
    assert allowed.params["text"].startswith("Ouvert")
    assert inline.params["results"] == []


async def test_failing_update_does_not_stop_the_bot(api: FakeTelegramAPI, html_bot: FAQBot,
                                                    logs: _LogRecorder) -> None:
    api.inject("sendMessage", Fault(status=400, description="Bad Request: chat not found"))
    async with serving(api, html_bot):
        api.push(message_update("horaires"))
        api.push(message_update("adresse"))
        await api.wait_for("sendMessage", lambda call: call.params["text"].startswith("Au 1"))
    # The notice goes out in the chat's turn: before the reply to the next message.
    assert sent_texts(api, 1001) == [ui_text("error", "fr"), "Au 1 rue de la Paix."]
    failures = [record for record in logs.records if record.name == "bots.telegram.replying"
                and record.levelno == logging.ERROR]
    assert failures and failures[-1].exc_info is not None


# ---------------------------------------------------------------------------------------------
# Webhook


async def test_webhook_requires_the_secret(api: FakeTelegramAPI, html_bot: FAQBot,
                                           logs: _LogRecorder) -> None:
    port = free_port()
    options = WebhookOptions(url=f"http://127.0.0.1:{port}/telegram/hook", port=port)
    async with serving(api, html_bot, webhook=options):
        assert api.webhook is not None and api.webhook.url == options.url
        secret = api.webhook.secret
        assert secret and len(secret) >= 32
        assert await api.push_webhook(message_update("adresse"), secret=None) == 403
        assert await api.push_webhook(message_update("adresse"), secret="wrong") == 403
        assert await api.push_webhook(message_update("horaires"), secret=secret) == 200
        await api.wait_for("sendMessage", to_chat(1001))
    assert sent_texts(api, 1001) == ["Ouvert de 9 h à 17 h.\n\nVoir aussi :"]
    assert not api.calls_to("getUpdates")
    assert not [line for line in logs.lines if secret in line]


async def test_webhook_secret_compared_in_constant_time_and_never_logged(
        api: FakeTelegramAPI, html_bot: FAQBot, logs: _LogRecorder,
        monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[bytes, bytes]] = []
    constant_time = hmac.compare_digest

    def compare_digest(given: bytes, expected: bytes) -> bool:
        compared.append((given, expected))
        return constant_time(given, expected)

    monkeypatch.setattr(receiving.hmac, "compare_digest", compare_digest)
    wrong = "a-wrong-secret-that-must-never-be-logged"
    port = free_port()
    options = WebhookOptions(url=f"http://127.0.0.1:{port}/telegram/hook", port=port)
    async with serving(api, html_bot, webhook=options):
        assert api.webhook is not None and api.webhook.secret
        secret = api.webhook.secret
        assert await api.push_webhook(message_update("adresse"), secret=wrong) == 403
        assert await api.push_webhook(message_update("horaires"), secret=secret) == 200
        await api.wait_for("sendMessage")
    assert not [line for line in logs.lines if wrong in line]
    assert compared == [(wrong.encode(), secret.encode()), (secret.encode(), secret.encode())]


async def test_webhook_confirms_an_update_only_once_it_is_answered(api: FakeTelegramAPI,
                                                                 tiny_bot: FAQBot) -> None:
    release = asyncio.Event()
    api.inject("sendMessage", Fault(status=200, hold=release))  # the answer hangs
    port = free_port()
    options = WebhookOptions(url=f"http://127.0.0.1:{port}/telegram/hook", port=port)
    async with serving(api, tiny_bot, webhook=options):
        assert api.webhook is not None
        posting = asyncio.create_task(api.push_webhook(message_update("horaires"),
                                                       secret=api.webhook.secret))
        await asyncio.sleep(1.0)  # within MAX_HOLD_SECONDS
        assert not posting.done(), "the 2xx confirmed an update not answered yet"
        release.set()
        assert await posting == 200
    assert sent_texts(api, 1001) == ["Ouvert de 9 h à 17 h.\n\nVoir aussi :"]


async def test_webhook_confirms_an_update_held_too_long_and_sends_503_on_a_stop(
        api: FakeTelegramAPI, tiny_bot: FAQBot, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(receiving, "MAX_HOLD_SECONDS", 0.5)
    monkeypatch.setattr(receiving, "DRAIN_SECONDS", 1.0)
    # Every send waits out a flood pause far longer than the stop's drain.
    api.fault_picker = lambda method, _: (Fault(429, retry_after=50) if method == "sendMessage"
                                          else None)
    port = free_port()
    options = WebhookOptions(url=f"http://127.0.0.1:{port}/telegram/hook", port=port)
    async with serving(api, tiny_bot, webhook=options) as stop:
        assert api.webhook is not None
        secret = api.webhook.secret
        # Held too long: confirmed unanswered, so as not to hold up Telegram's connections.
        assert await asyncio.wait_for(api.push_webhook(message_update("horaires"),
                                                       secret=secret), 5) == 200
        monkeypatch.setattr(receiving, "MAX_HOLD_SECONDS", 30.0)
        posting = asyncio.create_task(api.push_webhook(
            message_update("adresse", sender=user(2002)), secret=secret))
        await api.wait_for("sendMessage", to_chat(2002), status=429)
        stop.set()  # the drain gives the second update up: Telegram must send it again
        assert await posting == 503
    assert not sent_texts(api, 1001) and not sent_texts(api, 2002)


async def test_an_unfinished_update_does_not_make_polling_spin(api: FakeTelegramAPI,
                                                               tiny_bot: FAQBot) -> None:
    release = asyncio.Event()
    api.inject("sendMessage", Fault(status=200, hold=release))  # holds the offset back
    async with serving(api, tiny_bot):
        api.push(message_update("horaires"))
        await asyncio.sleep(1.0)  # its answer is on its way, and held
        polls_before = len(api.calls_to("getUpdates"))
        await asyncio.sleep(2.0)
        polls = len(api.calls_to("getUpdates")) - polls_before
        api.push(message_update("adresse", sender=user(2002)))
        await api.wait_for("sendMessage", to_chat(2002))  # new updates still come in
        release.set()
        await api.wait_for("sendMessage", to_chat(1001))
    # Telegram answers at once a poll whose offset an unfinished update holds: one poll every
    # HELD_POLL_PAUSE, not a busy loop.
    assert polls <= 2.0 / receiving.HELD_POLL_PAUSE + 1
    offsets = [call.params["offset"] for call in api.calls_to("getUpdates")]
    assert offsets == sorted(offsets)


async def test_a_chat_in_flood_control_does_not_stall_the_others(
        api: FakeTelegramAPI, html_bot: FAQBot, monkeypatch: pytest.MonkeyPatch) -> None:
    # The flooded chat's retries give up at the stop's drain deadline: a second, not ten.
    monkeypatch.setattr(receiving, "DRAIN_SECONDS", 1.0)
    flooder, others = user(1001, "en"), [user(2000 + number) for number in range(20)]
    api.fault_picker = lambda method, params: (
        Fault(429, retry_after=25) if method == "sendMessage" and params["chat_id"] == 1001
        else None)
    metrics = Metrics()
    async with serving(api, FAQService(html_bot, metrics=metrics),
                       rate_limit_messages=200, rate_limit_seconds=3600):
        for _ in range(300):
            api.push(message_update("horaires", sender=flooder))
        for other in others:
            api.push(message_update("adresse", sender=other))
        # Well within the flood wait of 25 s: every other chat is answered meanwhile.
        await api.wait_until(lambda: all(sent_texts(api, other["id"]) for other in others),
                             timeout=20)
        assert not sent_texts(api, 1001)
    # 200 messages pass the rate limit (the 201st gets the notice, the rest nothing): the chat
    # holds MAX_WAITING_PER_CHAT of them, the other 72 and the notice are dropped and counted.
    assert MAX_WAITING_PER_CHAT == 128
    assert metrics.dropped.labels("telegram")._value.get() == 73


# ---------------------------------------------------------------------------------------------
# The command line, end to end


@pytest.mark.slow
@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM])
async def test_faqbot_run_telegram_answers_and_stops_on_signal(api: FakeTelegramAPI,
                                                               signal_number: int) -> None:
    env = {**os.environ, "TELEGRAM_BOT_TOKEN": TOKEN, "FAQBOT_TELEGRAM_API_URL": api.base_url,
           "NO_PROXY": "127.0.0.1,localhost", "PYTHONUNBUFFERED": "1"}
    env.pop("DISCORD_BOT_TOKEN", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bots.cli", "run", "telegram", cwd=REPO, env=env,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    try:
        await api.wait_for("setMyCommands", lambda call: "language_code" not in call.params,
                           timeout=60)
        api.push(message_update("What is AMIAD?", sender=user(1001, "en")))
        answer = await api.wait_for("sendMessage", to_chat(1001))
        process.send_signal(signal_number)
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert "AMIAD" in answer.params["text"]
    assert process.returncode == 0, stderr.decode()
    assert TOKEN not in stdout.decode() + stderr.decode()


@pytest.mark.slow
def test_faqbot_run_telegram_with_malformed_token_exits_2() -> None:
    malformed = "not-a-token-but-secret-all-the-same"
    env = {**os.environ, "TELEGRAM_BOT_TOKEN": malformed}
    result = subprocess.run([sys.executable, "-m", "bots.cli", "run", "telegram"], cwd=REPO,
                            env=env, capture_output=True, stdin=subprocess.DEVNULL,
                            timeout=60, check=False)
    stderr = result.stderr.decode()
    assert result.returncode == 2
    assert stderr.strip().splitlines() == [
        "faqbot: error: TELEGRAM_BOT_TOKEN is malformed: expected <digits>:<secret>"]
    assert malformed not in stderr + result.stdout.decode()
