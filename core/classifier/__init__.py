"""IntentClassifier, in one module per job: features (word, character and sentence-embedding
blocks), training (scikit-learn), calibration (scores, threshold, margin, cascade cut), novelty
(how far a question is from its intent's examples), model (the numpy-only prediction),
prediction (its result) and persistence."""

from core.classifier.calibration import (
    choose_cascade_cut,
    choose_margin,
    choose_platt,
    choose_temperature,
    choose_threshold,
)
from core.classifier.features import char_features, word_features
from core.classifier.model import EMBEDDING_WEIGHT, IntentClassifier
from core.classifier.persistence import FORMAT_VERSION
from core.classifier.prediction import Prediction

__all__ = [
    "EMBEDDING_WEIGHT",
    "FORMAT_VERSION",
    "IntentClassifier",
    "Prediction",
    "char_features",
    "choose_cascade_cut",
    "choose_margin",
    "choose_platt",
    "choose_temperature",
    "choose_threshold",
    "word_features",
]
