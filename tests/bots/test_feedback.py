"""Feedback buttons under curated answers: payloads, the service, and both adapters run for real
on the fake Telegram and Discord servers, with the question log they write read back."""

from __future__ import annotations

import copy
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from bots import feedback
from bots.feedback import AlternativesCodec, FeedbackClick, FeedbackTicket
from bots.frontdoor.replies import layout
from bots.frontdoor.texts import ui_text
from bots.metrics import Metrics
from bots.service import Asker, FAQService
from bots.telegram.replying import render
from core import FAQBot, load_knowledge_base, load_settings
from core.questionlog.interface import HELPFUL, NONE_OF_THESE, NOT_HELPFUL, LoggedQuestion
from core.questionlog.sqlite import SQLiteQuestionLog
from core.questionlog.writer import BackgroundQuestionLog
from tests.auxil.discord import click, custom_ids, sent, slash
from tests.auxil.discord import serving as serving_discord
from tests.auxil.engine import AMBIGUOUS, answered
from tests.auxil.questionlog import read_log
from tests.auxil.telegram import (
    bot_message,
    callback_update,
    group_chat,
    message_update,
    private_chat,
    serving,
    user,
)
from tests.fakes.discord_api import (
    APPLICATION_COMMAND,
    EPHEMERAL,
    MESSAGE_COMPONENT,
    FakeDiscord,
    PushedInteraction,
    RecordedCall,
)
from tests.fakes.telegram_api import Call, FakeTelegramAPI

ASKER, OTHER = 1001, 1002


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "questions.sqlite3"


@pytest.fixture
def service(tiny_bot: FAQBot, db: Path) -> Iterator[FAQService]:
    log = BackgroundQuestionLog(SQLiteQuestionLog(db))
    yield FAQService(tiny_bot, log=log, metrics=Metrics())
    log.close()


def logged(service: FAQService) -> list[LoggedQuestion]:
    assert isinstance(service.log, BackgroundQuestionLog)
    return service.log.entries()


def counted(service: FAQService, platform: str, verdict: str) -> float | None:
    """The metric faqbot_feedback_total{platform,verdict}, as /metrics shows it."""
    assert service.metrics is not None
    return service.metrics.registry.get_sample_value(
        "faqbot_feedback_total", {"platform": platform, "verdict": verdict})


# ---------------------------------------------------------------------------------------------
# Payloads and the service


def long_id_kb(tmp_path: Path, count: int = 40) -> Path:
    """A valid knowledge base whose intent ids are all as long as allowed (32 characters)."""
    intents = [{"id": f"topic_{number:03d}_" + "x" * 22, "question": {"fr": f"Sujet {number} ?"},
                "answer": {"fr": f"Réponse {number}."},
                "examples": {"fr": [f"mot{number} chose{number}", f"truc{number}"]}}
               for number in range(count)]
    path = tmp_path / "long_ids.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "languages": ["fr"], "default_language": "fr",
                                    "fallback": {"fr": "Je ne sais pas."},
                                    "intents": intents}), encoding="utf-8")
    return path


def test_payloads_fit_telegram_and_discord_for_the_longest_ids(tmp_path: Path) -> None:
    bot = FAQBot.from_path(long_id_kb(tmp_path), cache=False)
    assert all(len(intent.id) == 32 for intent in bot.kb.intents)
    service = FAQService(bot)
    reply, ticket = answered(service, "mot39 chose39", Asker("telegram", 1, 2))
    assert reply.kind == "answer" and ticket is not None
    helpful, not_helpful = feedback.verdict_clicks(ticket)
    choices = [not_helpful.choosing(intent.id, ticket.asker) for intent in bot.kb.intents]
    payloads = [helpful.data(), not_helpful.data(), *(choice.data() for choice in choices)]
    longest = max(len(data.encode()) for data in payloads)
    assert longest == 57  # "f:c:" + ref 8 + asker 8 + lang 2 + a 32-character id, separated
    assert longest <= 64  # Telegram's callback_data
    assert len("faqbot:") + longest <= 100  # Discord's custom_id
    # Each payload reads back as written; the alternatives are the ranking's next intents.
    assert [feedback.parse(data) for data in payloads] == [helpful, not_helpful, *choices]
    assert [s.intent for s in service.alternatives(not_helpful)] == bot.answer_ranked(
        "mot39 chose39").alternatives
    assert len(service.alternatives(not_helpful)) == 3


def test_alternatives_of_another_knowledge_base_are_not_misread(tiny_bot: FAQBot,
                                                                 tmp_path: Path) -> None:
    encoded = AlternativesCodec(tiny_bot.kb).encode(["address", "delivery"])
    assert AlternativesCodec(tiny_bot.kb).decode(encoded) == ["address", "delivery"]
    other = load_knowledge_base(long_id_kb(tmp_path, count=3))
    assert AlternativesCodec(other).decode(encoded) == []
    for garbage in ("f:y:short:0000abcd:fr", "f:x:AAAAAAAA:0000abcd:fr", "a:address:fr",
                    "f:c:AAAAAAAA:0000abcd:fr:" + "x" * 41, ""):
        assert feedback.parse(garbage) is None


def test_only_curated_answers_get_a_ticket(clarifying_bot: FAQBot, db: Path) -> None:
    log = BackgroundQuestionLog(SQLiteQuestionLog(db))
    service = FAQService(clarifying_bot, log=log)
    asker = Asker("telegram", ASKER, ASKER)
    kinds = {}
    for question in ("horaires", "salut", "bitcoin", AMBIGUOUS):
        reply, ticket = answered(service, question, asker)
        kinds[reply.kind] = ticket is not None
    assert kinds == {"answer": True, "smalltalk": False, "fallback": False, "clarify": False}
    # Off by the deployment's switch (FAQBOT_FEEDBACK=0): no ticket, the question still logged.
    reply, ticket = answered(service, "horaires", asker, feedback=False)
    assert reply.kind == "answer" and ticket is None
    rows = logged(service)
    log.close()
    assert len(rows) == 5
    assert rows[0].ref is not None and all(row.ref is None for row in rows[1:])


def test_an_update_answered_again_is_logged_once_under_the_same_reference(
        service: FAQService) -> None:
    # Another process answering the same Telegram message again (at least once) derives the
    # same reference: its buttons reach the question logged first, and the log keeps one row.
    again = FAQService(service.bot, log=service.log)
    asker = Asker("telegram", ASKER, ASKER, update=7001)
    _, ticket = answered(service, "horaires", asker)
    _, repeat = answered(again, "horaires", asker)
    _, other = answered(service, "horaires", replace(asker, update=7002))
    for _ in range(2):  # without an update id, every question is logged
        answered(service, "bitcoin", replace(asker, update=None))
    assert ticket is not None and repeat is not None and other is not None
    assert ticket.ref == repeat.ref != other.ref and len(ticket.ref) == 8
    rows = logged(service)
    assert [(row.question, row.ref) for row in rows] == [
        ("horaires", ticket.ref), ("horaires", other.ref), ("bitcoin", None), ("bitcoin", None)]


def test_environment_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().feedback is True
    monkeypatch.setenv("FAQBOT_FEEDBACK", "0")
    assert load_settings().feedback is False


def test_knowledge_base_switch_turns_feedback_off(tiny_kb_path: Path, tmp_path: Path) -> None:
    raw = yaml.safe_load(tiny_kb_path.read_text(encoding="utf-8")) | {"feedback": False}
    path = tmp_path / "no_feedback.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    service = FAQService(FAQBot.from_path(path))
    reply, ticket = answered(service, "horaires", Asker("discord", 1, 2))
    assert reply.kind == "answer" and ticket is None


def test_render_puts_feedback_under_answers_only(tiny_bot: FAQBot,
                                                 clarifying_bot: FAQBot) -> None:
    ticket = FeedbackTicket("AAAAAAAA", "0123abcd", "fr", "")
    answer = render(layout(tiny_bot.answer("horaires"), ticket))
    assert answer.keyboard is not None
    assert [[button["text"] for button in row] for row in answer.keyboard["inline_keyboard"]] == [
        ["Où se trouve le magasin ?"], ["Utile", "Pas utile"]]
    for question in ("salut", "bitcoin", AMBIGUOUS):
        keyboard = render(layout(clarifying_bot.answer(question), ticket)).keyboard
        labels = [b["text"] for row in (keyboard or {"inline_keyboard": []})["inline_keyboard"]
                  for b in row]
        assert "Utile" not in labels


# ---------------------------------------------------------------------------------------------
# Telegram


def feedback_buttons(call: Call) -> list[tuple[str, FeedbackClick]]:
    """(label, click) of the feedback buttons of a sent or edited message."""
    markup = call.params.get("reply_markup") or {"inline_keyboard": []}
    found = [(button["text"], feedback.parse(button["callback_data"]))
             for row in markup["inline_keyboard"] for button in row]
    return [(label, parsed) for label, parsed in found if parsed is not None]


def labels(call: Call) -> list[list[str]]:
    markup = call.params.get("reply_markup") or {"inline_keyboard": []}
    return [[button["text"] for button in row] for row in markup["inline_keyboard"]]


def sent_message(call: Call, chat: dict[str, Any]) -> dict[str, Any]:
    """The message a sendMessage call made, as a later click carries it."""
    text = call.params.get("text", "…")  # an edit carries the keyboard only
    return bot_message(chat, text) | {"reply_markup": call.params["reply_markup"]}


class TelegramChat:
    """Ask the bot in one chat and click the buttons of its replies."""

    def __init__(self, api: FakeTelegramAPI, chat: dict[str, Any]) -> None:
        self.api = api
        self.chat = chat

    async def ask(self, text: str, sender: int = ASKER) -> Call:
        start = len(self.api.calls)
        if self.chat["type"] != "private":
            text = f"/ask {text}"
        self.api.push(message_update(text, chat=self.chat, sender=user(sender)))
        return await self.api.wait_for("sendMessage", since=start)

    async def click(self, message: Call, data: str, sender: int = ASKER) -> list[Call]:
        """Every call the click made, the acknowledgement first."""
        start = len(self.api.calls)
        self.api.push(callback_update(data, sender=user(sender),
                                      clicked=sent_message(message, self.chat)))
        # The updates of one chat are handled in order: once the bot has answered a next
        # message of the chat, it is done with the click.
        await self.ask("salut", sender)
        return [call for call in self.api.calls[start:] if call.method in CLICK_CALLS
                and (call.method != "sendMessage" or call.params["text"] != SMALLTALK)]


SMALLTALK = "Bonjour ! Posez-moi une question."
CLICK_CALLS = {"answerCallbackQuery", "editMessageReplyMarkup", "sendMessage"}


def made(calls: list[Call], method: str) -> list[Call]:
    return [call for call in calls if call.method == method]


def toast(calls: list[Call]) -> str | None:
    (ack,) = made(calls, "answerCallbackQuery")
    assert calls[0] is ack  # acknowledged before anything else
    return ack.params.get("text")


async def test_telegram_helpful_click_by_the_asker(api: FakeTelegramAPI,
                                                   service: FAQService) -> None:
    async with serving(api, service):
        chat = TelegramChat(api, private_chat(ASKER))
        answer = await chat.ask("horaires")
        smalltalk = await chat.ask("salut")
        (_, helpful), _ = feedback_buttons(answer)
        first = await chat.click(answer, helpful.data())
        second = await chat.click(answer, helpful.data())  # a double click, or a late one
    assert [label for label, _ in feedback_buttons(answer)] == ["Utile", "Pas utile"]
    assert feedback_buttons(smalltalk) == []
    assert toast(first) == ui_text("feedback_thanks", "fr")
    (edit,) = made(first, "editMessageReplyMarkup")
    assert labels(edit) == [["Où se trouve le magasin ?"]]  # the related question stays
    assert toast(second) == ui_text("feedback_thanks", "fr")
    assert made(second, "editMessageReplyMarkup") == []
    rows = logged(service)
    assert [(f.verdict, f.choice) for f in rows[0].feedback] == [(HELPFUL, None)]
    assert rows[0].feedback[0].user == rows[0].user  # the asker's pseudonym
    assert counted(service, "telegram", HELPFUL) == 1


async def test_telegram_not_helpful_offers_the_next_topics_then_logs_the_choice(
        api: FakeTelegramAPI, service: FAQService, tiny_bot: FAQBot) -> None:
    async with serving(api, service):
        chat = TelegramChat(api, private_chat(ASKER))
        answer = await chat.ask("horaires")
        _, (_, not_helpful) = feedback_buttons(answer)
        calls = await chat.click(answer, not_helpful.data())
        (edit,) = made(calls, "editMessageReplyMarkup")
        choices = feedback_buttons(edit)
        chosen = await chat.click(edit, choices[1][1].data())  # "delivery"
    assert toast(calls) == ui_text("feedback_alternatives", "fr")
    assert labels(edit) == [["Où se trouve le magasin ?"], ["Où se trouve le magasin ?"],
                            ["Livrez-vous à domicile ?"], [ui_text("none_of_these", "fr")]]
    assert [choice.rest for _, choice in choices] == [
        *tiny_bot.answer_ranked("horaires").alternatives, feedback.NONE_CHOSEN]
    assert toast(chosen) is None
    (cleared,) = made(chosen, "editMessageReplyMarkup")
    assert labels(cleared) == [["Où se trouve le magasin ?"]]
    (reply,) = made(chosen, "sendMessage")
    assert reply.params["text"] == "Oui, sous 48 heures."
    assert [(f.verdict, f.choice) for f in logged(service)[0].feedback] == [
        (NOT_HELPFUL, "delivery")]
    assert counted(service, "telegram", NOT_HELPFUL) == 1


async def test_telegram_group_click_of_another_member_changes_nobodys_view(
        api: FakeTelegramAPI, service: FAQService) -> None:
    async with serving(api, service):
        chat = TelegramChat(api, group_chat())
        answer = await chat.ask("horaires", sender=ASKER)
        (_, helpful), (_, not_helpful) = feedback_buttons(answer)
        other = await chat.click(answer, not_helpful.data(), sender=OTHER)
        again = await chat.click(answer, helpful.data(), sender=OTHER)  # changes nothing
        mine = await chat.click(answer, helpful.data(), sender=ASKER)
    assert made(other + again, "editMessageReplyMarkup") == []  # the shared message stays
    assert toast(other) == toast(again) == ui_text("feedback_thanks", "fr")
    assert len(made(mine, "editMessageReplyMarkup")) == 1
    row = logged(service)[0]
    assert [f.verdict for f in row.feedback] == [NOT_HELPFUL, HELPFUL]
    assert row.feedback[0].user != row.user and row.feedback[1].user == row.user
    assert counted(service, "telegram", NOT_HELPFUL) == counted(service, "telegram",
                                                                HELPFUL) == 1


async def test_telegram_clicks_on_old_messages_are_acknowledged(
        api: FakeTelegramAPI, tiny_bot: FAQBot, db: Path) -> None:
    log = BackgroundQuestionLog(SQLiteQuestionLog(db))
    async with serving(api, FAQService(tiny_bot, log=log)):
        answer = await TelegramChat(api, private_chat(ASKER)).ask("horaires")
    log.close()
    (_, helpful), _ = feedback_buttons(answer)
    # Another process on the same log (a restart): the asker is still recognised.
    log = BackgroundQuestionLog(SQLiteQuestionLog(db))
    async with serving(api, FAQService(tiny_bot, log=log)):
        chat = TelegramChat(api, private_chat(ASKER))
        after_restart = await chat.click(answer, helpful.data())
        # A question the log no longer holds (retention), from a knowledge base since changed.
        asker_tag = FAQService.asker_tag("gone0000", Asker("telegram", ASKER, ASKER))
        gone = FeedbackClick("n", "gone0000", asker_tag, "fr", "ffff.1.2")
        forgotten = await chat.click(answer, gone.data())
        garbage = await chat.click(answer, "f:n:broken")
    log.close()
    assert toast(after_restart) == ui_text("feedback_thanks", "fr")
    assert len(made(after_restart, "editMessageReplyMarkup")) == 1
    assert toast(forgotten) == ui_text("feedback_thanks", "fr")  # no topics left to offer
    (edit,) = made(forgotten, "editMessageReplyMarkup")
    assert labels(edit) == [["Où se trouve le magasin ?"]]
    assert toast(garbage) == ui_text("stale_button", "fr")
    assert [(f.verdict, f.choice) for f in read_log(db)[0].feedback] == [(HELPFUL, None)]


async def test_telegram_feedback_switched_off(api: FakeTelegramAPI, tiny_bot: FAQBot) -> None:
    async with serving(api, tiny_bot, feedback=False):
        answer = await TelegramChat(api, private_chat(ASKER)).ask("horaires")
    assert labels(answer) == [["Où se trouve le magasin ?"]]


# ---------------------------------------------------------------------------------------------
# Discord

GUILD = 1001 << 22
DISCORD_ASKER, DISCORD_OTHER = 77 << 22, 78 << 22
DISCORD_TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GaBcDe.fake-token-for-tests-only_0123456789"
# Discord drops an interaction not answered within this time.
INTERACTION_DEADLINE = 3.0


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(token=DISCORD_TOKEN, guild_ids=(GUILD,)) as server:
        yield server


async def discord_ask(fake: FakeDiscord, question: str, *,
                      user_id: int = DISCORD_ASKER) -> dict[str, Any]:
    """/ask in the server; the message the bot created."""
    interaction = await fake.push_interaction(
        APPLICATION_COMMAND, slash(fake, "ask", question=question), guild_id=GUILD,
        user_id=user_id)
    callback = await fake.wait_for_callback(interaction)
    return copy.deepcopy(callback.response["resource"]["message"])


class Clicked:
    """A component interaction and what the bot answered: the callback and its follow-ups."""

    def __init__(self, fake: FakeDiscord, interaction: PushedInteraction,
                 callback: RecordedCall) -> None:
        self.fake = fake
        self.interaction = interaction
        self.callback = callback

    @property
    def kind(self) -> int:
        return int(self.callback.body["type"])

    @property
    def data(self) -> dict[str, Any]:
        return sent(self.callback)

    def created(self) -> dict[str, Any]:
        """The message a type 4 callback created."""
        return copy.deepcopy(self.callback.response["resource"]["message"])

    def edited(self) -> dict[str, Any]:
        """The clicked message as the type 7 callback left it."""
        assert self.kind == 7
        message = copy.deepcopy(self.interaction.payload["message"])
        return message | {"components": self.data["components"]}

    async def follow_up(self) -> dict[str, Any]:
        call = await self.fake.wait_for_call(lambda c: c.method == "POST"
                                             and c.path.endswith(self.interaction.token))
        return dict(call.body)


async def discord_click(fake: FakeDiscord, message: dict[str, Any], custom_id: str, *,
                        user_id: int = DISCORD_ASKER) -> Clicked:
    pushed_at = time.perf_counter()
    interaction = await fake.push_interaction(MESSAGE_COMPONENT, click(custom_id),
                                              guild_id=GUILD, user_id=user_id, message=message)
    callback = await fake.wait_for_callback(interaction)
    assert callback.received_at - pushed_at < INTERACTION_DEADLINE
    return Clicked(fake, interaction, callback)


def feedback_ids(message: dict[str, Any]) -> list[FeedbackClick]:
    found = [feedback.parse(cid.removeprefix("faqbot:")) for cid in custom_ids(message)]
    return [found_click for found_click in found if found_click is not None]


def rows(message: dict[str, Any]) -> list[list[str]]:
    return [[component["label"] for component in row["components"]]
            for row in message.get("components", [])]


async def test_discord_asker_clicks_helpful_then_again(fake: FakeDiscord,
                                                       service: FAQService) -> None:
    async with serving_discord(fake, service):  # type: ignore[arg-type]
        answer = await discord_ask(fake, "horaires")
        smalltalk = await discord_ask(fake, "salut")
        helpful, _ = feedback_ids(answer)
        first = await discord_click(fake, answer, f"faqbot:{helpful.data()}")
        thanks = await first.follow_up()
        # A double click: the second one left the client before the edit arrived.
        second = await discord_click(fake, answer, f"faqbot:{helpful.data()}")
    assert rows(answer) == [["Où se trouve le magasin ?"], ["Utile", "Pas utile"]]
    assert feedback_ids(smalltalk) == []
    assert first.kind == 7 and rows(first.edited()) == [["Où se trouve le magasin ?"]]
    assert (thanks["content"], thanks["flags"]) == (ui_text("feedback_thanks", "fr"), EPHEMERAL)
    assert (second.kind, second.data["flags"]) == (4, EPHEMERAL)  # thanks, nothing changed
    assert not any(call.path.startswith("/channels/") for call in fake.calls)
    assert [f.verdict for f in logged(service)[0].feedback] == [HELPFUL]
    assert counted(service, "discord", HELPFUL) == 1


async def test_discord_not_helpful_then_none_of_these(fake: FakeDiscord, service: FAQService,
                                                      tiny_bot: FAQBot) -> None:
    async with serving_discord(fake, service):  # type: ignore[arg-type]
        answer = await discord_ask(fake, "horaires")
        _, not_helpful = feedback_ids(answer)
        offered = await discord_click(fake, answer, f"faqbot:{not_helpful.data()}")
        thanks = await offered.follow_up()
        choices = feedback_ids(offered.edited())
        chosen = await discord_click(fake, offered.edited(), f"faqbot:{choices[-1].data()}")
        fallback = await chosen.follow_up()
    assert offered.kind == 7
    assert rows(offered.edited()) == [["Où se trouve le magasin ?"],
                                      ["Où se trouve le magasin ?", "Livrez-vous à domicile ?",
                                       ui_text("none_of_these", "fr")]]
    assert [c.rest for c in choices] == [*tiny_bot.answer_ranked("horaires").alternatives,
                                         feedback.NONE_CHOSEN]
    assert thanks["content"] == ui_text("feedback_alternatives", "fr")
    assert chosen.kind == 7 and rows(chosen.edited()) == [["Où se trouve le magasin ?"]]
    assert fallback["content"] == "Je ne sais pas répondre à cela."
    assert [(f.verdict, f.choice) for f in logged(service)[0].feedback] == [
        (NOT_HELPFUL, NONE_OF_THESE)]


async def test_discord_other_members_click_stays_private(fake: FakeDiscord,
                                                         service: FAQService) -> None:
    async with serving_discord(fake, service):  # type: ignore[arg-type]
        answer = await discord_ask(fake, "horaires")
        _, not_helpful = feedback_ids(answer)
        other = await discord_click(fake, answer, f"faqbot:{not_helpful.data()}",
                                    user_id=DISCORD_OTHER)
        private = other.created()
        delivery = next(c for c in feedback_ids(private) if c.rest == "delivery")
        chosen = await discord_click(fake, private, f"faqbot:{delivery.data()}",
                                     user_id=DISCORD_OTHER)
        answer_to_other = await chosen.follow_up()
    # The shared message is never edited; the member sees the topics in a private message.
    assert (other.kind, other.data["flags"]) == (4, EPHEMERAL)
    assert other.data["content"] == ui_text("feedback_alternatives", "fr")
    assert delivery.asker != not_helpful.asker  # the member's own choices
    assert chosen.kind == 7  # their private message loses its choices
    assert answer_to_other["embeds"][0]["description"] == "Oui, sous 48 heures."
    assert answer_to_other["flags"] == EPHEMERAL
    row = logged(service)[0]
    assert [(f.verdict, f.choice) for f in row.feedback] == [(NOT_HELPFUL, "delivery")]
    assert row.feedback[0].user != row.user


async def test_discord_click_after_a_restart_and_switch_off(fake: FakeDiscord, tiny_bot: FAQBot,
                                                           db: Path) -> None:
    log = BackgroundQuestionLog(SQLiteQuestionLog(db))
    async with serving_discord(fake, FAQService(tiny_bot, log=log)):  # type: ignore[arg-type]
        answer = await discord_ask(fake, "horaires")
    log.close()
    helpful, _ = feedback_ids(answer)
    log = BackgroundQuestionLog(SQLiteQuestionLog(db))
    async with serving_discord(fake, FAQService(tiny_bot, log=log),  # type: ignore[arg-type]
                               feedback=False):
        after_restart = await discord_click(fake, answer, f"faqbot:{helpful.data()}")
        unswitched = await discord_ask(fake, "horaires")
    log.close()
    assert after_restart.kind == 7  # still the asker's buttons, still recorded
    assert [f.verdict for f in read_log(db)[0].feedback] == [HELPFUL]
    assert feedback_ids(unswitched) == []
