"""FAQService: the reply of the bot being served, logged, timed and counted; a live swap."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bots import service as service_module
from bots.feedback import FeedbackClick
from bots.metrics import Metrics
from bots.service import Asker, FAQService
from core import FAQBot, UnknownIntentError, load_knowledge_base
from core.questionlog.interface import HELPFUL, NONE_OF_THESE, NOT_HELPFUL
from tests.auxil.engine import AMBIGUOUS, answered, pinned_bot
from tests.fakes.engine import SLOW, ReloadedWhileAnswering, SlowBot
from tests.fakes.questionlog import RecordingQuestionLog

ASKER = Asker("telegram", chat=-1001234, user=4242)


@pytest.fixture(scope="module")
def edited_bot(tiny_kb_path: Path, tmp_path_factory: pytest.TempPathFactory) -> FAQBot:
    """The tiny knowledge base after a curator's edit: new opening hours, feedback off."""
    kb = yaml.safe_load(tiny_kb_path.read_text(encoding="utf-8")) | {"feedback": False}
    hours = next(intent for intent in kb["intents"] if intent["id"] == "opening_hours")
    hours["answer"]["fr"] = "Ouvert de 8 h à 20 h."
    path = tmp_path_factory.mktemp("kb") / "edited.yaml"
    path.write_text(yaml.safe_dump(kb, allow_unicode=True), encoding="utf-8")
    return pinned_bot(load_knowledge_base(path))


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def served_fingerprint(metrics: Metrics) -> str:
    [fingerprint] = [sample.labels["fingerprint"] for family in metrics.registry.collect()
                     if family.name == "faqbot_knowledge_base" for sample in family.samples]
    return fingerprint


# -- a pass-through without log or metrics ------------------------------------------------------


def test_without_log_or_metrics_it_answers_as_the_bot(clarifying_bot: FAQBot) -> None:
    service = FAQService(clarifying_bot)
    for question in ("horaires", "where is the shop?", "salut", "bitcoin", AMBIGUOUS):
        assert service.answer(question, asker=ASKER) == clarifying_bot.answer(question)
        reply, _ = answered(service, question, ASKER)
        assert reply == clarifying_bot.answer(question)
    assert service.reply_for("delivery", "en") == clarifying_bot.reply_for("delivery", "en")
    assert service.topics("en") == clarifying_bot.topics("en")
    assert service.suggest("livraison", "fr", 2) == clarifying_bot.suggest("livraison", "fr", 2)
    service.count_refusal("telegram")  # nothing to count: no error either
    assert FAQService.of(service) is service
    assert FAQService.of(clarifying_bot).bot is clarifying_bot


# -- the question log ----------------------------------------------------------------------------


def test_each_reply_to_an_asker_is_logged_with_the_ids_handed_over_raw(
        clarifying_bot: FAQBot) -> None:
    log = RecordingQuestionLog()
    service = FAQService(clarifying_bot, log=log)
    service.answer("horaires", asker=ASKER)
    service.answer("salut")  # no asker: a preview, not a question asked
    _, ticket = answered(service, "horaires", ASKER)
    answered(service, AMBIGUOUS, Asker("discord", "g1", "u9"))
    [(plain, chat, user), (with_ticket, _, _), (clarify, *discord_ids)] = log.questions
    assert (chat, user) == (-1001234, 4242) and discord_ids == ["g1", "u9"]
    # The log, not the service, turns the ids into pseudonyms.
    assert (plain.platform, plain.chat, plain.user) == ("telegram", "", "")
    assert (plain.question, plain.kind, plain.intent, plain.lang) == (
        "horaires", "answer", "opening_hours", "fr")
    assert plain.confidence == clarifying_bot.answer("horaires").confidence
    assert plain.ref is None
    assert ticket is not None and with_ticket.ref == ticket.ref
    assert (clarify.platform, clarify.kind, clarify.intent) == ("discord", "clarify", None)
    assert clarify.suggestions == ("address", "opening_hours")


def test_question_text_is_left_out_when_told_to(clarifying_bot: FAQBot) -> None:
    log = RecordingQuestionLog()
    service = FAQService(clarifying_bot, log=log, log_text=False)
    service.answer("horaires", asker=ASKER)
    answered(service, "horaires", ASKER)
    assert [entry.question for entry, _, _ in log.questions] == [None, None]
    assert [entry.intent for entry, _, _ in log.questions] == ["opening_hours"] * 2


def test_choices_after_a_clarification_are_logged(clarifying_bot: FAQBot) -> None:
    log = RecordingQuestionLog()
    service = FAQService(clarifying_bot, log=log)
    assert service.choose("address", "en", asker=ASKER) == clarifying_bot.reply_for("address",
                                                                                    "en")
    assert service.none_of_these("fr", asker=ASKER) == clarifying_bot.fallback("fr")
    service.choose("delivery")  # no asker: a preview
    with pytest.raises(UnknownIntentError):
        service.choose("removed_topic", asker=ASKER)
    assert log.choices == [("telegram", -1001234, 4242, "address"),
                           ("telegram", -1001234, 4242, NONE_OF_THESE)]
    assert log.questions == []


def test_feedback_clicks_are_logged_once_per_user_and_answer(clarifying_bot: FAQBot) -> None:
    log, metrics = RecordingQuestionLog(), Metrics()
    service = FAQService(clarifying_bot, log=log, metrics=metrics)
    helpful = FeedbackClick("y", "AAAAAAAA", "0123abcd", "fr", "")
    assert service.record_feedback(helpful, ASKER) is True
    assert service.record_feedback(helpful, ASKER) is False  # a repeat changes nothing
    assert service.record_feedback(helpful, Asker("telegram", -1001234, 7)) is True
    chosen = FeedbackClick("c", "AAAAAAAA", "0123abcd", "fr", "address")
    assert service.record_feedback(chosen, ASKER) is True  # a choice after the verdict
    [(_, _, user, ref, first), _, (*_, choice)] = log.feedback
    assert (user, ref, first.verdict, first.choice) == (4242, "AAAAAAAA", HELPFUL, None)
    assert (choice.verdict, choice.choice) == (NOT_HELPFUL, "address")
    # Verdicts are counted; a choice is not a second verdict.
    assert sample(metrics, "faqbot_feedback_total", platform="telegram", verdict=HELPFUL) == 2
    assert sample(metrics, "faqbot_feedback_total", platform="telegram",
                  verdict=NOT_HELPFUL) == 0


def test_remembered_clicks_are_bounded(clarifying_bot: FAQBot,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service_module, "REMEMBERED_CLICKS", 2)
    service = FAQService(clarifying_bot)
    clicks = [FeedbackClick("y", f"AAAAAAA{n}", "0123abcd", "fr", "") for n in range(3)]
    assert all(service.record_feedback(click, ASKER) for click in clicks)
    # The oldest click was forgotten to make room; the latest two are still known.
    assert service.record_feedback(clicks[0], ASKER) is True
    assert service.record_feedback(clicks[2], ASKER) is False


# -- timing and metrics --------------------------------------------------------------------------


def test_time_to_reply_is_measured_around_the_engine(tiny_bot: FAQBot) -> None:
    log, metrics = RecordingQuestionLog(), Metrics()
    service = FAQService(SlowBot(tiny_bot.kb, tiny_bot.classifier), log=log, metrics=metrics)
    service.answer("horaires", asker=ASKER)
    answered(service, "livraison", ASKER)
    assert all(entry.latency_ms >= SLOW * 1000 for entry, _, _ in log.questions)
    assert sample(metrics, "faqbot_answer_seconds_count") == 2
    assert sample(metrics, "faqbot_answer_seconds_sum") >= 2 * SLOW
    assert sample(metrics, "faqbot_answer_seconds_bucket", le=str(SLOW / 5)) == 0


def test_replies_are_counted_per_platform_and_kind(clarifying_bot: FAQBot) -> None:
    metrics = Metrics()
    service = FAQService(clarifying_bot, metrics=metrics)
    discord = Asker("discord", 1, 2)
    service.answer("horaires", asker=ASKER)
    answered(service, AMBIGUOUS, discord)
    service.choose("address", asker=discord)
    service.none_of_these(asker=ASKER)
    service.answer("bitcoin")  # no asker: not counted
    assert sample(metrics, "faqbot_replies_total", platform="telegram", kind="answer") == 1
    assert sample(metrics, "faqbot_replies_total", platform="discord", kind="clarify") == 1
    assert sample(metrics, "faqbot_replies_total", platform="discord", kind="answer") == 1
    assert sample(metrics, "faqbot_replies_total", platform="telegram", kind="fallback") == 1
    assert sum(sample(metrics, "faqbot_replies_total", platform=platform, kind=kind)
               for platform in ("telegram", "discord")
               for kind in ("answer", "clarify", "fallback", "smalltalk")) == 4
    # Only classifications are timed: a button's reply is a lookup.
    assert sample(metrics, "faqbot_answer_seconds_count") == 2


def test_adapter_events_reach_the_metrics(tiny_bot: FAQBot) -> None:
    metrics = Metrics(["telegram"])
    service = FAQService(tiny_bot, metrics=metrics)
    service.count_refusal("discord")
    service.count_dropped("telegram")
    service.count_dropped("telegram")
    assert not metrics.healthy
    service.set_connected("telegram", True)
    assert metrics.healthy
    assert sample(metrics, "faqbot_refusals_total", platform="discord") == 1
    assert sample(metrics, "faqbot_dropped_total", platform="telegram") == 2
    assert sample(metrics, "faqbot_platform_connected", platform="telegram") == 1


# -- live swap --------------------------------------------------------------------------------


def test_a_swap_serves_the_new_knowledge_base_from_the_next_call(tiny_bot: FAQBot,
                                                                 edited_bot: FAQBot) -> None:
    metrics = Metrics()
    service = FAQService(tiny_bot, metrics=metrics)
    assert served_fingerprint(metrics) == tiny_bot.kb.fingerprint()
    assert service.answer("horaires").answer == "Ouvert de 9 h à 17 h."
    assert answered(service, "horaires", ASKER)[1] is not None
    service.swap(edited_bot)
    assert service.bot is edited_bot and service.kb is edited_bot.kb
    assert service.answer("horaires").answer == "Ouvert de 8 h à 20 h."
    assert service.reply_for("opening_hours", "fr").answer == "Ouvert de 8 h à 20 h."
    assert answered(service, "horaires", ASKER)[1] is None  # feedback off now
    assert served_fingerprint(metrics) == edited_bot.kb.fingerprint()
    assert served_fingerprint(metrics) != tiny_bot.kb.fingerprint()
    assert sample(metrics, "faqbot_knowledge_base_intents") == len(edited_bot.kb.intents)


def test_a_reply_and_its_ticket_come_from_one_bot_when_a_swap_lands_meanwhile(
        tiny_bot: FAQBot, edited_bot: FAQBot) -> None:
    answering = ReloadedWhileAnswering(tiny_bot.kb, tiny_bot.classifier)
    service = FAQService(answering)
    answering.service, answering.successor = service, edited_bot
    reply, ticket = answered(service, "horaires", ASKER)
    # The old knowledge base answered, and its feedback switch (on) decided the ticket.
    assert reply.answer == "Ouvert de 9 h à 17 h."
    assert ticket is not None
    assert service.answer("horaires").answer == "Ouvert de 8 h à 20 h."
