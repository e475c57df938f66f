"""Feature blocks of the classifier: word and character n-grams of normalised words, and how
one text's n-grams become weight-matrix rows and tf-idf values (numpy only)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from itertools import chain, count, pairwise
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Analysed = list[list[str]]  # one list of n-grams per feature block
# Words whose character n-grams are kept looked up (FeatureReader._char_keys); past this
# many the table starts again, so that its memory stays bounded whatever people type.
_WORD_TABLE_SIZE = 20_000


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



class FeatureReader:
    """The n-gram features of normalised words for one fitted vocabulary: weight-matrix rows
    and tf-idf values, the word block then the character block (numpy only)."""

    def __init__(self, vocabularies: list[dict[str, int]], idfs: list[FloatArray],
                 unseen_idf: float, block_weights: list[float],
                 char_ngrams: tuple[int, int]) -> None:
        self._word_vocab, self._char_vocab = vocabularies
        self._char_offset = len(self._word_vocab)  # char rows follow the word block's
        self._idf = np.concatenate(idfs)  # every block's idf, in weight-matrix row order
        self._unseen_idf = unseen_idf  # idf of an n-gram no training text had
        self._block_weights = block_weights
        self._char_ngrams = char_ngrams
        self._char_keys_of: dict[str, tuple[int, ...]] = {}  # word -> its n-grams' rows
        self._unknown_ids: dict[str, int] = {}  # unknown n-gram -> its (negative) id
        self._new_ids = count(1)  # never restarts: two unknown n-grams never share an id

    @property
    def width(self) -> int:
        """How many n-gram features the vocabulary knows."""
        return self._char_offset + len(self._char_vocab)

    def forget_words(self) -> None:
        """Empty the per-word n-gram look-ups (benchmarks time questions cold with it)."""
        self._char_keys_of.clear()
        self._unknown_ids.clear()

    def read(self, words: list[str]) -> tuple[IntArray, FloatArray]:
        """Weight-matrix rows and feature values of one text's words, the blocks side by side."""
        if len(self._char_keys_of) + len(words) > _WORD_TABLE_SIZE:
            self.forget_words()
        word_grams = Counter(word_features(words))
        char_grams = Counter(chain.from_iterable(map(self._char_keys, words)))
        vocab = self._word_vocab  # the word block comes first: its rows are its columns
        word_keys = np.array([vocab.get(gram, -1) for gram in word_grams], dtype=np.int64)
        char_keys = np.fromiter(char_grams, dtype=np.int64, count=len(char_grams))
        word_scale, char_scale = self._block_weights
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
            vocab, offset = self._char_vocab, self._char_offset
            keys = tuple(
                offset + vocab[gram] if gram in vocab
                else self._unknown_ids.setdefault(gram, -next(self._new_ids))
                for gram in char_features([word], *self._char_ngrams))
            self._char_keys_of[word] = keys
        return keys
