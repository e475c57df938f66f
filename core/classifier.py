"""IntentClassifier: TF-IDF word and character n-grams under a linear model, with rejection.

Training uses scikit-learn; prediction does not. After `fit`, everything prediction needs
(one vocabulary per feature block, idf weights, one weight matrix, intercepts) sits in plain
dicts and numpy arrays, so a question costs a few dictionary look-ups and one small matrix
sum, and a process that loads a saved model (`IntentClassifier.load`) never imports
scikit-learn.

Out-of-scope examples (label None) become one extra class the model learns. That class never
appears in a ranking; a label's score says how far it stands above it, which is what the
rejection threshold looks at. The score calibration, the threshold and the clarification
margin are chosen by stratified cross-validation on the training data.
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import chain, count, pairwise
from pathlib import Path
from typing import Any, Self

import numpy as np
import numpy.typing as npt

from core.text import normalize

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Analysed = list[list[str]]  # one list of n-grams per feature block

FORMAT_VERSION = 2  # 2: unknown-n-gram length, margin-over-oos calibration
# Internal name of the out-of-scope class; the NUL byte keeps it apart from any real label.
_OOS = "\x00out-of-scope"
# Fallbacks when cross-validation is impossible (too little data to hold any out).
_DEFAULT_THRESHOLD = 0.3
_DEFAULT_MARGIN = 0.05
# Linear SVM scores live roughly in [-1, 1]; this scale makes logistic outputs usable.
_DEFAULT_SLOPE = 10.0
# Clarification offers the top three; a truth ranked lower cannot be rescued by asking.
_CLARIFY_TOP = 3
# A needless clarification (one extra click) costs half as much as a wrong answer given.
_ASK_COST = 0.5
# Words whose character n-grams are kept looked up (IntentClassifier._char_keys); past this
# many the table starts again, so that its memory stays bounded whatever people type.
_WORD_TABLE_SIZE = 20_000
# Questions `predict` scores at once: bounds the temporary (n-grams x classes) matrix.
_BATCH = 256
# Stopping tolerance of the linear SVM solver: scikit-learn's default for the model kept; the
# cross-validation models only feed the calibration and cut-offs, which the looser one leaves
# as they were (default KB: threshold 0.6722 -> 0.6720) for a quarter less solver time.
_TOLERANCE = 1e-4
_CV_TOLERANCE = 1e-2


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


def _frequencies(grams: Counter[Any]) -> FloatArray:
    """How often each n-gram occurs, in the Counter's order."""
    return np.fromiter(grams.values(), dtype=np.float64, count=len(grams))


def _block_values(keys: IntArray, counts: FloatArray, idf: FloatArray, unseen_idf: float,
                  scale: float) -> tuple[IntArray, FloatArray]:
    """The known rows of one block's n-grams, and their sublinear tf-idf values, l2-normalised
    and scaled.

    `keys` are weight-matrix rows, or negative numbers for n-grams the model does not know.
    Those get no row, but they still count in the vector's length (with the idf of a term no
    training text had): a question made mostly of words the model never saw gets a short
    vector, hence low scores, which is what out-of-scope questions look like.
    """
    weights = 1.0 + np.log(counts)
    known = keys >= 0
    rows = keys[known]
    values = weights[known] * idf[rows]
    if not len(rows):
        return rows, values
    unknown = weights[~known] * unseen_idf
    values *= scale / math.sqrt(float(values @ values) + float(unknown @ unknown))
    return rows, values


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
        # Calibration (see _calibrate): slope_ and bias_ turn the top label's margin over the
        # out-of-scope class into a confidence; spread_ scales the gaps between labels.
        self.slope_ = _DEFAULT_SLOPE
        self.bias_ = 0.0
        self.spread_ = _DEFAULT_SLOPE
        self.labels_: list[str] = []
        self._classes: list[str] = []  # model columns: labels_ and maybe _OOS
        self._vocabs: list[dict[str, int]] = []  # per block: n-gram -> column in its block
        self._idfs: list[FloatArray] = []
        self._offsets: list[int] = []  # first row of each block in the weight matrix
        self._unseen_idf = 1.0  # idf of an n-gram no training text had
        self._weights = np.zeros((0, 0))
        self._intercepts = np.zeros(0)
        self._report: dict[str, Any] = {}
        self._sklearn: _Fitted | None = None  # only in the process that called fit()
        # Read by every prediction, computed once (_prepare_prediction).
        self._idf = np.zeros(0)  # every block's idf, in weight-matrix row order
        self._in_scope = np.zeros(0, dtype=np.int64)  # model columns of labels_, in order
        self._oos = -1  # model column of the out-of-scope class
        self._char_keys_of: dict[str, tuple[int, ...]] = {}  # word -> its n-grams' rows
        self._unknown_ids: dict[str, int] = {}  # unknown n-gram -> its (negative) id
        self._new_ids = count(1)  # never restarts: two unknown n-grams never share an id

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
        counts = _Counts([normalize(text).split() for text in texts], self.char_ngrams)
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
        self._unseen_idf = fitted.unseen_idf
        self._weights, self._intercepts = fitted.linear()
        self._prepare_prediction()

    def _prepare_prediction(self) -> None:
        """The arrays and tables the fast path reads on every call."""
        self._idf = np.concatenate(self._idfs)
        self._in_scope = np.array([i for i, label in enumerate(self._classes) if label != _OOS],
                                  dtype=np.int64)
        self._oos = self._classes.index(_OOS) if _OOS in self._classes else -1
        self._char_keys_of.clear()
        self._unknown_ids.clear()

    def _choose_cut_offs(
        self, counts: _Counts, targets: list[str]
    ) -> tuple[float, float, dict[str, Any]]:
        """Calibration, threshold and margin from out-of-fold scores on the training data."""
        folds = _fold_count(targets, self.cv_folds)
        if folds < 2 or len(self.labels_) < 2:
            self.slope_, self.bias_, self.spread_ = _DEFAULT_SLOPE, 0.0, _DEFAULT_SLOPE
            return _DEFAULT_THRESHOLD, _DEFAULT_MARGIN, {"cv_folds": 0}
        decisions = _out_of_fold_scores(self, counts, targets, folds)
        index = {label: i for i, label in enumerate(self.labels_)}
        truth = np.array([index.get(t, -1) for t in targets])
        if self._has_oos:
            self.slope_, self.bias_ = choose_platt(self._oos_margins(decisions), truth)
            in_scope = truth >= 0
            margins = self._oos_margins(decisions)[in_scope]
            self.spread_ = 1 / choose_temperature(margins, truth[in_scope])
        else:
            self.slope_, self.bias_ = 1 / choose_temperature(decisions, truth), 0.0
        probs = self._calibrate(decisions)
        threshold, report = choose_threshold(probs, truth)
        margin = choose_margin(probs, truth, threshold)
        report.update(cv_folds=folds)
        return threshold, margin, report

    @property
    def _has_oos(self) -> bool:
        return len(self._classes) > len(self.labels_)

    def _oos_margins(self, decisions: FloatArray) -> FloatArray:
        """Each in-scope class's score minus the out-of-scope class's score."""
        result: FloatArray = decisions[..., self._in_scope] - decisions[..., self._oos, None]
        return result

    def _calibrate(self, decisions: FloatArray) -> FloatArray:
        """In-scope scores in [0, 1] from raw decisions (rows of classes, or one row).

        With an out-of-scope class, the top label's score is a logistic function of how far
        its decision stands above the out-of-scope class's (fitted as in Platt scaling to
        "the top label is right"): two close in-scope labels do not lower it, as they are a
        case for clarifying, not for rejecting. Every other label scores that confidence
        times exp(spread_ * its gap to the top label), so the gap between the first two
        scores measures how ambiguous the question is. Without one, a softmax.
        """
        result: FloatArray
        if self._has_oos:
            margins = self._oos_margins(decisions)
            best = margins.max(axis=-1, keepdims=True)
            confidence = 1.0 / (1.0 + np.exp(-(self.slope_ * best + self.bias_)))
            result = confidence * np.exp(self.spread_ * (margins - best))
        else:
            logits = decisions * self.slope_
            shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
            result = shifted / shifted.sum(axis=-1, keepdims=True)
        return result

    # ------------------------------------------------------------------ prediction

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        """One Prediction per text, in order; scored a batch at a time, in matrix products."""
        predictions: list[Prediction] = []
        for start in range(0, len(texts), _BATCH):
            features = [self._features(text) for text in texts[start : start + _BATCH]]
            predictions += map(self._prediction, self._calibrate(self._decisions(features)))
        return predictions

    def predict_one(self, text: str) -> Prediction:
        """The fast path for one question: no scikit-learn, no sparse matrices."""
        return self._prediction(self.scores(text))

    def _prediction(self, scores: FloatArray) -> Prediction:
        """Labels ranked by score; the top one, unless it falls under the threshold."""
        # Plain lists: indexing a numpy array one scalar at a time costs more than scoring.
        order = np.argsort(-scores, kind="stable").tolist()
        values = scores.tolist()
        ranking = [(self.labels_[i], values[i]) for i in order]
        confidence = ranking[0][1]
        label = ranking[0][0] if confidence >= self.threshold_ else None
        return Prediction(label=label, confidence=confidence, ranking=ranking)

    def scores(self, text: str) -> FloatArray:
        """Calibrated in-scope scores in [0, 1], in `labels_` order (fast path)."""
        return self._calibrate(self.decision(text))

    def decision(self, text: str) -> FloatArray:
        """Raw linear scores of every model class for one raw text (fast path)."""
        rows, values = self._features(text)
        if not len(rows):
            return self._intercepts.copy()
        # Summed as `_decisions` sums a batch, so that a question scores the same either way.
        weighted = self._weights[rows] * values[:, None]
        result: FloatArray = self._intercepts + np.add.reduceat(weighted, [0])[0]
        return result

    def _decisions(self, features: list[tuple[IntArray, FloatArray]]) -> FloatArray:
        """Raw scores of several texts at once: one gather and one sum over all their rows."""
        sizes = np.array([len(rows) for rows, _ in features], dtype=np.int64)
        decisions: FloatArray = np.tile(self._intercepts, (len(features), 1))
        filled = np.flatnonzero(sizes)
        if len(filled):
            rows = np.concatenate([rows for rows, _ in features])
            values = np.concatenate([values for _, values in features])
            starts = (np.cumsum(sizes) - sizes)[filled]
            decisions[filled] += np.add.reduceat(self._weights[rows] * values[:, None], starts)
        return decisions

    def _features(self, text: str) -> tuple[IntArray, FloatArray]:
        """Weight-matrix rows and feature values of one raw text, the blocks side by side."""
        if not self.labels_:
            raise RuntimeError("IntentClassifier is not fitted: call fit() or load() first")
        words = normalize(text).split()
        if len(self._char_keys_of) + len(words) > _WORD_TABLE_SIZE:
            self._char_keys_of.clear()
            self._unknown_ids.clear()
        word_grams = Counter(word_features(words))
        char_grams = Counter(chain.from_iterable(map(self._char_keys, words)))
        vocab = self._vocabs[0]  # the word block comes first: its rows are its columns
        word_keys = np.array([vocab.get(gram, -1) for gram in word_grams], dtype=np.int64)
        char_keys = np.fromiter(char_grams, dtype=np.int64, count=len(char_grams))
        word_scale, char_scale = self.block_weights
        word_rows, word_values = _block_values(word_keys, _frequencies(word_grams), self._idf,
                                               self._unseen_idf, word_scale)
        char_rows, char_values = _block_values(char_keys, _frequencies(char_grams), self._idf,
                                               self._unseen_idf, char_scale)
        return np.concatenate([word_rows, char_rows]), np.concatenate([word_values, char_values])

    def _char_keys(self, word: str) -> tuple[int, ...]:
        """The weight-matrix rows of a word's character n-grams, a negative id for each one the
        model does not know (so that its repeats still count).

        Kept per word: questions reuse words, and finding their n-grams was most of the cost
        of a prediction.
        """
        keys = self._char_keys_of.get(word)
        if keys is None:
            vocab, offset = self._vocabs[1], self._offsets[1]
            keys = tuple(
                offset + vocab[gram] if gram in vocab
                else self._unknown_ids.setdefault(gram, -next(self._new_ids))
                for gram in char_features([word], *self.char_ngrams))
            self._char_keys_of[word] = keys
        return keys

    def reference_scores(self, texts: Sequence[str]) -> FloatArray:
        """The same scores computed by scikit-learn, to check the fast path against.

        Only available in the process that called `fit` (a loaded model has no scikit-learn).
        """
        if self._sklearn is None:
            raise RuntimeError("no scikit-learn model: this classifier was loaded, not fitted")
        decisions = self._sklearn.decision_function([self._analyse(text) for text in texts])
        return self._calibrate(decisions)

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
            "calibration": {
                "kind": "margin over out-of-scope" if self._has_oos else "softmax",
                "slope": round(self.slope_, 4),
                "bias": round(self.bias_, 4),
                "spread": round(self.spread_, 4),
            },
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
            "slope": self.slope_,
            "bias": self.bias_,
            "spread": self.spread_,
            "unseen_idf": self._unseen_idf,
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
        model.slope_ = float(meta["slope"])
        model.bias_ = float(meta["bias"])
        model.spread_ = float(meta["spread"])
        model._unseen_idf = float(meta["unseen_idf"])
        model._report = dict(meta["report"])
        model._prepare_prediction()
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
    """The softmax temperature (0.01 to 2) that minimises the log loss of out-of-fold scores.

    Linear SVM scores rank well but are not probabilities; one shared temperature (as in
    "temperature scaling") turns them into confidences without changing any ranking. The loss
    has a single minimum (it is convex in 1 / temperature), so a bounded scalar search finds it.
    """
    from scipy.optimize import minimize_scalar

    top = scores.max(axis=1, keepdims=True)
    shifted = scores - top
    true_shifted = shifted[np.arange(len(truth)), truth]

    def log_loss(log_temperature: float) -> float:
        temperature = math.exp(log_temperature)
        log_norm = np.log(np.exp(shifted / temperature).sum(axis=1))
        return float(np.mean(log_norm - true_shifted / temperature))

    bounds = (math.log(0.01), math.log(2.0))
    found = minimize_scalar(log_loss, bounds=bounds, method="bounded", options={"xatol": 1e-3})
    return math.exp(float(found.x))


def choose_platt(margins: FloatArray, truth: IntArray) -> tuple[float, float]:
    """(slope, bias) of a logistic function of the top label's margin over out-of-scope.

    Fitted on out-of-fold margins to the event "the top label is the right one", so a score
    reads as the chance that answering with it is right.
    """
    top = margins.argmax(axis=1)
    right = (top == truth).astype(int)
    if right.min() == right.max():
        return _DEFAULT_SLOPE, 0.0
    from sklearn.linear_model import LogisticRegression

    best = margins.max(axis=1, keepdims=True)
    model = LogisticRegression(C=100.0).fit(best, right)
    return float(model.coef_[0, 0]), float(model.intercept_[0])


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
    # One fold after the other: liblinear seeds the C library's global random generator, so
    # folds fitted in parallel threads would not give the same model twice.
    for train, test in splits:
        fitted = _Fitted.fit(config, counts, train, [targets[i] for i in train], _CV_TOLERANCE)
        columns = np.array([column[label] for label in fitted.classes])
        scores[np.ix_(test, columns)] = fitted.decision_rows(counts, test)
    return scores


# ---------------------------------------------------------------------------- scikit-learn


class _Counts:
    """n-gram counts of every training text, one sparse matrix per block, computed once.

    Cross-validation folds slice these rows instead of re-reading the texts. Columns come in
    order of first appearance (no sorting), and each distinct word's character n-grams are
    looked up once: both matter, as this runs on every training.
    """

    def __init__(self, texts_words: list[list[str]], char_ngrams: tuple[int, int]) -> None:
        word_vocab: dict[str, int] = {}
        char_vocab: dict[str, int] = {}
        char_columns: dict[str, list[int]] = {}  # word -> the columns of its n-grams
        word_rows: list[list[int]] = []
        char_rows: list[list[int]] = []
        for words in texts_words:
            word_rows.append([word_vocab.setdefault(gram, len(word_vocab))
                              for gram in word_features(words)])
            row: list[int] = []
            for word in words:
                columns = char_columns.get(word)
                if columns is None:
                    columns = [char_vocab.setdefault(gram, len(char_vocab))
                               for gram in char_features([word], *char_ngrams)]
                    char_columns[word] = columns
                row += columns
            char_rows.append(row)
        self.matrices = [_count_matrix(word_rows, len(word_vocab)),
                         _count_matrix(char_rows, len(char_vocab))]
        self.names = [np.array(list(word_vocab), dtype=str), np.array(list(char_vocab), dtype=str)]


def _count_matrix(rows: list[list[int]], width: int) -> Any:
    """Sparse counts from each row's list of column ids (repeats add up)."""
    from scipy.sparse import csr_matrix

    lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    indices = np.fromiter(chain.from_iterable(rows), dtype=np.int64, count=int(indptr[-1]))
    matrix = csr_matrix((np.ones(len(indices)), indices, indptr), shape=(len(rows), width))
    matrix.sum_duplicates()
    return matrix


class _Fitted:
    """TF-IDF weights and a one-vs-rest linear SVM, fitted on some training rows."""

    def __init__(self, config: IntentClassifier) -> None:
        self.config = config
        self.classes: list[str] = []
        self.kept: list[IntArray] = []  # per block: columns of the count matrix kept
        self.names: list[npt.NDArray[np.str_]] = []
        self.tfidf: list[Any] = []
        self.unseen_idf = 1.0
        self.model: Any = None

    @classmethod
    def fit(
        cls, config: IntentClassifier, counts: _Counts, rows: IntArray, targets: list[str],
        tolerance: float = _TOLERANCE,
    ) -> _Fitted:
        """Fit on `rows` of the count matrices; `targets` are those rows' classes; the solver
        stops at `tolerance`."""
        from sklearn.feature_extraction.text import TfidfTransformer

        self = cls(config)
        # scikit-learn's smoothed idf of a document frequency of 0.
        self.unseen_idf = math.log(1 + len(rows)) + 1
        min_dfs = [1, config.min_df]
        for matrix, names, min_df in zip(counts.matrices, counts.names, min_dfs, strict=True):
            part = matrix[rows]
            # The vocabulary of these rows alone, as a vectoriser fitted on them would keep.
            kept = np.flatnonzero(np.asarray((part > 0).sum(axis=0)).ravel() >= min_df)
            self.kept.append(kept)
            self.names.append(names[kept])
            tfidf = TfidfTransformer(sublinear_tf=True, norm=None).fit(part[:, kept])
            self.tfidf.append(tfidf)
        self.classes = sorted(set(targets))
        if len(self.classes) > 1:
            features = self._stack([m[rows] for m in counts.matrices])
            self.model = self._linear_model(tolerance).fit(features, targets)
            self.classes = [str(label) for label in self.model.classes_]
        return self

    def _linear_model(self, tolerance: float) -> Any:
        from sklearn.svm import LinearSVC

        return LinearSVC(C=self.config.C, tol=tolerance, random_state=self.config.random_state)

    def _stack(self, block_counts: list[Any]) -> Any:
        """Features of rows of the shared count matrices: blocks side by side, scaled.

        Columns outside a block's vocabulary are the n-grams this model does not know.
        """
        from scipy.sparse import hstack

        parts = []
        for matrix, kept, tfidf, scale in zip(
            block_counts, self.kept, self.tfidf, self.config.block_weights, strict=True
        ):
            unknown = np.setdiff1d(np.arange(matrix.shape[1]), kept, assume_unique=True)
            unknown_mass = self._unknown_mass(matrix[:, unknown])
            parts.append(_normalise(tfidf.transform(matrix[:, kept]), unknown_mass) * scale)
        return hstack(parts).tocsr()

    def _unknown_mass(self, unknown_counts: Any) -> FloatArray:
        """Squared tf-idf length of each row's unknown n-grams."""
        squares = unknown_counts.tocsr(copy=True).astype(np.float64)
        squares.data = ((1.0 + np.log(squares.data)) * self.unseen_idf) ** 2
        return np.asarray(squares.sum(axis=1), dtype=np.float64).ravel()

    def decision_rows(self, counts: _Counts, rows: IntArray) -> FloatArray:
        """Scores of some rows of the shared count matrices, in `classes` order."""
        return self._decision(self._stack([m[rows] for m in counts.matrices]))

    def decision_function(self, analysed: list[Analysed]) -> FloatArray:
        """Scores of new texts, computed with scikit-learn (the reference path)."""
        from scipy.sparse import hstack
        from sklearn.feature_extraction.text import CountVectorizer

        parts = []
        blocks = zip(self.names, self.tfidf, self.config.block_weights, strict=True)
        for block, (names, tfidf, scale) in enumerate(blocks):
            docs = [doc[block] for doc in analysed]
            vectoriser = CountVectorizer(analyzer=_identity, vocabulary=names.tolist())
            known = tfidf.transform(vectoriser.transform(docs))
            vocabulary = set(names)
            unknown_mass = np.array([
                sum(((1.0 + math.log(n)) * self.unseen_idf) ** 2
                    for gram, n in Counter(doc).items() if gram not in vocabulary)
                for doc in docs
            ])
            parts.append(_normalise(known, unknown_mass) * scale)
        return self._decision(hstack(parts).tocsr())

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
        return [{str(name): i for i, name in enumerate(names)} for names in self.names]

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


def _normalise(known: Any, unknown_mass: FloatArray) -> Any:
    """Divide each row by the length of all its n-grams, known and unknown."""
    from scipy.sparse import diags

    squared = np.asarray(known.multiply(known).sum(axis=1), dtype=np.float64).ravel()
    length = np.sqrt(squared + unknown_mass)
    inverse = np.divide(1.0, length, out=np.zeros_like(length), where=length > 0)
    return diags(inverse) @ known


def _identity(grams: list[str]) -> list[str]:
    """Analyzer for scikit-learn vectorisers fed with pre-computed n-grams."""
    return grams


__all__ = [
    "IntentClassifier",
    "Prediction",
    "char_features",
    "choose_margin",
    "choose_platt",
    "choose_temperature",
    "choose_threshold",
    "word_features",
]
