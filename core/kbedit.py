"""Editing a knowledge-base file the way a curator would: only what changed is rewritten.

faqbot studio edits the YAML file people also edit by hand, so an edit must keep their
comments, key order, quoting and line layout. `KbDraft` loads the text with ruamel.yaml's
round-trip loader and applies edits to that document; `KbDraft.text` then keeps the original
lines of every top-level entry and every intent whose content did not change, and takes
ruamel.yaml's rendering (comments and quoting kept) for the ones that did. `validate` checks a
text exactly as `faqbot validate` does, and `save` writes it atomically, keeping the previous
version beside the file, and refuses when the file changed since the draft was made from it.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, ScalarString

from core.errors import FaqbotError, KnowledgeBaseError
from core.knowledge import KnowledgeBase, load_knowledge_base
from core.text import normalize

PREVIOUS_SUFFIX = ".prev"
_FastLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# `intents:` followed (after comments) by its first item: the file's sequence indentation.
_SEQUENCE_LAYOUT = re.compile(r"^intents:[ \t]*\n(?:[ \t]*(?:#.*)?\n)*( *)- ", re.MULTILINE)


class StaleFileError(FaqbotError):
    """The file changed on disk after the draft was made from it."""


def content_hash(text: str) -> str:
    """The SHA-256 of a text: what the studio carries in its forms to detect a stale file."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class IntentFields:
    """What the studio's intent form edits."""

    kind: str
    question: dict[str, str]
    answer: dict[str, str]
    examples: dict[str, list[str]]
    related: list[str]


class KbDraft:
    """A knowledge-base text and the edits made to it (kept in a round-trip document)."""

    def __init__(self, text: str) -> None:
        self.original = text
        self._yaml = _round_trip_yaml(text)
        self._doc: CommentedMap = self._yaml.load(text)

    # -- edits --------------------------------------------------------------------------------

    def add_examples(self, owner: str | None, lang: str, texts: list[str]) -> int:
        """Add texts as examples of an intent (None: out_of_scope); those the owner already
        holds are left out. Returns how many were added."""
        if owner is None:
            by_lang = self._doc.setdefault("out_of_scope", CommentedMap())
        else:
            by_lang = self._intent(owner).setdefault("examples", CommentedMap())
        examples = by_lang.setdefault(lang, CommentedSeq())
        held = {normalize(str(text)) for text in examples}
        if owner is not None:
            held |= {normalize(str(text)) for text in self._intent(owner)["question"].values()}
        added = 0
        for text in texts:
            if normalize(text) and normalize(text) not in held:
                examples.append(DoubleQuotedScalarString(text))
                held.add(normalize(text))
                added += 1
        return added

    def set_intent(self, intent_id: str, fields: IntentFields, *, create: bool = False) -> None:
        """Update an intent's fields in place (keeping the style of each value), or append a
        new intent with `create`."""
        if create:
            intent = CommentedMap(id=intent_id)
            self._doc["intents"].append(intent)
        else:
            intent = self._intent(intent_id)
        if fields.kind != intent.get("kind", "faq"):
            intent["kind"] = fields.kind
        for name in ("question", "answer"):
            texts = intent.setdefault(name, _flow_map())
            for lang, text in getattr(fields, name).items():
                _set_text(texts, lang, text)
        examples = intent.setdefault("examples", CommentedMap())
        for lang, new in fields.examples.items():
            _set_list(examples, lang, new)
        if fields.related or "related" in intent:
            _set_list(intent, "related", fields.related, flow=True)

    def set_out_of_scope(self, examples: dict[str, list[str]]) -> None:
        """Make the out-of-scope examples of each language given exactly these."""
        by_lang = self._doc.setdefault("out_of_scope", CommentedMap())
        for lang, texts in examples.items():
            _set_list(by_lang, lang, texts)

    def delete_intent(self, intent_id: str) -> None:
        """Remove an intent, and every mention of it in other intents' related lists."""
        intents = self._doc["intents"]
        intents.remove(self._intent(intent_id))
        for intent in intents:
            related = intent.get("related")
            if related is not None and intent_id in related:
                related.remove(intent_id)

    def _intent(self, intent_id: str) -> CommentedMap:
        for intent in self._doc.get("intents") or []:
            if isinstance(intent, CommentedMap) and intent.get("id") == intent_id:
                return intent
        raise KnowledgeBaseError(f"no intent has id {intent_id!r}")

    # -- text ---------------------------------------------------------------------------------

    def text(self) -> str:
        """The edited file: unchanged entries keep their original lines."""
        rendered = self._dump()
        spliced = _splice(self.original, rendered, self._yaml)
        if _load(spliced) == _load(rendered):
            return spliced
        return rendered  # a layout the splice cannot follow: ruamel.yaml's rendering alone

    def _dump(self) -> str:
        out = io.StringIO()
        self._yaml.dump(self._doc, out)
        return out.getvalue()


def _load(text: str) -> Any:
    return yaml.load(text, Loader=_FastLoader)  # a safe loader either way


def _round_trip_yaml(text: str) -> YAML:
    """A round-trip loader and dumper that keeps quotes and long lines, indenting sequences
    the way the file does."""
    round_trip = YAML()
    round_trip.preserve_quotes = True
    round_trip.width = 4096
    layout = _SEQUENCE_LAYOUT.search(text)
    offset = len(layout.group(1)) if layout else 2
    round_trip.indent(mapping=2, sequence=offset + 2, offset=offset)
    return round_trip


def _flow_map() -> CommentedMap:
    texts = CommentedMap()
    texts.fa.set_flow_style()
    return texts


def _set_text(parent: CommentedMap, key: str, text: str) -> None:
    """Set a string, in the quoting style of the value it replaces (double quotes if new)."""
    old = parent.get(key)
    if old == text:
        return
    parent[key] = type(old)(text) if isinstance(old, ScalarString) else (
        text if isinstance(old, str) else DoubleQuotedScalarString(text))


def _set_list(parent: CommentedMap, key: str, new: list[str], *, flow: bool = False) -> None:
    """Make parent[key] hold `new`, changing the existing sequence item by item so that its
    style and comments stay where they were."""
    items = parent.get(key)
    if not isinstance(items, CommentedSeq):
        items = CommentedSeq()
        if flow:
            items.fa.set_flow_style()
        parent[key] = items
    for index, text in enumerate(new):
        if index < len(items):
            _set_text_at(items, index, text)
        else:
            items.append(DoubleQuotedScalarString(text))
    del items[len(new):]


def _set_text_at(items: CommentedSeq, index: int, text: str) -> None:
    old = items[index]
    if old != text:
        items[index] = type(old)(text) if isinstance(old, ScalarString) else (
            DoubleQuotedScalarString(text))


# -- splicing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Node:
    """A node of a parsed text and the lines it spans (its key line and comments included)."""

    lines: list[str]  # the whole text's
    value: Any
    start: int
    end: int

    @classmethod
    def root(cls, text: str, round_trip: YAML) -> _Node:
        lines = text.splitlines(keepends=True)
        return cls(lines, round_trip.load(text), 0, len(lines))

    def text(self) -> list[str]:
        return self.lines[self.start:self.end]

    def parts(self) -> dict[str, _Node]:
        """The children of a block-style mapping or sequence, each spanning up to the next
        one; none for a scalar or a flow-style collection (kept whole)."""
        value = self.value
        if isinstance(value, CommentedMap) and not value.fa.flow_style():
            starts = [(str(key), value[key], value.lc.key(key)[0]) for key in value]
        elif isinstance(value, CommentedSeq) and not value.fa.flow_style():
            starts = [(_item_name(item, index), item, value.lc.item(index)[0])
                      for index, item in enumerate(value)]
        else:
            return {}
        if not starts:
            return {}
        ends = [start for _, _, start in starts[1:]] + [self.end]
        return {name: _Node(self.lines, child, start, end)
                for (name, child, start), end in zip(starts, ends, strict=True)}


def _splice(original: str, rendered: str, round_trip: YAML) -> str:
    """`rendered`, with the original lines of every part whose content is unchanged."""
    return "".join(_merge(_Node.root(original, round_trip), _Node.root(rendered, round_trip)))


def _merge(old: _Node, new: _Node) -> list[str]:
    """The lines of a node: the original ones if its content did not change; else, for a
    block mapping or sequence, its parts merged one by one; else the rendered ones."""
    if _plain(old.value) == _plain(new.value):
        return old.text()
    old_parts, new_parts = old.parts(), new.parts()
    if not old_parts or not new_parts:
        return new.text()
    # The key line and the comments above the first part, then each part.
    lines = old.lines[old.start:next(iter(old_parts.values())).start]
    for name, part in new_parts.items():
        lines += _merge(old_parts[name], part) if name in old_parts else part.text()
    return lines


def _item_name(item: Any, index: int) -> str:
    """Intents are matched by id (they may be added or deleted), other items by position."""
    if isinstance(item, CommentedMap) and "id" in item:
        return f"id {item['id']}"
    return f"#{index}"


def _plain(value: Any) -> Any:
    """A round-trip value as plain Python data, for comparison."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, str):
        return str(value)
    return value


# -- validation and saving ----------------------------------------------------------------------


def validate(text: str, path: Path) -> KnowledgeBase:
    """The knowledge base in `text`, checked exactly as `faqbot validate` checks `path`; a
    KnowledgeBaseError names `path` and carries the same wording."""
    with tempfile.TemporaryDirectory(prefix="faqbot-kbedit-") as directory:
        candidate = Path(directory) / path.name
        candidate.write_text(text, encoding="utf-8")
        try:
            return load_knowledge_base(candidate)
        except KnowledgeBaseError as error:
            raise KnowledgeBaseError(str(error).replace(str(candidate), str(path))) from None


def read_text(path: Path) -> str:
    """The file's text (KnowledgeBaseError if it cannot be read)."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or "not UTF-8 text"
        raise KnowledgeBaseError(f"{path}: cannot read: {reason}") from None


def save(path: Path, text: str, expected_hash: str) -> Path:
    """Validate `text`, then write it to `path` atomically (temporary file, then rename),
    the version it replaces kept as `path` + PREVIOUS_SUFFIX (returned).

    StaleFileError when the file's content no longer has `expected_hash`; KnowledgeBaseError
    when `text` does not validate. Either way nothing is written.
    """
    current = read_text(path)
    if content_hash(current) != expected_hash:
        raise StaleFileError(f"{path}: the file changed on disk since this draft was made "
                             "from it; nothing was saved")
    validate(text, path)
    previous = path.with_name(path.name + PREVIOUS_SUFFIX)
    write_atomically(previous, current, path)
    write_atomically(path, text, path)
    return previous


def write_atomically(target: Path, text: str, like: Path) -> None:
    """Write a temporary file beside `target` with the permissions of `like`, flush it to
    disk, then rename it over `target`: readers see the old file or the new one, never half."""
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        Path(temporary).chmod(like.stat().st_mode & 0o777)
        Path(temporary).replace(target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
