"""`faqbot stats`: the counts, rates and helpful rates over the question log, and their report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.questionlog.interface import HELPFUL, NONE_OF_THESE, NOT_HELPFUL, Feedback, LoggedQuestion
from core.stats import TOP_INTENTS, compute_stats, format_stats

START = datetime(2026, 11, 2, 23, 30, tzinfo=UTC)


def logged(kind: str, intent: str | None = None, *, minutes: int = 0, platform: str = "telegram",
           latency_ms: float = 2.0, choice: str | None = None,
           verdicts: tuple[str, ...] = ()) -> LoggedQuestion:
    at = START + timedelta(minutes=minutes)
    return LoggedQuestion(at=at, platform=platform, chat="c", user="u", lang="fr",
                          question="q", kind=kind, intent=intent, confidence=0.5,
                          latency_ms=latency_ms, choice=choice,
                          feedback=tuple(Feedback(at, f"u{n}", verdict)
                                         for n, verdict in enumerate(verdicts)))


def test_an_empty_log() -> None:
    stats = compute_stats([])
    assert stats.questions == 0 and stats.rate("answer") == 0.0
    assert stats.median_latency_ms is None
    assert stats.kinds == {"answer": 0, "clarify": 0, "fallback": 0, "smalltalk": 0}
    assert format_stats(stats) == "No questions in the log."
    since = compute_stats([], since=datetime(2026, 11, 1, 8, 5, tzinfo=UTC))
    assert format_stats(since) == "No questions since 2026-11-01 08:05 UTC."


def test_days_are_utc_dates_in_order_and_platforms_most_asked_first() -> None:
    stats = compute_stats([logged("answer", "a", minutes=40),  # 3 November, 00:10 UTC
                           logged("answer", "a", platform="discord"),
                           logged("fallback", platform="discord", minutes=-60 * 24)])
    assert list(stats.per_day.items()) == [("2026-11-01", 1), ("2026-11-02", 1),
                                           ("2026-11-03", 1)]
    assert list(stats.per_platform.items()) == [("discord", 2), ("telegram", 1)]


def test_intents_answered_count_smalltalk_and_choices_after_a_clarification() -> None:
    stats = compute_stats([
        logged("answer", "hours"), logged("smalltalk", "greeting"),
        logged("clarify", choice="hours"), logged("clarify", choice="address"),
        logged("clarify", choice=NONE_OF_THESE), logged("clarify"),
        logged("fallback", "hours")])  # a fallback answers no intent
    assert stats.top_intents == [("hours", 2), ("greeting", 1), ("address", 1)]
    assert stats.clarify_choices == {"chosen": 2, "none of these": 1, "no choice": 1}
    assert stats.rate("clarify") == pytest.approx(4 / 7)
    crowded = compute_stats([logged("answer", f"topic{n}") for n in range(TOP_INTENTS + 3)])
    assert len(crowded.top_intents) == TOP_INTENTS


def test_median_time_to_reply_leaves_out_entries_without_one() -> None:
    stats = compute_stats([logged("answer", "a", latency_ms=ms) for ms in (0.0, 1.0, 3.0, 8.0)])
    assert stats.median_latency_ms == 3.0


def test_helpful_rate_per_intent_most_rated_first() -> None:
    stats = compute_stats([
        logged("answer", "hours", verdicts=(HELPFUL, NOT_HELPFUL, NOT_HELPFUL)),
        logged("answer", "hours", verdicts=(HELPFUL,)),
        logged("answer", "address", verdicts=(HELPFUL,)),
        logged("answer", "delivery", verdicts=(NOT_HELPFUL,)),
        logged("answer", "returns")])  # no verdict: not listed
    assert [(item.intent, item.helpful, item.not_helpful) for item in stats.feedback] == [
        ("hours", 2, 2), ("address", 1, 0), ("delivery", 0, 1)]
    assert stats.feedback[0].helpful_rate == 0.5
    assert stats.as_dict()["feedback"][0] == {"intent": "hours", "helpful": 2,
                                              "not_helpful": 2, "helpful_rate": 0.5}
    report = format_stats(stats)
    assert "helpful rate per intent (feedback buttons; helpful of rated):" in report
    assert "    50%     2 of 4     hours" in report.splitlines()


def test_report_lines() -> None:
    stats = compute_stats([logged("answer", "hours", latency_ms=1.25),
                           logged("fallback", platform="discord", latency_ms=1.25)])
    lines = format_stats(stats).splitlines()
    assert lines[:5] == ["2 questions in the log",
                         "replies: answer 50% (1), clarify 0% (0), fallback 50% (1), "
                         "smalltalk 0% (0)",
                         "after clarify: chosen 0, none of these 0, no choice 0",
                         "median time to reply: 1.2 ms",
                         "per platform: telegram 1, discord 1"]
    assert "  2026-11-02       2" in lines
    assert "  feedback" not in lines and "helpful rate" not in format_stats(stats)


def test_what_users_sent_reaches_the_terminal_escaped() -> None:
    hostile = "\x1b]0;pwned\x07\x1b[2J"
    report = format_stats(compute_stats([logged("answer", f"hours{hostile}",
                                                platform=f"tg{hostile}")]))
    assert all(line.isprintable() for line in report.splitlines())
    assert "\x1b" not in report and "\x07" not in report
