"""FAQBot on a tiny knowledge base: the four reply kinds, languages, buttons, hostile input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import FAQBot, IntentClassifier, Reply, UnknownIntentError, load_knowledge_base
from core import text as text_module
from core.text import MAX_QUESTION_CHARS, has_words


@pytest.mark.parametrize(
    ("question", "intent", "lang"),
    [
        ("Quels sont les horaires d'ouverture ?", "opening_hours", "fr"),
        ("vous ouvrez a quelle heure le samedi", "opening_hours", "fr"),
        ("where is your shop located?", "address", "en"),
        ("Do you deliver to my home?", "delivery", "en"),
    ],
)
def test_answer(tiny_bot: FAQBot, question: str, intent: str, lang: str) -> None:
    reply = tiny_bot.answer(question)
    assert (reply.kind, reply.intent, reply.lang) == ("answer", intent, lang)
    assert reply.answer == tiny_bot.kb.intent(intent).answer[lang]  # type: ignore[union-attr]
    assert 0.0 < reply.confidence <= 1.0


def test_answer_lists_related_intents(tiny_bot: FAQBot) -> None:
    reply = tiny_bot.answer("Quels sont les horaires d'ouverture ?")
    assert [s.intent for s in reply.suggestions] == ["address"]
    assert reply.suggestions[0].question == "Où se trouve le magasin ?"


def test_forced_language(tiny_bot: FAQBot) -> None:
    reply = tiny_bot.answer("Quels sont les horaires d'ouverture ?", lang="en")
    assert (reply.lang, reply.answer) == ("en", "Open from 9 am to 5 pm.")


def test_language_hint_only_when_text_is_unclear(tiny_bot: FAQBot) -> None:
    assert tiny_bot.answer("horaires", lang_hint="en").lang == "en"
    assert tiny_bot.answer("Quels sont les horaires ?", lang_hint="en").lang == "fr"
    assert tiny_bot.answer("horaires", lang_hint="pt-BR").lang == "fr"


@pytest.mark.parametrize("question", ["salut", "hi", "bonjour !"])
def test_smalltalk(tiny_bot: FAQBot, question: str) -> None:
    reply = tiny_bot.answer(question)
    assert (reply.kind, reply.intent) == ("smalltalk", "greeting")


def test_help_lists_topics(tiny_bot: FAQBot) -> None:
    reply = tiny_bot.answer("what can you answer?")
    assert (reply.kind, reply.intent) == ("smalltalk", "help")
    assert [s.intent for s in reply.suggestions] == ["opening_hours", "address", "delivery"]


@pytest.mark.parametrize("question", ["quelle est la capitale de la France",
                                      "tell me a joke about cats", "prix du bitcoin aujourd'hui"])
def test_fallback_on_off_topic(tiny_bot: FAQBot, question: str) -> None:
    reply = tiny_bot.answer(question)
    assert reply.kind == "fallback"
    assert reply.intent is None
    assert reply.answer in {"Je ne sais pas répondre à cela.", "I cannot answer that."}
    assert [s.intent for s in reply.suggestions] == ["opening_hours", "address", "delivery"]


@pytest.mark.parametrize("text", ["", "   ", "?!", "🙂🙂", "\x00\x07", "\u200b\u202e", "\ud800"])
def test_no_words_gets_fallback(tiny_bot: FAQBot, text: str) -> None:
    reply = tiny_bot.answer(text)
    assert reply.kind == "fallback"


def test_clarify_when_two_topics_are_close(tiny_kb_path: Path) -> None:
    # A forced margin of 1 makes the bot ask whenever two FAQ topics lead the ranking, as they
    # do in a phrase that names both hours and address.
    kb = load_knowledge_base(tiny_kb_path)
    bot = FAQBot(kb, IntentClassifier(margin=1.0).fit(*kb.training_data()))
    reply = bot.answer("horaires et adresse du magasin")
    assert reply.kind == "clarify", reply
    assert reply.intent is None
    assert {"opening_hours", "address"} <= {s.intent for s in reply.suggestions}
    assert len(reply.suggestions) <= 3


def test_reply_for(tiny_bot: FAQBot) -> None:
    reply = tiny_bot.reply_for("delivery", "en")
    assert (reply.kind, reply.intent, reply.answer) == ("answer", "delivery",
                                                         "Yes, within 48 hours.")
    assert tiny_bot.reply_for("greeting").kind == "smalltalk"
    with pytest.raises(UnknownIntentError, match="nope"):
        tiny_bot.reply_for("nope")


def test_suggest_ranks_faq_only(tiny_bot: FAQBot) -> None:
    suggestions = tiny_bot.suggest("livraison", "fr", limit=2)
    assert suggestions[0].intent == "delivery"
    assert len(suggestions) == 2
    assert all(s.intent in {"opening_hours", "address", "delivery"} for s in suggestions)
    assert len(tiny_bot.suggest("")) == 3


def test_suggest_takes_the_platform_locale_like_answer(tiny_bot: FAQBot) -> None:
    # "livraison" gives no sign of its language: the user's locale decides, then the default.
    assert tiny_bot.suggest("livraison", lang_hint="en")[0].question == "Do you deliver?"
    assert tiny_bot.suggest("livraison")[0].question == "Livrez-vous à domicile ?"
    assert tiny_bot.suggest("", lang_hint="en-GB")[0].question == "What are the opening hours?"
    assert tiny_bot.suggest("livraison", "fr", lang_hint="en")[0].question == \
        "Livrez-vous à domicile ?"


class _CountingCalls:
    """Stands for a module's regex or function and counts the calls that pass through it."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.calls = 0

    def sub(self, *args: Any) -> Any:
        self.calls += 1
        return self.real.sub(*args)

    def __call__(self, *args: Any) -> Any:
        self.calls += 1
        return self.real(*args)


@pytest.mark.parametrize("call", ["answer", "answer_lang", "suggest", "answer_many"])
def test_each_question_is_normalised_once_and_cleaned_once(
        tiny_bot: FAQBot, call: str, monkeypatch: pytest.MonkeyPatch) -> None:
    questions = ["Quels sont les horaires d'ouverture ?", "where is your shop located?",
                 "tell me a joke", "livraison rapide", "les horaires du samedi ?"]
    tiny_bot.answer_many(questions)  # the encoder loaded and warm, as when serving
    # Every normalisation goes through _NON_WORD; every cleaning of these ASCII questions
    # through _drop_surrogates.
    normalised = _CountingCalls(text_module._NON_WORD)
    cleaned = _CountingCalls(text_module._drop_surrogates)
    monkeypatch.setattr(text_module, "_NON_WORD", normalised)
    monkeypatch.setattr(text_module, "_drop_surrogates", cleaned)
    if call == "answer_many":
        tiny_bot.answer_many(questions)
    for question in questions if call != "answer_many" else []:
        if call == "answer":
            tiny_bot.answer(question)
        elif call == "answer_lang":
            tiny_bot.answer(question, "fr", lang_hint="en")
        else:
            tiny_bot.suggest(question, lang_hint="en")
    assert (normalised.calls, cleaned.calls) == (len(questions), len(questions))


def test_huge_input_is_cut(tiny_bot: FAQBot) -> None:
    reply = tiny_bot.answer("horaires " * 50_000)
    assert len(reply.question) == MAX_QUESTION_CHARS
    assert reply.kind in {"answer", "clarify", "fallback"}


def test_deterministic(tiny_kb_path: Path) -> None:
    questions = ["horaires", "adresse", "blague", "livraison rapide ?", "hello"]
    first = [FAQBot.from_path(tiny_kb_path).answer(q) for q in questions]
    second = [FAQBot.from_path(tiny_kb_path).answer(q) for q in questions]
    assert first == second


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=3000))
def test_answer_never_raises(tiny_bot: FAQBot, text: str) -> None:
    reply = tiny_bot.answer(text)
    assert isinstance(reply, Reply)
    Reply.model_validate(reply.model_dump())
    reply.model_dump_json()  # serialisable: no lone surrogate survives
    if not has_words(text):
        assert reply.kind == "fallback"


def test_answer_many_is_answer_for_each(tiny_bot: FAQBot) -> None:
    texts = ["Quels sont les horaires d'ouverture ?", "", "tell me a joke", "🙂", "adresse",
             "Do you deliver to my home?"]
    assert tiny_bot.answer_many(texts, "en") == [tiny_bot.answer(text, "en") for text in texts]
    assert tiny_bot.answer_many([]) == []


def test_answer_ranked_many_is_answer_ranked_for_each_with_its_hint(tiny_bot: FAQBot) -> None:
    texts = ["horaires", "", "where is your shop located?", "🙂", "livraison"]
    hints = ["en", "en", None, "fr", "en"]
    alone = [tiny_bot.answer_ranked(text, lang_hint=hint)
             for text, hint in zip(texts, hints, strict=True)]
    assert tiny_bot.answer_ranked_many(texts, lang_hints=hints) == alone


def test_a_batch_runs_the_encoder_once_for_the_questions_it_needs(
        default_bot: FAQBot, monkeypatch: pytest.MonkeyPatch) -> None:
    classifier = default_bot.classifier
    texts = ["Quel est le rôle de l'AMIAD exactement ?", "combien coute ce partenariat",
             "which country hosts the data?", "les données restent-elles en France ?",
             "qui a signé l'accord avec Mistral"]
    unsure = [text for text in texts if not classifier.answers_alone(text)]
    assert len(unsure) >= 2  # else this test shows nothing
    alone = [default_bot.answer_ranked(text) for text in texts]
    embeddings = _CountingCalls(classifier.embed)
    monkeypatch.setattr(classifier, "embed", embeddings)
    assert default_bot.answer_ranked_many(texts) == alone
    assert embeddings.calls == 1


def test_suggestion_lists_are_not_shared(tiny_bot: FAQBot) -> None:
    # Suggestions are built once and shared; a caller changing its list changes no other.
    topics = tiny_bot.topics("fr")
    topics.clear()
    assert tiny_bot.topics("fr")
    assert tiny_bot.fallback("fr").suggestions
