"""The systems the accuracy benchmark compares: faqbot's IntentClassifier and three baselines.

Each fits on a training split (choosing its own rejection threshold there) and answers with
(top-1 label, score, accepted label or None); `benchmarks.public_datasets` runs them.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from core.classifier import IntentClassifier, choose_threshold
from core.encoder import SentenceEncoder

# Each baseline's C is chosen among these by cross-validation on the training split: three
# values a factor of three apart, around the usual one for its features (TF-IDF under a
# logistic regression under-fits badly at the default C=1).
BASELINE_CS = {"lr": (3.0, 10.0, 30.0), "svm": (0.3, 1.0, 3.0), "encoder-lr": (3.0, 10.0, 30.0)}
# The benchmark's encoder keeps every training and test text of the largest set (CLINC150,
# 23,700 texts): the faqbot system and the encoder baseline encode each text once.
ENCODER_CACHE = 30_000
_OOS = "\x00oos"  # the out-of-scope class of the baselines; cannot clash with a real label


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
