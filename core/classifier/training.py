"""Training: the models fitted (core.classifier.fitting) on every example and, fold by fold, on
parts of them, for the out-of-fold scores that calibration reads; then the learned values."""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from core.classifier.calibration import (
    Calibration,
    _sure,
    calibrate,
    choose_cascade_cut,
    choose_margin,
    choose_threshold,
    fit_calibration,
    top_labels,
)
from core.classifier.features import FloatArray, IntArray
from core.classifier.fitting import Counts, Fitted, rows_of
from core.classifier.novelty import Examples, out_of_fold_similarity
from core.classifier.persistence import OUT_OF_SCOPE, Learned

if TYPE_CHECKING:
    from core.classifier.model import IntentClassifier

# liblinear's stopping tolerance for the cross-validation models (core.classifier.fitting has
# the one of the model kept): they only feed the calibration and cut-offs, which the looser one
# leaves as they were (default KB: threshold 0.6722 -> 0.6720) for a quarter less solver time.
_CV_TOLERANCE = 1e-2
# Fallbacks when cross-validation is impossible (too little data to hold any out).
DEFAULT_THRESHOLD = 0.3
DEFAULT_MARGIN = 0.05


@dataclass(frozen=True, slots=True)
class Trained:
    """A training's result: what prediction reads, and the scikit-learn models it came from
    (the full one and the cascade's n-gram one), which check the fast path."""

    learned: Learned
    full: Fitted
    quick: Fitted | None


def train(config: IntentClassifier, texts_words: list[list[str]], dense: FloatArray | None,
          labels: Sequence[str | None]) -> Trained:
    """Fit the models on normalised words and the embedding block (`dense`, None without
    one); a label of None marks an out-of-scope example. Reads only `config`'s public
    parameters."""
    import scipy.linalg  # noqa: F401 - see below
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    # One BLAS thread: the exact solver's linear systems are small, so a second thread mostly
    # waits, and it takes the other core from whatever else runs (a bot answering, say).
    # Training the shipped knowledge base beside one busy process: 2.2-2.7 s with two
    # threads, 1.5-1.7 s with one. The limit reaches only the libraries already loaded: scipy's
    # BLAS (the solver's factorisations; not numpy's) is loaded first, or a process's first
    # training would factorise on two threads.
    with threadpool_limits(limits=1, user_api="blas"):
        return _train(config, texts_words, dense, labels)


def _train(config: IntentClassifier, texts_words: list[list[str]], dense: FloatArray | None,
           labels: Sequence[str | None]) -> Trained:
    targets = [OUT_OF_SCOPE if label is None else str(label) for label in labels]
    if all(target == OUT_OF_SCOPE for target in targets):
        raise ValueError("at least one in-scope (non-None) example is needed")
    counts = Counts(texts_words, config.char_ngrams, dense)
    every_row = np.arange(len(targets))
    classes = sorted(set(targets))
    in_scope, oos = class_columns(classes)
    folds = _fold_count(targets, config.cv_folds)
    if folds < 2 or len(in_scope) < 2:
        fitted = Fitted.fit(config, counts, every_row, targets)
        learned = _learned(fitted, Calibration(), DEFAULT_THRESHOLD, DEFAULT_MARGIN,
                           {"cv_folds": 0})
        return Trained(_forced(learned, config), fitted, None)
    decisions, quick, last_fold = _out_of_fold_scores(config, counts, targets, classes, folds)
    if quick is None:
        fitted, quick_model = Fitted.fit(config, counts, every_row, targets), None
    else:
        quick_model, fitted = Fitted.fit_pair(config, counts, every_row, targets,
                                               guide=last_fold)
    truth = _truth([classes[i] for i in in_scope], targets)
    examples, similarity = _novelty(config, counts, decisions, truth, in_scope=in_scope, oos=oos)
    calibration = fit_calibration(decisions, truth, in_scope, oos, similarity)
    probs = calibrate(decisions, calibration, in_scope, oos, similarity)
    threshold, report = choose_threshold(probs, truth)
    margin = choose_margin(probs, truth, threshold)
    report.update(cv_folds=folds)
    learned = _learned(fitted, calibration, threshold, margin, report)
    learned = _forced(replace(learned, examples=examples), config)
    if quick is None or quick_model is None:
        return Trained(learned, fitted, None)
    out_of_fold = _OutOfFold(truth, probs, quick)
    return Trained(_with_cascade(learned, quick_model, out_of_fold), fitted, quick_model)


def _novelty(config: IntentClassifier, counts: Counts, decisions: FloatArray, truth: IntArray,
             *, in_scope: IntArray, oos: int) -> tuple[Examples, FloatArray | None]:
    """The in-scope examples' unit embeddings, and each example's out-of-fold similarity to
    its top label's examples; none without an embedding block or out-of-scope examples (the
    similarity then has nothing to be weighed against, and the confidence stays as it was)."""
    if counts.dense is None or oos < 0:
        return Examples.empty(), None
    unit = counts.dense / config.embedding_weight
    tops = top_labels(decisions, in_scope, oos)
    return (Examples.of(unit, truth, len(in_scope)),
            out_of_fold_similarity(unit, truth, tops, len(in_scope)))


def class_columns(classes: list[str]) -> tuple[IntArray, int]:
    """The model columns of the in-scope labels, in order, and the out-of-scope class's
    column (-1 when there is none)."""
    in_scope = np.array([i for i, label in enumerate(classes) if label != OUT_OF_SCOPE],
                        dtype=np.int64)
    return in_scope, classes.index(OUT_OF_SCOPE) if OUT_OF_SCOPE in classes else -1


def _learned(fitted: Fitted, calibration: Calibration, threshold: float, margin: float,
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


def _with_cascade(learned: Learned, quick_model: Fitted, out_of_fold: _OutOfFold) -> Learned:
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
    config: IntentClassifier, counts: Counts, targets: list[str], classes: list[str],
    folds: int,
) -> tuple[FloatArray, FloatArray | None, Fitted]:
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
    fitted: Fitted | None = None
    for train, test in splits:
        fold_targets = [targets[i] for i in train]
        if quick is None:
            fitted = Fitted.fit(config, counts, train, fold_targets, _CV_TOLERANCE)
        else:
            # The previous fold's model is close to this one: it starts the exact solver.
            ngrams, fitted = Fitted.fit_pair(config, counts, train, fold_targets,
                                              _CV_TOLERANCE, guide=fitted)
        test_ngrams = fitted.ngram_rows(counts, test)
        scores[np.ix_(test, _columns(fitted, column))] = fitted.decision(
            test_ngrams, rows_of(counts.dense, test))
        if quick is not None:
            quick[np.ix_(test, _columns(ngrams, column))] = ngrams.decision(test_ngrams, None)
    assert fitted is not None
    return scores, quick, fitted


def _columns(fitted: Fitted, column: dict[str, int]) -> IntArray:
    """Where each of a model's classes sits among all the classes."""
    return np.array([column[label] for label in fitted.classes])
