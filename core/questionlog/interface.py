"""The question log's interface: what a question log is, and what both of its stores share.

One row per question the bot was asked, for the curators' loop: `faqbot review` and `faqbot
stats` read it; `faqbot run` writes it, with what users said of the answers through their
feedback buttons (helpful or not, and the topic chosen instead). Chat and user ids are never
stored: they become keyed hashes (HMAC-SHA256), so the questions of one person group together
without naming them. The key is a random salt kept in the database, unless one is given from
outside (FAQBOT_ID_KEY): ids are pseudonymised, not anonymised, since whoever holds the key can
hash every possible id and match. This module holds the records (`LoggedQuestion`,
`Feedback`), the protocols (`QuestionLog`, `QuestionLogStore`), the errors, and the SQL
statements and row builders that the SQLite store (core/questionlog/sqlite.py) and the
PostgreSQL store (core/questionlog/postgres.py) both run.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from core.errors import FaqbotError

SCHEMA_VERSION = 4
# The choice recorded when a user answers a clarification with "none of these"; the dash keeps
# it apart from every intent id.
NONE_OF_THESE = "-none-"
# A click is taken as the answer to a clarification shown at most this long before.
CHOICE_WINDOW = timedelta(hours=1)
DAY_SECONDS = 86_400.0
HELPFUL = "helpful"
NOT_HELPFUL = "not_helpful"


class QuestionLogError(FaqbotError):
    """The question log cannot be opened (missing, unreadable, from a newer faqbot)."""


class OutdatedSchemaError(QuestionLogError):
    """A read-only opening met an older schema, which only a writer can upgrade."""


@dataclass(frozen=True)
class Feedback:
    """What one user said of an answer with its feedback buttons; `user` is a pseudonym."""

    at: datetime
    user: str
    verdict: str  # HELPFUL or NOT_HELPFUL
    choice: str | None = None  # after NOT_HELPFUL: the intent chosen instead, or NONE_OF_THESE


@dataclass(frozen=True)
class LoggedQuestion:
    """One question and what the bot did with it; `chat` and `user` are pseudonyms."""

    at: datetime
    platform: str
    chat: str
    user: str
    lang: str
    question: str | None  # None when FAQBOT_LOG_TEXT=0
    kind: str
    intent: str | None
    confidence: float
    suggestions: tuple[str, ...] = ()
    latency_ms: float = 0.0
    choice: str | None = None  # after a clarify: an intent id or NONE_OF_THESE
    # The question's reference in its chat: derived from the platform's update (the same in
    # every process, so a question answered twice is logged once), else random when its feedback
    # buttons carry one; None for the others (console, CLI, platform questions without buttons).
    ref: str | None = None
    feedback: tuple[Feedback, ...] = ()  # filled when read back, oldest first


# A platform's chat or user id, as the adapters have it (None when the platform gives none).
RawId = int | str | None


class QuestionLog(Protocol):
    """What the service needs of a question log (`BackgroundQuestionLog`). Ids are handed over
    raw; the log keeps only their pseudonyms."""

    def record(self, entry: LoggedQuestion, chat_id: RawId, user_id: RawId) -> None:
        """Add one question; its `chat` and `user` become the pseudonyms of these ids."""
        ...

    def record_choice(self, platform: str, chat_id: RawId, user_id: RawId, choice: str,
                      at: datetime) -> None:
        """Attach a choice to the latest open clarification of that chat and user."""
        ...

    def record_feedback(self, platform: str, chat_id: RawId, user_id: RawId, question_ref: str,
                        feedback: Feedback) -> None:
        """Attach a user's feedback (its `user` becomes the pseudonym of `user_id`) to the
        question of that platform, chat and reference. A user keeps their first verdict; a
        choice is kept once, after NOT_HELPFUL (a choice without a verdict records NOT_HELPFUL
        with it). Nothing happens when the question is gone (retention)."""
        ...


class QuestionLogStore(Protocol):
    """A storage `BackgroundQuestionLog` writes through, and `review` and `stats` read:
    `SQLiteQuestionLog` (core/questionlog/sqlite.py) or `PostgresQuestionLog`
    (core/questionlog/postgres.py). Chat and user are pseudonyms already."""

    def pseudonym(self, platform: str, raw_id: RawId) -> str:
        """The keyed hash an id is stored as."""
        ...

    def record(self, entry: LoggedQuestion) -> None:
        """Add one question."""
        ...

    def record_many(self, entries: list[LoggedQuestion]) -> None:
        """Add questions in one transaction: all of them, or none on error; one whose
        platform, chat and reference are logged already is skipped."""
        ...

    def record_choice(self, platform: str, chat: str, user: str, choice: str,
                      at: datetime) -> None:
        """Attach a choice to the latest open clarification of that chat and user."""
        ...

    def record_feedback(self, platform: str, chat: str, question_ref: str,
                        feedback: Feedback) -> None:
        """Attach feedback to the referenced question, as QuestionLog says."""
        ...

    def entries(self, since: datetime | None = None) -> list[LoggedQuestion]:
        """The questions asked at or after `since`, oldest first, with their feedback."""
        ...

    def purge(self, older_than_days: int) -> None:
        """Delete the questions older than that, and their feedback."""
        ...

    def close(self) -> None:
        """Release the database."""
        ...


# The columns of a question as both stores write and read them, in the order of
# `question_row` and `logged_question` ("user" quoted: a keyword in PostgreSQL).
QUESTION_COLUMNS = ('at, platform, chat, "user", lang, question, kind, intent, confidence, '
                    "suggestions, latency_ms, choice, ref")


# A question inserted unless one with its platform, chat and reference is logged already (the
# unique index of schema version 4): a platform update answered again after a crash of the
# process that first answered it (at least once) is logged once. Questions without a reference
# are all logged.
QUESTION_INSERT = (f"INSERT INTO questions ({QUESTION_COLUMNS}) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING")

# Feedback attached to the latest question of that platform, chat and reference: a user's
# first verdict stays, a choice is added once, after NOT_HELPFUL (PostgreSQL runs it with its
# own placeholders).
FEEDBACK_INSERT = ('INSERT INTO feedback (question, at, "user", verdict, choice) '
                   "SELECT id, ?, ?, ?, ? FROM questions WHERE platform = ? AND chat = ? "
                   "AND ref = ? ORDER BY id DESC LIMIT 1 "
                   'ON CONFLICT (question, "user") DO UPDATE SET choice = excluded.choice '
                   "WHERE feedback.choice IS NULL AND feedback.verdict = ?")
# What `entries` and `purge` run, in both stores (PostgreSQL with its own placeholders).
QUESTIONS_SINCE = f"SELECT id, {QUESTION_COLUMNS} FROM questions WHERE at >= ? ORDER BY id"
FEEDBACK_SINCE = ('SELECT feedback.question, feedback.at, feedback."user", verdict, '
                  "feedback.choice FROM feedback JOIN questions ON questions.id = "
                  "feedback.question WHERE questions.at >= ? ORDER BY feedback.id")
PURGE_FEEDBACK = "DELETE FROM feedback WHERE question IN (SELECT id FROM questions WHERE at < ?)"
PURGE_QUESTIONS = "DELETE FROM questions WHERE at < ?"


def feedback_row(platform: str, chat: str, question_ref: str,
                 feedback: Feedback) -> tuple[object, ...]:
    """The values of FEEDBACK_INSERT."""
    return (feedback.at.timestamp(), feedback.user, feedback.verdict, feedback.choice,
            platform, chat, question_ref, NOT_HELPFUL)


def question_row(entry: LoggedQuestion) -> tuple[object, ...]:
    """The values of QUESTION_COLUMNS for `entry`."""
    return (entry.at.timestamp(), entry.platform, entry.chat, entry.user, entry.lang,
            entry.question, entry.kind, entry.intent, entry.confidence,
            json.dumps(list(entry.suggestions)), entry.latency_ms, entry.choice, entry.ref)


def keyed_pseudonym(key: bytes, platform: str, raw_id: int | str | None) -> str:
    """16 hex digits of HMAC-SHA256(key, "platform:id"); empty for a missing id."""
    if raw_id is None:
        return ""
    return hmac.new(key, f"{platform}:{raw_id}".encode(), hashlib.sha256).hexdigest()[:16]


def default_db_path() -> Path:
    """The question log in the user's data directory (e.g. ~/.local/share/faqbot)."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("faqbot")) / "questions.sqlite3"


def check_schema_version(name: object, version: int, *, upgradable: bool) -> None:
    """Refuse a log from a newer faqbot, and an older one that cannot be upgraded here (a
    read-only opening); `name` says which log in the message."""
    if version > SCHEMA_VERSION:
        raise QuestionLogError(f"{name}: schema version {version} comes from a newer faqbot")
    if version < SCHEMA_VERSION and not upgradable:
        raise OutdatedSchemaError(f"{name}: schema version {version} is older than "
                                  f"{SCHEMA_VERSION}; opening it for writing upgrades it")


def logged_questions(rows: Sequence[Sequence[object]],
                     feedback_rows: Sequence[Sequence[object]]) -> list[LoggedQuestion]:
    """The questions read back by either store: `rows` are (id, QUESTION_COLUMNS...), and
    `feedback_rows` (question id, at, user, verdict, choice), oldest first."""
    feedback: defaultdict[int, list[Feedback]] = defaultdict(list)
    for question_id, at, user, verdict, choice in feedback_rows:
        feedback[int(str(question_id))].append(Feedback(
            at=datetime.fromtimestamp(float(str(at)), UTC), user=str(user),
            verdict=str(verdict), choice=None if choice is None else str(choice)))
    return [_entry(tuple(row[1:]), tuple(feedback.get(int(str(row[0])), ()))) for row in rows]


def _entry(row: tuple[object, ...], feedback: tuple[Feedback, ...]) -> LoggedQuestion:
    (at, platform, chat, user, lang, question, kind, intent, confidence, suggestions,
     latency_ms, choice, ref) = row
    return LoggedQuestion(
        at=datetime.fromtimestamp(float(str(at)), UTC), platform=str(platform), chat=str(chat),
        user=str(user), lang=str(lang), question=None if question is None else str(question),
        kind=str(kind), intent=None if intent is None else str(intent),
        confidence=float(str(confidence)), suggestions=tuple(json.loads(str(suggestions))),
        latency_ms=float(str(latency_ms)), choice=None if choice is None else str(choice),
        ref=None if ref is None else str(ref), feedback=feedback)

