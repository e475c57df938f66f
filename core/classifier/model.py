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
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import chain, count
from pathlib import Path
from typing import Any, Self

import numpy as np
import numpy.typing as npt

from core.classifier.calibration import (
    _DEFAULT_SLOPE,
    _sure,
    choose_cascade_cut,
    choose_margin,
    choose_platt,
    choose_temperature,
    choose_threshold,
)
from core.classifier.features import (
    Analysed,
    FloatArray,
    IntArray,
    _block_values,
    _frequencies,
    _summed,
    char_features,
    word_features,
)
from core.classifier.training import _Counts, _Fitted, _fold_count, _out_of_fold_scores, _OutOfFold
from core.encoder import DIMENSIONS, SentenceEncoder, shared_encoder
from core.text import normalize

logger = logging.getLogger(__name__)

FORMAT_VERSION = 3  # 3: sentence-embedding block and the n-gram model of the cascade
# Internal name of the out-of-scope class; the NUL byte keeps it apart from any real label.
_OOS = "\x00out-of-scope"
# Fallbacks when cross-validation is impossible (too little data to hold any out).
_DEFAULT_THRESHOLD = 0.3
_DEFAULT_MARGIN = 0.05
# Words whose character n-grams are kept looked up (IntentClassifier._char_keys); past this
# many the table starts again, so that its memory stays bounded whatever people type.
_WORD_TABLE_SIZE = 20_000
# Scale of the sentence-embedding block (a unit vector) beside the unit-length n-gram blocks;
# chosen on training and validation data only (docs/benchmarks.md).
EMBEDDING_WEIGHT = 2.0
# Questions `predict` scores at once: bounds the temporary (n-grams x classes) matrix.
_BATCH = 256


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

