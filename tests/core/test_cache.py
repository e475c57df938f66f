"""The trained-model cache: reused when safe and fresh, ignored otherwise, never a pickle."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from core.cache import (
    default_cache_dir,
    load_cached,
    model_key,
    new_classifier,
    store,
    trained_classifier,
)
from core.config import load_settings
from core.knowledge import KnowledgeBase, load_knowledge_base

ROOT = Path(__file__).resolve().parents[2]
# The code that shapes a trained model: an edit to any of these files must retrain.
TRAINING_CODE = [*sorted((ROOT / "core" / "classifier").rglob("*.py")),
                 ROOT / "core" / "encoder.py", ROOT / "core" / "text.py"]


@pytest.fixture(scope="module")
def kb(tiny_kb_path: Path) -> KnowledgeBase:
    return load_knowledge_base(tiny_kb_path)


def test_second_load_comes_from_cache(kb: KnowledgeBase, tmp_path: Path) -> None:
    first = trained_classifier(kb, tmp_path)
    cached = load_cached(tmp_path, model_key(kb))
    assert cached is not None
    assert [p.label for p in cached.predict(["horaires", "adresse", "blague"])] == \
        [p.label for p in first.predict(["horaires", "adresse", "blague"])]
    assert (tmp_path.stat().st_mode & 0o777) == 0o700


def test_key_follows_content(kb: KnowledgeBase) -> None:
    changed = kb.model_copy(update={"fallback": {"fr": "Autre.", "en": "Other."}})
    assert model_key(kb) == model_key(kb.model_copy())
    assert model_key(kb) != model_key(changed)


@pytest.mark.parametrize("edited", TRAINING_CODE,
                         ids=lambda path: path.relative_to(ROOT).as_posix())
def test_key_follows_every_file_of_the_training_code(kb: KnowledgeBase, edited: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    before = model_key(kb)
    read_bytes = Path.read_bytes

    def read_with_edit(path: Path) -> bytes:
        data = read_bytes(path)
        return data + b"\n# edited\n" if path.resolve() == edited else data

    monkeypatch.setattr(Path, "read_bytes", read_with_edit)
    assert model_key(kb) != before


def test_cache_directory_is_a_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAQBOT_CACHE_DIR", str(tmp_path))
    assert load_settings().cache_dir == tmp_path
    assert default_cache_dir() == tmp_path


def test_key_follows_the_encoder_setting(kb: KnowledgeBase) -> None:
    assert kb.encoder == "multilingual-use-v3"
    without = kb.model_copy(update={"encoder": "none"})
    assert model_key(kb) != model_key(without)
    assert new_classifier(kb).uses_encoder
    assert not new_classifier(without).uses_encoder


def test_encoder_none_trains_and_caches_an_ngram_model(kb: KnowledgeBase,
                                                       tmp_path: Path) -> None:
    without = kb.model_copy(update={"encoder": "none"})
    trained = trained_classifier(without, tmp_path)
    cached = load_cached(tmp_path, model_key(without))
    assert cached is not None
    assert not trained.uses_encoder and not cached.uses_encoder
    assert load_cached(tmp_path, model_key(kb)) is None  # the default model is another entry


def test_directory_writable_by_others_is_ignored(kb: KnowledgeBase, tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    trained_classifier(kb, tmp_path)
    tmp_path.chmod(0o777)
    with caplog.at_level(logging.WARNING):
        assert load_cached(tmp_path, model_key(kb)) is None
    assert "writable by others" in caplog.text


def test_corrupt_entry_is_ignored(kb: KnowledgeBase, tmp_path: Path) -> None:
    tmp_path.chmod(0o700)
    (tmp_path / f"{model_key(kb)}.npz").write_bytes(b"not a model")
    (tmp_path / f"{model_key(kb)}.npz").chmod(0o600)
    assert load_cached(tmp_path, model_key(kb)) is None
    assert trained_classifier(kb, tmp_path).labels_  # retrained and rewritten
    assert load_cached(tmp_path, model_key(kb)) is not None


def test_unwritable_cache_is_skipped(kb: KnowledgeBase, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    store(blocker / "sub", "key", trained_classifier(kb, None))  # logs, does not raise
    assert not (blocker / "sub").exists()
