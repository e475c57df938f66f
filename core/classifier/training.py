"""Training with scikit-learn: n-gram counts computed once, TF-IDF weights and a one-vs-rest
linear SVM per model, and the out-of-fold scores that calibration reads."""

from __future__ import annotations

import math
import warnings
from collections import Counter
from dataclasses import dataclass
from itertools import chain
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from core.classifier.features import Analysed, FloatArray, IntArray, char_features, word_features
from core.encoder import DIMENSIONS

if TYPE_CHECKING:
    from core.classifier.model import IntentClassifier

# Stopping tolerance of the linear SVM solver: scikit-learn's default for the model kept; the
# cross-validation models only feed the calibration and cut-offs, which the looser one leaves
# as they were (default KB: threshold 0.6722 -> 0.6720) for a quarter less solver time.
_TOLERANCE = 1e-4
_CV_TOLERANCE = 1e-2


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
