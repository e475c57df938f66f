"""What the studio remembers: sessions with their pending draft, dismissed questions, and the
bots and evaluations of each knowledge-base version it has seen.

A draft is the edited YAML text, kept in memory per session until it is saved or discarded,
with the text of the file it was made from (a save is refused if the file changed since). The
dismissed questions are the one thing the studio writes besides the knowledge base: a small
JSON file beside the question log (`<log>.dismissed.json`, a list of normalised texts).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import sqlite3
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from bots.studio.texts import DEFAULT_LANGUAGE
from core import FAQBot, KnowledgeBase
from core.cache import default_cache_dir, trained_classifier
from core.evaluation import EvaluationReport, cross_validate
from core.kbedit import content_hash, read_text, validate, write_atomically
from core.questionlog.factory import describe, is_postgres_url, open_store_for_reading
from core.questionlog.interface import LoggedQuestion, QuestionLogError, default_db_path
from core.text import normalize

KEPT_VERSIONS = 4  # bots and evaluations kept in memory (the file, the draft, recent ones)
ValueT = TypeVar("ValueT")


@dataclass
class Draft:
    """Pending changes: the file's text they were made from, the edited text, what was done."""

    base_text: str
    text: str
    changes: list[str] = field(default_factory=list)

    @property
    def base_hash(self) -> str:
        """The hash a save compares with the file's, to refuse if it changed meanwhile."""
        return content_hash(self.base_text)


@dataclass
class Session:
    """One browser's session (created by the access token)."""

    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    lang: str = DEFAULT_LANGUAGE
    draft: Draft | None = None
    notices: list[tuple[str, str]] = field(default_factory=list)  # (level, text) to show once

    def notify(self, level: str, text: str) -> None:
        """Show a message on the next page ("ok" or "error")."""
        self.notices.append((level, text))

    def take_notices(self) -> list[tuple[str, str]]:
        """The messages to show now (then forgotten)."""
        notices, self.notices = self.notices, []
        return notices


class DismissedQuestions:
    """Normalised texts of the questions a curator dismissed, in a JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> set[str]:
        """The dismissed texts (none if the file is missing or unreadable)."""
        try:
            return set(json.loads(self.path.read_text(encoding="utf-8"))["dismissed"])
        except (OSError, ValueError, KeyError, TypeError):
            return set()

    def add(self, texts: list[str]) -> int:
        """Remember more texts; returns how many were new."""
        known = self.load()
        new = {normalize(text) for text in texts} - known - {""}
        if new:
            content = json.dumps({"dismissed": sorted(known | new)}, ensure_ascii=False,
                                 indent=1)
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not self.path.exists():
                self.path.touch(mode=0o600)
            write_atomically(self.path, content + "\n", self.path)
        return len(new)


class Versions:
    """The bot and the evaluation of each knowledge-base text, computed once (off the event
    loop) and kept for the last few texts."""

    def __init__(self, kb_path: Path) -> None:
        self.kb_path = kb_path
        self._bots: OrderedDict[str, FAQBot] = OrderedDict()
        self._evaluations: OrderedDict[str, EvaluationReport] = OrderedDict()
        self._lock = asyncio.Lock()

    async def bot(self, text: str) -> FAQBot:
        """The bot trained on this text (KnowledgeBaseError if it does not validate)."""
        return await self._cached(self._bots, text, self._train)

    async def evaluation(self, text: str) -> EvaluationReport:
        """`faqbot evaluate`'s report on this text."""
        return await self._cached(self._evaluations, text,
                                  lambda text: cross_validate(self.kb(text)))

    def kb(self, text: str) -> KnowledgeBase:
        """The validated knowledge base in this text."""
        return validate(text, self.kb_path)

    def _train(self, text: str) -> FAQBot:
        kb = self.kb(text)
        return FAQBot(kb, trained_classifier(kb, default_cache_dir()))

    async def _cached(self, cache: OrderedDict[str, ValueT], text: str,
                      compute: Callable[[str], ValueT]) -> ValueT:
        key = content_hash(text)
        async with self._lock:  # one computation at a time: the machine may be small
            if key not in cache:
                cache[key] = await asyncio.to_thread(compute, text)
                while len(cache) > KEPT_VERSIONS:
                    cache.popitem(last=False)
            cache.move_to_end(key)
            return cache[key]


class Studio:
    """Everything the studio's pages share."""

    def __init__(self, kb_path: Path, db: str | Path, token: str) -> None:
        self.kb_path = kb_path
        self.db = db
        self.token = token
        self.sessions: dict[str, Session] = {}
        self.dismissed = DismissedQuestions(dismissed_file(db))
        self.versions = Versions(kb_path)

    def new_session(self) -> str:
        """Open a session; returns its id (the cookie's value)."""
        session_id = secrets.token_urlsafe(32)
        self.sessions[session_id] = Session()
        return session_id

    def file_text(self) -> str:
        """The knowledge-base file as it is on disk now."""
        return read_text(self.kb_path)

    def working_text(self, session: Session) -> str:
        """The text the curator works on: the draft, else the file."""
        return session.draft.text if session.draft else self.file_text()

    def base_hash(self, session: Session) -> str:
        """The hash of the file the session's pages are built on."""
        return session.draft.base_hash if session.draft else content_hash(self.file_text())

    async def logged_questions(self, since: datetime | None) -> list[LoggedQuestion]:
        """The question log's entries since `since` (QuestionLogError naming the problem)."""
        return await asyncio.to_thread(_read_log, self.db, since)


def dismissed_file(db: str | Path) -> Path:
    """Where the dismissed questions of a log are kept: beside a SQLite file; for a PostgreSQL
    log, in the user's data directory, one file per database (named by a hash of its URL
    without the password), so that two deployments never share one."""
    if not is_postgres_url(db):
        path = Path(db)
        return path.with_name(path.name + ".dismissed.json")
    name = hashlib.sha256(describe(db).encode()).hexdigest()[:16]
    return default_db_path().with_name(f"studio-dismissed-{name}.json")


def _read_log(db: str | Path, since: datetime | None) -> list[LoggedQuestion]:
    log = open_store_for_reading(db)
    try:
        return log.entries(since)
    except sqlite3.Error as error:
        raise QuestionLogError(f"{describe(db)}: cannot read the question log: {error}") from None
    finally:
        log.close()
