"""IntentClassifier: contract of predictions, rejection, cut-offs, fast path and persistence,
with the sentence encoder (and its cascade) and without it (`encoder: none`)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.classifier import (
    EMBEDDING_WEIGHT,
    IntentClassifier,
    Prediction,
    choose_cascade_cut,
    choose_margin,
    choose_platt,
    choose_temperature,
    choose_threshold,
)
from core.encoder import SentenceEncoder

ROOT = Path(__file__).resolve().parents[2]

EXAMPLES: dict[str | None, list[str]] = {
    "amiad": [
        "Qu'est-ce que l'AMIAD ?", "c koi l'amiad", "amiad c'est quoi", "What is AMIAD?",
        "what does amiad do", "l'agence ministérielle pour l'IA de défense",
        "tell me about the AMIAD agency", "a quoi sert l'amiad",
    ],
    "scope": [
        "Quel est le périmètre de l'accord ?", "perimetre de l accord", "what does the "
        "agreement cover", "scope of the agreement", "qui est concerné par l'accord",
        "which entities are covered", "l'accord couvre quoi", "who is concerned by the deal",
    ],
    "sovereignty": [
        "Pourquoi la souveraineté compte ?", "souverainete des donnees", "why is sovereignty "
        "important", "data sovereignty", "est-ce souverain", "is it sovereign",
        "hébergement en France des données", "where is the data hosted",
    ],
    "greeting": [
        "bonjour", "salut", "hello", "hi there", "coucou", "bonsoir", "hey", "good morning",
    ],
    None: [
        "quelle est la météo demain", "what's the weather tomorrow", "recette de crêpes",
        "how do I bake a cake", "qui a gagné le match", "who won the football game",
        "donne moi une blague", "tell me a joke", "prix du bitcoin", "bitcoin price",
    ],
}

QUESTIONS = [
    "c'est quoi l'AMIAD", "what is the scope of the agreement", "souveraineté ?", "salut !",
    "weather forecast for paris", "", "!!!", "AMIAD AMIAD AMIAD", "qui est concerne",
]


def training_data(*, with_oos: bool = True) -> tuple[list[str], list[str | None]]:
    texts: list[str] = []
    labels: list[str | None] = []
    for label, examples in EXAMPLES.items():
        if label is None and not with_oos:
            continue
        texts += examples
        labels += [label] * len(examples)
    return texts, labels


@pytest.fixture(scope="module", params=[EMBEDDING_WEIGHT, 0.0], ids=["encoder", "no-encoder"])
def fitted(request: pytest.FixtureRequest) -> IntentClassifier:
    model = IntentClassifier(embedding_weight=request.param).fit(*training_data())
    assert model.uses_encoder == (request.param > 0)
    return model


def test_ranking_contract(fitted: IntentClassifier) -> None:
    for prediction in fitted.predict(QUESTIONS):
        assert isinstance(prediction, Prediction)
        labels = [label for label, _ in prediction.ranking]
        scores = [score for _, score in prediction.ranking]
        assert sorted(labels) == sorted(fitted.labels_) == sorted(k for k in EXAMPLES if k)
        assert None not in labels
        assert scores == sorted(scores, reverse=True)
        assert all(0.0 <= score <= 1.0 for score in scores)
        assert prediction.confidence == scores[0]
        assert prediction.label in (labels[0], None)
        assert (prediction.label is None) == (prediction.confidence < fitted.threshold_)


def test_predict_one_matches_predict(fitted: IntentClassifier) -> None:
    assert fitted.predict(QUESTIONS) == [fitted.predict_one(q) for q in QUESTIONS]


def test_in_scope_answered_and_out_of_scope_rejected(fitted: IntentClassifier) -> None:
    assert fitted.predict_one("c'est quoi l'amiad ?").label == "amiad"
    assert fitted.predict_one("Bonjour !").label == "greeting"
    assert fitted.predict_one("what will the weather be like tomorrow").label is None
    assert fitted.predict_one("").label is None  # no words: nothing to be sure about


def test_same_data_same_model() -> None:
    first = IntentClassifier().fit(*training_data())
    second = IntentClassifier().fit(*training_data())
    assert first.describe() == second.describe()
    assert first.predict(QUESTIONS) == second.predict(QUESTIONS)


def test_cut_offs_chosen_by_cross_validation(fitted: IntentClassifier) -> None:
    description = fitted.describe()
    assert 0.0 < fitted.threshold_ < 1.0
    assert fitted.margin_ >= 0.0
    assert fitted.calibration_.slope > 0.0
    assert description["threshold_source"] == "cross-validation"
    assert description["cv"]["objective"] == "mean(in-scope accuracy, oos recall)"
    assert description["cv"]["cv_folds"] >= 2
    assert 0.0 <= description["cv"]["oos_recall"] <= 1.0
    assert description["out_of_scope_class"] is True


def test_forced_cut_offs_are_kept() -> None:
    model = IntentClassifier(threshold=0.0, margin=0.2).fit(*training_data())
    assert model.threshold_ == 0.0
    assert model.margin_ == 0.2
    assert model.describe()["threshold_source"] == "forced"
    assert all(p.label is not None for p in model.predict(QUESTIONS))


def test_without_out_of_scope_examples_uses_f1() -> None:
    model = IntentClassifier().fit(*training_data(with_oos=False))
    assert model.describe()["cv"]["objective"] == "in-scope F1"
    assert model.describe()["out_of_scope_class"] is False
    assert model.predict_one("hello").label == "greeting"
    scores = model.scores("hello")
    assert scores.sum() == pytest.approx(1.0)  # no out-of-scope class takes any share


def test_english_only_and_two_labels() -> None:
    texts = ["open my account", "create an account", "new account please",
             "close my account", "delete my account", "remove the account"]
    labels: list[str | None] = ["open", "open", "open", "close", "close", "close"]
    model = IntentClassifier().fit(texts, labels)
    assert model.predict_one("please open an account").ranking[0][0] == "open"
    assert model.predict_one("delete the account").ranking[0][0] == "close"
    np.testing.assert_allclose(model.reference_scores(texts),
                               [model.scores(t) for t in texts], atol=1e-9)


def test_single_label_is_always_top() -> None:
    model = IntentClassifier().fit(["hello", "hi"], ["greeting", "greeting"])
    prediction = model.predict_one("anything")
    assert prediction.ranking == [("greeting", 1.0)]


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="labels"):
        IntentClassifier().fit(["a", "b"], ["x"])
    with pytest.raises(ValueError, match="in-scope"):
        IntentClassifier().fit(["a", "b"], [None, None])
    with pytest.raises(RuntimeError, match="not fitted"):
        IntentClassifier().predict_one("hello")


def test_fast_path_equals_scikit_learn(fitted: IntentClassifier) -> None:
    questions = [*QUESTIONS, *(t for examples in EXAMPLES.values() for t in examples)]
    fast = np.array([fitted.scores(q) for q in questions])
    reference = fitted.reference_scores(questions)
    np.testing.assert_allclose(fast, reference, atol=1e-6)


def test_save_load_round_trip_without_pickle(fitted: IntentClassifier, tmp_path: Path) -> None:
    path = tmp_path / "model.npz"
    fitted.save(path)
    with np.load(path, allow_pickle=False) as data:  # would raise on any pickled array
        assert all(data[name].dtype != object for name in data.files)
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == sorted(
            ["meta.npy", "idf.npy", "weights.npy", "dense_weights.npy", "intercepts.npy",
             "quick_weights.npy", "quick_intercepts.npy", "example_rows.npy",
             "example_offsets.npy"]
        )
    loaded = IntentClassifier.load(path)
    assert loaded.uses_encoder == fitted.uses_encoder
    assert loaded.cascade_cut_ == fitted.cascade_cut_
    assert loaded.predict(QUESTIONS) == fitted.predict(QUESTIONS)
    assert loaded.threshold_ == fitted.threshold_
    assert loaded.margin_ == fitted.margin_
    assert loaded.describe() == fitted.describe()
    with pytest.raises(RuntimeError, match="loaded"):
        loaded.reference_scores(["hello"])


def test_arrays_round_trip(fitted: IntentClassifier) -> None:
    clone = IntentClassifier.from_arrays(fitted.to_arrays())
    assert clone.predict(QUESTIONS) == fitted.predict(QUESTIONS)


def test_loading_does_not_import_scikit_learn(fitted: IntentClassifier, tmp_path: Path) -> None:
    path = tmp_path / "model.npz"
    fitted.save(path)
    script = (
        "import sys\n"
        "sys.modules['sklearn'] = None  # any import of scikit-learn now fails\n"
        "sys.modules['scipy'] = None\n"
        "from core.classifier import IntentClassifier\n"
        f"model = IntentClassifier.load({str(path)!r})\n"
        "print(model.predict_one(\"c'est quoi l'amiad\").ranking[0][0])\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "amiad"


def test_wrong_format_is_refused(fitted: IntentClassifier) -> None:
    arrays = fitted.to_arrays()
    arrays["meta"] = np.array('{"format": 99}')
    with pytest.raises(ValueError, match="format"):
        IntentClassifier.from_arrays(arrays)


def test_choose_threshold_separates_out_of_scope() -> None:
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.4, 0.35], [0.45, 0.4]])
    truth = np.array([0, 0, 1, -1, -1])
    threshold, report = choose_threshold(probs, truth)
    assert 0.45 < threshold <= 0.7
    assert report["oos_recall"] == 1.0
    assert report["in_scope_accuracy"] == 1.0


def test_choose_threshold_without_out_of_scope_rejects_unsure_errors() -> None:
    probs = np.array([[0.9, 0.1], [0.85, 0.15], [0.2, 0.8], [0.55, 0.45]])
    truth = np.array([0, 0, 1, 1])  # the last one is wrong and unsure
    threshold, report = choose_threshold(probs, truth)
    assert 0.55 < threshold <= 0.8
    assert report["objective"] == "in-scope F1"


def test_choose_margin_asks_when_close_calls_are_coin_flips() -> None:
    probs = np.array([[0.50, 0.48, 0.02], [0.49, 0.47, 0.04], [0.51, 0.46, 0.03],
                      [0.9, 0.05, 0.05], [0.8, 0.1, 0.1]])
    truth = np.array([1, 1, 0, 0, 0])  # two of the three close calls are wrong
    margin = choose_margin(probs, truth, threshold=0.0)
    assert 0.02 < margin < 0.7
    assert choose_margin(probs[3:], truth[3:], threshold=0.0) == 0.0


def test_choose_temperature_prefers_sharper_when_scores_are_right() -> None:
    scores = np.array([[1.0, -1.0], [-1.0, 1.0]] * 5)
    truth = np.array([0, 1] * 5)
    assert choose_temperature(scores, truth) < choose_temperature(scores, truth[::-1].copy())


def test_unknown_words_lower_the_confidence(fitted: IntentClassifier) -> None:
    plain = fitted.predict_one("amiad ?")
    diluted = fitted.predict_one("amiad zorglub quetzalcoatl flibbertigibbet wombat")
    assert diluted.ranking[0][0] == "amiad"
    assert diluted.confidence < plain.confidence


def test_describe_is_json(fitted: IntentClassifier) -> None:
    description = json.loads(json.dumps(fitted.describe()))
    assert description["calibration"]["kind"] == "margin over out-of-scope"
    assert description["calibration"]["slope"] > 0


def test_choose_platt_rises_with_the_margin() -> None:
    margins = np.array([[2.0, -1.0], [1.5, -0.5], [-1.0, 1.2], [-0.8, -0.9], [-1.0, -1.1],
                        [0.1, -0.2]])
    truth = np.array([0, 0, 1, -1, -1, 1])  # the unsure last one is wrong
    slope, _, novelty = choose_platt(margins, truth)
    assert slope > 0
    assert novelty == 0.0  # no similarity given: the margin alone
    assert choose_platt(margins[:3], truth[:3]) == (10.0, 0.0, 0.0)  # all right: nothing to fit


# -- the sentence encoder and the cascade ------------------------------------------------------


class _CountingEncoder(SentenceEncoder):
    """A real encoder that records the texts its model had to encode (cache misses)."""

    def __init__(self) -> None:
        super().__init__()
        self.encoded: list[str] = []

    def _model(self) -> Any:
        model = super()._model()
        encoded = self.encoded

        class _Recording:
            @staticmethod
            def encode(texts: list[str]) -> Any:
                encoded.extend(texts)
                return model.encode(texts)

        return _Recording()


def test_without_encoder_nothing_is_encoded() -> None:
    encoder = _CountingEncoder()
    model = IntentClassifier(embedding_weight=0.0, encoder=encoder).fit(*training_data())
    model.predict([*QUESTIONS, "une question jamais vue"])
    assert encoder.encoded == []
    assert model.describe()["encoder"] == "none"
    assert model.cascade_cut_ == math.inf


PARAPHRASES = {  # no word in common with the examples of their intent, one across languages
    "is my information kept inside the country?": "sovereignty",
    "mes informations restent-elles sur le territoire national": "sovereignty",
    "which organisations benefit from this partnership": "scope",
    "military AI office, what is it": "amiad",
    "greetings, friend": "greeting",
}


def test_paraphrases_sharing_no_word_are_understood_only_with_the_encoder() -> None:
    texts, labels = training_data()
    with_encoder = IntentClassifier().fit(texts, labels)
    without = IntentClassifier(embedding_weight=0.0).fit(texts, labels)
    for question, intent in PARAPHRASES.items():
        assert with_encoder.predict_one(question).label == intent, question
        assert without.predict_one(question).label is None, question
    for off_topic in ("will it rain tonight", "which team triumphed yesterday"):
        assert with_encoder.predict_one(off_topic).label is None


def test_the_cascade_calls_the_encoder_only_when_the_ngram_model_is_unsure() -> None:
    encoder = _CountingEncoder()
    model = IntentClassifier(encoder=encoder).fit(*training_data())
    assert 0.0 < model.cascade_cut_ < 1.0
    encoder.encoded.clear()
    sure = model.predict_one("Qu'est-ce que l'AMIAD ?")
    assert sure.label == "amiad" and encoder.encoded == []
    assert model.answers_alone("Qu'est-ce que l'AMIAD ?")
    unsure = "military AI office, what is it"
    assert not model.answers_alone(unsure)
    assert model.predict_one(unsure).label == "amiad"
    assert encoder.encoded == [unsure]


_BLAS_THREADS_WHILE_SOLVING = """
import threadpoolctl
import core.classifier.newton as newton
from core.classifier import IntentClassifier

solve, threads = newton._solve_on, set()

def recording(*args):
    result = solve(*args)  # scipy's BLAS is loaded by now
    threads.update(info["num_threads"] for info in threadpoolctl.threadpool_info()
                   if info["user_api"] == "blas")
    return result

newton._solve_on = recording
IntentClassifier().fit({texts!r}, {labels!r})
print(sorted(threads))
"""


def test_a_new_processs_first_training_solves_on_one_blas_thread() -> None:
    texts, labels = training_data()
    script = _BLAS_THREADS_WHILE_SOLVING.format(texts=texts, labels=labels)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            check=True, cwd=ROOT, timeout=300)
    assert result.stdout.split("\n")[-2] == "[1]"


def test_retraining_after_an_edit_encodes_only_the_changed_examples() -> None:
    encoder = _CountingEncoder()
    texts, labels = training_data()
    IntentClassifier(encoder=encoder).fit(texts, labels)
    assert sorted(encoder.encoded) == sorted(set(texts))
    encoder.encoded.clear()
    edited = [*texts[:-1], "le cours du bitcoin aujourd'hui"]
    IntentClassifier(encoder=encoder).fit(edited, labels)
    assert encoder.encoded == ["le cours du bitcoin aujourd'hui"]


def test_choose_cascade_cut_leaves_the_ngram_model_where_it_agrees_with_the_full_one() -> None:
    # Rows by n-gram score: two where both models agree, then one where they differ.
    quick = np.array([[0.95, 0.05], [0.9, 0.1], [0.8, 0.2], [0.6, 0.4]])
    full = np.array([[0.9, 0.1], [0.9, 0.1], [0.1, 0.9], [0.7, 0.3]])
    assert choose_cascade_cut(quick, full, threshold=0.5, margin=0.0) == 0.9
    # Where the full model rejects, an answer is a disagreement.
    rejecting = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9], [0.7, 0.3]])
    assert choose_cascade_cut(quick, rejecting, threshold=0.85, margin=0.0) == 0.95
    assert choose_cascade_cut(quick[2:], full[2:], 0.5, 0.0) == math.inf


def test_choose_cascade_cut_leaves_two_examples_in_five_to_the_full_model() -> None:
    quick = np.array([[0.95, 0.05], [0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.6, 0.4]])
    # The two models agree everywhere: the n-gram model still answers only 3 of the 5.
    assert choose_cascade_cut(quick, quick, threshold=0.5, margin=0.0) == 0.8
    # Tied scores go together: the second to fourth are tied, so only the first is left.
    tied = np.array([[0.95, 0.05], [0.9, 0.1], [0.9, 0.1], [0.9, 0.1], [0.6, 0.4]])
    assert choose_cascade_cut(tied, tied, threshold=0.5, margin=0.0) == 0.95
