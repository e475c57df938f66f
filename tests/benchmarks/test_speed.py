"""`make bench`: a quick run works end to end and reports every figure (no timing is judged)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.engine_speed import _paired_latencies_us
from benchmarks.report import Figure, Report, Target
from benchmarks.serving import match_replies
from benchmarks.workload import unseen_questions, varied_questions

REPOSITORY = Path(__file__).resolve().parents[2]
# The quick run trains and starts the bot several times, the encoder too: minutes on a loaded
# machine.
pytestmark = pytest.mark.timeout(660)

# Every figure a run in a repository checkout reports (CLINC150 is left out of quick runs).
EXPECTED = {
    "answer_median_us", "answer_encoded_median_us", "answer_p99_us", "answer_p99_over_median",
    "batch_per_second", "batch_ranking_per_second", "train_kb_s", "train_kb_first_s",
    "ask_first_run_s", "ask_s", "ask_peak_mb", "ask_encoder_s", "ask_encoder_peak_mb",
    "ask_retrained", "python_s",
    *(f"{platform}_{figure}" for platform in ("telegram", "discord")
      for figure in ("paced_median_ms", "paced_p99_ms", "per_second", "lost",
                     "burst_median_ms", "burst_p99_ms", "bot_cpu_ms", "fake_cpu_ms", "peak_mb")),
    # Telegram again, with the question log in PostgreSQL.
    "telegram_postgres_per_second", "telegram_postgres_log_lost", "telegram_postgres_bot_cpu_ms",
}


@pytest.fixture(scope="module")
def quick_run() -> dict[str, object]:
    """`python -m benchmarks.speed --quick --json` in a new process, as `make bench` runs it."""
    result = subprocess.run([sys.executable, "-m", "benchmarks.speed", "--quick", "--json"],
                            capture_output=True, text=True, timeout=600, env=os.environ.copy(),
                            cwd=REPOSITORY, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    report: dict[str, object] = json.loads(result.stdout)
    return report


def test_quick_run_reports_every_figure(quick_run: dict[str, object]) -> None:
    figures = quick_run["figures"]
    assert isinstance(figures, dict)
    assert set(figures) == EXPECTED
    for key, figure in figures.items():
        assert isinstance(figure["value"], int | float) and math.isfinite(figure["value"]), key
        assert figure["value"] >= 0, key
    assert isinstance(quick_run["all_targets_met"], bool)


def test_quick_run_answers_everything_and_reuses_the_model(
        quick_run: dict[str, object]) -> None:
    figures = quick_run["figures"]
    assert isinstance(figures, dict)
    assert figures["telegram_lost"]["value"] == 0
    assert figures["discord_lost"]["value"] == 0
    assert figures["telegram_postgres_log_lost"]["value"] == 0
    assert figures["ask_retrained"]["value"] == 0  # the second `faqbot ask` hit the cache
    # Baselines are measured in the same run, so every ratio is there.
    for key in ("answer_median_us", "batch_per_second", "ask_s", "ask_peak_mb"):
        assert figures[key]["baseline"] > 0 and figures[key]["ratio"] > 0, key
    for key in ("answer_median_us", "answer_p99_over_median", "ask_s", "ask_peak_mb"):
        assert figures[key]["met"] in (True, False), key


def test_table_shows_figures_ratios_and_verdicts() -> None:
    report = Report(context={"python": "3.11", "cpus": 2, "questions_timed": 10,
                             "distinct_questions": 9},
                    figures=[Figure("a", "answer, median", "µs", 100.0, 400.0, "pipeline",
                                    Target("ratio", "<=", 0.5)),
                             Figure("b", "throughput", "msg/s", 250.0,
                                    target=Target("value", ">=", 300)),
                             Figure("c", "skipped platform", "msg/s", None, note="skipped")])
    table = report.as_table()
    assert "answer, median" in table and "0.250" in table and "ratio <= 0.5" in table
    lines = table.splitlines()
    assert next(line for line in lines if line.startswith("answer")).endswith("yes")
    assert next(line for line in lines if line.startswith("throughput")).endswith("NO")
    assert "- skipped platform: skipped" in table
    assert report.as_dict()["all_targets_met"] is False


@pytest.mark.parametrize(("target", "value", "ratio", "met"), [
    (Target("ratio", "<=", 0.5), 1.0, 0.5, True),
    (Target("ratio", ">=", 2.0), 1.0, 1.9, False),
    (Target("value", "<", 200), 199.0, None, True),
    (Target("value", "==", 0), 1.0, None, False),
    (Target("value", ">=", 300), None, None, None),
])
def test_targets(target: Target, value: float | None, ratio: float | None,
                 met: bool | None) -> None:
    assert target.met(value, ratio) is met


def test_varied_questions_are_reproducible_and_varied() -> None:
    texts = ["Qu'est-ce que l'AMIAD ?", "what is the scope of the agreement", "pourquoi mistral"]
    questions = varied_questions(texts, 200, seed=7)
    assert questions == varied_questions(texts, 200, seed=7)
    assert len(questions) == 200
    assert len(set(questions)) > 20


def test_both_systems_are_timed_side_by_side_each_cold() -> None:
    calls: list[str] = []
    ours, theirs = _paired_latencies_us(
        lambda question: calls.append(f"ours {question}"),
        lambda question: calls.append(f"theirs {question}"), ["a", "b", "c"], ["w"],
        lambda: calls.append("forget"))
    assert len(ours) == len(theirs) == 3
    assert calls == ["ours w", "theirs w",  # warm-up, then each question by both in turn
                     "theirs a", "forget", "ours a", "forget", "ours b", "theirs b",
                     "theirs c", "forget", "ours c"]


def test_unseen_questions_are_distinct_and_never_a_training_text() -> None:
    texts = ["Qu'est-ce que l'AMIAD ?", "what is the scope of the agreement", "pourquoi mistral"]
    questions = unseen_questions(texts, 60, seed=7)
    assert len(questions) == len(set(questions)) == 60
    assert not set(questions) & set(texts)
    assert questions == unseen_questions(texts, 60, seed=7)


def test_quick_run_times_new_questions_some_through_the_encoder(
        quick_run: dict[str, object]) -> None:
    context = quick_run["context"]
    assert isinstance(context, dict)
    assert context["distinct_questions"] > 0.5 * context["questions_timed"]
    assert 0.0 < context["questions_encoded"] < 1.0  # the cascade splits them


def test_replies_are_matched_to_messages_per_key_in_order() -> None:
    pushed = [("chat1", 1.0), ("chat2", 2.0), ("chat1", 3.0), ("chat3", 4.0)]
    replied = [("chat2", 2.5), ("chat1", 1.5), ("chat1", 3.25)]  # chat3 never answered
    assert match_replies(pushed, replied) == [(1.0, 1.5), (2.0, 2.5), (3.0, 3.25), (4.0, None)]
