"""Calibration and cut-offs chosen on out-of-fold scores: softmax temperature, Platt scaling,
the rejection threshold, the clarification margin and the cascade's cut."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from core.classifier.features import FloatArray, IntArray

# Linear SVM scores live roughly in [-1, 1]; this scale makes logistic outputs usable.
_DEFAULT_SLOPE = 10.0
# Clarification offers the top three; a truth ranked lower cannot be rescued by asking.
_CLARIFY_TOP = 3
# A needless clarification (one extra click) costs half as much as a wrong answer given.
_ASK_COST = 0.5
# Out of fold, how often the cascade's n-gram model must give the full model's decision where
# it answers alone (choose_cascade_cut). 49 in 50 rather than 199 in 200: on new questions the
# n-gram model then answers 60% alone instead of 52%, so the median question skips the encoder's
# forward pass, for 0.17 points of right answers in `faqbot evaluate` (docs/performance.md).
_CASCADE_AGREEMENT = 0.98
# And at most this share of the out-of-fold examples does it answer alone: where it agrees
# with the full model on nearly everything (CLINC150's 150 intents), the agreement alone let it
# answer 89 % of them, and its mistakes there cost 0.5 points of validation top-1 that the full
# model gets right. 60 % rather than half: new questions are answered alone less often than
# out-of-fold examples (CLINC150 validation: 56 % here, 48 % at half), and the median one must
# still skip the encoder's forward pass (docs/benchmarks.md).
_MOST_ALONE = 0.6


@dataclass(frozen=True, slots=True)
class Calibration:
    """How a model's raw decisions read as confidences (see `calibrate`): `slope` and `bias`
    turn the top label's margin over the out-of-scope class into a confidence (without that
    class, `slope` is the softmax's inverse temperature), with `novelty` times the question's
    similarity to the top label's examples (core.classifier.novelty; 0: not read); `spread`
    scales the gaps between labels."""

    slope: float = _DEFAULT_SLOPE
    bias: float = 0.0
    spread: float = _DEFAULT_SLOPE
    novelty: float = 0.0


def oos_margins(decisions: FloatArray, in_scope: IntArray, oos: int) -> FloatArray:
    """Each in-scope class's score minus the out-of-scope class's score (column `oos`)."""
    result: FloatArray = decisions[..., in_scope] - decisions[..., oos, None]
    return result


def top_labels(decisions: FloatArray, in_scope: IntArray, oos: int) -> IntArray:
    """Each row's top label (index among the in-scope labels) by its margin over the
    out-of-scope class: the label the confidence is about, in training and when answering."""
    tops: IntArray = oos_margins(decisions, in_scope, oos).argmax(axis=-1)
    return tops


def calibrate(decisions: FloatArray, calibration: Calibration, in_scope: IntArray,
              oos: int, similarity: FloatArray | None = None) -> FloatArray:
    """In-scope scores in [0, 1] from raw decisions (rows of classes, or one row); `in_scope`
    are the model columns of the labels, `oos` the out-of-scope class's column (-1: none);
    `similarity` (one per row) is each question's to its top label's examples, which a
    calibration with a `novelty` coefficient needs.

    With an out-of-scope class, the top label's score is a logistic function of how far
    its decision stands above the out-of-scope class's and of that similarity (fitted as in
    Platt scaling to "the top label is right"): two close in-scope labels do not lower it,
    as they are a case for clarifying, not for rejecting. Every other label scores that
    confidence times exp(spread * its gap to the top label), so the gap between the first
    two scores measures how ambiguous the question is. Without one, a softmax.
    """
    result: FloatArray
    if oos >= 0:
        margins = oos_margins(decisions, in_scope, oos)
        best = margins.max(axis=-1, keepdims=True)
        logit = calibration.slope * best + calibration.bias
        if calibration.novelty:
            if similarity is None:
                raise ValueError("this calibration reads the similarity to the examples")
            logit = logit + calibration.novelty * similarity[..., None]
        confidence = 1.0 / (1.0 + np.exp(-logit))
        result = confidence * np.exp(calibration.spread * (margins - best))
    else:
        logits = decisions * calibration.slope
        shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
        result = shifted / shifted.sum(axis=-1, keepdims=True)
    return result


def fit_calibration(decisions: FloatArray, truth: IntArray, in_scope: IntArray,
                    oos: int, similarity: FloatArray | None = None) -> Calibration:
    """The calibration that makes out-of-fold decisions (and, with an out-of-scope class,
    their `similarity` to the top label's examples, when given) read as confidences."""
    if oos < 0:
        return Calibration(1 / choose_temperature(decisions, truth), 0.0, _DEFAULT_SLOPE)
    margins = oos_margins(decisions, in_scope, oos)
    slope, bias, novelty = choose_platt(margins, truth, similarity)
    kept = truth >= 0
    return Calibration(slope, bias, 1 / choose_temperature(margins[kept], truth[kept]), novelty)


def _sure(probs: FloatArray, cut: float, margin: float) -> npt.NDArray[np.bool_]:
    """Whether the cascade's n-gram model answers alone: its top score reaches `cut` and
    leads the next one by at least `margin` (so the full model would not ask either)."""
    top = probs.max(axis=-1)
    if probs.shape[-1] < 2:
        return np.asarray(top >= cut)
    two = np.partition(probs, -2, axis=-1)
    return np.asarray((top >= cut) & (two[..., -1] - two[..., -2] >= margin))



def choose_temperature(scores: FloatArray, truth: IntArray) -> float:
    """The softmax temperature (0.01 to 2) that minimises the log loss of out-of-fold scores.

    Linear SVM scores rank well but are not probabilities; one shared temperature (as in
    "temperature scaling") turns them into confidences without changing any ranking. The loss
    has a single minimum (it is convex in 1 / temperature), so a bounded scalar search finds it.
    """
    from scipy.optimize import minimize_scalar

    top = scores.max(axis=1, keepdims=True)
    shifted = scores - top
    true_shifted = shifted[np.arange(len(truth)), truth]

    def log_loss(log_temperature: float) -> float:
        temperature = math.exp(log_temperature)
        log_norm = np.log(np.exp(shifted / temperature).sum(axis=1))
        return float(np.mean(log_norm - true_shifted / temperature))

    bounds = (math.log(0.01), math.log(2.0))
    found = minimize_scalar(log_loss, bounds=bounds, method="bounded", options={"xatol": 1e-3})
    return math.exp(float(found.x))


def choose_platt(margins: FloatArray, truth: IntArray,
                 similarity: FloatArray | None = None) -> tuple[float, float, float]:
    """(slope, bias, novelty) of a logistic function of the top label's margin over
    out-of-scope and, when given, of the similarity to its examples (novelty 0 without).

    Fitted on out-of-fold values to the event "the top label is the right one", so a score
    reads as the chance that answering with it is right. The similarity matters because the
    margin cannot see a new kind of off-topic question: on CLINC150 validation data, its
    out-of-scope questions stand much higher above the out-of-scope class than held-out
    out-of-scope training examples do, yet they stay far from the examples of the intent
    they land on (docs/benchmarks.md).
    """
    top = margins.argmax(axis=1)
    right = (top == truth).astype(int)
    if right.min() == right.max():
        return _DEFAULT_SLOPE, 0.0, 0.0
    from sklearn.linear_model import LogisticRegression

    best = margins.max(axis=1, keepdims=True)
    features = best if similarity is None else np.column_stack([best, similarity])
    model = LogisticRegression(C=100.0).fit(features, right)
    novelty = 0.0 if similarity is None else float(model.coef_[0, 1])
    return float(model.coef_[0, 0]), float(model.intercept_[0]), novelty


def choose_threshold(probs: FloatArray, truth: IntArray) -> tuple[float, dict[str, Any]]:
    """The rejection threshold that maximises the cross-validated objective.

    `probs` are out-of-fold in-scope scores, `truth` the true column (-1 for out of scope).
    With out-of-scope examples the objective is the mean of in-scope accuracy (correct and
    accepted) and out-of-scope recall (rejected); without, the in-scope F1 of accepted answers.
    """
    top = probs.max(axis=1)
    oos = truth < 0
    correct = (probs.argmax(axis=1) == truth) & ~oos
    in_scope = max(1, int((~oos).sum()))
    best = (-1.0, 0.0, 0.0, 0.0)
    for threshold in _candidates(top):
        accepted = top >= threshold
        accuracy = float((correct & accepted).sum()) / in_scope
        if oos.any():
            recall = float((oos & ~accepted).sum()) / int(oos.sum())
            objective = (accuracy + recall) / 2
        else:
            recall = 0.0
            precision = float((correct & accepted).sum()) / max(1, int(accepted.sum()))
            objective = 2 * precision * accuracy / max(1e-12, precision + accuracy)
        if objective > best[0]:
            best = (objective, float(threshold), accuracy, recall)
    objective, threshold, accuracy, recall = best
    report: dict[str, Any] = {
        "objective": "mean(in-scope accuracy, oos recall)" if oos.any() else "in-scope F1",
        "objective_value": round(objective, 4),
        "in_scope_accuracy": round(accuracy, 4),
        "top1_accuracy": round(float(correct.sum()) / in_scope, 4),
    }
    if oos.any():
        report["oos_recall"] = round(recall, 4)
    return threshold, report


def _candidates(top: FloatArray) -> FloatArray:
    """Thresholds worth trying: one under every score (0 for probabilities), midpoints between
    observed scores (at most ~400), one above all."""
    values = np.unique(top)
    if len(values) > 400:
        values = np.unique(np.quantile(top, np.linspace(0, 1, 401)))
    mids = (values[:-1] + values[1:]) / 2
    lowest = 0.0 if values[0] >= 0 else float(values[0]) - 1.0
    return np.concatenate([[lowest], mids, values[-1:] + 1e-9])


def choose_margin(probs: FloatArray, truth: IntArray, threshold: float) -> float:
    """The score gap under which asking the user beats answering with the top intent.

    For accepted in-scope out-of-fold answers, a margin m makes the bot ask whenever the top
    two scores are closer than m, offering the top intents within m of the best. Asking
    rescues an answer whose top intent was wrong when the truth is among those offered, and
    costs a needless click when the top intent was right; a click counts as half a wrong
    answer (`_ASK_COST`). The margin maximises rescued - cost x needlessly asked; 0 when
    asking never pays.
    """
    keep = (truth >= 0) & (probs.max(axis=1) >= threshold)
    if probs.shape[1] < 2 or not keep.any():
        return 0.0
    sub, true = probs[keep], truth[keep]
    order = np.argsort(-sub, axis=1, kind="stable")
    ranked = np.take_along_axis(sub, order, axis=1)
    gaps = ranked[:, 0] - ranked[:, 1]
    right = order[:, 0] == true
    # How far below the top the truth sits, if it is among the candidates that can be shown.
    offered = (order[:, :_CLARIFY_TOP] == true[:, None]).any(axis=1)
    truth_gap = np.where(offered, ranked[:, 0] - sub[np.arange(len(true)), true], np.inf)
    best_gain, best_margin = 0.0, 0.0
    for margin in _candidates(gaps)[1:]:
        asked = gaps < margin
        rescued = int((asked & ~right & (truth_gap < margin)).sum())
        gain = rescued - _ASK_COST * int((asked & right).sum())
        if gain > best_gain:
            best_gain, best_margin = gain, float(margin)
    return best_margin


def choose_cascade_cut(quick: FloatArray, full: FloatArray, threshold: float,
                       margin: float) -> float:
    """The lowest n-gram model score from which it may answer alone.

    `quick` and `full` are the two models' out-of-fold scores. Among the examples the n-gram
    model would answer alone (scoring at least the cut and leading by `margin`), its answer
    must be the full model's decision (which rejects under `threshold`) at least
    `_CASCADE_AGREEMENT` of the time, so that the cascade stays the full model's twin; and
    they are at most `_MOST_ALONE` of all the examples. Never under `threshold`: only answers
    are left to the n-gram model.
    """
    top = quick.max(axis=1)
    order = np.argsort(-top, kind="stable")
    ranked = top[order]
    full_answer = np.where(full.max(axis=1) >= threshold, full.argmax(axis=1), -1)
    answers = _sure(quick, -math.inf, margin)[order]
    differ = (quick.argmax(axis=1) != full_answer)[order] & answers
    answered = np.cumsum(answers)
    agree = np.cumsum(differ) <= (1 - _CASCADE_AGREEMENT) * np.maximum(answered, 1)
    within_share = answered <= _MOST_ALONE * len(top)
    # A cut takes tied scores together: it can fall only before a lower score.
    before_lower = np.append(ranked[1:] < ranked[:-1], True)
    fine = np.flatnonzero(agree & within_share & before_lower & (ranked >= threshold))
    return float(ranked[fine[-1]]) if len(fine) else math.inf

