"""The one-vs-rest linear SVM of the models with an embedding block, solved exactly by Newton's
method on the examples' Gram matrix.

scikit-learn's LinearSVC (liblinear) solves each class's problem by coordinate descent, reading
every feature of every example on each pass: with the embedding's 512 dense columns, that was
most of the training time. The problem (squared hinge loss, L2 penalty, the intercept one more
feature of value 1 under the same penalty) depends on the examples only through their dot
products, and its solution is a weighted sum of the examples short of their margin, a few hundred
a class. Given that set, the weights solve one small linear system; Newton's method guesses the
set, solves, and guesses again from the new decisions until the set stops changing, which is then
the exact optimum (the finite Newton method for this loss, in its dual form). A good first guess
(the decisions of a model trained on similar rows) means few steps.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from core.classifier.features import FloatArray, IntArray

BoolArray = npt.NDArray[np.bool_]
Point = tuple[FloatArray, FloatArray]  # example weights and the decisions they give

# Steps per class before giving up on an exact optimum; each step lowers the objective, and in
# practice fewer than ten are needed.
_MAX_STEPS = 100
# The Gram matrix holds examples squared (8 bytes each: 128 MB at 4,000); above this many
# examples liblinear is used instead.
MAX_EXAMPLES = 4000


def one_vs_rest(gram: FloatArray, truth: IntArray, classes: int, C: float,  # noqa: N803
                guess: FloatArray | None) -> FloatArray:
    """Each example's weight (examples x classes) in the one-vs-rest SVMs whose Gram matrix,
    intercept feature included, is `gram`; `truth` is each example's class column. `guess`
    holds the decisions of a similar model (examples x classes): the examples short of their
    margin there start each class's set (None: every example).
    """
    signs = np.where(truth[:, None] == np.arange(classes)[None, :], 1.0, -1.0)
    short = np.ones(signs.shape, dtype=bool) if guess is None else signs * guess < 1
    return np.column_stack([_one_class(gram, signs[:, k], short[:, k], C)
                            for k in range(classes)])


def _one_class(gram: FloatArray, signs: FloatArray, short: BoolArray,
               C: float) -> FloatArray:  # noqa: N803
    """One class's example weights: Newton steps until the examples short of their margin are
    the ones the last step solved on."""
    weights, decisions = _solve_on(gram, signs, short, C)  # any first point will do
    for _ in range(_MAX_STEPS):
        short = signs * decisions < 1
        target, target_decisions = _solve_on(gram, signs, short, C)
        step = _step((weights, decisions), (target, target_decisions), signs, C)
        weights = weights + step * (target - weights)
        decisions = decisions + step * (target_decisions - decisions)
        if step == 0.0 or (step == 1.0 and np.array_equal(signs * decisions < 1, short)):
            break  # the optimum (step 0: no step lowers the objective, to rounding)
    return weights


def _solve_on(gram: FloatArray, signs: FloatArray, short: BoolArray,
              C: float) -> tuple[FloatArray, FloatArray]:  # noqa: N803
    """The optimum if exactly the `short` examples fell short of their margin, and its
    decisions on every example."""
    from scipy.linalg import cho_factor, cho_solve

    rows = np.flatnonzero(short)
    weights = np.zeros(len(signs))
    if not len(rows):
        return weights, weights.copy()
    among = gram[rows]  # symmetric: these rows are also the columns the decisions read
    system = among[:, rows]
    system.flat[:: len(rows) + 1] += 1 / (2 * C)
    weights[rows] = cho_solve(cho_factor(system), signs[rows])
    decisions: FloatArray = weights[rows] @ among
    return weights, decisions


def _step(now: Point, target: Point, signs: FloatArray, C: float) -> float:  # noqa: N803
    """How far from `now` towards `target` (weights and decisions each) to go: the whole way
    if that lowers the objective, else the first halving that does (0 if none)."""
    weights, decisions = now
    objective = _objective(weights, decisions, signs, C)
    step = 1.0
    while step > 1e-6:
        trial = _objective(weights + step * (target[0] - weights),
                           decisions + step * (target[1] - decisions), signs, C)
        if trial <= objective:
            return step
        step /= 2
    return 0.0


def _objective(weights: FloatArray, decisions: FloatArray, signs: FloatArray,
               C: float) -> float:  # noqa: N803
    """Half the squared norm of the weights (intercept included) plus C times the squared
    hinge losses."""
    losses = np.maximum(0.0, 1.0 - signs * decisions)
    return float(0.5 * weights @ decisions + C * losses @ losses)
