"""core.kbedit: edits keep the curator's file as it was around them; saving is atomic, keeps
the previous version, and refuses a stale or invalid text."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import KnowledgeBaseError
from core.kbedit import (
    IntentFields,
    KbDraft,
    StaleFileError,
    content_hash,
    save,
    validate,
)
from core.knowledge import load_knowledge_base
from intents import DEFAULT_KB_PATH

TINY = Path(__file__).parents[1] / "data" / "tiny_kb.yaml"


def _fields(kb_path: Path, intent_id: str, **changes: object) -> IntentFields:
    intent = load_knowledge_base(kb_path).intent(intent_id)
    assert intent is not None
    values = {"kind": intent.kind, "question": dict(intent.question),
              "answer": dict(intent.answer), "examples": dict(intent.examples),
              "related": list(intent.related)} | changes
    return IntentFields(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize("path", [TINY, DEFAULT_KB_PATH])
def test_an_unedited_draft_gives_back_the_file_byte_for_byte(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert KbDraft(text).text() == text


@pytest.mark.parametrize("path", [TINY, DEFAULT_KB_PATH])
def test_an_edit_changes_only_the_lines_of_its_intent(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    draft = KbDraft(text)
    answer = dict(load_knowledge_base(path).intents[0].answer, fr="Une réponse: « neuve » #1")
    intent_id = load_knowledge_base(path).intents[0].id
    draft.set_intent(intent_id, _fields(path, intent_id, answer=answer))
    edited = draft.text()
    changed = [line for line in edited.splitlines() if line not in text.splitlines()]
    assert len(changed) == 1 and "« neuve » #1" in changed[0]
    assert len(edited.splitlines()) == len(text.splitlines())
    assert validate(edited, path).intents[0].answer["fr"] == "Une réponse: « neuve » #1"


def test_comments_and_other_intents_survive_adds_and_deletes() -> None:
    text = TINY.read_text(encoding="utf-8").replace(
        "  - id: address\n", "  # where to find us\n  - id: address\n")
    draft = KbDraft(text)
    assert draft.add_examples("delivery", "fr", ["vous livrez a lyon", "livraison"]) == 1
    assert draft.add_examples(None, "en", ["who will win the cup"]) == 1
    draft.delete_intent("address")  # opening_hours lists it as related: removed there too
    draft.set_intent("returns", IntentFields(
        kind="faq", question={"fr": "Puis-je rendre un article ?", "en": "Can I return it?"},
        answer={"fr": "Oui, sous 30 jours.", "en": "Yes, within 30 days."},
        examples={"fr": ["retour", "rembourser"], "en": ["refund"]}, related=["delivery"]),
        create=True)
    edited = draft.text()
    kb = validate(edited, TINY)
    assert [intent.id for intent in kb.intents] == [
        "opening_hours", "delivery", "greeting", "help", "returns"]
    assert kb.intent("opening_hours").related == []  # type: ignore[union-attr]
    assert "vous livrez a lyon" in kb.intent("delivery").examples["fr"]  # type: ignore[union-attr]
    assert "who will win the cup" in kb.out_of_scope["en"]
    assert edited.startswith("# A small knowledge base for tests")
    for untouched in ("  - id: greeting", "    kind: smalltalk",
                      '      fr: ["salut", "coucou", "bonsoir", "slt", "bjr", "hey"]'):
        assert untouched in edited.splitlines()


def test_validate_words_errors_as_faqbot_validate_does(tmp_path: Path) -> None:
    broken = TINY.read_text(encoding="utf-8").replace('en: "Do you deliver?"', 'en: ""')
    on_disk = tmp_path / "faq.yaml"
    on_disk.write_text(broken, encoding="utf-8")
    with pytest.raises(KnowledgeBaseError) as from_file:
        load_knowledge_base(on_disk)
    with pytest.raises(KnowledgeBaseError) as from_text:
        validate(broken, Path("/somewhere/faq.yaml"))
    assert str(from_text.value) == str(from_file.value).replace(str(on_disk),
                                                                "/somewhere/faq.yaml")
    assert "intent 'delivery', field 'question.en': missing or empty translation" in str(
        from_text.value)


def test_save_replaces_the_file_and_keeps_the_previous_version(tmp_path: Path) -> None:
    path = tmp_path / "faq.yaml"
    original = TINY.read_text(encoding="utf-8")
    path.write_text(original, encoding="utf-8")
    path.chmod(0o640)
    draft = KbDraft(original)
    draft.add_examples(None, "fr", ["quelle heure est il a tokyo"])
    previous = save(path, draft.text(), content_hash(original))
    assert previous == tmp_path / "faq.yaml.prev"
    assert previous.read_text(encoding="utf-8") == original
    assert path.read_text(encoding="utf-8") == draft.text()
    assert path.stat().st_mode & 0o777 == 0o640
    assert sorted(item.name for item in tmp_path.iterdir()) == ["faq.yaml", "faq.yaml.prev"]


def test_save_refuses_a_file_changed_since_the_draft(tmp_path: Path) -> None:
    path = tmp_path / "faq.yaml"
    original = TINY.read_text(encoding="utf-8")
    path.write_text(original + "# edited by hand\n", encoding="utf-8")
    with pytest.raises(StaleFileError, match="changed on disk"):
        save(path, KbDraft(original).text(), content_hash(original))
    assert path.read_text(encoding="utf-8") == original + "# edited by hand\n"
    assert not (tmp_path / "faq.yaml.prev").exists()


def test_save_refuses_an_invalid_text_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "faq.yaml"
    original = TINY.read_text(encoding="utf-8")
    path.write_text(original, encoding="utf-8")
    with pytest.raises(KnowledgeBaseError, match="default_language"):
        save(path, original.replace("default_language: fr", "default_language: de"),
             content_hash(original))
    assert path.read_text(encoding="utf-8") == original
    assert sorted(item.name for item in tmp_path.iterdir()) == ["faq.yaml"]
