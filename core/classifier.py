"""IntentClassifier: TF-IDF word and character n-grams under a linear model, with rejection.

Training uses scikit-learn; prediction does not. After `fit`, everything prediction needs
(one vocabulary per feature block, idf weights, one weight matrix, intercepts) sits in plain
dicts and numpy arrays, so a question costs a few dictionary look-ups and one small matrix
sum, and a process that loads a saved model (`IntentClassifier.load`) never imports
scikit-learn.

Out-of-scope examples (label None) become one extra class the model learns. That class never
appears in a ranking, but the probability it takes lowers the top in-scope score, which is
what the rejection threshold looks at. The softmax temperature, the threshold and the
clarification margin are chosen by stratified cross-validation on the training data.
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any, Self

import numpy as np
import numpy.typing as npt

from core.text import normalize

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Analysed = list[list[str]]  # one list of n-grams per feature block

FORMAT_VERSION = 1
# Internal name of the out-of-scope class; the NUL byte keeps it apart from any real label.
_OOS = "\x00out-of-scope"
# Fallbacks when cross-validation is impossible (too little data to hold any out).
_DEFAULT_THRESHOLD = 0.3
_DEFAULT_MARGIN = 0.05
# Linear SVM scores live roughly in [-1, 1]; dividing by this makes softmax outputs usable.
_DEFAULT_TEMPERATURE = 0.1
# Clarification offers the top three; a truth ranked lower cannot be rescued by asking.
_CLARIFY_TOP = 3
# A needless clarification (one extra click) costs half as much as a wrong answer given.
_ASK_COST = 0.5


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
    return [*words, *(f"{a} {b}" for a, b in pairwise(words))]


def char_features(words: Sequence[str], low: int = 2, high: int = 5) -> list[str]:
    """Character n-grams inside space-padded words ("char_wb"): robust to typos and endings."""
    grams: list[str] = []
    for word in words:
        padded = f" {word} "
        size = len(padded)
        for n in range(low, min(high, size) + 1):
            grams += [padded[i : i + n] for i in range(size - n + 1)]
    return grams


def _block_tfidf(grams: list[str], vocab: dict[str, int], idf: FloatArray) -> tuple[
    list[int], FloatArray
]:
    """Known n-grams of one block as (columns, l2-normalised sublinear tf-idf values)."""
    counts = Counter(gram for gram in grams if gram in vocab)
    if not counts:
        return [], np.zeros(0)
    columns = [vocab[gram] for gram in counts]
    tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
    values = (1.0 + np.log(tf)) * idf[columns]
    values /= math.sqrt(float(values @ values))
    return columns, values


# ---------------------------------------------------------------------------- classifier


class IntentClassifier:
    """Ranks intents for a question and rejects what looks out of scope.

    Parameters: `C` is the inverse regularisation of the one-vs-rest linear SVM;
    `char_weight` scales the character block against the word block, `char_ngrams` gives
    its n-gram sizes and `min_df` the documents a character n-gram needs to be kept;
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
        cv_folds: int = 3,
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
        self._vocabs: list[dict[str, int]] = []  # per block: n-gram -> column in its block
        self._idfs: list[FloatArray] = []
        self._offsets: list[int] = []  # first row of each block in the weight matrix
        self._weights = np.zeros((0, 0))
        self._intercepts = np.zeros(0)
        self._report: dict[str, Any] = {}
        self._sklearn: _Fitted | None = None  # only in the process that called fit()

    @property
    def block_weights(self) -> list[float]:
        """Scale of each feature block (word, char) in the stacked feature vector."""
        return [1.0, self.char_weight]

    def _analyse(self, text: str) -> Analysed:
        """The n-grams of each feature block of one raw text."""
        words = normalize(text).split()
        return [word_features(words), char_features(words, *self.char_ngrams)]

    # ------------------------------------------------------------------ fitting

    def fit(self, texts: Sequence[str], labels: Sequence[str | None]) -> Self:
        """Learn from examples; a label of None marks an out-of-scope example."""
        if len(texts) != len(labels):
            raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
        targets = [_OOS if label is None else str(label) for label in labels]
        if all(target == _OOS for target in targets):
            raise ValueError("at least one in-scope (non-None) example is needed")
        counts = _Counts([self._analyse(text) for text in texts])
        everything = np.arange(len(targets))
        fitted = _Fitted.fit(self, counts, everything, targets)
        self._adopt(fitted)
        threshold, margin, report = self._choose_cut_offs(counts, targets)
        self.threshold_ = threshold if self.threshold is None else self.threshold
        self.margin_ = margin if self.margin is None else self.margin
        self._report = report
        logger.info("classifier fitted: %s", self.describe())
        return self

    def _adopt(self, fitted: _Fitted) -> None:
        """Copy what prediction needs out of the scikit-learn objects."""
        self._sklearn = fitted
        self._classes = fitted.classes
        self.labels_ = [label for label in self._classes if label != _OOS]
        self._vocabs = fitted.vocabularies()
        self._idfs = fitted.idfs()
        self._offsets = [0, *np.cumsum([len(v) for v in self._vocabs])[:-1].tolist()]
        self._weights, self._intercepts = fitted.linear()

    def _choose_cut_offs(
        self, counts: _Counts, targets: list[str]
    ) -> tuple[float, float, dict[str, Any]]:
        """Temperature, threshold and margin from out-of-fold scores on the training data."""
        folds = _fold_count(targets, self.cv_folds)
        if folds < 2 or len(self.labels_) < 2:
            return _DEFAULT_THRESHOLD, _DEFAULT_MARGIN, {"cv_folds": 0}
        scores = _out_of_fold_scores(self, counts, targets, folds)
        column = {label: i for i, label in enumerate(self._classes)}
        self.temperature_ = choose_temperature(scores, np.array([column[t] for t in targets]))
        probs = _softmax_rows(scores / self.temperature_)
        probs = probs[:, [column[label] for label in self.labels_]]
        index = {label: i for i, label in enumerate(self.labels_)}
        truth = np.array([index.get(t, -1) for t in targets])
        threshold, report = choose_threshold(probs, truth)
        margin = choose_margin(probs, truth, threshold)
        report.update(cv_folds=folds, temperature=round(self.temperature_, 4))
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
        """In-scope scores, in `labels_` order: the model's probabilities without the OOS class.

        They do not sum to one when the knowledge base has out-of-scope examples: what is
        missing is the probability that the text is out of scope.
        """
        probs = self.probabilities(text)
        if len(self._classes) == len(self.labels_):
            return probs
        return np.delete(probs, self._classes.index(_OOS))

    def probabilities(self, text: str) -> FloatArray:
        """Probabilities of every model class, out-of-scope included (fast path)."""
        return _softmax(self.decision(text) / self.temperature_)

    def decision(self, text: str) -> FloatArray:
        """Raw linear scores of every model class for one raw text (fast path)."""
        if not self.labels_:
            raise RuntimeError("IntentClassifier is not fitted: call fit() or load() first")
        logits = self._intercepts.copy()
        blocks = zip(self._analyse(text), self._vocabs, self._idfs, self._offsets, strict=True)
        for scale, (grams, vocab, idf, offset) in zip(self.block_weights, blocks, strict=True):
            columns, values = _block_tfidf(grams, vocab, idf)
            if columns:
                rows = self._weights[[offset + column for column in columns]]
                logits += (scale * values) @ rows
        return logits

    def reference_probabilities(self, texts: Sequence[str]) -> FloatArray:
        """The same probabilities computed by scikit-learn, to check the fast path against.

        Only available in the process that called `fit` (a loaded model has no scikit-learn).
        """
        if self._sklearn is None:
            raise RuntimeError("no scikit-learn model: this classifier was loaded, not fitted")
        scores = self._sklearn.decision_function([self._analyse(text) for text in texts])
        return _softmax_rows(scores / self.temperature_)

    # ------------------------------------------------------------------ reporting

    def describe(self) -> dict[str, Any]:
        """What the classifier learned and chose, as plain JSON-friendly values."""
        return {
            "labels": len(self.labels_),
            "features": sum(len(vocab) for vocab in self._vocabs),
            "out_of_scope_class": _OOS in self._classes,
            "threshold": round(self.threshold_, 4),
            "threshold_source": "forced" if self.threshold is not None else "cross-validation",
            "margin": round(self.margin_, 4),
            "margin_source": "forced" if self.margin is not None else "cross-validation",
            "temperature": round(self.temperature_, 4),
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
        if not self.labels_:
            raise RuntimeError("IntentClassifier is not fitted: nothing to save")
        meta = {
            "format": FORMAT_VERSION,
            "classes": self._classes,
            "vocabularies": [sorted(vocab, key=vocab.__getitem__) for vocab in self._vocabs],
            "threshold": self.threshold_,
            "margin": self.margin_,
            "temperature": self.temperature_,
            "params": self._params(),
            "report": self._report,
        }
        return {
            "meta": np.array(json.dumps(meta, ensure_ascii=True)),
            "idf": np.concatenate(self._idfs),
            "weights": self._weights,
            "intercepts": self._intercepts,
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, npt.NDArray[Any]]) -> IntentClassifier:
        """Rebuild a fitted classifier from `to_arrays` output (no scikit-learn needed)."""
        meta = json.loads(str(arrays["meta"]))
        if meta.get("format") != FORMAT_VERSION:
            raise ValueError(f"unsupported classifier format {meta.get('format')!r}")
        params = dict(meta["params"])
        params["char_ngrams"] = tuple(params["char_ngrams"])
        model = cls(**params)
        model._classes = [str(label) for label in meta["classes"]]
        model.labels_ = [label for label in model._classes if label != _OOS]
        model._vocabs = [{gram: i for i, gram in enumerate(v)} for v in meta["vocabularies"]]
        sizes = [len(vocab) for vocab in model._vocabs]
        model._offsets = [0, *np.cumsum(sizes)[:-1].tolist()]
        idf = np.asarray(arrays["idf"], dtype=np.float64)
        model._idfs = [idf[o : o + n] for o, n in zip(model._offsets, sizes, strict=True)]
        model._weights = np.ascontiguousarray(arrays["weights"], dtype=np.float64)
        model._intercepts = np.asarray(arrays["intercepts"], dtype=np.float64)
        model.threshold_ = float(meta["threshold"])
        model.margin_ = float(meta["margin"])
        model.temperature_ = float(meta["temperature"])
        model._report = dict(meta["report"])
        return model

    def save(self, path: Path | str) -> None:
        """Write the model to one compressed .npz file (no pickle inside)."""
        arrays: dict[str, Any] = self.to_arrays()
        with Path(path).open("wb") as handle:
            np.savez_compressed(handle, **arrays)

    @classmethod
    def load(cls, path: Path | str) -> IntentClassifier:
        """Read a model written by `save`; refuses pickled content."""
        with np.load(Path(path), allow_pickle=False) as data:
            return cls.from_arrays({name: data[name] for name in data.files})


# ---------------------------------------------------------------------------- cut-offs


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


def choose_threshold(probs: FloatArray, truth: IntArray) -> tuple[float, dict[str, Any]]:
    """The rejection threshold that maximises the cross-validated objective.

    `probs` are out-of-fold in-scope scores, `truth` the true column (-1 for out of scope).
    With out-of-scope examples the objective is the mean of in-scope accuracy (correct and
    accepted) and out-of-scope recall (rejected); without, the in-scope F1 of accepted answers.
    """
    top = probs.max(axis=1)
    oos = truth < 0
    correct = (probs.argmax(axis=1) == truth) & ~oos
    in_scope = max(1, int((~oos).sum()))
    best = (-1.0, 0.0, 0.0, 0.0)
    for threshold in _candidates(top):
        accepted = top >= threshold
        accuracy = float((correct & accepted).sum()) / in_scope
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
        "top1_accuracy": round(float(correct.sum()) / in_scope, 4),
    }
    if oos.any():
        report["oos_recall"] = round(recall, 4)
    return threshold, report


def _candidates(top: FloatArray) -> FloatArray:
    """Thresholds worth trying: one under every score (0 for probabilities), midpoints between
    observed scores (at most ~400), one above all."""
    values = np.unique(top)
    if len(values) > 400:
        values = np.unique(np.quantile(top, np.linspace(0, 1, 401)))
    mids = (values[:-1] + values[1:]) / 2
    lowest = 0.0 if values[0] >= 0 else float(values[0]) - 1.0
    return np.concatenate([[lowest], mids, values[-1:] + 1e-9])


def choose_margin(probs: FloatArray, truth: IntArray, threshold: float) -> float:
    """The score gap under which asking the user beats answering with the top intent.

    For accepted in-scope out-of-fold answers, a margin m makes the bot ask whenever the top
    two scores are closer than m, offering the top intents within m of the best. Asking
    rescues an answer whose top intent was wrong when the truth is among those offered, and
    costs a needless click when the top intent was right; a click counts as half a wrong
    answer (`_ASK_COST`). The margin maximises rescued - cost x needlessly asked; 0 when
    asking never pays.
    """
    keep = (truth >= 0) & (probs.max(axis=1) >= threshold)
    if probs.shape[1] < 2 or not keep.any():
        return 0.0
    sub, true = probs[keep], truth[keep]
    order = np.argsort(-sub, axis=1, kind="stable")
    ranked = np.take_along_axis(sub, order, axis=1)
    gaps = ranked[:, 0] - ranked[:, 1]
    right = order[:, 0] == true
    # How far below the top the truth sits, if it is among the candidates that can be shown.
    offered = (order[:, :_CLARIFY_TOP] == true[:, None]).any(axis=1)
    truth_gap = np.where(offered, ranked[:, 0] - sub[np.arange(len(true)), true], np.inf)
    best_gain, best_margin = 0.0, 0.0
    for margin in _candidates(gaps)[1:]:
        asked = gaps < margin
        rescued = int((asked & ~right & (truth_gap < margin)).sum())
        gain = rescued - _ASK_COST * int((asked & right).sum())
        if gain > best_gain:
            best_gain, best_margin = gain, float(margin)
    return best_margin


# ---------------------------------------------------------------------------- helpers


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
    return max(2, min(wanted, *counts.values()))


def _out_of_fold_scores(
    config: IntentClassifier, counts: _Counts, targets: list[str], folds: int
) -> FloatArray:
    """Linear scores of each training example from a model that did not see it.

    Each fold re-learns its vocabulary and idf from its own training part, as a model trained
    on that part alone would. A class missing from a fold's training part scores 0.
    """
    from sklearn.model_selection import StratifiedKFold

    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=config.random_state)
    scores = np.zeros((len(targets), len(config._classes)))
    column = {label: i for i, label in enumerate(config._classes)}
    with warnings.catch_warnings():
        # Rare classes (fewer examples than folds) are expected in small knowledge bases.
        warnings.simplefilter("ignore", UserWarning)
        splits = list(splitter.split(np.zeros(len(targets)), targets))
    for train, test in splits:
        fitted = _Fitted.fit(config, counts, train, [targets[i] for i in train])
        columns = [column[label] for label in fitted.classes]
        scores[np.ix_(test, columns)] = fitted.decision_rows(counts, test)
    return scores


# ---------------------------------------------------------------------------- scikit-learn


class _Counts:
    """n-gram counts of every training text, one sparse matrix per block, computed once.

    Cross-validation folds slice these rows instead of re-reading the texts.
    """

    def __init__(self, analysed: list[Analysed]) -> None:
        from sklearn.feature_extraction.text import CountVectorizer

        self.matrices: list[Any] = []
        self.names: list[npt.NDArray[np.str_]] = []
        for block in range(len(analysed[0])):
            vectoriser = CountVectorizer(analyzer=_identity)
            self.matrices.append(vectoriser.fit_transform([doc[block] for doc in analysed]))
            self.names.append(vectoriser.get_feature_names_out())


class _Fitted:
    """TF-IDF transformers and a one-vs-rest linear SVM, fitted on some training rows."""

    def __init__(self, config: IntentClassifier) -> None:
        self.config = config
        self.classes: list[str] = []
        self.kept: list[IntArray] = []  # per block: columns of the count matrix kept
        self.names: list[list[str]] = []
        self.tfidf: list[Any] = []
        self.model: Any = None

    @classmethod
    def fit(
        cls, config: IntentClassifier, counts: _Counts, rows: IntArray, targets: list[str]
    ) -> _Fitted:
        """Fit on `rows` of the count matrices; `targets` are those rows' classes."""
        from sklearn.feature_extraction.text import TfidfTransformer

        self = cls(config)
        min_dfs = [1, config.min_df]
        for matrix, names, min_df in zip(counts.matrices, counts.names, min_dfs, strict=True):
            part = matrix[rows]
            # The vocabulary of these rows alone, as a vectoriser fitted on them would keep.
            kept = np.flatnonzero(np.asarray((part > 0).sum(axis=0)).ravel() >= min_df)
            self.kept.append(kept)
            self.names.append([str(name) for name in names[kept]])
            self.tfidf.append(TfidfTransformer(sublinear_tf=True).fit(part[:, kept]))
        self.classes = sorted(set(targets))
        if len(self.classes) > 1:
            features = self._stack([m[rows] for m in counts.matrices])
            self.model = self._linear_model().fit(features, targets)
            self.classes = [str(label) for label in self.model.classes_]
        return self

    def _linear_model(self) -> Any:
        from sklearn.svm import LinearSVC

        return LinearSVC(C=self.config.C, random_state=self.config.random_state)

    def _stack(self, block_counts: list[Any], *, in_vocabulary: bool = False) -> Any:
        """Sublinear TF-IDF of each block, l2-normalised, scaled, side by side.

        Counts come as columns of the shared count matrices, or already restricted to this
        model's vocabulary (`in_vocabulary`).
        """
        from scipy.sparse import hstack

        parts = [
            tfidf.transform(matrix if in_vocabulary else matrix[:, kept]) * scale
            for matrix, kept, tfidf, scale in zip(
                block_counts, self.kept, self.tfidf, self.config.block_weights, strict=True
            )
        ]
        return hstack(parts).tocsr()

    def decision_rows(self, counts: _Counts, rows: IntArray) -> FloatArray:
        """Scores of some rows of the shared count matrices, in `classes` order."""
        return self._decision(self._stack([m[rows] for m in counts.matrices]))

    def decision_function(self, analysed: list[Analysed]) -> FloatArray:
        """Scores of new texts, computed with scikit-learn (the reference path)."""
        from sklearn.feature_extraction.text import CountVectorizer

        block_counts = []
        for block, names in enumerate(self.names):
            vectoriser = CountVectorizer(analyzer=_identity, vocabulary=names)
            block_counts.append(vectoriser.transform([doc[block] for doc in analysed]))
        return self._decision(self._stack(block_counts, in_vocabulary=True))

    def _decision(self, features: Any) -> FloatArray:
        if self.model is None:
            return np.zeros((features.shape[0], 1))
        scores = np.asarray(self.model.decision_function(features), dtype=np.float64)
        if scores.ndim == 1:
            # A binary model scores class 1 only; class 0 gets the opposite score.
            scores = np.column_stack([-scores, scores])
        return scores

    def vocabularies(self) -> list[dict[str, int]]:
        """n-gram -> column dicts, one per block."""
        return [{name: i for i, name in enumerate(names)} for names in self.names]

    def idfs(self) -> list[FloatArray]:
        """Idf weights, one array per block."""
        return [np.asarray(tfidf.idf_, dtype=np.float64) for tfidf in self.tfidf]

    def linear(self) -> tuple[FloatArray, FloatArray]:
        """(features x classes) weights and per-class intercepts."""
        width = sum(len(names) for names in self.names)
        if self.model is None:
            return np.zeros((width, 1)), np.zeros(1)
        coef = np.asarray(self.model.coef_, dtype=np.float64)
        intercept = np.asarray(self.model.intercept_, dtype=np.float64)
        if coef.shape[0] == 1:
            coef = np.vstack([-coef, coef])
            intercept = np.array([-intercept[0], intercept[0]])
        return np.ascontiguousarray(coef.T), intercept


def _identity(grams: list[str]) -> list[str]:
    """Analyzer for scikit-learn vectorisers fed with pre-computed n-grams."""
    return grams


__all__ = [
    "IntentClassifier",
    "Prediction",
    "char_features",
    "choose_margin",
    "choose_temperature",
    "choose_threshold",
    "word_features",
]
