"""A question log that keeps what it is handed, in memory, for the tests of what writes to it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from core.questionlog.interface import Feedback, LoggedQuestion, RawId


@dataclass
class RecordingQuestionLog:
    """Every call of the `QuestionLog` interface, in order, with the raw ids it was given."""

    questions: list[tuple[LoggedQuestion, RawId, RawId]] = field(default_factory=list)
    choices: list[tuple[str, RawId, RawId, str]] = field(default_factory=list)
    feedback: list[tuple[str, RawId, RawId, str, Feedback]] = field(default_factory=list)

    def record(self, entry: LoggedQuestion, chat_id: RawId, user_id: RawId) -> None:
        self.questions.append((entry, chat_id, user_id))

    def record_choice(self, platform: str, chat_id: RawId, user_id: RawId, choice: str,
                      at: datetime) -> None:
        self.choices.append((platform, chat_id, user_id, choice))

    def record_feedback(self, platform: str, chat_id: RawId, user_id: RawId, question_ref: str,
                        feedback: Feedback) -> None:
        self.feedback.append((platform, chat_id, user_id, question_ref, feedback))
