"""`faqbot review`, `--export` and `faqbot stats` on a question log holding feedback: the
answers users marked not helpful, what they chose instead, the helpful rate per intent. Each
test runs on both stores: a SQLite file and a PostgreSQL database."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from bots.cli import main
from core import FAQBot, load_knowledge_base
from core.questionlog.factory import open_question_log_store, open_store_for_reading
from core.questionlog.interface import (
    HELPFUL,
    NONE_OF_THESE,
    NOT_HELPFUL,
    Feedback,
    LoggedQuestion,
)
from core.review import build_review
from core.stats import compute_stats

NOW = datetime.now(UTC) - timedelta(hours=1)


def answered(question: str | None, intent: str, ref: str, *, confidence: float = 0.95,
             user: str = "u1") -> LoggedQuestion:
    return LoggedQuestion(at=NOW, platform="telegram", chat="c1", user=user, lang="fr",
                          question=question, kind="answer", intent=intent,
                          confidence=confidence, ref=ref)


# Answers confidently given (nothing else would flag them), then rated with the buttons:
# (question, intent answered, reference, [(user, verdict, choice)]).
RATED: list[tuple[str | None, str, str, list[tuple[str, str, str | None]]]] = [
    ("vous livrez le dimanche", "opening_hours", "ref00001",
     [("u1", NOT_HELPFUL, "delivery"), ("u2", NOT_HELPFUL, None)]),
    ("vous livrez le dimanche svp", "opening_hours", "ref00002",
     [("u3", NOT_HELPFUL, "delivery")]),
    ("prix du parking", "address", "ref00003", [("u4", NOT_HELPFUL, NONE_OF_THESE)]),
    ("horaires", "opening_hours", "ref00004",
     [("u5", HELPFUL, None), ("u6", HELPFUL, None), ("u7", HELPFUL, None)]),
    (None, "delivery", "ref00005", [("u8", NOT_HELPFUL, None)]),  # FAQBOT_LOG_TEXT=0
    ("adresse", "address", "ref00006", []),
]


@pytest.fixture(params=["sqlite", "postgresql"])
def log_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The question log holding RATED: a file's path, or a PostgreSQL URL."""
    if request.param == "sqlite":
        db = str(tmp_path / "questions.sqlite3")
    else:
        db = request.getfixturevalue("postgres_url")
    store = open_question_log_store(db)
    for question, intent, ref, clicks in RATED:
        store.record(answered(question, intent, ref))
        for user, verdict, choice in clicks:
            store.record_feedback("telegram", "c1", ref, Feedback(NOW, user, verdict, choice))
    store.close()
    return db


def logged(db: str) -> list[LoggedQuestion]:
    store = open_store_for_reading(db)
    try:
        return store.entries()
    finally:
        store.close()


def test_review_groups_the_answers_marked_not_helpful(log_db: str, tiny_bot: FAQBot) -> None:
    review = build_review(logged(log_db), tiny_bot)
    assert review.to_review == 0  # confident answers: only the users' marks reveal them
    assert review.unhelpful_without_text == 1
    sunday, parking = review.unhelpful
    assert (sunday.marks, sunday.answered) == (3, {"opening_hours": 3})
    assert sunday.chosen == {"delivery": 2}
    assert [(q.text, q.marks, q.chosen) for q in sunday.questions] == [
        ("vous livrez le dimanche", 2, "delivery"), ("vous livrez le dimanche svp", 1, "delivery")]
    assert (parking.marks, parking.answered, parking.chosen) == (
        1, {"address": 1}, {NONE_OF_THESE: 1})
    assert parking.questions[0].chosen is None


def test_review_command_shows_the_section(log_db: str, tiny_kb_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["review", "--db", log_db, "--kb", str(tiny_kb_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["not_helpful_without_text"] == 1
    assert report["not_helpful"][1] == {
        "marks": 1, "lang": "fr", "answered": {"address": 1}, "chosen": {"none of these": 1},
        "questions": [{"text": "prix du parking", "marks": 1, "chosen": None}]}
    assert main(["review", "--db", log_db, "--kb", str(tiny_kb_path)]) == 0
    text = capsys.readouterr().out
    assert "Answers users marked not helpful, in 2 groups:" in text
    assert "  1. 3 not helpful, fr; answered: opening_hours 3" in text
    assert "     chosen instead: delivery 2, no choice 1" in text
    assert '     "vous livrez le dimanche" x2' in text
    assert "     chosen instead: none of these 1" in text


def test_export_places_them_and_validates(log_db: str, tiny_kb_path: Path,
                                          tmp_path: Path) -> None:
    export = tmp_path / "candidates.yaml"
    assert main(["review", "--db", log_db, "--kb", str(tiny_kb_path), "--export",
                 str(export)]) == 0
    kb = load_knowledge_base(export)  # a valid knowledge base of its own
    delivery = kb.intent("delivery")
    assert delivery is not None
    assert delivery.examples["fr"] == ["vous livrez le dimanche", "vous livrez le dimanche svp"]
    assert kb.out_of_scope["fr"] == ["prix du parking"]
    assert "# answer marked not helpful 2x; answered: opening_hours" in export.read_text(
        encoding="utf-8")
    merged = yaml.safe_load(tiny_kb_path.read_text(encoding="utf-8"))
    merged["intents"][2]["examples"]["fr"] += delivery.examples["fr"]
    merged["out_of_scope"] = {"fr": kb.out_of_scope["fr"]}
    merged_path = tmp_path / "merged.yaml"
    merged_path.write_text(yaml.safe_dump(merged, allow_unicode=True), encoding="utf-8")
    assert FAQBot.from_path(merged_path, cache=False).answer(
        "vous livrez le dimanche").intent == "delivery"


def test_stats_shows_the_helpful_rate_per_intent(log_db: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    stats = compute_stats(logged(log_db))
    assert [(f.intent, f.helpful, f.not_helpful) for f in stats.feedback] == [
        ("opening_hours", 3, 3), ("address", 0, 1), ("delivery", 0, 1)]
    assert main(["stats", "--db", log_db, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["feedback"][0] == {"intent": "opening_hours", "helpful": 3, "not_helpful": 3,
                                     "helpful_rate": 0.5}
    assert main(["stats", "--db", log_db]) == 0
    text = capsys.readouterr().out
    assert "helpful rate per intent (feedback buttons; helpful of rated):" in text
    assert "    50%     3 of 6     opening_hours" in text
    assert "     0%     0 of 1     address" in text
