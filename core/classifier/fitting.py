"""One model's fit on some training rows: the n-gram counts of every text (computed once for all
the models of a training), each block's vocabulary and TF-IDF weights (scikit-learn), and the
one-vs-rest linear SVM (liblinear, or core.classifier.newton's exact solution for the models
with the embedding block)."""

from __future__ import annotations

import math
from collections import Counter
from itertools import chain
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from core.classifier.features import Analysed, FloatArray, IntArray, char_features, word_features
from core.classifier.newton import MAX_EXAMPLES, one_vs_rest
from core.encoder import DIMENSIONS

if TYPE_CHECKING:
    from core.classifier.model import IntentClassifier

# Stopping tolerance of liblinear for the model kept: scikit-learn's default.
TOLERANCE = 1e-4
# Rows of the n-grams' Gram matrix computed at once (bounds the sparse temporaries).
_GRAM_SLICE = 256


class Counts:
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


class Fitted:
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
        cls, config: IntentClassifier, counts: Counts, rows: IntArray, targets: list[str],
        tolerance: float = TOLERANCE,
    ) -> Fitted:
        """Fit on `rows` of the count matrices (and of the embedding block, if there is one);
        `targets` are those rows' classes; liblinear stops at `tolerance`."""
        self = cls(config, counts.dense is not None)
        ngrams = self._learn_vocabulary(counts, rows)
        self._fit_linear(counts, rows, ngrams, targets, tolerance=tolerance, guess=None)
        return self

    @classmethod
    def fit_pair(
        cls, config: IntentClassifier, counts: Counts, rows: IntArray, targets: list[str],
        tolerance: float = TOLERANCE, *, guide: Fitted | None = None,
    ) -> tuple[Fitted, Fitted]:
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

    def _learn_vocabulary(self, counts: Counts, rows: IntArray) -> Any:
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

    def _fit_linear(self, counts: Counts, rows: IntArray, ngrams: Any, targets: list[str], *,
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
            self._fit_liblinear(_beside(ngrams, rows_of(counts.dense, rows)), targets, tolerance)
        else:
            self._fit_exact(counts, rows, ngrams, targets, guess)

    def _fit_exact(self, counts: Counts, rows: IntArray, ngrams: Any, targets: list[str],
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

    def ngram_rows(self, counts: Counts, rows: IntArray) -> Any:
        """This model's n-gram features of some rows of the shared count matrices."""
        return self._ngrams([m[rows] for m in counts.matrices])

    def decisions_as(self, classes: list[str], counts: Counts, rows: IntArray,
                     ngrams: Any = None) -> FloatArray:
        """Scores of some rows (whose n-gram features `ngrams` may give), in the order of
        `classes` (0 for a class this model lacks)."""
        if ngrams is None:
            ngrams = self.ngram_rows(counts, rows)
        decisions = self.decision(ngrams, rows_of(counts.dense, rows))
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


def rows_of(dense: FloatArray | None, rows: IntArray) -> FloatArray | None:
    """Some rows of the embedding block, or None without one."""
    return None if dense is None else dense[rows]


def _identity(grams: list[str]) -> list[str]:
    """Analyzer for scikit-learn vectorisers fed with pre-computed n-grams."""
    return grams
