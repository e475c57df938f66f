"""The knowledge base: pydantic models of the YAML file, loading and validation.

Loading is all or nothing: any problem raises `KnowledgeBaseError` with a message naming the
file, the intent id and the field, and no half-loaded knowledge base ever answers.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from core.errors import KnowledgeBaseError
from core.text import normalize

IntentKind = Literal["faq", "smalltalk"]
_LANGUAGE_CODE = re.compile("[a-z]{2}")


def _check_language_code(code: str) -> str:
    # Codes travel in Discord button ids and Telegram's 64-byte callback_data, which leave
    # room for two letters.
    if not _LANGUAGE_CODE.fullmatch(code):
        raise ValueError(f"language code {code!r} is not two lower-case letters (like fr)")
    return code


LanguageCode = Annotated[str, AfterValidator(_check_language_code)]
Translations = dict[LanguageCode, str]
# Telegram's callback_data holds 64 bytes and carries an id plus a short prefix.
MAX_ID_LENGTH = 32
MAX_FILE_BYTES = 5_000_000
# libyaml's loader parses the shipped file fifteen times faster than the pure-Python one.
_YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Intent(_Strict):
    """One curated question with its answer in every language and its training examples."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=MAX_ID_LENGTH)
    kind: IntentKind = "faq"
    question: Translations
    answer: Translations
    examples: dict[LanguageCode, list[str]] = Field(default_factory=dict)
    related: list[str] = Field(default_factory=list)
    source: str | None = None
    show_topics: bool = False

    def training_texts(self, lang: str) -> list[str]:
        """The canonical question followed by the examples of one language."""
        return [self.question[lang], *self.examples.get(lang, [])]


class KnowledgeBase(_Strict):
    """A whole knowledge base; constructing one validates it completely."""

    version: Literal[1]
    languages: list[LanguageCode] = Field(min_length=1)
    default_language: LanguageCode
    fallback: Translations
    intents: list[Intent] = Field(min_length=1)
    out_of_scope: dict[LanguageCode, list[str]] = Field(default_factory=dict)
    # False: no "helpful / not helpful" buttons under the answers (as FAQBOT_FEEDBACK=0).
    feedback: bool = True
    # "none": no sentence encoder, the classifier reads n-grams only (the smallest deployments).
    encoder: Literal["multilingual-use-v3", "none"] = "multilingual-use-v3"

    @model_validator(mode="after")
    def _check_consistency(self) -> KnowledgeBase:
        if self.default_language not in self.languages:
            raise ValueError(f"default_language {self.default_language!r} is not in languages")
        _check_translations("fallback", self.fallback, self.languages)
        _check_unique_ids(self.intents)
        for intent in self.intents:
            _check_intent(intent, self.languages, {other.id for other in self.intents})
        _check_examples_unique(self)
        return self

    def fingerprint(self) -> str:
        """A short fingerprint of the content: changes with any edit (`version` is the schema's
        number, not this)."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:12]

    def intent(self, intent_id: str) -> Intent | None:
        """The intent with this id, or None."""
        return next((intent for intent in self.intents if intent.id == intent_id), None)

    @property
    def faq_intents(self) -> list[Intent]:
        """The FAQ intents, in file order: the topics the bot offers."""
        return [intent for intent in self.intents if intent.kind == "faq"]

    def training_data(self) -> tuple[list[str], list[str | None]]:
        """Texts and labels for the classifier; out-of-scope examples carry the label None."""
        texts: list[str] = []
        labels: list[str | None] = []
        for intent in self.intents:
            for lang in self.languages:
                batch = intent.training_texts(lang)
                texts += batch
                labels += [intent.id] * len(batch)
        for examples in self.out_of_scope.values():
            texts += examples
            labels += [None] * len(examples)
        return texts, labels


class IntentFieldError(ValueError):
    """A validation failure located in one intent and field (turned into the error message)."""

    def __init__(self, intent_id: str, field: str, problem: str) -> None:
        super().__init__(f"intent {intent_id!r}, field {field!r}: {problem}")


def _check_translations(where: str, texts: Translations, languages: list[str]) -> None:
    for lang in languages:
        if not texts.get(lang, "").strip():
            raise ValueError(f"field '{where}.{lang}': missing or empty translation")
    extra = sorted(set(texts) - set(languages))
    if extra:
        raise ValueError(f"field {where!r}: language {extra[0]!r} is not in languages")


def _check_unique_ids(intents: list[Intent]) -> None:
    seen: set[str] = set()
    for intent in intents:
        if intent.id in seen:
            raise IntentFieldError(intent.id, "id", "duplicate id")
        seen.add(intent.id)


def _check_intent(intent: Intent, languages: list[str], known_ids: set[str]) -> None:
    for field in ("question", "answer"):
        texts: Translations = getattr(intent, field)
        for lang in languages:
            if not texts.get(lang, "").strip():
                raise IntentFieldError(intent.id, f"{field}.{lang}", "missing or empty translation")
        for lang in set(texts) - set(languages):
            raise IntentFieldError(intent.id, f"{field}.{lang}", "language not in languages")
    for lang, examples in intent.examples.items():
        if lang not in languages:
            raise IntentFieldError(intent.id, f"examples.{lang}", "language not in languages")
        if any(not example.strip() for example in examples):
            raise IntentFieldError(intent.id, f"examples.{lang}", "empty example")
    for related_id in intent.related:
        if related_id not in known_ids or related_id == intent.id:
            raise IntentFieldError(intent.id, "related", f"no other intent has id {related_id!r}")


def _labelled_examples(kb: KnowledgeBase) -> Iterator[tuple[str, str, str]]:
    """(owner, field, text) for every training text; the owner is an intent id or out_of_scope."""
    for intent in kb.intents:
        for lang in kb.languages:
            yield intent.id, f"question.{lang}", intent.question[lang]
            for example in intent.examples.get(lang, []):
                yield intent.id, f"examples.{lang}", example
    for lang, examples in kb.out_of_scope.items():
        for example in examples:
            yield "out_of_scope", lang, example


def _check_examples_unique(kb: KnowledgeBase) -> None:
    # The same words under two owners teach the classifier a contradiction.
    owners: dict[str, str] = {}
    for owner, field, text in _labelled_examples(kb):
        key = normalize(text)
        first = owners.setdefault(key, owner)
        if first != owner:
            raise IntentFieldError(owner, field, f"example {text!r} is also listed under {first!r}")


def load_knowledge_base(path: Path | str) -> KnowledgeBase:
    """Read and validate a knowledge-base file; raise KnowledgeBaseError naming what is wrong."""
    path = Path(path)
    raw = _read_yaml(path)
    try:
        return KnowledgeBase.model_validate(raw)
    except ValidationError as error:
        raise KnowledgeBaseError(f"{path}: {_describe(error, raw)}") from None


def _read_yaml(path: Path) -> Any:
    try:
        text = _read_text(path)
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or "not UTF-8 text"
        raise KnowledgeBaseError(f"{path}: cannot read: {reason}") from None
    loader = _YamlLoader(text)  # a safe loader either way
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_nodes(node)
        return loader.construct_document(node)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or "malformed"
        raise KnowledgeBaseError(f"{path}: invalid YAML{where}: {problem}") from None
    except _NodeError as error:
        raise KnowledgeBaseError(f"{path}: {error}") from None
    finally:
        loader.dispose()


def _read_text(path: Path) -> str:
    """The file's text, from a regular file of at most MAX_FILE_BYTES only.

    The type is checked on the opened file (a device such as /dev/zero never ends, and a named
    pipe would block: O_NONBLOCK opens one at once), and one byte more than the cap is read,
    so that a file growing meanwhile cannot slip past the check.
    """
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise KnowledgeBaseError(f"{path}: not a regular file")
        with os.fdopen(descriptor, "rb", closefd=False) as file:
            data = file.read(MAX_FILE_BYTES + 1)
    finally:
        os.close(descriptor)
    if len(data) > MAX_FILE_BYTES:
        raise KnowledgeBaseError(f"{path}: file larger than {MAX_FILE_BYTES} bytes")
    return data.decode("utf-8")


class _NodeError(ValueError):
    """A duplicate key or an alias, found in the YAML node tree before anything is built."""


def _check_nodes(root: yaml.Node) -> None:
    """Refuse duplicate keys (YAML keeps the last one silently) and aliases (one alias of a
    large text costs as much as a copy of it, so a small file could be enormous).

    The libyaml composer gives an alias the very node object of its anchor: a node met
    twice is an alias. Iterative, so that deep nesting costs no Python recursion.
    """
    seen: set[int] = set()
    intents = _mapping_value(root, "intents")
    # (node, intent id or None, path of keys and indexes inside that intent or the file)
    pending: list[tuple[yaml.Node, str | None, tuple[str, ...]]] = [(root, None, ())]
    while pending:
        node, owner, where = pending.pop()
        if id(node) in seen:
            raise _NodeError(_located(owner, where, "aliases (*) are not accepted; write the "
                                      f"text out (anchor at line {node.start_mark.line + 1})"))
        seen.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            children = [(child, _intent_id(child, index), ()) if node is intents
                        else (child, owner, (*where, str(index)))
                        for index, child in enumerate(node.value)]
        elif isinstance(node, yaml.MappingNode):
            children = _children(node, owner, where)
        else:
            continue
        pending += reversed(children)  # depth first in file order: an alias comes second


def _children(node: yaml.MappingNode, owner: str | None, where: tuple[str, ...],
              ) -> list[tuple[yaml.Node, str | None, tuple[str, ...]]]:
    first_of: dict[tuple[str, str], yaml.Node] = {}
    children: list[tuple[yaml.Node, str | None, tuple[str, ...]]] = []
    for key, value in node.value:
        name = str(key.value) if isinstance(key, yaml.ScalarNode) else "?"
        if isinstance(key, yaml.ScalarNode):
            first = first_of.setdefault((key.tag, key.value), key)
            if first is not key:
                raise _NodeError(_located(owner, (*where, name), "duplicate key at line "
                                          f"{key.start_mark.line + 1} (first at line "
                                          f"{first.start_mark.line + 1})"))
        children += [(key, owner, (*where, name)), (value, owner, (*where, name))]
    return children


def _mapping_value(node: yaml.Node, name: str) -> yaml.Node | None:
    """The value node of key `name`, when `node` is a mapping that has it."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == name:
                found: yaml.Node = value
                return found
    return None


def _intent_id(node: yaml.Node, index: int) -> str:
    found = _mapping_value(node, "id")
    return str(found.value) if isinstance(found, yaml.ScalarNode) else f"#{index}"


def _located(owner: str | None, where: tuple[str, ...], problem: str) -> str:
    field = ".".join(where) or "(intent)"
    return (f"intent {owner!r}, field {field!r}: {problem}" if owner is not None
            else f"field {field!r}: {problem}")


def _describe(error: ValidationError, raw: Any) -> str:
    """One line from pydantic's first error: intent id and dotted field instead of indexes."""
    first = error.errors(include_url=False)[0]
    location = [part for part in first["loc"] if part != "[key]"]  # a bad key: its name is enough
    message = first["msg"].removeprefix("Value error, ")
    if isinstance(raw, dict) and location[:1] == ["intents"] and len(location) > 1:
        intent_id = _intent_id_at(raw, location[1])
        field = ".".join(str(part) for part in location[2:]) or "(intent)"
        return f"intent {intent_id!r}, field {field!r}: {message}"
    field = ".".join(str(part) for part in location)
    return f"field {field!r}: {message}" if field else message


def _intent_id_at(raw: dict[str, Any], index: Any) -> str:
    intents = raw.get("intents")
    if isinstance(intents, list) and isinstance(index, int) and index < len(intents):
        entry = intents[index]
        if isinstance(entry, dict) and isinstance(entry.get("id"), str):
            return str(entry["id"])
    return f"#{index}"
