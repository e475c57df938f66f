"""The exact SVM solver of the models with an embedding block: it finds the optimum liblinear
approaches, from any first guess, and a training too large for it (liblinear's) learns the
same model."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.svm import LinearSVC

from core.classifier import IntentClassifier
from core.classifier import fitting as fitting_module
from core.classifier.newton import one_vs_rest
from tests.core.test_classifier import training_data


def _examples(classes: int) -> tuple[np.ndarray, np.ndarray]:
    """300 noisy points around one centre per class: overlapping classes, so that many
    examples fall short of their margin."""
    rng = np.random.default_rng(classes)
    centres = rng.normal(size=(classes, 20))
    truth = rng.integers(0, classes, 300)
    return centres[truth] + rng.normal(scale=1.5, size=(300, 20)), truth


@pytest.mark.parametrize("classes", [2, 5])
@pytest.mark.parametrize("guess", ["none", "noise"])
def test_the_solution_is_liblinears_optimum(classes: int, guess: str) -> None:
    features, truth = _examples(classes)
    reference = LinearSVC(C=0.5, tol=1e-9, max_iter=1_000_000).fit(features, truth)
    expected = reference.decision_function(features)
    if classes == 2:  # liblinear scores class 1 only
        expected = np.column_stack([-expected, expected])
    gram = features @ features.T + 1.0  # the intercept is a feature of value 1
    start = np.random.default_rng(0).normal(size=expected.shape) if guess == "noise" else None
    example_weights = one_vs_rest(gram, truth, classes, 0.5, start)
    np.testing.assert_allclose(gram @ example_weights, expected, atol=1e-5)


def test_liblinear_beyond_the_exact_solvers_size_learns_the_same_model(
        monkeypatch: pytest.MonkeyPatch) -> None:
    exact = IntentClassifier().fit(*training_data())
    monkeypatch.setattr(fitting_module, "MAX_EXAMPLES", 0)
    approached = IntentClassifier().fit(*training_data())
    # liblinear stops at its tolerance (1e-4 for the model kept): close, not equal.
    np.testing.assert_allclose(approached._weights, exact._weights, atol=1e-4)
    np.testing.assert_allclose(approached._dense_weights, exact._dense_weights, atol=1e-4)
    np.testing.assert_allclose(approached._intercepts, exact._intercepts, atol=1e-4)
    assert approached.threshold_ == pytest.approx(exact.threshold_, abs=1e-3)
