"""Benchmark of the IntentClassifier against two usual baselines on public intent data sets.

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
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from core.classifier import IntentClassifier, choose_threshold
from core.encoder import SentenceEncoder
from core.errors import FaqbotError

logger = logging.getLogger(__name__)

LATENCY_QUESTIONS = 300
# Processes that run systems at once: the benchmark's budget is 15 minutes on 2 cores.
WORKERS = 2
# Each baseline's C is chosen among these by cross-validation on the training split: three
# values a factor of three apart, around the usual one for its features (TF-IDF under a
# logistic regression under-fits badly at the default C=1).
BASELINE_CS = {"lr": (3.0, 10.0, 30.0), "svm": (0.3, 1.0, 3.0), "encoder-lr": (3.0, 10.0, 30.0)}
# The benchmark's encoder keeps every training and test text of the largest set (CLINC150,
# 23,700 texts): the faqbot system and the encoder baseline encode each text once.
ENCODER_CACHE = 30_000
_OOS = "\x00oos"  # the out-of-scope class of the baselines; cannot clash with a real label


@dataclass(frozen=True)
class Dataset:
    """Texts and labels of a train and a test split; a label of None is out of scope."""

    name: str
    train_texts: list[str]
    train_labels: list[str | None]
    test_texts: list[str]
    test_labels: list[str | None]


# ---------------------------------------------------------------------------- loaders


def load_clinc150(folder: Path) -> Dataset:
    """CLINC150 "full": train+val (with oos_train+oos_val) against test (with oos_test)."""
    with (folder / "data_full.json").open(encoding="utf-8") as handle:
        splits = json.load(handle)

    def pairs(*names: str) -> tuple[list[str], list[str | None]]:
        rows = [row for name in names for row in splits[name]]
        labels = [None if name.startswith("oos") else str(label)
                  for name in names for _, label in splits[name]]
        return [str(text) for text, _ in rows], labels

    train_texts, train_labels = pairs("train", "val", "oos_train", "oos_val")
    test_texts, test_labels = pairs("test", "oos_test")
    return Dataset("clinc150", train_texts, train_labels, test_texts, test_labels)


def _read_csv(
    path: Path, text_column: str, label_column: str
) -> tuple[list[str], list[str | None]]:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [row[text_column] for row in rows], [row[label_column] for row in rows]


def load_banking77(folder: Path) -> Dataset:
    """BANKING77: train.csv against test.csv (`text,category`), no out-of-scope queries."""
    train = _read_csv(folder / "train.csv", "text", "category")
    test = _read_csv(folder / "test.csv", "text", "category")
    return Dataset("banking77", *train, *test)


def load_wikit_fr_covid(folder: Path) -> Dataset:
    """Wikit French COVID employee-support FAQ (`utterance,intent`), no out-of-scope queries."""
    train = _read_csv(folder / "training_dataset.csv", "utterance", "intent")
    test = _read_csv(folder / "test_dataset.csv", "utterance", "intent")
    return Dataset("wikit_fr_covid", *train, *test)


LOADERS: dict[str, Callable[[Path], Dataset]] = {
    "clinc150": load_clinc150,
    "banking77": load_banking77,
    "wikit_fr_covid": load_wikit_fr_covid,
}


# ---------------------------------------------------------------------------- systems


class System(Protocol):
    """What the runner needs of a system: fit, then (top-1 label, score, accepted label)."""

    name: str

    def fit(self, texts: Sequence[str], labels: Sequence[str | None]) -> None: ...

    def predict(self, texts: Sequence[str]) -> list[tuple[str, float, str | None]]: ...

    def predict_one(self, text: str) -> tuple[str, float, str | None]: ...

    def forget(self) -> None: ...

    def describe(self) -> dict[str, Any]: ...


class FaqbotSystem:
    """The IntentClassifier, exactly as the bot uses it (fast path for every question)."""

    name = "faqbot"

    def __init__(self, encoder: SentenceEncoder | None = None) -> None:
        self.encoder = encoder
        self.model = IntentClassifier(encoder=encoder)

    def fit(self, texts: Sequence[str], labels: Sequence[str | None]) -> None:
        """Train and choose the threshold on the training data."""
        self.model = IntentClassifier(encoder=self.encoder).fit(texts, labels)

    def predict(self, texts: Sequence[str]) -> list[tuple[str, float, str | None]]:
        """(top-1 label, confidence, accepted label or None) per text."""
        return [self.predict_one(text) for text in texts]

    def predict_one(self, text: str) -> tuple[str, float, str | None]:
        """One question through `IntentClassifier.predict_one`."""
        prediction = self.model.predict_one(text)
        return prediction.ranking[0][0], prediction.confidence, prediction.label

    def forget(self) -> None:
        """Empty the per-word look-up table, so that the next question is timed cold."""
        self.model.forget_words()

    def describe(self) -> dict[str, Any]:
        """The classifier's own description (threshold, margin, cross-validation)."""
        return self.model.describe()


class BaselineSystem:
    """A scikit-learn pipeline; out of scope is one more class; C and threshold by
    cross-validation.

    `kind` is "lr" (TF-IDF word 1-2-grams + LogisticRegression, scores are probabilities),
    "svm" (TF-IDF word 1-2-grams and char_wb 2-5-grams + LinearSVC, scores are margins) or
    "encoder-lr" (the sentence encoder's embeddings + LogisticRegression).
    """

    def __init__(self, kind: str, cv_folds: int = 3, random_state: int = 0,
                 encoder: SentenceEncoder | None = None) -> None:
        if kind not in BASELINE_CS:
            raise ValueError(f"unknown baseline {kind!r}")
        self.kind = kind
        self.name = kind if kind == "encoder-lr" else f"tfidf-{kind}"
        self.cv_folds = cv_folds
        self.random_state = random_state
        self.encoder = encoder
        self.C = BASELINE_CS[kind][0]
        self.threshold = -np.inf
        self.pipeline: Any = None
        self.report: dict[str, Any] = {}

    def _pipeline(self, C: float) -> Any:  # noqa: N803 - the name every linear-model user knows
        # Imported here: the benchmark module stays importable without paying for them.
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline, make_union
        from sklearn.preprocessing import FunctionTransformer
        from sklearn.svm import LinearSVC

        # warm_start: the C search fits each fold for increasing C, each from the last solution.
        if self.kind == "encoder-lr":
            encoder = self.encoder or SentenceEncoder()
            return make_pipeline(FunctionTransformer(encoder.encode),
                                 LogisticRegression(C=C, max_iter=1000, warm_start=True))
        words = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
        if self.kind == "lr":
            return make_pipeline(words, LogisticRegression(C=C, max_iter=1000, warm_start=True))
        chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True)
        return make_pipeline(make_union(words, chars), LinearSVC(C=C, random_state=0))

    def fit(self, texts: Sequence[str], labels: Sequence[str | None]) -> None:
        """Choose C and the threshold on out-of-fold scores; then train on all texts."""
        targets = [_OOS if label is None else label for label in labels]
        choices = self._cross_validate(list(texts), targets)
        self.C, self.threshold, self.report = max(
            choices, key=lambda choice: choice[2]["objective_value"])
        self.report["C"] = self.C
        self.pipeline = self._pipeline(self.C).fit(list(texts), targets)

    def _cross_validate(
        self, texts: list[str], targets: list[str]
    ) -> list[tuple[float, float, dict[str, Any]]]:
        """(C, threshold, cross-validation report) for each C tried."""
        from sklearn.model_selection import StratifiedKFold

        splitter = StratifiedKFold(self.cv_folds, shuffle=True, random_state=self.random_state)
        classes = sorted(set(targets))
        in_scope = [label for label in classes if label != _OOS]
        grid = BASELINE_CS[self.kind]
        scores = np.zeros((len(grid), len(texts), len(in_scope)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # rare classes in small sets
            splits = list(splitter.split(np.zeros(len(texts)), targets))
        for train, test in splits:
            fold = self._pipeline(grid[0])
            for at, c in enumerate(grid):
                fold.set_params(**{f"{fold.steps[-1][0]}__C": c})
                fold.fit([texts[i] for i in train], [targets[i] for i in train])
                columns = [in_scope.index(c) for c in fold.classes_ if c != _OOS]
                scores[at][np.ix_(test, columns)] = self._scores(fold, [texts[i] for i in test])
        index = {label: i for i, label in enumerate(in_scope)}
        truth = np.array([index.get(target, -1) for target in targets])
        return [(c, *choose_threshold(scores[at], truth)) for at, c in enumerate(grid)]

    @staticmethod
    def _scores(pipeline: Any, texts: Sequence[str]) -> Any:
        """In-scope columns of the pipeline's scores (probabilities or SVM margins)."""
        model = pipeline[-1]
        raw = (pipeline.predict_proba(texts) if hasattr(model, "predict_proba")
               else pipeline.decision_function(texts))
        keep = [i for i, label in enumerate(pipeline.classes_) if label != _OOS]
        return np.asarray(raw)[:, keep]

    def predict(self, texts: Sequence[str]) -> list[tuple[str, float, str | None]]:
        """(top-1 label, score, accepted label or None) per text, in one batch."""
        scores = self._scores(self.pipeline, texts)
        labels = [label for label in self.pipeline.classes_ if label != _OOS]
        best = scores.argmax(axis=1)
        result: list[tuple[str, float, str | None]] = []
        for row, column in enumerate(best):
            score = float(scores[row, column])
            label = str(labels[column])
            result.append((label, score, label if score >= self.threshold else None))
        return result

    def predict_one(self, text: str) -> tuple[str, float, str | None]:
        """One question through the whole scikit-learn pipeline."""
        return self.predict([text])[0]

    def forget(self) -> None:
        """Nothing to forget: a scikit-learn pipeline keeps nothing between questions."""

    def describe(self) -> dict[str, Any]:
        """C, threshold and cross-validation figures."""
        return {"C": self.C, "threshold": self.threshold, "cv": self.report}


def default_systems() -> list[System]:
    """The systems every benchmark run compares, the shipped classifier first; the two that
    use the sentence encoder share one, so that each text is encoded once."""
    encoder = SentenceEncoder(cache_size=ENCODER_CACHE)
    return [FaqbotSystem(encoder), BaselineSystem("lr"), BaselineSystem("svm"),
            BaselineSystem("encoder-lr", encoder=encoder)]


# ---------------------------------------------------------------------------- runner


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
