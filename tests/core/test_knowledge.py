"""Loading and validating knowledge-base files: every error names file, intent and field."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from core import knowledge
from core.encoder import shared_encoder
from core.errors import KnowledgeBaseError
from core.knowledge import load_knowledge_base
from core.lint import lint_knowledge_base


def _write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "kb.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture
def tiny(tiny_kb_path: Path) -> dict:
    return yaml.safe_load(tiny_kb_path.read_text(encoding="utf-8"))


def _error(tmp_path: Path, data: object) -> str:
    return _refused(_write(tmp_path, data))


def _refused(path: Path) -> str:
    """The one-line error loading `path` raises; it starts with the file's name."""
    with pytest.raises(KnowledgeBaseError) as caught:
        load_knowledge_base(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and "\n" not in message, message
    return message


def test_tiny_kb_loads(tiny_kb_path: Path) -> None:
    kb = load_knowledge_base(tiny_kb_path)
    assert [intent.id for intent in kb.faq_intents] == ["opening_hours", "address", "delivery"]
    texts, labels = kb.training_data()
    assert len(texts) == len(labels)
    assert labels.count(None) == 20
    assert "Quels sont les horaires d'ouverture ?" in texts


def test_encoder_setting(tmp_path: Path, tiny: dict) -> None:
    assert load_knowledge_base(_write(tmp_path, tiny)).encoder == "multilingual-use-v3"
    tiny["encoder"] = "none"
    assert load_knowledge_base(_write(tmp_path, tiny)).encoder == "none"
    tiny["encoder"] = "bert"
    assert "encoder" in _error(tmp_path, tiny)


def test_unknown_field(tmp_path: Path, tiny: dict) -> None:
    tiny["intents"][1]["answers"] = {"fr": "x"}
    message = _error(tmp_path, tiny)
    assert "intent 'address'" in message and "answers" in message


def test_duplicate_id(tmp_path: Path, tiny: dict) -> None:
    tiny["intents"][2]["id"] = "address"
    assert "intent 'address', field 'id': duplicate id" in _error(tmp_path, tiny)


def test_missing_translation(tmp_path: Path, tiny: dict) -> None:
    del tiny["intents"][0]["answer"]["en"]
    assert "intent 'opening_hours', field 'answer.en'" in _error(tmp_path, tiny)


def test_empty_answer(tmp_path: Path, tiny: dict) -> None:
    tiny["intents"][2]["answer"]["fr"] = "   "
    assert "intent 'delivery', field 'answer.fr'" in _error(tmp_path, tiny)


def test_unknown_related(tmp_path: Path, tiny: dict) -> None:
    tiny["intents"][0]["related"] = ["nowhere"]
    message = _error(tmp_path, tiny)
    assert "intent 'opening_hours', field 'related'" in message and "nowhere" in message


def test_example_under_two_intents(tmp_path: Path, tiny: dict) -> None:
    tiny["intents"][2]["examples"]["fr"].append("Horaires !")  # same words as opening_hours
    message = _error(tmp_path, tiny)
    assert "intent 'delivery', field 'examples.fr'" in message and "opening_hours" in message


def test_example_also_out_of_scope(tmp_path: Path, tiny: dict) -> None:
    tiny["out_of_scope"]["en"].append("delivery")
    assert "'delivery'" in _error(tmp_path, tiny)


def test_bad_id_and_kind(tmp_path: Path, tiny: dict) -> None:
    tiny["intents"][0]["kind"] = "chitchat"
    assert "intent 'opening_hours', field 'kind'" in _error(tmp_path, tiny)
    tiny["intents"][0]["kind"] = "faq"
    tiny["intents"][0]["id"] = "Bad Id"
    assert "field 'id'" in _error(tmp_path, tiny)


def test_missing_fallback_language(tmp_path: Path, tiny: dict) -> None:
    del tiny["fallback"]["en"]
    assert "fallback.en" in _error(tmp_path, tiny)


def test_invalid_yaml_names_line(tmp_path: Path) -> None:
    path = tmp_path / "kb.yaml"
    path.write_text("version: 1\nintents: [\n  - id: x\n", encoding="utf-8")
    with pytest.raises(KnowledgeBaseError, match=r"invalid YAML at line \d+"):
        load_knowledge_base(path)


@pytest.mark.parametrize("content", [b"", b"[1, 2]", b"\x00\xff\xfe binary", b"just text"])
def test_not_a_knowledge_base(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "kb.yaml"
    path.write_bytes(content)
    with pytest.raises(KnowledgeBaseError, match=str(path)):
        load_knowledge_base(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(KnowledgeBaseError, match="cannot read"):
        load_knowledge_base(tmp_path / "absent.yaml")


def test_lint_warns_on_thin_intent_and_near_duplicates(tmp_path: Path, tiny: dict) -> None:
    tiny["intents"][2]["examples"]["en"] = ["delivery"]
    tiny["intents"][0]["examples"]["en"].append("when do you open the shop in the morning")
    tiny["intents"][1]["examples"]["en"].append("when do you open the store in the morning")
    warnings = lint_knowledge_base(load_knowledge_base(_write(tmp_path, tiny)))
    assert "intent 'delivery': only 1 examples in 'en'" in warnings
    assert any("near-duplicate" in w and "open the store" in w for w in warnings)


def _edited(tmp_path: Path, source: Path, old: str, new: str) -> Path:
    """The file at `source` with one passage replaced: duplicate keys and aliases cannot be
    written through yaml.safe_dump."""
    text = source.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "kb.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


ADDRESS_ANSWER = 'answer: {fr: "Au 1 rue de la Paix.", en: "At 1 rue de la Paix."}'


@pytest.mark.parametrize(("old", "new", "expected"), [
    (ADDRESS_ANSWER, ADDRESS_ANSWER + '\n    answer: {fr: "Autre.", en: "Other."}',
     "intent 'address', field 'answer': duplicate key at line 23 (first at line 22)"),
    ('en: "At 1 rue de la Paix."', 'en: "At 1 rue de la Paix.", fr: "Ailleurs."',
     "intent 'address', field 'answer.fr': duplicate key"),
    ("default_language: fr", "default_language: fr\ndefault_language: en",
     "field 'default_language': duplicate key at line 5 (first at line 4)"),
])
def test_duplicate_key_is_refused(tmp_path: Path, tiny_kb_path: Path, old: str, new: str,
                                  expected: str) -> None:
    assert expected in _refused(_edited(tmp_path, tiny_kb_path, old, new))


def test_alias_is_refused_before_it_is_expanded(tmp_path: Path, tiny_kb_path: Path) -> None:
    answer = _edited(tmp_path, tiny_kb_path, ADDRESS_ANSWER,
                     ADDRESS_ANSWER.replace("answer: ", "answer: &same ") + "\n    source: *same")
    assert "intent 'address', field 'source': aliases (*) are not accepted" in _refused(answer)
    # 2,000 aliases of a 100 KB text: 200 MB of examples once expanded (minutes to validate).
    aliases = ", ".join(["*big"] * 2000)
    bomb = _edited(tmp_path, tiny_kb_path, "out_of_scope:",
                   f'out_of_scope:\n  zz: [&big "{"x" * 100_000}", {aliases}]\nunused:')
    assert "field 'out_of_scope.zz.1': aliases" in _refused(bomb)


@pytest.mark.parametrize("kind", ["character device", "named pipe", "directory"])
def test_only_a_regular_file_is_read(tmp_path: Path, kind: str) -> None:
    # /dev/zero used to be read until memory ran out, and a named pipe blocked for ever.
    path = Path("/dev/zero") if kind == "character device" else tmp_path / "kb.yaml"
    if kind == "named pipe":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    assert _refused(path) == f"{path}: not a regular file"


def test_file_over_the_size_cap_is_refused(tmp_path: Path, tiny_kb_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    size = tiny_kb_path.stat().st_size
    monkeypatch.setattr(knowledge, "MAX_FILE_BYTES", size - 1)
    assert f"file larger than {size - 1} bytes" in _refused(tiny_kb_path)
    monkeypatch.setattr(knowledge, "MAX_FILE_BYTES", size)
    assert load_knowledge_base(tiny_kb_path).intents


@pytest.mark.parametrize(("old", "new", "field"), [
    ("languages: [fr, en]", "languages: [fr, eng]", "field 'languages.1'"),
    ("languages: [fr, en]", "languages: [fr, EN]", "field 'languages.1'"),
    ('en: "At 1 rue de la Paix."', 'en: "At 1 rue de la Paix.", en_gb_long: "x"',
     "intent 'address', field 'answer.en_gb_long'"),
    ("out_of_scope:\n  fr:", "out_of_scope:\n  fr-FR:", "field 'out_of_scope.fr-FR'"),
])
def test_language_codes_are_two_lower_case_letters(tmp_path: Path, tiny_kb_path: Path,
                                                   old: str, new: str, field: str) -> None:
    message = _refused(_edited(tmp_path, tiny_kb_path, old, new))
    assert field in message and "is not two lower-case letters" in message
def test_lint_warns_on_a_translation_under_another_intent(
        tiny_kb_path: Path, translation_elsewhere_kb: Path) -> None:
    embed = shared_encoder().encode
    assert not [w for w in lint_knowledge_base(load_knowledge_base(tiny_kb_path), embed=embed)
                if "same meaning" in w]
    kb = load_knowledge_base(translation_elsewhere_kb)
    meanings = [w for w in lint_knowledge_base(kb, embed=embed) if "same meaning" in w]
    assert len(meanings) == 1
    assert "'how much does delivery to Belgium cost' (address)" in meanings[0]
    assert "'combien coûte la livraison en Belgique' (delivery)" in meanings[0]
    # Without the encoder (`encoder: none`), no meaning is compared.
    assert not [w for w in lint_knowledge_base(kb) if "same meaning" in w]


def test_fingerprint_follows_the_content_not_the_schema_version(tiny_kb_path: Path) -> None:
    kb = load_knowledge_base(tiny_kb_path)
    assert kb.fingerprint() == load_knowledge_base(tiny_kb_path).fingerprint()
    edited = kb.model_copy(update={"fallback": {"fr": "Autre.", "en": "Other."}})
    assert edited.fingerprint() != kb.fingerprint()
    assert kb.version == edited.version == 1
