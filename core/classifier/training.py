"""Training: n-gram counts computed once, TF-IDF weights (scikit-learn) and a one-vs-rest linear
SVM per model (liblinear, or core.classifier.newton for the models with the embedding block),
and the out-of-fold scores that calibration reads."""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import chain
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from core.classifier.calibration import (
    Calibration,
    _sure,
    calibrate,
    choose_cascade_cut,
    choose_margin,
    choose_threshold,
    fit_calibration,
)
from core.classifier.features import Analysed, FloatArray, IntArray, char_features, word_features
from core.classifier.newton import MAX_EXAMPLES, one_vs_rest
from core.classifier.persistence import OUT_OF_SCOPE, Learned
from core.encoder import DIMENSIONS

if TYPE_CHECKING:
    from core.classifier.model import IntentClassifier

# Stopping tolerance of liblinear (the models the exact solver does not fit): scikit-learn's
# default for the model kept; the cross-validation models only feed the calibration and
# cut-offs, which the looser one leaves as they were (default KB: threshold 0.6722 -> 0.6720)
# for a quarter less solver time.
_TOLERANCE = 1e-4
_CV_TOLERANCE = 1e-2
# Rows of the n-grams' Gram matrix computed at once (bounds the sparse temporaries).
_GRAM_SLICE = 256
# Fallbacks when cross-validation is impossible (too little data to hold any out).
DEFAULT_THRESHOLD = 0.3
DEFAULT_MARGIN = 0.05


@dataclass(frozen=True, slots=True)
class Trained:
    """A training's result: what prediction reads, and the scikit-learn models it came from
    (the full one and the cascade's n-gram one), which check the fast path."""

    learned: Learned
    full: _Fitted
    quick: _Fitted | None


def train(config: IntentClassifier, texts_words: list[list[str]], dense: FloatArray | None,
          labels: Sequence[str | None]) -> Trained:
    """Fit the models on normalised words and the embedding block (`dense`, None without
    one); a label of None marks an out-of-scope example. Reads only `config`'s public
    parameters."""
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    # One BLAS thread: the exact solver's linear systems are small, so a second thread mostly
    # waits, and it takes the other core from whatever else runs (a bot answering, say).
    # Training the shipped knowledge base beside one busy process: 2.2-2.7 s with two
    # threads, 1.5-1.7 s with one.
    with threadpool_limits(limits=1, user_api="blas"):
        return _train(config, texts_words, dense, labels)


def _train(config: IntentClassifier, texts_words: list[list[str]], dense: FloatArray | None,
           labels: Sequence[str | None]) -> Trained:
    targets = [OUT_OF_SCOPE if label is None else str(label) for label in labels]
    if all(target == OUT_OF_SCOPE for target in targets):
        raise ValueError("at least one in-scope (non-None) example is needed")
    counts = _Counts(texts_words, config.char_ngrams, dense)
    every_row = np.arange(len(targets))
    classes = sorted(set(targets))
    in_scope, oos = class_columns(classes)
    folds = _fold_count(targets, config.cv_folds)
    if folds < 2 or len(in_scope) < 2:
        fitted = _Fitted.fit(config, counts, every_row, targets)
        learned = _learned(fitted, Calibration(), DEFAULT_THRESHOLD, DEFAULT_MARGIN,
                           {"cv_folds": 0})
        return Trained(_forced(learned, config), fitted, None)
    decisions, quick, last_fold = _out_of_fold_scores(config, counts, targets, classes, folds)
    if quick is None:
        fitted, quick_model = _Fitted.fit(config, counts, every_row, targets), None
    else:
        quick_model, fitted = _Fitted.fit_pair(config, counts, every_row, targets,
                                               guide=last_fold)
    truth = _truth([classes[i] for i in in_scope], targets)
    calibration = fit_calibration(decisions, truth, in_scope, oos)
    probs = calibrate(decisions, calibration, in_scope, oos)
    threshold, report = choose_threshold(probs, truth)
    margin = choose_margin(probs, truth, threshold)
    report.update(cv_folds=folds)
    learned = _forced(_learned(fitted, calibration, threshold, margin, report), config)
    if quick is None or quick_model is None:
        return Trained(learned, fitted, None)
    out_of_fold = _OutOfFold(truth, probs, quick)
    return Trained(_with_cascade(learned, quick_model, out_of_fold), fitted, quick_model)


def class_columns(classes: list[str]) -> tuple[IntArray, int]:
    """The model columns of the in-scope labels, in order, and the out-of-scope class's
    column (-1 when there is none)."""
    in_scope = np.array([i for i, label in enumerate(classes) if label != OUT_OF_SCOPE],
                        dtype=np.int64)
    return in_scope, classes.index(OUT_OF_SCOPE) if OUT_OF_SCOPE in classes else -1


def _learned(fitted: _Fitted, calibration: Calibration, threshold: float, margin: float,
             report: dict[str, Any]) -> Learned:
    """What prediction needs, copied out of the scikit-learn objects."""
    vocabularies = fitted.vocabularies()
    weights, intercepts = fitted.linear()
    sparse_rows = sum(len(vocab) for vocab in vocabularies)
    return Learned(
        classes=fitted.classes, vocabularies=vocabularies, idfs=fitted.idfs(),
        unseen_idf=fitted.unseen_idf, weights=np.ascontiguousarray(weights[:sparse_rows]),
        dense_weights=np.ascontiguousarray(weights[sparse_rows:]), intercepts=intercepts,
        calibration=calibration, threshold=threshold, margin=margin, report=report)


def _forced(learned: Learned, config: IntentClassifier) -> Learned:
    """The threshold and margin the configuration forces, where it forces them."""
    threshold = learned.threshold if config.threshold is None else config.threshold
    margin = learned.margin if config.margin is None else config.margin
    return replace(learned, threshold=threshold, margin=margin)


def _with_cascade(learned: Learned, quick_model: _Fitted, out_of_fold: _OutOfFold) -> Learned:
    """The n-gram model, its calibration and the score from which it answers alone."""
    assert out_of_fold.quick is not None
    quick_weights, quick_intercepts = quick_model.linear()
    in_scope, oos = class_columns(learned.classes)
    quick_calibration = fit_calibration(out_of_fold.quick, out_of_fold.truth, in_scope, oos)
    quick = calibrate(out_of_fold.quick, quick_calibration, in_scope, oos)
    cut = choose_cascade_cut(quick, out_of_fold.probs, learned.threshold, learned.margin)
    sure = _sure(quick, cut, learned.margin)
    report = {**learned.report, "cascade_share": round(float(sure.mean()), 4)}
    return replace(learned, quick_weights=quick_weights, quick_intercepts=quick_intercepts,
                   quick_calibration=quick_calibration, cascade_cut=cut, report=report)


def _truth(labels: list[str], targets: list[str]) -> IntArray:
    """Each target's column among `labels`, -1 for out of scope."""
    index = {label: i for i, label in enumerate(labels)}
    return np.array([index.get(t, -1) for t in targets])


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
    config: IntentClassifier, counts: _Counts, targets: list[str], classes: list[str],
    folds: int,
) -> tuple[FloatArray, FloatArray | None, _Fitted]:
    """Linear scores of each training example from a model that did not see it; with an
    embedding block, those of a model on the n-grams alone (the cascade's); and the last
    fold's model, whose decisions start the exact solver of the model kept (core.classifier.
    newton).

    Each fold re-learns its vocabulary and idf from its own training part, as a model trained
    on that part alone would. A class missing from a fold's training part scores 0.
    """
    from sklearn.model_selection import StratifiedKFold

    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=config.random_state)
    scores = np.zeros((len(targets), len(classes)))
    quick = None if counts.dense is None else np.zeros_like(scores)
    column = {label: i for i, label in enumerate(classes)}
    with warnings.catch_warnings():
        # Rare classes (fewer examples than folds) are expected in small knowledge bases.
        warnings.simplefilter("ignore", UserWarning)
        splits = list(splitter.split(np.zeros(len(targets)), targets))
    # One fold after the other: liblinear seeds the C library's global random generator, so
    # folds fitted in parallel threads would not give the same model twice.
    fitted: _Fitted | None = None
    for train, test in splits:
        fold_targets = [targets[i] for i in train]
        if quick is None:
            fitted = _Fitted.fit(config, counts, train, fold_targets, _CV_TOLERANCE)
        else:
            # The previous fold's model is close to this one: it starts the exact solver.
            ngrams, fitted = _Fitted.fit_pair(config, counts, train, fold_targets,
                                              _CV_TOLERANCE, guide=fitted)
        test_ngrams = fitted.ngram_rows(counts, test)
        scores[np.ix_(test, _columns(fitted, column))] = fitted.decision(
            test_ngrams, _rows(counts.dense, test))
        if quick is not None:
            quick[np.ix_(test, _columns(ngrams, column))] = ngrams.decision(test_ngrams, None)
    assert fitted is not None
    return scores, quick, fitted


def _columns(fitted: _Fitted, column: dict[str, int]) -> IntArray:
    """Where each of a model's classes sits among all the classes."""
    return np.array([column[label] for label in fitted.classes])


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
        # (features x classes) and per class; None with a single class (every score 0).
        self.weights: FloatArray | None = None
        self.intercepts: FloatArray | None = None

    @classmethod
    def fit(
        cls, config: IntentClassifier, counts: _Counts, rows: IntArray, targets: list[str],
        tolerance: float = _TOLERANCE, *, dense: bool = True,
    ) -> _Fitted:
        """Fit on `rows` of the count matrices (and of the embedding block, if `dense` and
        there is one); `targets` are those rows' classes; liblinear stops at `tolerance`."""
        self = cls(config, dense and counts.dense is not None)
        ngrams = self._learn_vocabulary(counts, rows)
        self._fit_linear(counts, rows, ngrams, targets, tolerance=tolerance, guess=None)
        return self

    @classmethod
    def fit_pair(
        cls, config: IntentClassifier, counts: _Counts, rows: IntArray, targets: list[str],
        tolerance: float = _TOLERANCE, *, guide: _Fitted | None = None,
    ) -> tuple[_Fitted, _Fitted]:
        """The cascade's n-gram model and the full one, fitted on the same n-gram features
        of `rows`. The full model's exact solver starts from `guide`'s decisions on these rows
        (a model of similar rows), else from the n-gram model's."""
        quick = cls(config, dense=False)
        ngrams = quick._learn_vocabulary(counts, rows)
        quick._fit_linear(counts, rows, ngrams, targets, tolerance=tolerance, guess=None)
        full = cls(config, dense=True)
        full.kept, full.names, full.tfidf = quick.kept, quick.names, quick.tfidf
        full.unseen_idf = quick.unseen_idf
        start = quick if guide is None else guide
        guess = start.decisions_as(sorted(set(targets)), counts, rows,
                                   ngrams if start is quick else None)
        full._fit_linear(counts, rows, ngrams, targets, tolerance=tolerance, guess=guess)
        return quick, full

    def _learn_vocabulary(self, counts: _Counts, rows: IntArray) -> Any:
        """Each block's vocabulary and idf from `rows` alone, as a vectoriser fitted on them
        would keep; returns those rows' n-gram features."""
        from sklearn.feature_extraction.text import TfidfTransformer

        # scikit-learn's smoothed idf of a document frequency of 0.
        self.unseen_idf = math.log(1 + len(rows)) + 1
        min_dfs = [1, self.config.min_df]
        for matrix, names, min_df in zip(counts.matrices, counts.names, min_dfs, strict=True):
            part = matrix[rows]
            kept = np.flatnonzero(np.asarray((part > 0).sum(axis=0)).ravel() >= min_df)
            self.kept.append(kept)
            self.names.append(names[kept])
            self.tfidf.append(TfidfTransformer(sublinear_tf=True, norm=None).fit(part[:, kept]))
        return self.ngram_rows(counts, rows)

    def _fit_linear(self, counts: _Counts, rows: IntArray, ngrams: Any, targets: list[str], *,
                    tolerance: float, guess: FloatArray | None) -> None:
        """The SVM on the rows' n-gram features and, for a model with it, their embedding
        block: solved exactly (from `guess`, decisions in `classes` order) when the block is
        there and the rows are at most MAX_EXAMPLES; otherwise by liblinear, to `tolerance`."""
        self.classes = sorted(set(targets))
        if len(self.classes) < 2:
            return
        if not self.dense:
            self._fit_liblinear(ngrams, targets, tolerance)
        elif len(rows) > MAX_EXAMPLES:
            self._fit_liblinear(_beside(ngrams, _rows(counts.dense, rows)), targets, tolerance)
        else:
            self._fit_exact(counts, rows, ngrams, targets, guess)

    def _fit_exact(self, counts: _Counts, rows: IntArray, ngrams: Any, targets: list[str],
                   guess: FloatArray | None) -> None:
        """The exact solution (core.classifier.newton), on the examples' Gram matrix: the
        embedding block's dot products, the n-gram blocks' and 1 for the intercept's feature
        (summed in place, the n-grams' a slice of rows at a time: the matrix is the largest
        thing training holds)."""
        assert counts.dense is not None
        embeddings = counts.dense[rows]
        gram = embeddings @ embeddings.T
        gram += 1.0
        transposed = ngrams.T.tocsr()
        for start in range(0, len(rows), _GRAM_SLICE):
            part = slice(start, start + _GRAM_SLICE)
            gram[part] += (ngrams[part] @ transposed).toarray()
        column = {label: i for i, label in enumerate(self.classes)}
        truth = np.array([column[target] for target in targets])
        example_weights = one_vs_rest(gram, truth, len(self.classes), self.config.C, guess)
        self.weights = np.vstack([ngrams.T @ example_weights, embeddings.T @ example_weights])
        self.intercepts = example_weights.sum(axis=0)

    def _fit_liblinear(self, features: Any, targets: list[str], tolerance: float) -> None:
        from sklearn.svm import LinearSVC

        model = LinearSVC(C=self.config.C, tol=tolerance, random_state=self.config.random_state)
        model.fit(features, targets)
        coef = np.asarray(model.coef_, dtype=np.float64)
        intercept = np.asarray(model.intercept_, dtype=np.float64)
        if coef.shape[0] == 1:
            # A binary model scores class 1 only; class 0 gets the opposite score.
            coef = np.vstack([-coef, coef])
            intercept = np.array([-intercept[0], intercept[0]])
        self.weights, self.intercepts = np.ascontiguousarray(coef.T), intercept

    def _ngrams(self, block_counts: list[Any]) -> Any:
        """n-gram features of rows of the shared count matrices: blocks side by side, scaled.

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

    def ngram_rows(self, counts: _Counts, rows: IntArray) -> Any:
        """This model's n-gram features of some rows of the shared count matrices."""
        return self._ngrams([m[rows] for m in counts.matrices])

    def decisions_as(self, classes: list[str], counts: _Counts, rows: IntArray,
                     ngrams: Any = None) -> FloatArray:
        """Scores of some rows (whose n-gram features `ngrams` may give), in the order of
        `classes` (0 for a class this model lacks)."""
        if ngrams is None:
            ngrams = self.ngram_rows(counts, rows)
        decisions = self.decision(ngrams, _rows(counts.dense, rows))
        mine = {label: i for i, label in enumerate(self.classes)}
        result = np.zeros((len(rows), len(classes)))
        for i, label in enumerate(classes):
            if label in mine:
                result[:, i] = decisions[:, mine[label]]
        return result

    def decision_function(self, analysed: list[Analysed], dense: FloatArray | None) -> FloatArray:
        """Scores of new texts, computed with scikit-learn (the reference path); `dense` is
        their embedding block."""
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
        return self.decision(hstack(parts).tocsr(), dense)

    def decision(self, ngrams: Any, dense: FloatArray | None) -> FloatArray:
        """Scores, in `classes` order, of rows given their n-gram features and embedding
        block (read only by a model with that block)."""
        if self.weights is None or self.intercepts is None:
            return np.zeros((ngrams.shape[0], 1))
        width = ngrams.shape[1]
        scores = np.asarray(ngrams @ self.weights[:width]) + self.intercepts
        if self.dense and dense is not None:
            scores += dense @ self.weights[width:]
        return scores

    def vocabularies(self) -> list[dict[str, int]]:
        """n-gram -> column dicts, one per block."""
        return [{str(name): i for i, name in enumerate(names)} for names in self.names]

    def idfs(self) -> list[FloatArray]:
        """Idf weights, one array per block."""
        return [np.asarray(tfidf.idf_, dtype=np.float64) for tfidf in self.tfidf]

    def linear(self) -> tuple[FloatArray, FloatArray]:
        """(features x classes) weights and per-class intercepts."""
        if self.weights is None or self.intercepts is None:
            width = sum(len(names) for names in self.names) + (DIMENSIONS if self.dense else 0)
            return np.zeros((width, 1)), np.zeros(1)
        return self.weights, self.intercepts


def _beside(ngrams: Any, dense: FloatArray | None) -> Any:
    """The n-gram features and the embedding block side by side, as one sparse matrix."""
    from scipy.sparse import csr_matrix, hstack

    return hstack([ngrams, csr_matrix(dense)]).tocsr()


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
