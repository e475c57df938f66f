"""IntentClassifier: TF-IDF word and character n-grams under a linear model, with rejection.

Training uses scikit-learn; prediction does not. After `fit`, everything prediction needs
(two vocabularies, idf weights, one weight matrix, intercepts) sits in plain dicts and numpy
arrays, so a single question costs a few dictionary look-ups and one small matrix sum, and a
process that loads a saved model (`IntentClassifier.load`) never imports scikit-learn.

Out-of-scope examples (label None) become one extra class the model learns. That class never
appears in a ranking, but the probability mass it takes lowers the top in-scope score, which
is what the rejection threshold looks at. The threshold and the clarification margin are
chosen by stratified cross-validation on the training data itself.
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import numpy as np
import numpy.typing as npt

from core.text import normalize

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

FORMAT_VERSION = 1
# Internal name of the out-of-scope class; the NUL byte keeps it apart from any real label.
_OOS = "\x00out-of-scope"
# The fallback threshold when cross-validation is impossible (too little data).
_DEFAULT_THRESHOLD = 0.3
_DEFAULT_MARGIN = 0.05
# Linear SVM scores live roughly in [-1, 1]; dividing by this makes softmax outputs usable.
_DEFAULT_TEMPERATURE = 0.1
# Clarification offers the top three; a truth ranked lower cannot be rescued by asking.
_CLARIFY_TOP = 3


@dataclass(frozen=True, slots=True)
class Prediction:
    """One classified text.

    `label` is the chosen intent, or None when the text is rejected as out of scope;
    `confidence` is the top in-scope score (0 to 1) whether or not it was accepted;
    `ranking` lists every in-scope label with its score, best first (never None).
    """

    label: str | None
    confidence: float
    ranking: list[tuple[str, float]] = field(default_factory=list)


# ---------------------------------------------------------------------------- features


def word_features(words: Sequence[str]) -> list[str]:
    """Word unigrams and bigrams of already normalised words."""
    return [*words, *(f"{a} {b}" for a, b in zip(words, words[1:], strict=False))]


def char_features(words: Sequence[str], low: int = 2, high: int = 5) -> list[str]:
    """Character n-grams inside space-padded words ("char_wb"): robust to typos and endings."""
    grams: list[str] = []
    for word in words:
        padded = f" {word} "
        size = len(padded)
        for n in range(low, min(high, size) + 1):
            grams += [padded[i : i + n] for i in range(size - n + 1)]
    return grams


def _sublinear_tfidf(
    grams: Iterable[str], vocab: dict[str, int], idf: FloatArray, offset: int
) -> tuple[list[int], FloatArray]:
    """Known n-grams as (columns, l2-normalised sublinear tf-idf values) of one block."""
    counts = Counter(gram for gram in grams if gram in vocab)
    if not counts:
        return [], np.zeros(0)
    local = np.fromiter((vocab[gram] for gram in counts), dtype=np.int64, count=len(counts))
    tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
    values = (1.0 + np.log(tf)) * idf[local]
    values /= math.sqrt(float(values @ values))
    return (local + offset).tolist(), values


# ---------------------------------------------------------------------------- classifier


class IntentClassifier:
    """Ranks intents for a question and rejects what looks out of scope.

    Parameters: `C` is the inverse regularisation of the linear SVM; `char_weight`
    scales the character block against the word block; `char_ngrams` its n-gram sizes;
    `threshold` / `margin` force values instead of choosing them by `cv_folds`-fold
    cross-validation; `random_state` fixes the folds so the same data gives the same model.
    """

    def __init__(
        self,
        *,
        C: float = 1.0,  # noqa: N803 - the name every linear-model user knows
        char_weight: float = 1.0,
        char_ngrams: tuple[int, int] = (2, 5),
        min_df: int = 1,
        threshold: float | None = None,
        margin: float | None = None,
        cv_folds: int = 5,
        random_state: int = 0,
    ) -> None:
        self.C = C
        self.char_weight = char_weight
        self.char_ngrams = char_ngrams
        self.min_df = min_df
        self.threshold = threshold
        self.margin = margin
        self.cv_folds = cv_folds
        self.random_state = random_state
        self.threshold_ = _DEFAULT_THRESHOLD
        self.margin_ = _DEFAULT_MARGIN
        self.temperature_ = _DEFAULT_TEMPERATURE
        self.labels_: list[str] = []
        self._classes: list[str] = []  # model columns: labels_ and maybe _OOS
        self._word_vocab: dict[str, int] = {}
        self._char_vocab: dict[str, int] = {}
        self._idf = np.zeros(0)
        self._weights = np.zeros((0, 0))
        self._intercepts = np.zeros(0)
        self._report: dict[str, Any] = {}
        self._sklearn: Any = None  # the fitted scikit-learn objects, only in the fitting process

    # ------------------------------------------------------------------ fitting

    def fit(self, texts: Sequence[str], labels: Sequence[str | None]) -> Self:
        """Learn from examples; a label of None marks an out-of-scope example."""
        if len(texts) != len(labels):
            raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
        targets = [_OOS if label is None else label for label in labels]
        if not any(target != _OOS for target in targets):
            raise ValueError("at least one in-scope (non-None) example is needed")
        analysed = [self._analyse(text) for text in texts]
        self._fit_model(analysed, targets)
        threshold, margin, report = self._choose_cut_offs(analysed, targets)
        self.threshold_ = threshold if self.threshold is None else self.threshold
        self.margin_ = margin if self.margin is None else self.margin
        self._report = report
        logger.info("classifier fitted: %s", self.describe())
        return self

    def _analyse(self, text: str) -> tuple[list[str], list[str]]:
        words = normalize(text).split()
        return word_features(words), char_features(words, *self.char_ngrams)

    def _fit_model(self, analysed: list[tuple[list[str], list[str]]], targets: list[str]) -> None:
        """Fit vectorisers and linear model with scikit-learn, then keep plain arrays only."""
        model = _SklearnModel(self).fit(analysed, targets)
        self._sklearn = model
        self._classes = model.classes
        self.labels_ = [label for label in self._classes if label != _OOS]
        self._word_vocab, self._char_vocab = model.vocabularies()
        self._idf = model.idf()
        self._weights, self._intercepts = model.linear()

    def _choose_cut_offs(
        self, analysed: list[tuple[list[str], list[str]]], targets: list[str]
    ) -> tuple[float, float, dict[str, Any]]:
        """Threshold and margin from out-of-fold scores on the training data."""
        folds = _fold_count(targets, self.cv_folds)
        if folds < 2 or len(self.labels_) < 2:
            return _DEFAULT_THRESHOLD, _DEFAULT_MARGIN, {"cv_folds": 0}
        scores = _out_of_fold_scores(self, analysed, targets, folds)
        column = {label: i for i, label in enumerate(self._classes)}
        self.temperature_ = choose_temperature(scores, np.array([column[t] for t in targets]))
        probs = _softmax_rows(scores / self.temperature_)
        in_scope = [column[label] for label in self.labels_]
        probs = probs[:, in_scope]
        index = {label: i for i, label in enumerate(self.labels_)}
        truth = np.array([index.get(t, -1) for t in targets])
        threshold, report = choose_threshold(probs, truth)
        margin = choose_margin(probs, truth, threshold)
        report.update(cv_folds=folds, margin=round(margin, 4), temperature=self.temperature_)
        return threshold, margin, report

    # ------------------------------------------------------------------ prediction

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        """One Prediction per text, in order."""
        return [self.predict_one(text) for text in texts]

    def predict_one(self, text: str) -> Prediction:
        """The fast path for one question: no scikit-learn, no sparse matrices."""
        scores = self.scores(text)
        order = np.argsort(-scores, kind="stable")
        ranking = [(self.labels_[i], float(scores[i])) for i in order]
        confidence = ranking[0][1]
        label = ranking[0][0] if confidence >= self.threshold_ else None
        return Prediction(label=label, confidence=confidence, ranking=ranking)

    def scores(self, text: str) -> FloatArray:
        """In-scope class probabilities (in `labels_` order) for one raw text."""
        probs = self.probabilities(text)
        if len(self._classes) == len(self.labels_):
            return probs
        return np.delete(probs, self._classes.index(_OOS))

    def probabilities(self, text: str) -> FloatArray:
        """Probabilities of every model class, out-of-scope included (in `_classes` order)."""
        self._check_fitted()
        words, chars = self._analyse(text)
        logits = self._intercepts.copy()
        word_cols, word_vals = _sublinear_tfidf(words, self._word_vocab, self._idf, 0)
        char_cols, char_vals = _sublinear_tfidf(
            chars, self._char_vocab, self._idf[len(self._word_vocab) :], len(self._word_vocab)
        )
        if word_cols:
            logits += word_vals @ self._weights[word_cols]
        if char_cols:
            logits += (self.char_weight * char_vals) @ self._weights[char_cols]
        return _softmax(logits / self.temperature_)

    def _check_fitted(self) -> None:
        if not self.labels_:
            raise RuntimeError("IntentClassifier is not fitted: call fit() or load() first")

    # ------------------------------------------------------------------ reporting

    def describe(self) -> dict[str, Any]:
        """What the classifier learned and chose, as plain JSON-friendly values."""
        return {
            "labels": len(self.labels_),
            "features": len(self._word_vocab) + len(self._char_vocab),
            "out_of_scope_class": _OOS in self._classes,
            "threshold": self.threshold_,
            "threshold_source": "forced" if self.threshold is not None else "cross-validation",
            "margin": self.margin_,
            "margin_source": "forced" if self.margin is not None else "cross-validation",
            "params": self._params(),
            "cv": dict(self._report),
        }

    def _params(self) -> dict[str, Any]:
        return {
            "C": self.C,
            "char_weight": self.char_weight,
            "char_ngrams": list(self.char_ngrams),
            "min_df": self.min_df,
            "cv_folds": self.cv_folds,
            "random_state": self.random_state,
        }

    # ------------------------------------------------------------------ persistence

    def to_arrays(self) -> dict[str, npt.NDArray[Any]]:
        """Everything prediction needs as numpy arrays; the metadata is one JSON string."""
        self._check_fitted()
        meta = {
            "format": FORMAT_VERSION,
            "classes": self._classes,
            "word_vocab": sorted(self._word_vocab, key=self._word_vocab.__getitem__),
            "char_vocab": sorted(self._char_vocab, key=self._char_vocab.__getitem__),
            "threshold": self.threshold_,
            "margin": self.margin_,
            "temperature": self.temperature_,
            "params": self._params(),
            "report": self._report,
        }
        return {
            "meta": np.array(json.dumps(meta, ensure_ascii=True)),
            "idf": self._idf,
            "weights": self._weights,
            "intercepts": self._intercepts,
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, npt.NDArray[Any]]) -> IntentClassifier:
        """Rebuild a fitted classifier from `to_arrays` output (no scikit-learn needed)."""
        meta = json.loads(str(arrays["meta"]))
        if meta.get("format") != FORMAT_VERSION:
            raise ValueError(f"unsupported classifier format {meta.get('format')!r}")
        params = meta["params"]
        model = cls(
            C=params["C"],
            char_weight=params["char_weight"],
            char_ngrams=tuple(params["char_ngrams"]),
            min_df=params["min_df"],
            cv_folds=params["cv_folds"],
            random_state=params["random_state"],
        )
        model._classes = list(meta["classes"])
        model.labels_ = [label for label in model._classes if label != _OOS]
        model._word_vocab = {gram: i for i, gram in enumerate(meta["word_vocab"])}
        model._char_vocab = {gram: i for i, gram in enumerate(meta["char_vocab"])}
        model._idf = np.asarray(arrays["idf"], dtype=np.float64)
        model._weights = np.asarray(arrays["weights"], dtype=np.float64)
        model._intercepts = np.asarray(arrays["intercepts"], dtype=np.float64)
        model.threshold_ = float(meta["threshold"])
        model.margin_ = float(meta["margin"])
        model.temperature_ = float(meta["temperature"])
        model._report = dict(meta["report"])
        return model

    def save(self, path: Path | str) -> None:
        """Write the model to one compressed .npz file (no pickle inside)."""
        with Path(path).open("wb") as handle:
            np.savez_compressed(handle, **self.to_arrays())

    @classmethod
    def load(cls, path: Path | str) -> IntentClassifier:
        """Read a model written by `save`; refuses pickled content."""
        with np.load(Path(path), allow_pickle=False) as data:
            return cls.from_arrays({name: data[name] for name in data.files})


# ---------------------------------------------------------------------------- cut-offs


def choose_threshold(probs: FloatArray, truth: IntArray) -> tuple[float, dict[str, Any]]:
    """The rejection threshold that maximises the cross-validated objective.

    `probs` are out-of-fold in-scope scores, `truth` the true column (-1 for out of scope).
    With out-of-scope examples the objective is the mean of in-scope accuracy (correct and
    accepted) and out-of-scope recall (rejected); without, the in-scope F1 of accepted answers.
    """
    top = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == truth) & (truth >= 0)
    oos = truth < 0
    best = (-1.0, 0.0, 0.0, 0.0)
    for threshold in _candidates(top):
        accepted = top >= threshold
        accuracy = float((correct & accepted).sum()) / max(1, int((~oos).sum()))
        if oos.any():
            recall = float((oos & ~accepted).sum()) / int(oos.sum())
            objective = (accuracy + recall) / 2
        else:
            recall = 0.0
            precision = float((correct & accepted).sum()) / max(1, int(accepted.sum()))
            objective = 2 * precision * accuracy / max(1e-12, precision + accuracy)
        if objective > best[0]:
            best = (objective, float(threshold), accuracy, recall)
    objective, threshold, accuracy, recall = best
    report: dict[str, Any] = {
        "objective": "mean(in-scope accuracy, oos recall)" if oos.any() else "in-scope F1",
        "objective_value": round(objective, 4),
        "in_scope_accuracy": round(accuracy, 4),
        "top1_accuracy": round(float(correct.sum()) / max(1, int((~oos).sum())), 4),
    }
    if oos.any():
        report["oos_recall"] = round(recall, 4)
    return threshold, report


def _candidates(top: FloatArray) -> FloatArray:
    """Thresholds worth trying: 0 plus midpoints between observed scores (at most ~400)."""
    values = np.unique(np.round(top, 4))
    if len(values) > 400:
        values = np.unique(np.quantile(top, np.linspace(0, 1, 401)))
    mids = (values[:-1] + values[1:]) / 2
    return np.concatenate([[0.0], mids, values[-1:] + 1e-9])


def choose_margin(probs: FloatArray, truth: IntArray, threshold: float) -> float:
    """The score gap under which asking the user beats answering with the top intent.

    Among accepted in-scope out-of-fold answers sorted by the gap between the first two
    scores, asking helps when the top intent is wrong but the truth is among the candidates
    offered, and costs when the top intent was right. The margin is the gap that maximises
    (rescued - needlessly asked); 0 when asking never pays.
    """
    keep = (truth >= 0) & (probs.max(axis=1) >= threshold)
    if probs.shape[1] < 2 or not keep.any():
        return 0.0
    sub, true = probs[keep], truth[keep]
    order = np.argsort(-sub, axis=1)
    ranked = np.take_along_axis(sub, order, axis=1)
    gaps = ranked[:, 0] - ranked[:, 1]
    right = order[:, 0] == true
    rescued = ~right & (order[:, :_CLARIFY_TOP] == true[:, None]).any(axis=1)
    gain = np.where(rescued, 1, 0) - np.where(right, 1, 0)
    by_gap = np.argsort(gaps, kind="stable")
    cumulative = np.cumsum(gain[by_gap])
    best = int(np.argmax(cumulative))
    if cumulative[best] <= 0:
        return 0.0
    sorted_gaps = gaps[by_gap]
    upper = sorted_gaps[best + 1] if best + 1 < len(sorted_gaps) else sorted_gaps[best] + 1e-6
    # Halfway to the next gap, so the example that set the margin falls inside it.
    return float((sorted_gaps[best] + upper) / 2)


# ---------------------------------------------------------------------------- helpers


def choose_temperature(scores: FloatArray, truth: IntArray) -> float:
    """The softmax temperature that minimises the log loss of out-of-fold scores.

    Linear SVM scores rank well but are not probabilities; one shared temperature (as in
    "temperature scaling") turns them into confidences without changing any ranking.
    """
    best_loss, best = math.inf, _DEFAULT_TEMPERATURE
    for temperature in np.geomspace(0.01, 2.0, 60):
        logits = scores / temperature
        logits -= logits.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(logits).sum(axis=1))
        loss = float(np.mean(log_norm - logits[np.arange(len(truth)), truth]))
        if loss < best_loss:
            best_loss, best = loss, float(temperature)
    return best


def _softmax(logits: FloatArray) -> FloatArray:
    shifted = np.exp(logits - logits.max())
    result: FloatArray = shifted / shifted.sum()
    return result


def _softmax_rows(logits: FloatArray) -> FloatArray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    result: FloatArray = shifted / shifted.sum(axis=1, keepdims=True)
    return result


def _fold_count(targets: list[str], wanted: int) -> int:
    """As many folds as asked, but no more than the rarest class has examples (at least 2)."""
    counts = Counter(targets)
    if len(counts) < 2 or len(targets) < 4:
        return 0
    return max(2, min(wanted, min(counts.values())))


def _out_of_fold_scores(
    template: IntentClassifier,
    analysed: list[tuple[list[str], list[str]]],
    targets: list[str],
    folds: int,
) -> FloatArray:
    """Linear scores of each training example from a model that did not see it.

    A class missing from a fold's training part keeps a score of 0 (as unlikely as any).
    """
    from sklearn.model_selection import StratifiedKFold  # noqa: PLC0415 - training only

    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=template.random_state)
    scores = np.zeros((len(targets), len(template._classes)))
    with warnings.catch_warnings():
        # Rare classes (fewer examples than folds) are expected in small knowledge bases.
        warnings.simplefilter("ignore", UserWarning)
        splits = list(splitter.split(np.zeros(len(targets)), targets))
    for train, test in splits:
        model = _SklearnModel(template).fit(
            [analysed[i] for i in train], [targets[i] for i in train]
        )
        columns = [template._classes.index(label) for label in model.classes]
        scores[np.ix_(test, columns)] = model.decision_function([analysed[i] for i in test])
    return scores


class _SklearnModel:
    """The scikit-learn side: two TF-IDF vectorisers and a one-vs-rest linear SVM."""

    def __init__(self, config: IntentClassifier) -> None:
        self.config = config
        self.classes: list[str] = []
        self.word: Any = None
        self.char: Any = None
        self.linear_model: Any = None

    def fit(self, analysed: list[tuple[list[str], list[str]]], targets: list[str]) -> Self:
        """Fit on pre-analysed (word n-grams, char n-grams) pairs."""
        from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: PLC0415

        def vectoriser(min_df: int) -> Any:
            return TfidfVectorizer(analyzer=_identity, sublinear_tf=True, min_df=min_df)

        self.word = vectoriser(1).fit([words for words, _ in analysed])
        self.char = vectoriser(self.config.min_df).fit([chars for _, chars in analysed])
        self.classes = sorted(set(targets))
        if len(self.classes) > 1:
            self.linear_model = self._linear_model().fit(self.transform(analysed), targets)
            self.classes = [str(label) for label in self.linear_model.classes_]
        return self

    def _linear_model(self) -> Any:
        from sklearn.svm import LinearSVC  # noqa: PLC0415

        return LinearSVC(C=self.config.C, random_state=self.config.random_state)

    def transform(self, analysed: list[tuple[list[str], list[str]]]) -> Any:
        """The stacked sparse feature matrix (word block, then weighted char block)."""
        from scipy.sparse import hstack  # noqa: PLC0415

        words = self.word.transform([w for w, _ in analysed])
        chars = self.char.transform([c for _, c in analysed]) * self.config.char_weight
        return hstack([words, chars]).tocsr()

    def decision_function(self, analysed: list[tuple[list[str], list[str]]]) -> FloatArray:
        """Raw linear scores in `classes` order (zeros for a single class)."""
        if self.linear_model is None:
            return np.zeros((len(analysed), 1))
        scores = np.asarray(self.linear_model.decision_function(self.transform(analysed)))
        if scores.ndim == 1:
            scores = np.column_stack([-scores, scores])
        return scores.astype(np.float64)

    def vocabularies(self) -> tuple[dict[str, int], dict[str, int]]:
        """n-gram -> column dicts for the word and the char blocks (plain ints)."""
        word = {str(k): int(v) for k, v in self.word.vocabulary_.items()}
        char = {str(k): int(v) for k, v in self.char.vocabulary_.items()}
        return word, char

    def idf(self) -> FloatArray:
        """Idf weights of both blocks, word block first."""
        return np.concatenate([self.word.idf_, self.char.idf_]).astype(np.float64)

    def linear(self) -> tuple[FloatArray, FloatArray]:
        """(features x classes) weights and per-class intercepts, softmax-ready."""
        width = len(self.word.vocabulary_) + len(self.char.vocabulary_)
        if self.linear_model is None:
            return np.zeros((width, 1)), np.zeros(1)
        coef = np.asarray(self.linear_model.coef_, dtype=np.float64)
        intercept = np.asarray(self.linear_model.intercept_, dtype=np.float64)
        if coef.shape[0] == 1:
            # A binary model keeps one row, for class 1; class 0 gets the opposite score.
            coef = np.vstack([-coef, coef])
            intercept = np.array([-intercept[0], intercept[0]])
        return np.ascontiguousarray(coef.T), intercept


def _identity(grams: list[str]) -> list[str]:
    """TfidfVectorizer analyzer for pre-computed n-grams."""
    return grams
