"""The question log: one row per question the bot was asked, for the curators' loop.

`faqbot review` and `faqbot stats` read it; `faqbot run` writes it. Chat and user ids are never
stored: they become keyed hashes (HMAC-SHA256 with a random salt kept in the database), so the
questions of one person group together without naming them, and the hashes of two databases
cannot be matched. `SQLiteQuestionLog` is the storage (SQLite in WAL mode, a schema upgraded in
place by numbered migrations); `BackgroundQuestionLog` puts it on a thread of its own, so that
recording never makes a reply wait for the disk and a failing database never breaks one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import queue
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

from core.errors import FaqbotError

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 2
# The choice recorded when a user answers a clarification with "none of these"; the dash keeps
# it apart from every intent id.
NONE_OF_THESE = "-none-"
# A click is taken as the answer to a clarification shown at most this long before.
CHOICE_WINDOW = timedelta(hours=1)
DAY_SECONDS = 86_400.0

# Each version's statements, applied in order to bring a database from the previous version.
# A new database runs them all, so that every database, new or upgraded, is built the same way.
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE questions (
               id INTEGER PRIMARY KEY,
               at REAL NOT NULL,
               platform TEXT NOT NULL,
               chat TEXT NOT NULL,
               user TEXT NOT NULL,
               lang TEXT NOT NULL,
               question TEXT,
               kind TEXT NOT NULL,
               intent TEXT,
               confidence REAL NOT NULL,
               suggestions TEXT NOT NULL DEFAULT '[]')""",
        "CREATE INDEX questions_at ON questions (at)",
    ),
    # Version 2 records what a user chose after a clarification, and how long a reply took.
    2: (
        "ALTER TABLE questions ADD COLUMN choice TEXT",
        "ALTER TABLE questions ADD COLUMN latency_ms REAL NOT NULL DEFAULT 0",
        "CREATE INDEX questions_asker ON questions (platform, chat, user, kind)",
    ),
}


class QuestionLogError(FaqbotError):
    """The question log cannot be opened (missing, unreadable, from a newer faqbot)."""


class OutdatedSchemaError(QuestionLogError):
    """A read-only opening met an older schema, which only a writer can upgrade."""


@dataclass(frozen=True)
class LoggedQuestion:
    """One question and what the bot did with it; `chat` and `user` are pseudonyms."""

    at: datetime
    platform: str
    chat: str
    user: str
    lang: str
    question: str | None  # None when FAQBOT_LOG_TEXT=0
    kind: str
    intent: str | None
    confidence: float
    suggestions: tuple[str, ...] = ()
    latency_ms: float = 0.0
    choice: str | None = None  # after a clarify: an intent id or NONE_OF_THESE


class QuestionLog(Protocol):
    """What the service needs of a question log; SQLite is the one implementation."""

    def pseudonym(self, platform: str, raw_id: int | str | None) -> str:
        """A stable keyed hash of a platform id: the only form an id is stored in."""
        ...

    def record(self, entry: LoggedQuestion) -> None:
        """Add one question."""
        ...

    def record_choice(self, platform: str, chat: str, user: str, choice: str,
                      at: datetime) -> None:
        """Attach a choice to the latest open clarification of that chat and user."""
        ...

    def entries(self, since: datetime | None = None) -> list[LoggedQuestion]:
        """The questions asked at or after `since` (all when None), oldest first."""
        ...

    def purge(self, older_than_days: int) -> None:
        """Delete the questions older than that many days."""
        ...

    def close(self) -> None:
        """Finish pending work and release the database."""
        ...


class QuestionLogStore(QuestionLog, Protocol):
    """A storage `BackgroundQuestionLog` writes through: SQLite here, PostgreSQL in
    core/questionlog_pg.py."""

    def record_many(self, entries: list[LoggedQuestion]) -> None:
        """Add questions in one transaction: all of them, or none on error."""
        ...


def keyed_pseudonym(key: bytes, platform: str, raw_id: int | str | None) -> str:
    """16 hex digits of HMAC-SHA256(key, "platform:id"); empty for a missing id."""
    if raw_id is None:
        return ""
    return hmac.new(key, f"{platform}:{raw_id}".encode(), hashlib.sha256).hexdigest()[:16]


def default_db_path() -> Path:
    """The question log in the user's data directory (e.g. ~/.local/share/faqbot)."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("faqbot")) / "questions.sqlite3"


class SQLiteQuestionLog:
    """The question log in one SQLite file; safe to share between threads and processes.

    With `create`, a missing file is created (mode 0600, in a 0700 directory). `read_only`
    opens it for reading only (review and stats); an older schema is then refused, since
    upgrading it needs write access. Every method may raise `sqlite3.Error`; callers that must
    not fail use `BackgroundQuestionLog`.
    """

    def __init__(self, path: Path | str, *, create: bool = True, read_only: bool = False,
                 busy_timeout: float = 5.0) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        if not self.path.exists() and (read_only or not create):
            raise QuestionLogError(f"{self.path}: no question log (nothing recorded yet)")
        try:
            if not read_only:
                _create_private(self.path)
            self._connection = _connect(self.path, read_only, busy_timeout)
            self._prepare(read_only)
            self._salt = bytes.fromhex(self._meta("salt") or "")
        except (sqlite3.Error, OSError, ValueError) as error:
            raise QuestionLogError(f"{self.path}: cannot open the question log: {error}") \
                from None
        except QuestionLogError:
            self._connection.close()
            raise

    # -- schema ---------------------------------------------------------------------------

    def _prepare(self, read_only: bool) -> None:
        """Check the schema version; when writing, apply the missing migrations and make the
        salt."""
        if read_only:
            self._check_version(self._version(), upgradable=False)
            return
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.execute("PRAGMA synchronous=NORMAL")
        with self._transaction():  # IMMEDIATE: two processes opening at once take turns
            version = self._version()
            self._check_version(version, upgradable=True)
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[target]:
                    self._connection.execute(statement)
                logger.info("question log %s: schema upgraded to version %d", self.path, target)
            self._set_meta("schema_version", str(SCHEMA_VERSION))
            if self._meta("salt") is None:
                self._set_meta("salt", secrets.token_hex(32))

    def _check_version(self, version: int, *, upgradable: bool) -> None:
        if version > SCHEMA_VERSION:
            raise QuestionLogError(f"{self.path}: schema version {version} comes from a newer "
                                   "faqbot")
        if version < SCHEMA_VERSION and not upgradable:
            raise OutdatedSchemaError(f"{self.path}: schema version {version} is older than "
                                      f"{SCHEMA_VERSION}; opening it for writing upgrades it")

    def _version(self) -> int:
        has_meta = self._connection.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone()
        return int(self._meta("schema_version") or 0) if has_meta else 0

    def _meta(self, key: str) -> str | None:
        row = self._connection.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def _set_meta(self, key: str, value: str) -> None:
        self._connection.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                                 (key, value))

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._connection.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._connection.execute("ROLLBACK")
            raise
        self._connection.execute("COMMIT")

    # -- the QuestionLog interface ------------------------------------------------------------

    def pseudonym(self, platform: str, raw_id: int | str | None) -> str:
        """16 hex digits of HMAC-SHA256(salt, "platform:id"); empty for a missing id."""
        return keyed_pseudonym(self._salt, platform, raw_id)

    def record(self, entry: LoggedQuestion) -> None:
        """Insert one question."""
        self.record_many([entry])

    def record_many(self, entries: list[LoggedQuestion]) -> None:
        """Insert questions in one transaction: all of them, or none on error."""
        rows = [(entry.at.timestamp(), entry.platform, entry.chat, entry.user, entry.lang,
                 entry.question, entry.kind, entry.intent, entry.confidence,
                 json.dumps(list(entry.suggestions)), entry.choice, entry.latency_ms)
                for entry in entries]
        with self._lock, self._transaction():
            self._connection.executemany(
                "INSERT INTO questions (at, platform, chat, user, lang, question, kind, intent, "
                "confidence, suggestions, choice, latency_ms) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def record_choice(self, platform: str, chat: str, user: str, choice: str,
                      at: datetime) -> None:
        """Attach `choice` to the latest open clarification of this chat and user that offered
        it (any clarification for NONE_OF_THESE), if one was shown within CHOICE_WINDOW."""
        since = (at - CHOICE_WINDOW).timestamp()
        with self._lock:
            rows = self._connection.execute(
                "SELECT id, suggestions FROM questions WHERE platform = ? AND chat = ? "
                "AND user = ? AND kind = 'clarify' AND choice IS NULL AND at >= ? "
                "ORDER BY id DESC LIMIT 10", (platform, chat, user, since)).fetchall()
            for row_id, suggestions in rows:
                if choice == NONE_OF_THESE or choice in json.loads(suggestions):
                    self._connection.execute("UPDATE questions SET choice = ? WHERE id = ?",
                                             (choice, row_id))
                    return

    def entries(self, since: datetime | None = None) -> list[LoggedQuestion]:
        """The questions asked at or after `since`, oldest first."""
        start = since.timestamp() if since else float("-inf")
        with self._lock:
            rows = self._connection.execute(
                "SELECT at, platform, chat, user, lang, question, kind, intent, confidence, "
                "suggestions, latency_ms, choice FROM questions WHERE at >= ? ORDER BY id",
                (start,)).fetchall()
        return [_entry(row) for row in rows]

    def purge(self, older_than_days: int) -> None:
        """Delete the questions asked more than `older_than_days` days ago."""
        cutoff = time.time() - older_than_days * DAY_SECONDS
        with self._lock:
            removed = self._connection.execute("DELETE FROM questions WHERE at < ?",
                                               (cutoff,)).rowcount
        if removed:
            logger.info("question log: removed %d questions older than %d days", removed,
                        older_than_days)

    def close(self) -> None:
        """Close the connection (the last one to close folds the WAL back into the file)."""
        with self._lock:
            self._connection.close()


def _create_private(path: Path) -> None:
    """Create the file readable by its owner only, before SQLite opens it."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))


def _connect(path: Path, read_only: bool, busy_timeout: float) -> sqlite3.Connection:
    # Autocommit (isolation_level=None): each insert is its own short transaction, and
    # migrations open theirs explicitly. The lock in SQLiteQuestionLog serialises threads.
    target = f"file:{quote(str(path.resolve()))}?mode=ro" if read_only else str(path)
    return sqlite3.connect(target, timeout=busy_timeout, isolation_level=None,
                           check_same_thread=False, uri=read_only)


def _entry(row: tuple[object, ...]) -> LoggedQuestion:
    (at, platform, chat, user, lang, question, kind, intent, confidence, suggestions,
     latency_ms, choice) = row
    return LoggedQuestion(
        at=datetime.fromtimestamp(float(str(at)), UTC), platform=str(platform), chat=str(chat),
        user=str(user), lang=str(lang), question=None if question is None else str(question),
        kind=str(kind), intent=None if intent is None else str(intent),
        confidence=float(str(confidence)), suggestions=tuple(json.loads(str(suggestions))),
        latency_ms=float(str(latency_ms)), choice=None if choice is None else str(choice))


def open_for_reading(path: Path | str) -> SQLiteQuestionLog:
    """The log opened read-only; an older schema is upgraded first (that needs write access)."""
    try:
        return SQLiteQuestionLog(path, read_only=True)
    except OutdatedSchemaError:
        SQLiteQuestionLog(path, create=False).close()
    return SQLiteQuestionLog(path, read_only=True)


# ---------------------------------------------------------------------------------------------
# Writing off the caller's thread


_Task = Callable[[], None]
# What the writer's queue holds: a question to insert, another write, or None to stop.
_Queued = LoggedQuestion | _Task | None
# The writer thread waits this long after a first write arrives, then does everything queued
# by then at once, the questions in one transaction: during a burst the thread wakes (and takes
# Python's global lock from the event loop) once per pause instead of once per question.
WRITE_PAUSE = 0.02


@dataclass
class _FailureReport:
    """Counts failed writes and logs them at most once a minute, so a broken disk cannot
    flood the logs with one line per question."""

    interval: float = 60.0
    count: int = 0
    unreported: int = 0
    last_logged: float = field(default=float("-inf"))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, problem: str) -> None:
        with self.lock:
            self.count += 1
            self.unreported += 1
            now = time.monotonic()
            if now - self.last_logged < self.interval:
                return
            self.last_logged, unreported, self.unreported = now, self.unreported, 0
        logger.error("question log: %d write(s) lost (%s); the bot keeps answering",
                     unreported, problem)


class BackgroundQuestionLog:
    """A question log whose writes run on one thread of its own, through a bounded queue.

    `record`, `record_choice` and `purge` return at once. A full queue or a database error
    (locked, read-only, disk full) loses that write only: it is counted (`failures`, and
    `on_failure` for metrics) and logged, and the next writes are tried as usual. With
    `retention_days`, questions older than that are purged at start and then daily.
    """

    def __init__(self, store: QuestionLogStore, *, retention_days: int | None = None,
                 on_failure: Callable[[], None] | None = None, capacity: int = 10_000) -> None:
        self.store = store
        self.retention_days = retention_days
        self._on_failure = on_failure
        self._failures = _FailureReport()
        self._tasks: queue.Queue[_Queued] = queue.Queue(maxsize=capacity)
        self._thread = threading.Thread(target=self._work, name="faqbot-question-log",
                                        daemon=True)
        self._thread.start()

    @property
    def failures(self) -> int:
        """Writes lost so far."""
        return self._failures.count

    def pseudonym(self, platform: str, raw_id: int | str | None) -> str:
        """The store's pseudonym (computed here: it needs no database access)."""
        return self.store.pseudonym(platform, raw_id)

    def record(self, entry: LoggedQuestion) -> None:
        """Queue the insertion of one question."""
        self._submit(entry)

    def record_choice(self, platform: str, chat: str, user: str, choice: str,
                      at: datetime) -> None:
        """Queue a clarification choice (after the question it answers: one queue, in order)."""
        self._submit(partial(self.store.record_choice, platform, chat, user, choice, at))

    def purge(self, older_than_days: int) -> None:
        """Queue a purge."""
        self._submit(partial(self.store.purge, older_than_days))

    def entries(self, since: datetime | None = None) -> list[LoggedQuestion]:
        """The stored questions, once every write queued so far is done."""
        self.flush()
        return self.store.entries(since)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every write queued so far is done; False on timeout."""
        done = threading.Event()
        try:
            self._tasks.put(done.set, timeout=timeout)
        except queue.Full:
            return False
        return done.wait(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Finish the queued writes (waiting up to `timeout` seconds), then close the store."""
        try:
            self._tasks.put(None, timeout=timeout)
        except queue.Full:
            logger.error("question log: writer stuck; %d queued writes are lost",
                         self._tasks.qsize())
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self.store.close()

    def _submit(self, task: LoggedQuestion | _Task) -> None:
        try:
            self._tasks.put_nowait(task)
        except queue.Full:
            self._failed("queue full")

    def _failed(self, problem: str) -> None:
        self._failures.add(problem)
        if self._on_failure is not None:
            self._on_failure()

    def _work(self) -> None:
        next_purge = time.monotonic()
        while True:
            if self.retention_days is not None and time.monotonic() >= next_purge:
                self._run(partial(self.store.purge, self.retention_days))
                next_purge = time.monotonic() + DAY_SECONDS
            wait = (None if self.retention_days is None
                    else max(0.0, next_purge - time.monotonic()))
            try:
                first = self._tasks.get(timeout=wait)
            except queue.Empty:
                continue
            time.sleep(WRITE_PAUSE)
            if not self._run_all([first, *self._queued()]):
                return

    def _queued(self) -> list[_Queued]:
        tasks: list[_Queued] = []
        while True:
            try:
                tasks.append(self._tasks.get_nowait())
            except queue.Empty:
                return tasks

    def _run_all(self, tasks: list[_Queued]) -> bool:
        """Run the tasks in order, each run of questions as one insert; False at the stop
        sign (None), after the tasks before it."""
        questions: list[LoggedQuestion] = []
        for task in tasks:
            if isinstance(task, LoggedQuestion):
                questions.append(task)
                continue
            self._insert(questions)
            questions = []
            if task is None:
                return False
            self._run(task)
        self._insert(questions)
        return True

    def _insert(self, questions: list[LoggedQuestion]) -> None:
        """One transaction for all; if it fails, one each, so that only a bad one is lost."""
        if not questions:
            return
        try:
            self.store.record_many(questions)
        except Exception:  # retried one by one just below, where failures are counted
            for question in questions:
                self._run(partial(self.store.record, question))

    def _run(self, task: _Task) -> None:
        try:
            task()
        except Exception as error:  # the writer must outlive any one bad write
            self._failed(f"{type(error).__name__}: {error}")
