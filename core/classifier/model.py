"""IntentClassifier: TF-IDF word and character n-grams and a sentence embedding under a linear
model, with rejection.

Training uses scikit-learn; prediction does not. After `fit`, everything prediction needs
(one vocabulary per feature block, idf weights, weight matrices, intercepts) sits in plain
dicts and numpy arrays, so a question costs a few dictionary look-ups and small matrix sums,
and a process that loads a saved model (`IntentClassifier.load`) never imports scikit-learn.

The sentence embedding (core.encoder: it knows paraphrases and translations that share no
word with the examples) is one more feature block, but it costs milliseconds where the
n-grams cost tens of microseconds. So the classifier is a cascade: a second model on the
n-grams alone answers the questions it is sure of, and the full model decides the rest. How
sure is sure enough is chosen by cross-validation: the n-gram model may answer where, out of
fold, it gave the full model's decision 49 times in 50. `embedding_weight=0` (a knowledge
base's `encoder: none`) leaves the n-gram model alone, with no encoder loaded.

Out-of-scope examples (label None) become one extra class the model learns. That class never
appears in a ranking; a label's score says how far it stands above it, which is what the
rejection threshold looks at. The score calibration, the threshold and the clarification
margin are chosen by stratified cross-validation on the training data.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Self

import numpy as np
import numpy.typing as npt

from core.classifier import persistence
from core.classifier.calibration import Calibration, _sure, calibrate, top_labels
from core.classifier.features import (
    Analysed,
    FeatureReader,
    FloatArray,
    IntArray,
    _summed,
    char_features,
    word_features,
)
from core.classifier.fitting import Fitted
from core.classifier.novelty import Examples
from core.classifier.persistence import OUT_OF_SCOPE, Learned
from core.classifier.prediction import Prediction
from core.classifier.training import (
    DEFAULT_MARGIN,
    DEFAULT_THRESHOLD,
    class_columns,
    train,
)
from core.encoder import DIMENSIONS, SentenceEncoder, shared_encoder
from core.text import Question

logger = logging.getLogger(__name__)

# Scale of the sentence-embedding block (a unit vector) beside the unit-length n-gram blocks;
# chosen on training and validation data only (docs/benchmarks.md).
EMBEDDING_WEIGHT = 2.0
# Questions `predict` scores at once: bounds the temporary (n-grams x classes) matrix.
_BATCH = 256


class IntentClassifier:
    """Ranks intents for a question and rejects what looks out of scope.

    Parameters: `C` is the inverse regularisation of the one-vs-rest linear SVM;
    `char_weight` scales the character block against the word block, `char_ngrams` gives
    its n-gram sizes and `min_df` the documents a character n-gram needs to be kept;
    `embedding_weight` scales the sentence-embedding block (0: no encoder, n-grams only) and
    `encoder` computes it (default: the process's shared one; never saved with the model);
    `threshold` / `margin` force values instead of choosing them by `cv_folds`-fold
    cross-validation; `random_state` fixes the folds so the same data gives the same model.
    """

    def __init__(
        self,
        *,
        C: float = 1.0,  # noqa: N803 - the name every linear-model user knows
        char_weight: float = 1.0,
        char_ngrams: tuple[int, int] = (2, 5),
        min_df: int = 1,
        embedding_weight: float = EMBEDDING_WEIGHT,
        encoder: SentenceEncoder | None = None,
        threshold: float | None = None,
        margin: float | None = None,
        cv_folds: int = 3,
        random_state: int = 0,
    ) -> None:
        self.C = C
        self.char_weight = char_weight
        self.char_ngrams = char_ngrams
        self.min_df = min_df
        self.embedding_weight = embedding_weight
        self._encoder = encoder if encoder is not None else shared_encoder()  # weights load lazily
        self.threshold = threshold
        self.margin = margin
        self.cv_folds = cv_folds
        self.random_state = random_state
        # Set by fit() or load(): see Learned. The cascade's n-gram model (the same n-gram rows,
        # its own weights and calibration) answers alone when its top score reaches
        # cascade_cut_ and leads the next by at least margin_ (never without an encoder).
        self.threshold_ = DEFAULT_THRESHOLD
        self.margin_ = DEFAULT_MARGIN
        self.cascade_cut_ = math.inf
        self.labels_: list[str] = []
        self._learned: Learned | None = None
        self._classes: list[str] = []  # model columns: labels_ and maybe OUT_OF_SCOPE
        self._weights = np.zeros((0, 0))  # n-gram rows of the full model
        self._dense_weights = np.zeros((0, 0))  # its embedding rows, scaled by the block weight
        self._intercepts = np.zeros(0)
        self._quick_weights = np.zeros((0, 0))
        self._quick_intercepts = np.zeros(0)
        self._in_scope = np.zeros(0, dtype=np.int64)  # model columns of labels_, in order
        self._oos = -1  # model column of the out-of-scope class
        self._examples = Examples.empty()  # what the confidence compares a question with
        # Only in the process that called fit(): the full model and the cascade's n-gram one.
        self._sklearn: Fitted | None = None
        self._sklearn_quick: Fitted | None = None
        self._reader: FeatureReader | None = None

    @property
    def block_weights(self) -> list[float]:
        """Scale of each n-gram feature block (word, char) in the stacked feature vector."""
        return [1.0, self.char_weight]

    @property
    def uses_encoder(self) -> bool:
        """Whether the sentence embedding is a feature block (and the cascade is on)."""
        return self.embedding_weight > 0

    def load_encoder(self) -> None:
        """Load the encoder's weights now, not at the first question that needs them."""
        if self.uses_encoder:
            self._encoder.load()

    def embed(self, questions: Sequence[Question], *,
              remember: bool = False) -> FloatArray | None:
        """The scaled embedding block of texts, or None without an encoder; `remember`
        keeps their embeddings in the encoder's cache (training examples). A text with no word
        gets zeros: the encoder would read a meaning into punctuation or emoji."""
        if not self.uses_encoder:
            return None
        worded = [i for i, question in enumerate(questions) if question.normalized]
        block = np.zeros((len(questions), DIMENSIONS))
        if worded:
            block[worded] = self._encoder.encode([questions[i].text for i in worded],
                                                 remember=remember)
        block *= self.embedding_weight
        return block

    def _analyse(self, question: Question) -> Analysed:
        """The n-grams of each feature block of one text."""
        words = question.normalized.split()
        return [word_features(words), char_features(words, *self.char_ngrams)]

    # ------------------------------------------------------------------ fitting

    def fit(self, texts: Sequence[str], labels: Sequence[str | None]) -> Self:
        """Learn from examples; a label of None marks an out-of-scope example."""
        if len(texts) != len(labels):
            raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
        if all(label is None for label in labels):
            raise ValueError("at least one in-scope (non-None) example is needed")
        examples = [Question.of(text) for text in texts]
        trained = train(self, [example.normalized.split() for example in examples],
                        self.embed(examples, remember=True), labels)
        self._sklearn, self._sklearn_quick = trained.full, trained.quick
        self._use(trained.learned)
        logger.info("classifier fitted: %s", self.describe())
        return self

    def _use(self, learned: Learned) -> None:
        """Take what training or a model file gives, and the tables every prediction reads."""
        self._learned = learned
        self._classes = learned.classes
        self.labels_ = [label for label in self._classes if label != OUT_OF_SCOPE]
        self.threshold_, self.margin_ = learned.threshold, learned.margin
        self.cascade_cut_ = learned.cascade_cut
        self._reader = FeatureReader(learned.vocabularies, learned.idfs, learned.unseen_idf,
                                     self.block_weights, self.char_ngrams)
        self._weights, self._dense_weights = learned.weights, learned.dense_weights
        self._intercepts = learned.intercepts
        self._quick_weights = learned.quick_weights
        self._quick_intercepts = learned.quick_intercepts
        self._in_scope, self._oos = class_columns(self._classes)
        self._examples = learned.examples

    def forget_words(self) -> None:
        """Empty the per-word n-gram look-ups (benchmarks time questions cold with it)."""
        if self._reader is not None:
            self._reader.forget_words()

    @property
    def calibration_(self) -> Calibration:
        """How the full model's decisions read as confidences (see calibration.calibrate)."""
        return self._learned.calibration if self._learned else Calibration()

    @property
    def _cascades(self) -> bool:
        """Whether the cascade's n-gram model answers some questions alone."""
        return math.isfinite(self.cascade_cut_)

    def _calibrate(self, decisions: FloatArray, quick: bool = False,
                   similarity: FloatArray | None = None) -> FloatArray:
        """In-scope scores in [0, 1] from raw decisions (rows of classes), with the full
        model's calibration (reading `similarity`), or the cascade's n-gram model's if
        `quick`."""
        assert self._learned is not None
        learned = self._learned
        calibration = learned.quick_calibration if quick else learned.calibration
        return calibrate(decisions, calibration, self._in_scope, self._oos, similarity)

    # ------------------------------------------------------------------ prediction

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        """One Prediction per text, in order; scored a batch at a time, in matrix products."""
        return self.predict_questions([Question.of(text) for text in texts])

    def predict_questions(self, questions: Sequence[Question]) -> list[Prediction]:
        """`predict` of texts already normalised."""
        predictions: list[Prediction] = []
        for start in range(0, len(questions), _BATCH):
            batch = questions[start : start + _BATCH]
            features = [self._features(question) for question in batch]
            predictions += map(self._prediction, self._batch_scores(batch, features))
        return predictions

    def predict_one(self, text: str) -> Prediction:
        """The fast path for one question: no scikit-learn, no sparse matrices."""
        return self.predict_question(Question.of(text))

    def predict_question(self, question: Question) -> Prediction:
        """`predict_one` of a text already normalised."""
        return self._prediction(self._scores(question))

    def _prediction(self, scores: FloatArray) -> Prediction:
        """Labels ranked by score; the top one, unless it falls under the threshold."""
        # Plain lists: indexing a numpy array one scalar at a time costs more than scoring.
        order = np.argsort(-scores, kind="stable").tolist()
        values = scores.tolist()
        ranking = [(self.labels_[i], values[i]) for i in order]
        confidence = ranking[0][1]
        label = ranking[0][0] if confidence >= self.threshold_ else None
        return Prediction(label=label, confidence=confidence, ranking=ranking)

    def scores(self, text: str) -> FloatArray:
        """Calibrated in-scope scores in [0, 1], in `labels_` order (fast path): the n-gram
        model's when it is sure, else the full model's."""
        return self._scores(Question.of(text))

    def _scores(self, question: Question) -> FloatArray:
        features = self._features(question)
        if self._cascades:
            quick: FloatArray = self._quick_scores([features])[0]
            if _sure(quick, self.cascade_cut_, self.margin_):
                return quick
        full: FloatArray = self._full_scores([question], [features])[0]
        return full

    def answers_alone(self, text: str) -> bool:
        """Whether the cascade's n-gram model answers `text` without the encoder."""
        if not self.uses_encoder:
            return True
        if not self._cascades:
            return False
        quick = self._quick_scores([self._features(Question.of(text))])[0]
        return bool(_sure(quick, self.cascade_cut_, self.margin_))

    def _quick_scores(self, features: list[tuple[IntArray, FloatArray]]) -> FloatArray:
        """Calibrated scores of the cascade's n-gram model."""
        decisions = _summed(features, self._quick_weights, self._quick_intercepts)
        return self._calibrate(decisions, quick=True)

    def decision(self, text: str) -> FloatArray:
        """Raw linear scores of every model class for one raw text, by the full model."""
        question = Question.of(text)
        decisions: FloatArray = self._full_decisions([self._features(question)],
                                                     self.embed([question]))[0]
        return decisions

    def _batch_scores(self, questions: Sequence[Question],
                      features: list[tuple[IntArray, FloatArray]]) -> FloatArray:
        """`scores` of several texts: the encoder runs once, on those the n-gram model is
        not sure of."""
        if not self._cascades:
            return self._full_scores(questions, features)
        scores = self._quick_scores(features)
        unsure = np.flatnonzero(~_sure(scores, self.cascade_cut_, self.margin_)).tolist()
        if unsure:
            scores[unsure] = self._full_scores([questions[i] for i in unsure],
                                               [features[i] for i in unsure])
        return scores

    def _full_scores(self, questions: Sequence[Question],
                     features: list[tuple[IntArray, FloatArray]]) -> FloatArray:
        """Calibrated scores of the full model, whose confidence also reads how close each
        question comes to its top label's examples."""
        embeddings = self.embed(questions)
        decisions = self._full_decisions(features, embeddings)
        return self._calibrate(decisions, similarity=self._similarity(decisions, embeddings))

    def _similarity(self, decisions: FloatArray,
                    embeddings: FloatArray | None) -> FloatArray | None:
        """Each question's similarity to its top label's examples (None: not read)."""
        if embeddings is None or not self._examples:
            return None
        tops = top_labels(decisions, self._in_scope, self._oos)
        return self._examples.similarity(embeddings / self.embedding_weight, tops)

    def _full_decisions(self, features: list[tuple[IntArray, FloatArray]],
                        embeddings: FloatArray | None) -> FloatArray:
        """Raw scores of the full model: n-gram blocks, then the (scaled) embedding block."""
        decisions = _summed(features, self._weights, self._intercepts)
        if embeddings is not None:
            # Row by row, so that a text scores the same alone or in a batch.
            decisions += np.array([row @ self._dense_weights for row in embeddings])
        return decisions

    def _features(self, question: Question) -> tuple[IntArray, FloatArray]:
        """Weight-matrix rows and feature values of one text, the blocks side by side."""
        if self._reader is None:
            raise RuntimeError("IntentClassifier is not fitted: call fit() or load() first")
        return self._reader.read(question.normalized.split())

    def reference_scores(self, texts: Sequence[str]) -> FloatArray:
        """The same scores computed by scikit-learn, to check the fast path against.

        Only available in the process that called `fit` (a loaded model has no scikit-learn).
        """
        if self._sklearn is None:
            raise RuntimeError("no scikit-learn model: this classifier was loaded, not fitted")
        questions = [Question.of(text) for text in texts]
        analysed = [self._analyse(question) for question in questions]
        embeddings = self.embed(questions)
        decisions = self._sklearn.decision_function(analysed, embeddings)
        full = self._calibrate(decisions, similarity=self._similarity(decisions, embeddings))
        if self._sklearn_quick is None:
            return full
        quick = self._calibrate(self._sklearn_quick.decision_function(analysed, None),
                                quick=True)
        sure = _sure(quick, self.cascade_cut_, self.margin_)
        result: FloatArray = np.where(sure[:, None], quick, full)
        return result

    # ------------------------------------------------------------------ reporting

    def describe(self) -> dict[str, Any]:
        """What the classifier learned and chose, as plain JSON-friendly values."""
        return {
            "labels": len(self.labels_),
            "features": self._reader.width if self._reader else 0,
            "out_of_scope_class": self._oos >= 0,
            "threshold": round(self.threshold_, 4),
            "threshold_source": "forced" if self.threshold is not None else "cross-validation",
            "margin": round(self.margin_, 4),
            "margin_source": "forced" if self.margin is not None else "cross-validation",
            "calibration": {"kind": "margin over out-of-scope" if self._oos >= 0 else "softmax",
                            **{name: round(value, 4)
                               for name, value in asdict(self.calibration_).items()}},
            "encoder": "multilingual USE v3" if self.uses_encoder else "none",
            "cascade_cut": round(self.cascade_cut_, 4) if self.uses_encoder else None,
            "params": self._params(),
            "cv": dict(self._learned.report if self._learned else {}),
        }

    def _params(self) -> dict[str, Any]:
        """The constructor's arguments a saved model gives back (the encoder is not one)."""
        return {"C": self.C, "char_weight": self.char_weight, "char_ngrams": list(self.char_ngrams),
                "min_df": self.min_df, "embedding_weight": self.embedding_weight,
                "cv_folds": self.cv_folds, "random_state": self.random_state}

    # ------------------------------------------------------------------ persistence

    def to_arrays(self) -> dict[str, npt.NDArray[Any]]:
        """Everything prediction needs as numpy arrays; the metadata is one JSON string."""
        if self._learned is None:
            raise RuntimeError("IntentClassifier is not fitted: nothing to save")
        return persistence.to_arrays(self._learned, self._params())

    @classmethod
    def from_arrays(cls, arrays: dict[str, npt.NDArray[Any]]) -> IntentClassifier:
        """Rebuild a fitted classifier from `to_arrays` output (no scikit-learn needed)."""
        params, learned = persistence.from_arrays(arrays)
        model = cls(**params)
        model._use(learned)
        return model

    def save(self, path: Path | str) -> None:
        """Write the model to one compressed .npz file (no pickle inside)."""
        persistence.save(self.to_arrays(), path)

    @classmethod
    def load(cls, path: Path | str) -> IntentClassifier:
        """Read a model written by `save`; refuses pickled content."""
        return cls.from_arrays(persistence.load(path))
