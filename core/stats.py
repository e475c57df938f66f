"""`faqbot stats`: how much the bot is asked, where, and how well it copes (with the helpful
rate of each intent, from the feedback buttons)."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, get_args

from core.bot import ReplyKind
from core.questionlog.interface import HELPFUL, NONE_OF_THESE, NOT_HELPFUL, LoggedQuestion
from core.text import printable

KINDS: tuple[ReplyKind, ...] = get_args(ReplyKind)
TOP_INTENTS = 10


@dataclass(frozen=True)
class IntentFeedback:
    """What users said of one intent's answers with the feedback buttons."""

    intent: str
    helpful: int
    not_helpful: int

    @property
    def helpful_rate(self) -> float:
        """The share of "helpful" among the verdicts."""
        return self.helpful / (self.helpful + self.not_helpful)


@dataclass(frozen=True)
class Stats:
    """Counts over the question log; every rate is a share of `questions`."""

    since: datetime | None
    questions: int
    per_day: dict[str, int]  # "YYYY-MM-DD" (UTC) -> questions, in date order
    per_platform: dict[str, int]
    kinds: dict[str, int]  # every kind of KINDS, even at 0
    top_intents: list[tuple[str, int]]  # answered intents (including clarify choices)
    clarify_choices: dict[str, int]  # "chosen", "none of these", "no choice"
    median_latency_ms: float | None
    feedback: list[IntentFeedback]  # intents with verdicts, the most rated first

    def rate(self, kind: str) -> float:
        """The share of questions that got this kind of reply (0 when there are none)."""
        return self.kinds.get(kind, 0) / self.questions if self.questions else 0.0

    def as_dict(self) -> dict[str, Any]:
        """The `--json` form."""
        return {
            "since": self.since.isoformat() if self.since else None,
            "questions": self.questions, "per_day": self.per_day,
            "per_platform": self.per_platform, "kinds": self.kinds,
            "rates": {kind: round(self.rate(kind), 4) for kind in KINDS},
            "top_intents": [{"intent": intent, "count": count}
                            for intent, count in self.top_intents],
            "clarify_choices": self.clarify_choices,
            "median_latency_ms": self.median_latency_ms,
            "feedback": [{"intent": item.intent, "helpful": item.helpful,
                          "not_helpful": item.not_helpful,
                          "helpful_rate": round(item.helpful_rate, 4)}
                         for item in self.feedback],
        }


def compute_stats(entries: Sequence[LoggedQuestion], since: datetime | None = None) -> Stats:
    """Aggregate the questions of the period."""
    clarified = [entry for entry in entries if entry.kind == "clarify"]
    answered = Counter(entry.intent for entry in entries
                       if entry.kind in ("answer", "smalltalk") and entry.intent)
    answered.update(entry.choice for entry in clarified
                    if entry.choice and entry.choice != NONE_OF_THESE)
    latencies = [entry.latency_ms for entry in entries if entry.latency_ms > 0]
    return Stats(
        since=since, questions=len(entries),
        per_day=dict(sorted(Counter(f"{entry.at:%Y-%m-%d}" for entry in entries).items())),
        per_platform=dict(Counter(entry.platform for entry in entries).most_common()),
        kinds={kind: sum(entry.kind == kind for entry in entries) for kind in KINDS},
        top_intents=answered.most_common(TOP_INTENTS),
        clarify_choices={
            "chosen": sum(bool(e.choice) and e.choice != NONE_OF_THESE for e in clarified),
            "none of these": sum(e.choice == NONE_OF_THESE for e in clarified),
            "no choice": sum(e.choice is None for e in clarified)},
        median_latency_ms=statistics.median(latencies) if latencies else None,
        feedback=_feedback_per_intent(entries),
    )


def _feedback_per_intent(entries: Sequence[LoggedQuestion]) -> list[IntentFeedback]:
    verdicts: dict[str, Counter[str]] = {}
    for entry in entries:
        for item in entry.feedback:
            verdicts.setdefault(entry.intent or "?", Counter())[item.verdict] += 1
    per_intent = [IntentFeedback(intent, counts[HELPFUL], counts[NOT_HELPFUL])
                  for intent, counts in verdicts.items()]
    return sorted(per_intent, key=lambda item: (-item.helpful - item.not_helpful, item.intent))


def format_stats(stats: Stats) -> str:
    """The report `faqbot stats` prints."""
    period = f"since {stats.since:%Y-%m-%d %H:%M} UTC" if stats.since else "in the log"
    if not stats.questions:
        return f"No questions {period}."
    latency = ("n/a" if stats.median_latency_ms is None
               else f"{stats.median_latency_ms:.1f} ms")
    lines = [
        f"{stats.questions} questions {period}",
        "replies: " + ", ".join(f"{kind} {stats.rate(kind):.0%} ({stats.kinds[kind]})"
                                for kind in KINDS),
        "after clarify: " + ", ".join(f"{name} {count}"
                                      for name, count in stats.clarify_choices.items()),
        f"median time to reply: {latency}",
        "per platform: " + ", ".join(f"{platform} {count}"
                                     for platform, count in stats.per_platform.items()),
        "",
        "per day (UTC):",
        *(f"  {day}  {count:>6}" for day, count in stats.per_day.items()),
        "",
        "most asked intents:",
        *(f"  {count:>6}  {intent}" for intent, count in stats.top_intents),
    ]
    if stats.feedback:
        lines += ["", "helpful rate per intent (feedback buttons; helpful of rated):",
                  *(f"  {item.helpful_rate:>5.0%}  {item.helpful:>4} of {rated:<4}  {item.intent}"
                    for item in stats.feedback
                    for rated in [item.helpful + item.not_helpful])]
    return "\n".join(printable(line) for line in lines)  # the log holds what users sent
