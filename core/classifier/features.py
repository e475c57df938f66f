"""Feature blocks of the classifier: word and character n-grams of normalised words, and how
one text's n-grams become weight-matrix rows and tf-idf values (numpy only)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Analysed = list[list[str]]  # one list of n-grams per feature block


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

