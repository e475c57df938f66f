"""Benchmark of the IntentClassifier against three usual baselines on public intent data sets.

Data sets (read from a folder laid out as in shared/datasets, never copied into the project):
CLINC150 "full" (with out-of-scope queries), BANKING77 and the Wikit French COVID set. Every
system is trained on the training split only and chooses its rejection threshold there, by
cross-validation; the test split is used once, for the figures.

Systems:
- `faqbot`: the IntentClassifier the bot ships (n-grams and the sentence encoder, cascaded).
- `tfidf-lr`: TF-IDF word 1-2-grams and a logistic regression (the usual first baseline).
- `tfidf-svm`: TF-IDF word and char n-grams and a linear SVM (the usual strong baseline).
- `encoder-lr`: the same sentence encoder alone and a logistic regression (what a user with
  that encoder would build instead).

The baselines learn out-of-scope examples as one more class, as the IntentClassifier does,
and reject a question whose top in-scope score is under a threshold chosen the same way. Each
chooses its C among three by the same cross-validation on the training split, as faqbot's own
settings were chosen on training and validation data (docs/benchmarks.md).

Latency is timed the same way for every system: right after training, on test questions no
system has answered yet, one at a time, with no per-word or per-text cache warm for them.

The data sets are read by `benchmarks.dataset_loaders`, the systems are in
`benchmarks.compared_systems`; this module runs them and prints the table.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from itertools import chain
from pathlib import Path
from typing import Any

from benchmarks.compared_systems import System, default_systems
from benchmarks.dataset_loaders import LOADERS, Dataset
from core.errors import FaqbotError

logger = logging.getLogger(__name__)

LATENCY_QUESTIONS = 300
# Processes that run systems at once: the benchmark's budget is 15 minutes on 2 cores.
WORKERS = 2


def train_and_test(system: System, dataset: Dataset) -> dict[str, Any]:
    """Fit `system` on the training split and measure it on the test split."""
    started = time.perf_counter()
    system.fit(dataset.train_texts, dataset.train_labels)
    fit_seconds = time.perf_counter() - started
    # Timed first, on test questions this system has not answered yet.
    latency = median_latency(system, dataset.test_texts, dataset.train_texts)
    predictions = system.predict(dataset.test_texts)
    row: dict[str, Any] = {"dataset": dataset.name, "system": system.name}
    row.update(score(predictions, dataset.test_labels))
    row["fit_seconds"] = round(fit_seconds, 2)
    row["latency_ms"] = round(latency * 1000, 3)
    row["train_examples"] = len(dataset.train_texts)
    row["test_examples"] = len(dataset.test_texts)
    logger.info("benchmark %s / %s: %s", dataset.name, system.name, row)
    return row


def score(
    predictions: Sequence[tuple[str, float, str | None]], truth: Sequence[str | None]
) -> dict[str, float | None]:
    """In-scope accuracy, out-of-scope recall, their mean and top-1 accuracy, in percent.

    In-scope accuracy counts a question right only if it was accepted with the true label;
    top-1 accuracy is the same with rejection off. Out-of-scope figures are None when the
    test split has no out-of-scope question.
    """
    in_scope = [(p, t) for p, t in zip(predictions, truth, strict=True) if t is not None]
    oos = [p for p, t in zip(predictions, truth, strict=True) if t is None]
    accuracy = 100 * sum(p[2] == t for p, t in in_scope) / max(1, len(in_scope))
    top1 = 100 * sum(p[0] == t for p, t in in_scope) / max(1, len(in_scope))
    recall = 100 * sum(p[2] is None for p in oos) / len(oos) if oos else None
    mean = (accuracy + recall) / 2 if recall is not None else None
    return {
        "in_scope_accuracy": round(accuracy, 2),
        "oos_recall": None if recall is None else round(recall, 2),
        "mean": None if mean is None else round(mean, 2),
        "top1_accuracy": round(top1, 2),
    }


def median_latency(system: System, texts: Sequence[str], warm_up: Sequence[str],
                   count: int = LATENCY_QUESTIONS) -> float:
    """Median seconds to answer one question, over the first `count` texts, one at a time,
    each timed cold (the system forgets its per-word look-ups first); `warm_up` texts (from
    the training split) load lazy imports and models before timing."""
    for text in warm_up[:10]:
        system.predict_one(text)
    timings = []
    for text in texts[:count]:
        system.forget()
        started = time.perf_counter()
        system.predict_one(text)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def run_benchmark(
    data_dir: Path,
    only: str | None = None,
    systems: Callable[[], list[System]] = default_systems,
    workers: int = WORKERS,
) -> list[dict[str, Any]]:
    """One result row per (data set, system), data sets found under `data_dir`, in the order
    of the data sets, then of `systems()`.

    `only` names one data set (a folder name: clinc150, banking77, wikit_fr_covid). Raises
    FaqbotError when it is unknown or when no data set is found. The systems that share an
    encoder run one after the other in one process, so that each text is encoded once; those
    groups run in `workers` processes at once (1: all in this process).
    """
    if only is not None and only not in LOADERS:
        raise FaqbotError(f"unknown data set {only!r}; known: {', '.join(LOADERS)}")
    names = [only] if only else list(LOADERS)
    found = [name for name in names if (Path(data_dir) / name).is_dir()]
    if not found:
        raise FaqbotError(f"{data_dir}: no data set folder ({', '.join(names)})")
    # The largest data sets come first in LOADERS: started first, they finish together.
    tasks = [(Path(data_dir) / name, name, group)
             for name in found for group in encoder_groups(systems())]
    if workers <= 1:
        done = [_evaluate_group(*task, systems) for task in tasks]
    else:
        with ProcessPoolExecutor(workers) as pool:
            done = list(pool.map(_evaluate_group, *zip(*tasks, strict=True),
                                 [systems] * len(tasks)))
    rows = dict(chain.from_iterable(done))
    count = len(systems())
    return [rows[name, index] for name in found for index in range(count)]


def encoder_groups(systems: Sequence[System]) -> list[list[int]]:
    """Indices of `systems` in groups: those that hold the same encoder together, each other
    system alone; in the order of their first member."""
    groups: dict[object, list[int]] = {}
    for index, system in enumerate(systems):
        encoder = getattr(system, "encoder", None)
        groups.setdefault(index if encoder is None else encoder, []).append(index)
    return list(groups.values())


def _evaluate_group(
    folder: Path, name: str, indices: list[int], systems: Callable[[], list[System]]
) -> list[tuple[tuple[str, int], dict[str, Any]]]:
    """((data set, system index), row) for some of `systems()` on one data set."""
    dataset = LOADERS[name](folder)
    made = systems()
    return [((name, index), train_and_test(made[index], dataset)) for index in indices]


_COLUMNS = [
    ("dataset", "data set"),
    ("system", "system"),
    ("in_scope_accuracy", "in-scope acc"),
    ("oos_recall", "oos recall"),
    ("mean", "mean"),
    ("top1_accuracy", "top-1 acc"),
    ("fit_seconds", "fit s"),
    ("latency_ms", "latency ms"),
]


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """A Markdown table of benchmark rows (percentages, seconds, milliseconds)."""
    header = "| " + " | ".join(title for _, title in _COLUMNS) + " |"
    rule = "|" + "|".join("---" for _ in _COLUMNS) + "|"
    lines = [header, rule]
    for row in rows:
        cells = ["-" if row.get(key) is None else str(row[key]) for key, _ in _COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m benchmarks.public_datasets DATA_DIR [--json] [--only NAME]` (`make benchmark`);
    exit code 2, with one line on stderr, for a missing folder or an unknown data set."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.public_datasets",
        description="compare the classifier with baselines on public data sets")
    parser.add_argument("data_dir", type=Path, help="folder holding clinc150/, banking77/ ...")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--only", help="run one data set only")
    args = parser.parse_args(argv)
    try:
        if not args.data_dir.is_dir():
            raise FaqbotError(f"{args.data_dir}: not a directory")
        rows = run_benchmark(args.data_dir, only=args.only)
    except FaqbotError as error:
        print(f"benchmark: error: {error}", file=sys.stderr)
        return 2
    if args.json:
        for row in rows:
            print(json.dumps(row), flush=True)
    else:
        print(markdown_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
