"""`make bench`: how fast faqbot answers, starts and serves, next to baselines run alongside.

One run measures, on the shipped knowledge base:
- `FAQBot.answer` latency on single questions and batch throughput, against a plain
  scikit-learn pipeline (TfidfVectorizer + LogisticRegression) trained on the same examples;
  single questions are timed cold: each one new to the process (never asked before, no
  training example), with the classifier's per-word look-ups emptied before it;
- training time, on the knowledge base and on CLINC150's training set when the shared data
  sets sit beside the repository;
- start-up of `faqbot ask` as a new process and its peak memory, against the import floor of
  the scikit-learn modules such a pipeline needs;
- end-to-end serving through Telegram and Discord (see `benchmarks.serving`).

Every baseline runs in the same process or on the same machine, just before or after faqbot,
so ratios compare like with like. Figures are printed as a table, or as one JSON object.
Nothing here is a test: the test suite only checks that a quick run works.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import serving
from benchmarks.report import Figure, Report, Target, percentile
from benchmarks.serving import faqbot_command
from core import FAQBot, IntentClassifier, load_knowledge_base, normalize
from core.cache import new_classifier
from core.encoder import SentenceEncoder
from intents import DEFAULT_KB_PATH

ASK_QUESTION = "Qu'est-ce que l'AMIAD ?"
# A paraphrase sharing few words with the examples: the n-gram model is unsure of it, so
# answering it loads the sentence encoder.
ASK_PARAPHRASE = "mes informations restent-elles sur le territoire national ?"
IMPORT_FLOOR = "import sklearn.linear_model, sklearn.feature_extraction.text"
DATASETS_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets"
_BASELINE_OOS = "out_of_scope"  # the baseline learns out-of-scope examples as one more class
_GREETINGS = ("bonjour, ", "salut ", "hello, ", "hi ")


@dataclass(frozen=True)
class Sizes:
    """How much work each measurement does; `QUICK` keeps a run to seconds."""

    calls: int = 10_000  # single-question calls timed, on each side
    batch: int = 10_000  # questions in the batch
    batch_repeats: int = 3  # the fastest of these many batch runs counts
    trainings: int = 5  # trainings timed on each side, after one untimed (imports); median
    startup_runs: int = 5  # new processes timed, on each side
    paced: int = 200  # end-to-end messages at a steady rate, for reply times
    messages: int = 2_000  # end-to-end messages (and interactions) in the burst
    users: int = 100
    clinc: bool = True  # train on CLINC150 when the data set is there


FULL = Sizes()
QUICK = Sizes(calls=200, batch=200, batch_repeats=1, trainings=1, startup_runs=1, paced=10,
              messages=40, users=5, clinc=False)


# ---------------------------------------------------------------------------------------------
# Questions


def varied_questions(texts: Sequence[str], count: int, seed: int) -> list[str]:
    """`count` questions as people type them: the knowledge base's own questions and examples,
    each possibly upper-cased, given a typo, a greeting or a missing last word."""
    rng = random.Random(seed)
    return [_vary(rng.choice(texts), rng) for _ in range(count)]


def unseen_questions(texts: Sequence[str], count: int, seed: int) -> list[str]:
    """Up to `count` distinct questions made as `varied_questions` makes them, none of them
    one of `texts` (the training examples): each is new to a process that trained on them."""
    rng = random.Random(seed)
    seen = set(texts)
    questions: list[str] = []
    for _ in range(count * 20):
        question = _vary(rng.choice(texts), rng)
        if question not in seen:
            seen.add(question)
            questions.append(question)
            if len(questions) == count:
                break
    return questions


def _vary(text: str, rng: random.Random) -> str:
    change = rng.randrange(5)
    words = text.split()
    if change == 1:
        return text.upper() + " ?"
    if change == 2 and len(text) > 3:
        at = rng.randrange(len(text) - 1)  # two neighbouring letters swapped
        return text[:at] + text[at + 1] + text[at] + text[at + 2:]
    if change == 3:
        return rng.choice(_GREETINGS) + text
    if change == 4 and len(words) > 2:
        return " ".join(words[:-1])
    return text


# ---------------------------------------------------------------------------------------------
# Engine: latency, batch throughput, training


def _baseline_pipeline() -> Any:
    """The obvious alternative: word TF-IDF and a logistic regression, scikit-learn defaults."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    return make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=1000))


def _baseline_labels(labels: Sequence[str | None]) -> list[str]:
    return [_BASELINE_OOS if label is None else label for label in labels]


def _seconds(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _median_seconds(action: Callable[[], object], runs: int) -> float:
    return statistics.median(_seconds(action) for _ in range(runs))


def _paired_latencies_us(ours: Callable[[str], object], theirs: Callable[[str], object],
                         questions: Sequence[str], warm_up: Sequence[str],
                         forget: Callable[[], None]) -> tuple[list[float], list[float]]:
    """Microseconds of each call of both systems on each question, after calls on `warm_up`
    (lazy imports and models). The two are timed one right after the other, which one first
    alternating, so that both see the same machine load; `forget()` (untimed) comes before
    each of `ours`."""
    for question in warm_up:
        ours(question)
        theirs(question)
    our_times: list[float] = []
    their_times: list[float] = []
    for index, question in enumerate(questions):
        pair = [(ours, our_times), (theirs, their_times)]
        for call, times in pair if index % 2 else reversed(pair):
            if call is ours:
                forget()
            started = time.perf_counter_ns()
            call(question)
            times.append((time.perf_counter_ns() - started) / 1000)
    return our_times, their_times


def engine_figures(sizes: Sizes, kb_path: Path = DEFAULT_KB_PATH) -> tuple[list[Figure],
                                                                           dict[str, Any]]:
    """Training, single-question latency and batch throughput, each beside the baseline."""
    kb = load_knowledge_base(kb_path)
    texts, labels = kb.training_data()
    # Every example encoded by an encoder of its own (which loads its weights first).
    first_seconds = _seconds(
        lambda: IntentClassifier(encoder=SentenceEncoder()).fit(texts, labels))
    bot = FAQBot(kb, new_classifier(kb).fit(texts, labels))
    baseline = _baseline_pipeline().fit(texts, _baseline_labels(labels))
    # Later trainings find the examples' embeddings in the encoder's cache, as a retraining
    # after a curator's edit does (it encodes only the examples that changed).
    train_seconds = _median_seconds(lambda: new_classifier(kb).fit(texts, labels),
                                    sizes.trainings)
    baseline_seconds = _median_seconds(
        lambda: _baseline_pipeline().fit(texts, _baseline_labels(labels)), sizes.trainings)

    questions = unseen_questions(texts, sizes.calls, seed=1)
    warm_up = [*texts[:100], ASK_PARAPHRASE]  # the last one loads the encoder
    ours, theirs = _paired_latencies_us(
        bot.answer, lambda question: baseline.predict_proba([question]), questions, warm_up,
        bot.classifier.forget_words)
    alone = [bot.classifier.answers_alone(question) for question in questions]
    encoded_times = [micros for micros, quick in zip(ours, alone, strict=True) if not quick]

    batch = varied_questions(texts, sizes.batch, seed=2)
    our_batch = min(_seconds(lambda: bot.answer_many(batch)) for _ in range(sizes.batch_repeats))
    ranking = min(_seconds(lambda: bot.classifier.predict(batch))
                  for _ in range(sizes.batch_repeats))
    their_batch = min(_seconds(lambda: baseline.predict_proba(batch))
                      for _ in range(sizes.batch_repeats))
    pipeline = "scikit-learn TfidfVectorizer + LogisticRegression"
    their_median = statistics.median(theirs)
    figures = [
        Figure("answer_median_us", "answer, one new question: median", "µs",
               statistics.median(ours), their_median, pipeline + " predict_proba",
               Target("ratio", "<=", 1.0)),
        Figure("answer_encoded_median_us", "answer, a new question the encoder decides: median",
               "µs", statistics.median(encoded_times) if encoded_times else None, their_median,
               pipeline + " predict_proba median",
               note="the questions the cascade's n-gram model leaves to the sentence encoder"),
        Figure("answer_p99_us", "answer, one new question: 99th percentile", "µs",
               percentile(ours, 99), percentile(theirs, 99), pipeline + " predict_proba"),
        Figure("answer_p99_over_median", "answer p99, against the baseline's median", "µs",
               percentile(ours, 99), their_median, pipeline + " predict_proba median",
               Target("ratio", "<=", 5.0)),
        Figure("batch_per_second", f"batch of {len(batch):,} questions", "questions/s",
               len(batch) / our_batch, len(batch) / their_batch, pipeline + " predict_proba",
               Target("ratio", ">=", 2.0), note="faqbot's figure is FAQBot.answer_many: whole "
               "replies, language guess and suggestions included"),
        Figure("batch_ranking_per_second", "batch, IntentClassifier.predict only",
               "questions/s", len(batch) / ranking, len(batch) / their_batch,
               pipeline + " predict_proba"),
        Figure("train_kb_s", f"training, shipped knowledge base ({len(texts):,} examples)", "s",
               train_seconds, baseline_seconds, pipeline + " fit",
               Target("value", "<=", 2.0),
               note=f"median of {sizes.trainings} after an untimed one, the examples' "
                    "embeddings cached; faqbot's figure includes choosing its threshold, margin "
                    "and cascade cut by 3-fold cross-validation (four fits)"),
        Figure("train_kb_first_s", "training, every example encoded (new encoder)", "s",
               first_seconds, baseline_seconds, pipeline + " fit",
               note="includes loading the encoder's weights"),
    ]
    context = {"questions_timed": len(questions),
               "distinct_questions": len({normalize(q) for q in questions}),
               "questions_encoded": round(len(encoded_times) / max(1, len(questions)), 4),
               "batch_distinct_questions": len({normalize(q) for q in batch}),
               "training_examples": len(texts)}
    return figures, context


def clinc_figure(datasets: Path = DATASETS_DIR) -> Figure | None:
    """Training time on CLINC150's training set (with its out-of-scope part), if present."""
    path = datasets / "clinc150" / "data_full.json"
    if not path.is_file():
        return None
    splits = json.loads(path.read_text(encoding="utf-8"))
    rows: list[tuple[str, str | None]] = [(str(text), str(label))
                                          for text, label in splits["train"]]
    rows += [(str(text), None) for text, _ in splits["oos_train"]]
    texts = [text for text, _ in rows]
    labels: list[str | None] = [label for _, label in rows]
    ours = _seconds(lambda: IntentClassifier().fit(texts, labels))
    theirs = _seconds(lambda: _baseline_pipeline().fit(texts, _baseline_labels(labels)))
    return Figure("train_clinc150_s", f"training, CLINC150 train ({len(texts):,} examples)", "s",
                  ours, theirs, "scikit-learn TfidfVectorizer + LogisticRegression fit")


# ---------------------------------------------------------------------------------------------
# Start-up of `faqbot ask` as a new process


@dataclass(frozen=True)
class ProcessRun:
    """A finished child process: wall time, peak resident memory, exit code, error output."""

    seconds: float
    peak_mb: float
    exit_code: int
    errors: str


# Linux charges a process with the peak memory of the one that started it (the memory in use
# when it called exec), so the processes measured are started by a small interpreter of their
# own, not by this large one: the peak then read by wait4 is theirs.
_MEASURER = """
import json, os, subprocess, sys, time
started = time.perf_counter()
child = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
errors = child.stderr.read()
_, status, usage = os.wait4(child.pid, 0)
print(json.dumps({"seconds": time.perf_counter() - started, "peak_kb": usage.ru_maxrss,
                  "exit_code": os.waitstatus_to_exitcode(status),
                  "errors": errors.decode(errors="replace")[-800:]}))
"""


def run_process(command: Sequence[str], env: dict[str, str]) -> ProcessRun:
    """Run a command to completion: its wall time and its own peak resident memory."""
    measurer = [sys.executable, "-I", "-S", "-c", _MEASURER, *command]
    finished = subprocess.run(measurer, env=env, capture_output=True, text=True, check=True)
    result = json.loads(finished.stdout)
    return ProcessRun(result["seconds"], result["peak_kb"] / 1024, result["exit_code"],
                      result["errors"])


def child_environment(work_dir: Path) -> dict[str, str]:
    """This environment, with the shipped knowledge base and a model cache and a question log
    of the run's own (in `work_dir`), and no platform token."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("FAQBOT_") and not name.endswith("_BOT_TOKEN")}
    return env | {"FAQBOT_CACHE_DIR": str(work_dir / "models"),
                  "FAQBOT_DB": str(work_dir / "questions.sqlite3"),
                  "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}


def _cache_state(directory: Path) -> set[tuple[str, int]]:
    return {(path.name, path.stat().st_mtime_ns) for path in directory.glob("*.npz")}


def startup_figures(sizes: Sizes, work_dir: Path) -> list[Figure]:
    """`faqbot ask` cold (it trains) and warm (the cache) next to the import floor."""
    env = child_environment(work_dir)
    cache_dir = Path(env["FAQBOT_CACHE_DIR"])
    ask = [*faqbot_command(), "ask", ASK_QUESTION]
    floor = [sys.executable, "-c", IMPORT_FLOOR]
    cold = _checked(run_process(ask, env))
    cached = _cache_state(cache_dir)
    warm: list[ProcessRun] = []
    floors: list[ProcessRun] = []
    encoding: list[ProcessRun] = []
    retrained = 0
    for _ in range(sizes.startup_runs):  # alternated, so that all see the same machine load
        warm.append(_checked(run_process(ask, env)))
        floors.append(_checked(run_process(floor, env)))
        encoding.append(_checked(run_process([*ask[:-1], ASK_PARAPHRASE], env)))
        retrained += _cache_state(cache_dir) != cached
    python = _checked(run_process([sys.executable, "-c", "pass"], env))
    floor_name = f"python -c '{IMPORT_FLOOR}'"
    warm_seconds = statistics.median(run.seconds for run in warm)
    floor_seconds = statistics.median(run.seconds for run in floors)
    return [
        Figure("ask_first_run_s", "faqbot ask, first run (trains, then caches)", "s",
               cold.seconds, floor_seconds, floor_name),
        Figure("ask_s", "faqbot ask, new process, cached model: median", "s",
               warm_seconds, floor_seconds, floor_name, Target("ratio", "<=", 1.5)),
        Figure("ask_peak_mb", "faqbot ask, peak resident memory", "MB",
               max(run.peak_mb for run in warm), max(run.peak_mb for run in floors),
               floor_name, Target("value", "<", 300)),
        Figure("ask_encoder_s", "faqbot ask, a question that loads the encoder: median", "s",
               statistics.median(run.seconds for run in encoding), floor_seconds, floor_name,
               note=f"{ASK_PARAPHRASE!r}: the n-gram model is unsure, the encoder decides"),
        Figure("ask_encoder_peak_mb", "faqbot ask, a question that loads the encoder: peak",
               "MB", max(run.peak_mb for run in encoding), max(run.peak_mb for run in floors),
               floor_name, Target("value", "<", 300)),
        Figure("ask_retrained", "faqbot ask runs after the first that retrained", "runs",
               retrained, target=Target("value", "==", 0)),
        Figure("python_s", "bare interpreter start-up (python -c pass)", "s", python.seconds),
    ]


def _checked(run: ProcessRun) -> ProcessRun:
    if run.exit_code != 0:
        raise RuntimeError(f"a benchmark process failed (exit {run.exit_code}): "
                           f"{run.errors.strip()}")
    return run


# ---------------------------------------------------------------------------------------------
# The whole run


def run_bench(sizes: Sizes, progress: Callable[[str], None] = lambda _: None) -> Report:
    """Every measurement of `make bench`, in one run."""
    report = Report(context=_machine())
    progress("engine: training, latency and batch throughput")
    figures, context = engine_figures(sizes)
    report.figures += figures
    report.context.update(context)
    if sizes.clinc:
        progress("training on CLINC150")
        clinc = clinc_figure()
        if clinc is not None:
            report.figures.append(clinc)
    with tempfile.TemporaryDirectory(prefix="faqbot-bench-") as work_dir:
        progress("start-up of faqbot ask")
        report.figures += startup_figures(sizes, Path(work_dir))
        texts = load_knowledge_base(DEFAULT_KB_PATH).training_data()[0]
        paced = varied_questions(texts, sizes.paced, seed=3)
        burst = varied_questions(texts, sizes.messages, seed=4)
        env = child_environment(Path(work_dir))
        for platform_name in serving.PLATFORMS:
            progress(f"end to end: {platform_name}")
            report.figures += serving.serving_figures(platform_name, paced, burst,
                                                            sizes.users, env)
        progress("end to end: telegram, question log in PostgreSQL")
        report.figures += serving.postgres_figures(paced, burst, sizes.users, env)
    return report


def _machine() -> dict[str, Any]:
    from importlib import metadata

    versions = {name: metadata.version(name) for name in
                ("scikit-learn", "numpy", "pydantic", "python-telegram-bot", "discord.py")}
    return {"python": platform.python_version(), "machine": platform.machine(),
            "cpus": os.cpu_count(), "versions": versions}


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m benchmarks.speed [--json] [--quick]` (`make bench`): the report on stdout."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.speed",
        description="measure speed, start-up and memory against baselines, in one run")
    parser.add_argument("--json", action="store_true", help="one JSON object")
    parser.add_argument("--quick", action="store_true", help="small counts: seconds, not minutes")
    args = parser.parse_args(argv)

    def progress(step: str) -> None:
        print(f"bench: {step}", file=sys.stderr, flush=True)

    report = run_bench(QUICK if args.quick else FULL, progress)
    print(json.dumps(report.as_dict(), ensure_ascii=False) if args.json
          else report.as_table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
