"""IntentClassifier: TF-IDF word and character n-grams and a sentence embedding under a linear
model, with rejection.

Training uses scikit-learn; prediction does not. After `fit`, everything prediction needs
(one vocabulary per feature block, idf weights, weight matrices, intercepts) sits in plain
dicts and numpy arrays, so a question costs a few dictionary look-ups and small matrix sums,
and a process that loads a saved model (`IntentClassifier.load`) never imports scikit-learn.

The sentence embedding (core.encoder: it knows paraphrases and translations that share no
word with the examples) is one more feature block, but it costs milliseconds where the
n-grams cost tens of microseconds. So the classifier is a cascade: a second model on the
n-grams alone answers the questions it is sure of, and the full model decides the rest. How
sure is sure enough is chosen by cross-validation: the n-gram model may answer where, out of
fold, it gave the full model's decision 199 times in 200. `embedding_weight=0` (a knowledge
base's `encoder: none`) leaves the n-gram model alone, with no encoder loaded.

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

from core.encoder import DIMENSIONS, SentenceEncoder, shared_encoder
from core.text import normalize

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Analysed = list[list[str]]  # one list of n-grams per feature block

FORMAT_VERSION = 3  # 3: sentence-embedding block and the n-gram model of the cascade
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
# Out of fold, how often the cascade's n-gram model must give the full model's decision where
# it answers alone (choose_cascade_cut).
_CASCADE_AGREEMENT = 0.995
# Scale of the sentence-embedding block (a unit vector) beside the unit-length n-gram blocks;
# chosen on training and validation data only (docs/benchmarks.md).
EMBEDDING_WEIGHT = 2.0
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


def _summed(features: list[tuple[IntArray, FloatArray]], weights: FloatArray,
            intercepts: FloatArray) -> FloatArray:
    """Raw linear scores of several texts' n-gram features: one gather and one sum over all
    their rows (`np.add.reduceat` sums a text's rows the same way alone or in a batch)."""
    sizes = np.array([len(rows) for rows, _ in features], dtype=np.int64)
    decisions: FloatArray = np.tile(intercepts, (len(features), 1))
    filled = np.flatnonzero(sizes)
    if len(filled):
        rows = np.concatenate([rows for rows, _ in features])
        values = np.concatenate([values for _, values in features])
        starts = (np.cumsum(sizes) - sizes)[filled]
        decisions[filled] += np.add.reduceat(weights[rows] * values[:, None], starts)
    return decisions


def _sure(probs: FloatArray, cut: float, margin: float) -> npt.NDArray[np.bool_]:
    """Whether the cascade's n-gram model answers alone: its top score reaches `cut` and
    leads the next one by at least `margin` (so the full model would not ask either)."""
    top = probs.max(axis=-1)
    if probs.shape[-1] < 2:
        return np.asarray(top >= cut)
    two = np.partition(probs, -2, axis=-1)
    return np.asarray((top >= cut) & (two[..., -1] - two[..., -2] >= margin))


# ---------------------------------------------------------------------------- classifier


class IntentClassifier:
    """Ranks intents for a question and rejects what looks out of scope.

    Parameters: `C` is the inverse regularisation of the one-vs-rest linear SVM;
    `char_weight` scales the character block against the word block, `char_ngrams` gives
    its n-gram sizes and `min_df` the documents a character n-gram needs to be kept;
    `embedding_weight` scales the sentence-embedding block (0: no encoder, n-grams only) and
    `encoder` computes it (default: the process's shared one; never saved with the model);
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
        embedding_weight: float = EMBEDDING_WEIGHT,
        encoder: SentenceEncoder | None = None,
        threshold: float | None = None,
        margin: float | None = None,
        cv_folds: int = 3,
        random_state: int = 0,
    ) -> None:
        self.C = C
        self.char_weight = char_weight
        self.char_ngrams = char_ngrams
        self.min_df = min_df
        self.embedding_weight = embedding_weight
        self._encoder = encoder
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
        # The cascade's n-gram model (it reads the same n-gram rows, with weights and a
        # calibration of its own) answers alone when its top score reaches cascade_cut_ and
        # leads the next by at least margin_ (never, without an encoder).
        self.cascade_cut_ = math.inf
        self._quick_weights = np.zeros((0, 0))
        self._quick_intercepts = np.zeros(0)
        self._quick_calibration = (_DEFAULT_SLOPE, 0.0, _DEFAULT_SLOPE)
        self.labels_: list[str] = []
        self._classes: list[str] = []  # model columns: labels_ and maybe _OOS
        self._vocabs: list[dict[str, int]] = []  # per block: n-gram -> column in its block
        self._idfs: list[FloatArray] = []
        self._offsets: list[int] = []  # first row of each block in the weight matrix
        self._unseen_idf = 1.0  # idf of an n-gram no training text had
        self._weights = np.zeros((0, 0))  # n-gram rows of the full model
        self._dense_weights = np.zeros((0, 0))  # its embedding rows, scaled by the block weight
        self._intercepts = np.zeros(0)
        self._report: dict[str, Any] = {}
        # Only in the process that called fit(): the full model and the cascade's n-gram one.
        self._sklearn: _Fitted | None = None
        self._sklearn_quick: _Fitted | None = None
        # Read by every prediction, computed once (_prepare_prediction).
        self._idf = np.zeros(0)  # every block's idf, in weight-matrix row order
        self._in_scope = np.zeros(0, dtype=np.int64)  # model columns of labels_, in order
        self._oos = -1  # model column of the out-of-scope class
        self._char_keys_of: dict[str, tuple[int, ...]] = {}  # word -> its n-grams' rows
        self._unknown_ids: dict[str, int] = {}  # unknown n-gram -> its (negative) id
        self._new_ids = count(1)  # never restarts: two unknown n-grams never share an id

    @property
    def block_weights(self) -> list[float]:
        """Scale of each n-gram feature block (word, char) in the stacked feature vector."""
        return [1.0, self.char_weight]

    @property
    def uses_encoder(self) -> bool:
        """Whether the sentence embedding is a feature block (and the cascade is on)."""
        return self.embedding_weight > 0

    def embed(self, texts: Sequence[str], *, remember: bool = False) -> FloatArray | None:
        """The scaled embedding block of raw texts, or None without an encoder; `remember`
        keeps their embeddings in the encoder's cache (training examples). A text with no word
        gets zeros: the encoder would read a meaning into punctuation or emoji."""
        if not self.uses_encoder:
            return None
        if self._encoder is None:
            self._encoder = shared_encoder()
        worded = [i for i, text in enumerate(texts) if normalize(text)]
        block = np.zeros((len(texts), DIMENSIONS))
        if worded:
            block[worded] = self._encoder.encode([texts[i] for i in worded], remember=remember)
        block *= self.embedding_weight
        return block

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
        counts = _Counts([normalize(text).split() for text in texts], self.char_ngrams,
                         self.embed(texts, remember=True))
        everything = np.arange(len(targets))
        fitted = _Fitted.fit(self, counts, everything, targets)
        self._adopt(fitted)
        threshold, margin, report, out_of_fold = self._choose_cut_offs(counts, targets)
        self.threshold_ = threshold if self.threshold is None else self.threshold
        self.margin_ = margin if self.margin is None else self.margin
        self._report = report
        if out_of_fold is not None and out_of_fold.quick is not None:
            self._fit_cascade(counts, targets, out_of_fold)
        logger.info("classifier fitted: %s", self.describe())
        return self

    def _fit_cascade(self, counts: _Counts, targets: list[str], out_of_fold: _OutOfFold) -> None:
        """The n-gram model, its calibration and the score from which it answers alone."""
        assert out_of_fold.quick is not None
        quick_model = _Fitted.fit(self, counts, np.arange(len(targets)), targets, dense=False)
        self._sklearn_quick = quick_model
        self._quick_weights, self._quick_intercepts = quick_model.linear()
        self._quick_calibration = self._fit_calibration(out_of_fold.quick, out_of_fold.truth)
        quick = self._calibrate(out_of_fold.quick, self._quick_calibration)
        self.cascade_cut_ = choose_cascade_cut(quick, out_of_fold.probs, self.threshold_,
                                               self.margin_)
        sure = _sure(quick, self.cascade_cut_, self.margin_)
        self._report["cascade_share"] = round(float(sure.mean()), 4)

    def _adopt(self, fitted: _Fitted) -> None:
        """Copy what prediction needs out of the scikit-learn objects."""
        self._sklearn = fitted
        self._classes = fitted.classes
        self.labels_ = [label for label in self._classes if label != _OOS]
        self._vocabs = fitted.vocabularies()
        self._idfs = fitted.idfs()
        self._offsets = [0, *np.cumsum([len(v) for v in self._vocabs])[:-1].tolist()]
        self._unseen_idf = fitted.unseen_idf
        weights, self._intercepts = fitted.linear()
        sparse_rows = sum(len(vocab) for vocab in self._vocabs)
        self._weights = np.ascontiguousarray(weights[:sparse_rows])
        self._dense_weights = np.ascontiguousarray(weights[sparse_rows:])
        self._prepare_prediction()

    def _prepare_prediction(self) -> None:
        """The arrays and tables the fast path reads on every call."""
        self._idf = np.concatenate(self._idfs)
        self._in_scope = np.array([i for i, label in enumerate(self._classes) if label != _OOS],
                                  dtype=np.int64)
        self._oos = self._classes.index(_OOS) if _OOS in self._classes else -1
        self.forget_words()

    def forget_words(self) -> None:
        """Empty the per-word n-gram look-ups (benchmarks time questions cold with it)."""
        self._char_keys_of.clear()
        self._unknown_ids.clear()

    def _choose_cut_offs(
        self, counts: _Counts, targets: list[str]
    ) -> tuple[float, float, dict[str, Any], _OutOfFold | None]:
        """Calibration, threshold and margin from out-of-fold scores on the training data;
        and those scores (None when there were too few examples to hold any out)."""
        folds = _fold_count(targets, self.cv_folds)
        if folds < 2 or len(self.labels_) < 2:
            self.slope_, self.bias_, self.spread_ = _DEFAULT_SLOPE, 0.0, _DEFAULT_SLOPE
            return _DEFAULT_THRESHOLD, _DEFAULT_MARGIN, {"cv_folds": 0}, None
        decisions, quick = _out_of_fold_scores(self, counts, targets, folds)
        truth = self._truth(targets)
        self.slope_, self.bias_, self.spread_ = self._fit_calibration(decisions, truth)
        probs = self._calibrate(decisions)
        threshold, report = choose_threshold(probs, truth)
        margin = choose_margin(probs, truth, threshold)
        report.update(cv_folds=folds)
        return threshold, margin, report, _OutOfFold(truth, probs, quick)

    def _truth(self, targets: list[str]) -> IntArray:
        """Each target's column among `labels_`, -1 for out of scope."""
        index = {label: i for i, label in enumerate(self.labels_)}
        return np.array([index.get(t, -1) for t in targets])

    def _fit_calibration(self, decisions: FloatArray,
                         truth: IntArray) -> tuple[float, float, float]:
        """(slope, bias, spread) that make out-of-fold decisions read as confidences."""
        if not self._has_oos:
            return 1 / choose_temperature(decisions, truth), 0.0, _DEFAULT_SLOPE
        slope, bias = choose_platt(self._oos_margins(decisions), truth)
        in_scope = truth >= 0
        margins = self._oos_margins(decisions)[in_scope]
        return slope, bias, 1 / choose_temperature(margins, truth[in_scope])

    @property
    def _cascades(self) -> bool:
        """Whether the cascade's n-gram model answers some questions alone."""
        return math.isfinite(self.cascade_cut_)

    @property
    def _has_oos(self) -> bool:
        return len(self._classes) > len(self.labels_)

    def _oos_margins(self, decisions: FloatArray) -> FloatArray:
        """Each in-scope class's score minus the out-of-scope class's score."""
        result: FloatArray = decisions[..., self._in_scope] - decisions[..., self._oos, None]
        return result

    def _calibrate(self, decisions: FloatArray,
                   calibration: tuple[float, float, float] | None = None) -> FloatArray:
        """In-scope scores in [0, 1] from raw decisions (rows of classes, or one row), with
        the full model's calibration unless another (slope, bias, spread) is given.

        With an out-of-scope class, the top label's score is a logistic function of how far
        its decision stands above the out-of-scope class's (fitted as in Platt scaling to
        "the top label is right"): two close in-scope labels do not lower it, as they are a
        case for clarifying, not for rejecting. Every other label scores that confidence
        times exp(spread_ * its gap to the top label), so the gap between the first two
        scores measures how ambiguous the question is. Without one, a softmax.
        """
        slope, bias, spread = calibration or (self.slope_, self.bias_, self.spread_)
        result: FloatArray
        if self._has_oos:
            margins = self._oos_margins(decisions)
            best = margins.max(axis=-1, keepdims=True)
            confidence = 1.0 / (1.0 + np.exp(-(slope * best + bias)))
            result = confidence * np.exp(spread * (margins - best))
        else:
            logits = decisions * slope
            shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
            result = shifted / shifted.sum(axis=-1, keepdims=True)
        return result

    # ------------------------------------------------------------------ prediction

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        """One Prediction per text, in order; scored a batch at a time, in matrix products."""
        predictions: list[Prediction] = []
        for start in range(0, len(texts), _BATCH):
            batch = texts[start : start + _BATCH]
            features = [self._features(text) for text in batch]
            predictions += map(self._prediction, self._batch_scores(batch, features))
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
        """Calibrated in-scope scores in [0, 1], in `labels_` order (fast path): the n-gram
        model's when it is sure, else the full model's."""
        features = self._features(text)
        if self._cascades:
            quick: FloatArray = self._quick_scores([features])[0]
            if _sure(quick, self.cascade_cut_, self.margin_):
                return quick
        return self._calibrate(self._full_decisions([text], [features])[0])

    def answers_alone(self, text: str) -> bool:
        """Whether the cascade's n-gram model answers `text` without the encoder."""
        if not self.uses_encoder:
            return True
        if not self._cascades:
            return False
        quick = self._quick_scores([self._features(text)])[0]
        return bool(_sure(quick, self.cascade_cut_, self.margin_))

    def _quick_scores(self, features: list[tuple[IntArray, FloatArray]]) -> FloatArray:
        """Calibrated scores of the cascade's n-gram model."""
        decisions = _summed(features, self._quick_weights, self._quick_intercepts)
        return self._calibrate(decisions, self._quick_calibration)

    def decision(self, text: str) -> FloatArray:
        """Raw linear scores of every model class for one raw text, by the full model."""
        decisions: FloatArray = self._full_decisions([text], [self._features(text)])[0]
        return decisions

    def _batch_scores(self, texts: Sequence[str],
                      features: list[tuple[IntArray, FloatArray]]) -> FloatArray:
        """`scores` of several texts: the encoder runs once, on those the n-gram model is
        not sure of."""
        if not self._cascades:
            return self._calibrate(self._full_decisions(texts, features))
        scores = self._quick_scores(features)
        unsure = np.flatnonzero(~_sure(scores, self.cascade_cut_, self.margin_)).tolist()
        if unsure:
            decisions = self._full_decisions([texts[i] for i in unsure],
                                             [features[i] for i in unsure])
            scores[unsure] = self._calibrate(decisions)
        return scores

    def _full_decisions(self, texts: Sequence[str],
                        features: list[tuple[IntArray, FloatArray]]) -> FloatArray:
        """Raw scores of the full model: n-gram blocks, then the embedding block."""
        decisions = _summed(features, self._weights, self._intercepts)
        embeddings = self.embed(texts)
        if embeddings is not None:
            # Row by row, so that a text scores the same alone or in a batch.
            decisions += np.array([row @ self._dense_weights for row in embeddings])
        return decisions

    def _features(self, text: str) -> tuple[IntArray, FloatArray]:
        """Weight-matrix rows and feature values of one raw text, the blocks side by side."""
        if not self.labels_:
            raise RuntimeError("IntentClassifier is not fitted: call fit() or load() first")
        words = normalize(text).split()
        if len(self._char_keys_of) + len(words) > _WORD_TABLE_SIZE:
            self.forget_words()
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
        analysed = [self._analyse(text) for text in texts]
        full = self._calibrate(self._sklearn.decision_function(analysed, self.embed(texts)))
        if self._sklearn_quick is None:
            return full
        quick = self._calibrate(self._sklearn_quick.decision_function(analysed, None),
                                self._quick_calibration)
        sure = _sure(quick, self.cascade_cut_, self.margin_)
        result: FloatArray = np.where(sure[:, None], quick, full)
        return result

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
            "encoder": "multilingual USE v3" if self.uses_encoder else "none",
            "cascade_cut": round(self.cascade_cut_, 4) if self.uses_encoder else None,
            "params": self._params(),
            "cv": dict(self._report),
        }

    def _params(self) -> dict[str, Any]:
        return {
            "C": self.C,
            "char_weight": self.char_weight,
            "char_ngrams": list(self.char_ngrams),
            "min_df": self.min_df,
            "embedding_weight": self.embedding_weight,
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
            "cascade_cut": self.cascade_cut_,
            "quick_calibration": self._quick_calibration,
            "unseen_idf": self._unseen_idf,
            "params": self._params(),
            "report": self._report,
        }
        return {
            "meta": np.array(json.dumps(meta, ensure_ascii=True)),
            "idf": np.concatenate(self._idfs),
            "weights": self._weights,
            "dense_weights": self._dense_weights,
            "intercepts": self._intercepts,
            "quick_weights": self._quick_weights,
            "quick_intercepts": self._quick_intercepts,
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
        model._dense_weights = np.ascontiguousarray(arrays["dense_weights"], dtype=np.float64)
        model._intercepts = np.asarray(arrays["intercepts"], dtype=np.float64)
        model._quick_weights = np.ascontiguousarray(arrays["quick_weights"], dtype=np.float64)
        model._quick_intercepts = np.asarray(arrays["quick_intercepts"], dtype=np.float64)
        slope, bias, spread = meta["quick_calibration"]
        model._quick_calibration = (float(slope), float(bias), float(spread))
        model.cascade_cut_ = float(meta["cascade_cut"])
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


def choose_cascade_cut(quick: FloatArray, full: FloatArray, threshold: float,
                       margin: float) -> float:
    """The lowest n-gram model score from which it may answer alone.

    `quick` and `full` are the two models' out-of-fold scores. Among the examples the n-gram
    model would answer alone (scoring at least the cut and leading by `margin`), its answer
    must be the full model's decision (which rejects under `threshold`) at least
    `_CASCADE_AGREEMENT` of the time, so that the cascade stays the full model's twin. Never
    under `threshold`: only answers are left to the n-gram model.
    """
    top = quick.max(axis=1)
    order = np.argsort(-top, kind="stable")
    ranked = top[order]
    full_answer = np.where(full.max(axis=1) >= threshold, full.argmax(axis=1), -1)
    answers = _sure(quick, -math.inf, margin)[order]
    differ = (quick.argmax(axis=1) != full_answer)[order] & answers
    answered = np.maximum(np.cumsum(answers), 1)
    agree = np.cumsum(differ) <= (1 - _CASCADE_AGREEMENT) * answered
    # A cut takes tied scores together: it can fall only before a lower score.
    before_lower = np.append(ranked[1:] < ranked[:-1], True)
    fine = np.flatnonzero(agree & before_lower & (ranked >= threshold))
    return float(ranked[fine[-1]]) if len(fine) else math.inf


# ---------------------------------------------------------------------------- helpers


def _fold_count(targets: list[str], wanted: int) -> int:
    """As many folds as asked, but no more than the rarest class has examples (at least 2)."""
    counts = Counter(targets)
    if len(counts) < 2 or len(targets) < 4:
        return 0
    return max(2, min(wanted, *counts.values()))


@dataclass(frozen=True, slots=True)
class _OutOfFold:
    """What cross-validation tells the cascade: true columns, the full model's calibrated
    scores, and the n-gram model's raw ones (None without an embedding block)."""

    truth: IntArray
    probs: FloatArray
    quick: FloatArray | None


def _out_of_fold_scores(
    config: IntentClassifier, counts: _Counts, targets: list[str], folds: int
) -> tuple[FloatArray, FloatArray | None]:
    """Linear scores of each training example from a model that did not see it; and, with an
    embedding block, those of a model on the n-grams alone (the cascade's).

    Each fold re-learns its vocabulary and idf from its own training part, as a model trained
    on that part alone would. A class missing from a fold's training part scores 0.
    """
    from sklearn.model_selection import StratifiedKFold

    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=config.random_state)
    scores = np.zeros((len(targets), len(config._classes)))
    quick = None if counts.dense is None else np.zeros_like(scores)
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
        if quick is not None:
            ngrams = _Fitted.fit(config, counts, train, [targets[i] for i in train],
                                 _CV_TOLERANCE, dense=False)
            quick[np.ix_(test, columns)] = ngrams.decision_rows(counts, test)
    return scores, quick


# ---------------------------------------------------------------------------- scikit-learn


class _Counts:
    """n-gram counts of every training text, one sparse matrix per block, computed once.

    Cross-validation folds slice these rows instead of re-reading the texts. Columns come in
    order of first appearance (no sorting), and each distinct word's character n-grams are
    looked up once: both matter, as this runs on every training.
    """

    def __init__(self, texts_words: list[list[str]], char_ngrams: tuple[int, int],
                 dense: FloatArray | None = None) -> None:
        self.dense = dense  # the scaled embedding block of every text, when there is one
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
    """TF-IDF weights and a one-vs-rest linear SVM, fitted on some training rows, with the
    embedding block (`dense`) or on the n-grams alone."""

    def __init__(self, config: IntentClassifier, dense: bool) -> None:
        self.config = config
        self.dense = dense
        self.classes: list[str] = []
        self.kept: list[IntArray] = []  # per block: columns of the count matrix kept
        self.names: list[npt.NDArray[np.str_]] = []
        self.tfidf: list[Any] = []
        self.unseen_idf = 1.0
        self.model: Any = None

    @classmethod
    def fit(
        cls, config: IntentClassifier, counts: _Counts, rows: IntArray, targets: list[str],
        tolerance: float = _TOLERANCE, *, dense: bool = True,
    ) -> _Fitted:
        """Fit on `rows` of the count matrices (and of the embedding block, if `dense` and
        there is one); `targets` are those rows' classes; the solver stops at `tolerance`."""
        from sklearn.feature_extraction.text import TfidfTransformer

        self = cls(config, dense and counts.dense is not None)
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
            features = self._stack([m[rows] for m in counts.matrices], _rows(counts.dense, rows))
            self.model = self._linear_model(tolerance).fit(features, targets)
            self.classes = [str(label) for label in self.model.classes_]
        return self

    def _linear_model(self, tolerance: float) -> Any:
        from sklearn.svm import LinearSVC

        return LinearSVC(C=self.config.C, tol=tolerance, random_state=self.config.random_state)

    def _stack(self, block_counts: list[Any], dense: FloatArray | None) -> Any:
        """Features of rows of the shared count matrices: blocks side by side, scaled, then
        the embedding block if this model has one.

        Columns outside a block's vocabulary are the n-grams this model does not know.
        """
        from scipy.sparse import csr_matrix, hstack

        parts = []
        for matrix, kept, tfidf, scale in zip(
            block_counts, self.kept, self.tfidf, self.config.block_weights, strict=True
        ):
            unknown = np.setdiff1d(np.arange(matrix.shape[1]), kept, assume_unique=True)
            unknown_mass = self._unknown_mass(matrix[:, unknown])
            parts.append(_normalise(tfidf.transform(matrix[:, kept]), unknown_mass) * scale)
        if self.dense:
            parts.append(csr_matrix(dense))
        return hstack(parts).tocsr()

    def _unknown_mass(self, unknown_counts: Any) -> FloatArray:
        """Squared tf-idf length of each row's unknown n-grams."""
        squares = unknown_counts.tocsr(copy=True).astype(np.float64)
        squares.data = ((1.0 + np.log(squares.data)) * self.unseen_idf) ** 2
        return np.asarray(squares.sum(axis=1), dtype=np.float64).ravel()

    def decision_rows(self, counts: _Counts, rows: IntArray) -> FloatArray:
        """Scores of some rows of the shared count matrices, in `classes` order."""
        dense = _rows(counts.dense, rows) if self.dense else None
        return self._decision(self._stack([m[rows] for m in counts.matrices], dense))

    def decision_function(self, analysed: list[Analysed], dense: FloatArray | None) -> FloatArray:
        """Scores of new texts, computed with scikit-learn (the reference path); `dense` is
        their embedding block."""
        from scipy.sparse import csr_matrix, hstack
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
        if self.dense:
            parts.append(csr_matrix(dense))
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
        width = sum(len(names) for names in self.names) + (DIMENSIONS if self.dense else 0)
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


def _rows(dense: FloatArray | None, rows: IntArray) -> FloatArray | None:
    return None if dense is None else dense[rows]


def _identity(grams: list[str]) -> list[str]:
    """Analyzer for scikit-learn vectorisers fed with pre-computed n-grams."""
    return grams


__all__ = [
    "EMBEDDING_WEIGHT",
    "IntentClassifier",
    "Prediction",
    "char_features",
    "choose_cascade_cut",
    "choose_margin",
    "choose_platt",
    "choose_temperature",
    "choose_threshold",
    "word_features",
]
