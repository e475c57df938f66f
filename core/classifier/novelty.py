"""Novelty: how close a question comes to the training examples of the intent it would get.

The out-of-scope class only knows the kinds of off-topic questions its examples show. A new
kind can stand far above that class and still be far from every example of the intent it
lands on; the confidence reads both (core.classifier.calibration). Similarities are cosines
of the encoder's unit embeddings, so dot products.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from core.classifier.features import FloatArray, IntArray
from core.encoder import DIMENSIONS

Embeddings = npt.NDArray[np.float32]
# The similarity when there is no example to compare with, and the floor of any similarity: a
# negative cosine says no more than "unrelated".
_UNRELATED = 0.0


@dataclass(frozen=True, slots=True)
class Examples:
    """The unit embeddings of the in-scope training examples, grouped by label: label i's rows
    are `rows[offsets[i]:offsets[i + 1]]`. float32, as the encoder gives them: half the
    memory, and a question costs one small matrix-vector product."""

    rows: Embeddings
    offsets: IntArray

    @classmethod
    def of(cls, embeddings: FloatArray, truth: IntArray, labels: int) -> Examples:
        """The examples of `embeddings` (unit rows) whose `truth` (label index, -1 for out of
        scope) is in scope."""
        order = _in_scope_order(truth)
        counts = np.bincount(truth[order], minlength=labels)
        return cls(np.ascontiguousarray(embeddings[order], dtype=np.float32),
                   np.concatenate([[0], np.cumsum(counts)]).astype(np.int64))

    @classmethod
    def empty(cls) -> Examples:
        """No examples: a model without embeddings or without an out-of-scope class."""
        return cls(np.zeros((0, DIMENSIONS), dtype=np.float32), np.zeros(1, dtype=np.int64))

    def __bool__(self) -> bool:
        return len(self.rows) > 0

    def similarity(self, embeddings: FloatArray, tops: IntArray) -> FloatArray:
        """Each unit embedding's highest cosine to an example of its top label (`tops`)."""
        result = np.zeros(len(tops))
        for i, (row, top) in enumerate(zip(embeddings.astype(np.float32), tops, strict=True)):
            block = self.rows[self.offsets[top] : self.offsets[top + 1]]
            result[i] = (block @ row).max(initial=_UNRELATED)
        return result


def out_of_fold_similarity(embeddings: FloatArray, truth: IntArray, tops: IntArray,
                           labels: int) -> FloatArray:
    """`Examples.similarity` of the training examples themselves, each left out of its own
    comparison, as a question at run time is not among the examples: an in-scope example is
    compared with the other examples of its top label, an out-of-scope one with all of them."""
    examples = Examples.of(embeddings, truth, labels)
    own_row = np.full(len(truth), -1)  # where each in-scope example sits among the rows
    own_row[_in_scope_order(truth)] = np.arange(len(examples.rows))
    result = np.zeros(len(truth))
    for top in np.unique(tops):
        asking = np.flatnonzero(tops == top)
        start, end = examples.offsets[top], examples.offsets[top + 1]
        cosines = embeddings[asking].astype(np.float32) @ examples.rows[start:end].T
        inside = (own_row[asking] >= start) & (own_row[asking] < end)
        cosines[np.flatnonzero(inside), own_row[asking][inside] - start] = -np.inf
        result[asking] = cosines.max(axis=1, initial=_UNRELATED)
    return result


def _in_scope_order(truth: IntArray) -> IntArray:
    """The in-scope examples' indices, grouped by label (stable): the order of `Examples.rows`."""
    order = np.argsort(truth, kind="stable")
    kept: IntArray = order[truth[order] >= 0]
    return kept
