"""The confidence's novelty signal: a question's similarity to the training examples of the
intent it would get, out of fold without leakage, and what it does to rejection."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.classifier import IntentClassifier
from core.classifier.calibration import calibrate, choose_threshold, fit_calibration
from core.classifier.novelty import Examples, out_of_fold_similarity
from tests.core.test_classifier import QUESTIONS, training_data

# Unit embeddings of five training examples: two of label 0, one of label 1, two out of scope.
EMBEDDINGS = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0],
                       [0.0, -1.0, 0.0]])
TRUTH = np.array([0, 0, 1, -1, -1])


def test_out_of_fold_similarity_leaves_the_example_itself_out() -> None:
    tops = np.array([0, 0, 1, 0, 0])
    similarity = out_of_fold_similarity(EMBEDDINGS, TRUTH, tops, labels=2)
    # Each of label 0's examples only meets the other one (orthogonal), not itself (1.0);
    # label 1's only example has nothing left; the first out-of-scope one is a copy of an
    # example; the second points away from all (negative cosines count as 0, unrelated).
    assert similarity.tolist() == [0.0, 0.0, 0.0, 1.0, 0.0]


def test_a_question_is_compared_with_the_examples_of_its_top_label_only() -> None:
    examples = Examples.of(EMBEDDINGS, TRUTH, labels=2)
    assert examples.rows.dtype == np.float32
    assert examples.offsets.tolist() == [0, 2, 3]
    question = np.array([[0.0, 0.6, 0.8], [0.0, 0.6, 0.8]])
    assert np.allclose(examples.similarity(question, np.array([0, 1])), [0.6, 0.8])


def _out_of_fold(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decisions (columns: out of scope, then two labels), truth and similarity, as cross-
    validation would give them: right answers stand high above the out-of-scope class and close
    to their examples; out-of-scope examples of new kinds stand as high, far from every example;
    known kinds stand low."""
    rng = np.random.default_rng(seed)
    right = rng.uniform(0.5, 3.0, 200)
    new_kinds = rng.uniform(0.5, 3.0, 60)
    known_kinds = rng.uniform(-2.0, 0.0, 60)
    top = np.concatenate([right, new_kinds, known_kinds])
    decisions = np.column_stack([np.zeros(320), top, top - 1.0])
    truth = np.array([0] * 200 + [-1] * 120)
    similarity = np.concatenate([rng.uniform(0.7, 1.0, 200), rng.uniform(0.1, 0.4, 60),
                                 rng.uniform(0.1, 1.0, 60)])
    return decisions, truth, similarity


def test_a_question_far_from_every_example_is_refused_though_its_margin_is_high() -> None:
    decisions, truth, similarity = _out_of_fold()
    in_scope, oos = np.array([1, 2]), 0
    calibration = fit_calibration(decisions, truth, in_scope, oos, similarity)
    threshold, _ = choose_threshold(calibrate(decisions, calibration, in_scope, oos, similarity),
                                    truth)
    question = np.array([[0.0, 2.5, 1.5]])  # as high above the out-of-scope class as most answers
    far, near = (calibrate(question, calibration, in_scope, oos, np.array([s]))[0].max()
                 for s in (0.2, 0.9))
    assert far < threshold <= near
    assert calibration.novelty > 0
    # The margin alone cannot tell it from a right answer: it would be accepted.
    margin_only = fit_calibration(decisions, truth, in_scope, oos)
    alone_threshold, _ = choose_threshold(calibrate(decisions, margin_only, in_scope, oos), truth)
    assert calibrate(question, margin_only, in_scope, oos)[0].max() >= alone_threshold


def test_the_model_reads_the_similarity_only_with_an_encoder_and_out_of_scope_examples(
        tmp_path: Path) -> None:
    texts, labels = training_data()
    with_both = IntentClassifier().fit(texts, labels)
    assert with_both.calibration_.novelty > 0
    with_both.save(tmp_path / "model.npz")
    loaded = IntentClassifier.load(tmp_path / "model.npz")
    assert loaded.calibration_ == with_both.calibration_
    assert loaded.predict(QUESTIONS) == with_both.predict(QUESTIONS)
    no_encoder = IntentClassifier(embedding_weight=0.0).fit(texts, labels)
    in_scope_only = IntentClassifier().fit(*training_data(with_oos=False))
    assert no_encoder.calibration_.novelty == in_scope_only.calibration_.novelty == 0.0
