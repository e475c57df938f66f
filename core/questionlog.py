"""The question log: one row per question the bot was asked, for the curators' loop.

`faqbot review` and `faqbot stats` read it; `faqbot run` writes it, with what users said of the
answers through their feedback buttons (helpful or not, and the topic chosen instead). Chat and
user ids are never stored: they become keyed hashes (HMAC-SHA256), so the questions of one
person group together without naming them. The key is a random salt kept in the database, unless
one is given from outside (FAQBOT_ID_KEY): ids are pseudonymised, not anonymised, since whoever
holds the key can hash every possible id and match. `SQLiteQuestionLog` is the storage (SQLite
in WAL mode, a schema upgraded in place by numbered migrations, deleted text overwritten);
`BackgroundQuestionLog` puts it on a thread of its own, so that recording never makes a reply
wait for the disk, and neither a failing database nor one that cannot be opened ever breaks one.
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
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

from core.errors import FaqbotError

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 3
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
    # Version 3 records what users said of an answer (the feedback buttons): a reference
    # carried by the buttons finds the question, and one row per user and question keeps the
    # verdict and, after "not helpful", the topic chosen instead.
    3: (
        "ALTER TABLE questions ADD COLUMN ref TEXT",
        "CREATE INDEX questions_ref ON questions (ref) WHERE ref IS NOT NULL",
        """CREATE TABLE feedback (
               id INTEGER PRIMARY KEY,
               question INTEGER NOT NULL REFERENCES questions (id),
               at REAL NOT NULL,
               user TEXT NOT NULL,
               verdict TEXT NOT NULL,
               choice TEXT,
               UNIQUE (question, user))""",
    ),
}
HELPFUL = "helpful"
NOT_HELPFUL = "not_helpful"


class QuestionLogError(FaqbotError):
    """The question log cannot be opened (missing, unreadable, from a newer faqbot)."""


class OutdatedSchemaError(QuestionLogError):
    """A read-only opening met an older schema, which only a writer can upgrade."""


@dataclass(frozen=True)
class Feedback:
    """What one user said of an answer with its feedback buttons; `user` is a pseudonym."""

    at: datetime
    user: str
    verdict: str  # HELPFUL or NOT_HELPFUL
    choice: str | None = None  # after NOT_HELPFUL: the intent chosen instead, or NONE_OF_THESE


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
    ref: str | None = None  # the reference its feedback buttons carry (answers only)
    feedback: tuple[Feedback, ...] = ()  # filled when read back, oldest first


# A platform's chat or user id, as the adapters have it (None when the platform gives none).
RawId = int | str | None


class QuestionLog(Protocol):
    """What the service needs of a question log (`BackgroundQuestionLog`). Ids are handed over
    raw; the log keeps only their pseudonyms."""

    def record(self, entry: LoggedQuestion, chat_id: RawId, user_id: RawId) -> None:
        """Add one question; its `chat` and `user` become the pseudonyms of these ids."""
        ...

    def record_choice(self, platform: str, chat_id: RawId, user_id: RawId, choice: str,
                      at: datetime) -> None:
        """Attach a choice to the latest open clarification of that chat and user."""
        ...

    def record_feedback(self, platform: str, chat_id: RawId, user_id: RawId, question_ref: str,
                        feedback: Feedback) -> None:
        """Attach a user's feedback (its `user` becomes the pseudonym of `user_id`) to the
        question of that platform, chat and reference. A user keeps their first verdict; a
        choice is kept once, after NOT_HELPFUL (a choice without a verdict records NOT_HELPFUL
        with it). Nothing happens when the question is gone (retention)."""
        ...


class QuestionLogStore(Protocol):
    """A storage `BackgroundQuestionLog` writes through, and `review` and `stats` read:
    `SQLiteQuestionLog` here, `PostgresQuestionLog` in core/questionlog_pg.py. Chat and user
    are pseudonyms already."""

    def pseudonym(self, platform: str, raw_id: RawId) -> str:
        """The keyed hash an id is stored as."""
        ...

    def record(self, entry: LoggedQuestion) -> None:
        """Add one question."""
        ...

    def record_many(self, entries: list[LoggedQuestion]) -> None:
        """Add questions in one transaction: all of them, or none on error."""
        ...

    def record_choice(self, platform: str, chat: str, user: str, choice: str,
                      at: datetime) -> None:
        """Attach a choice to the latest open clarification of that chat and user."""
        ...

    def record_feedback(self, platform: str, chat: str, question_ref: str,
                        feedback: Feedback) -> None:
        """Attach feedback to the referenced question, as QuestionLog says."""
        ...

    def entries(self, since: datetime | None = None) -> list[LoggedQuestion]:
        """The questions asked at or after `since`, oldest first, with their feedback."""
        ...

    def purge(self, older_than_days: int) -> None:
        """Delete the questions older than that, and their feedback."""
        ...

    def close(self) -> None:
        """Release the database."""
        ...


# The columns of a question as both stores write and read them, in the order of
# `question_row` and `logged_question` ("user" quoted: a keyword in PostgreSQL).
QUESTION_COLUMNS = ('at, platform, chat, "user", lang, question, kind, intent, confidence, '
                    "suggestions, latency_ms, choice, ref")


# Feedback attached to the latest question of that platform, chat and reference: a user's
# first verdict stays, a choice is added once, after NOT_HELPFUL (PostgreSQL runs it with its
# own placeholders).
FEEDBACK_INSERT = ('INSERT INTO feedback (question, at, "user", verdict, choice) '
                   "SELECT id, ?, ?, ?, ? FROM questions WHERE platform = ? AND chat = ? "
                   "AND ref = ? ORDER BY id DESC LIMIT 1 "
                   'ON CONFLICT (question, "user") DO UPDATE SET choice = excluded.choice '
                   "WHERE feedback.choice IS NULL AND feedback.verdict = ?")
# What `entries` and `purge` run, in both stores (PostgreSQL with its own placeholders).
QUESTIONS_SINCE = f"SELECT id, {QUESTION_COLUMNS} FROM questions WHERE at >= ? ORDER BY id"
FEEDBACK_SINCE = ('SELECT feedback.question, feedback.at, feedback."user", verdict, '
                  "feedback.choice FROM feedback JOIN questions ON questions.id = "
                  "feedback.question WHERE questions.at >= ? ORDER BY feedback.id")
PURGE_FEEDBACK = "DELETE FROM feedback WHERE question IN (SELECT id FROM questions WHERE at < ?)"
PURGE_QUESTIONS = "DELETE FROM questions WHERE at < ?"


def feedback_row(platform: str, chat: str, question_ref: str,
                 feedback: Feedback) -> tuple[object, ...]:
    """The values of FEEDBACK_INSERT."""
    return (feedback.at.timestamp(), feedback.user, feedback.verdict, feedback.choice,
            platform, chat, question_ref, NOT_HELPFUL)


def question_row(entry: LoggedQuestion) -> tuple[object, ...]:
    """The values of QUESTION_COLUMNS for `entry`."""
    return (entry.at.timestamp(), entry.platform, entry.chat, entry.user, entry.lang,
            entry.question, entry.kind, entry.intent, entry.confidence,
            json.dumps(list(entry.suggestions)), entry.latency_ms, entry.choice, entry.ref)


def keyed_pseudonym(key: bytes, platform: str, raw_id: int | str | None) -> str:
    """16 hex digits of HMAC-SHA256(key, "platform:id"); empty for a missing id."""
    if raw_id is None:
        return ""
    return hmac.new(key, f"{platform}:{raw_id}".encode(), hashlib.sha256).hexdigest()[:16]


def default_db_path() -> Path:
    """The question log in the user's data directory (e.g. ~/.local/share/faqbot)."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("faqbot")) / "questions.sqlite3"


def check_schema_version(name: object, version: int, *, upgradable: bool) -> None:
    """Refuse a log from a newer faqbot, and an older one that cannot be upgraded here (a
    read-only opening); `name` says which log in the message."""
    if version > SCHEMA_VERSION:
        raise QuestionLogError(f"{name}: schema version {version} comes from a newer faqbot")
    if version < SCHEMA_VERSION and not upgradable:
        raise OutdatedSchemaError(f"{name}: schema version {version} is older than "
                                  f"{SCHEMA_VERSION}; opening it for writing upgrades it")


class SQLiteQuestionLog:
    """The question log in one SQLite file; safe to share between threads and processes.

    With `create`, a missing file is created (mode 0600, in a 0700 directory). `read_only`
    opens it for reading only (review and stats); an older schema is then refused, since
    upgrading it needs write access. With `key`, pseudonyms are keyed with it and no key is
    kept in the file (a salt an earlier run stored there is deleted). Every method may raise
    `sqlite3.Error`; callers that must not fail use `BackgroundQuestionLog`.
    """

    def __init__(self, path: Path | str, *, create: bool = True, read_only: bool = False,
                 busy_timeout: float = 5.0, key: bytes | None = None) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        if not self.path.exists() and (read_only or not create):
            raise QuestionLogError(f"{self.path}: no question log (nothing recorded yet)")
        try:
            if not read_only:
                _create_private(self.path)
            self._connection = _connect(self.path, read_only, busy_timeout)
        except (sqlite3.Error, OSError) as error:
            raise QuestionLogError(f"{self.path}: cannot open the question log: {error}") \
                from None
        try:
            self._prepare(read_only, outside_key=key is not None)
            self._salt = key or bytes.fromhex(self._meta("salt") or "")
        except (sqlite3.Error, ValueError) as error:
            self._connection.close()  # a writer retrying to open must not pile connections up
            raise QuestionLogError(f"{self.path}: cannot open the question log: {error}") \
                from None
        except QuestionLogError:
            self._connection.close()
            raise

    # -- schema ---------------------------------------------------------------------------

    def _prepare(self, read_only: bool, outside_key: bool) -> None:
        """Check the schema version; when writing, apply the missing migrations, and make the
        salt (or, when the key comes from outside, delete any salt stored earlier)."""
        if read_only:
            check_schema_version(self.path, self._version(), upgradable=False)
            return
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.execute("PRAGMA synchronous=NORMAL")
        with self._transaction():  # IMMEDIATE: two processes opening at once take turns
            version = self._version()
            check_schema_version(self.path, version, upgradable=True)
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[target]:
                    self._connection.execute(statement)
                logger.info("question log %s: schema upgraded to version %d", self.path, target)
            self._set_meta("schema_version", str(SCHEMA_VERSION))
            if outside_key:
                self._forget_salt()
            elif self._meta("salt") is None:
                self._set_meta("salt", secrets.token_hex(32))

    def _forget_salt(self) -> None:
        if self._connection.execute("DELETE FROM meta WHERE key = 'salt'").rowcount:
            logger.warning("question log %s: the pseudonym key now comes from outside; the "
                           "salt stored in the database was deleted", self.path)

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
        """16 hex digits of HMAC-SHA256(key, "platform:id"); empty for a missing id."""
        return keyed_pseudonym(self._salt, platform, raw_id)

    def record(self, entry: LoggedQuestion) -> None:
        """Insert one question."""
        self.record_many([entry])

    def record_many(self, entries: list[LoggedQuestion]) -> None:
        """Insert questions in one transaction: all of them, or none on error."""
        rows = [question_row(entry) for entry in entries]
        with self._lock, self._transaction():
            self._connection.executemany(
                f"INSERT INTO questions ({QUESTION_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

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

    def record_feedback(self, platform: str, chat: str, question_ref: str,
                        feedback: Feedback) -> None:
        """Attach feedback to the referenced question, as QuestionLog says."""
        with self._lock:
            self._connection.execute(FEEDBACK_INSERT,
                                     feedback_row(platform, chat, question_ref, feedback))

    def entries(self, since: datetime | None = None) -> list[LoggedQuestion]:
        """The questions asked at or after `since`, oldest first, with their feedback."""
        start = since.timestamp() if since else float("-inf")
        with self._lock:
            rows = self._connection.execute(QUESTIONS_SINCE, (start,)).fetchall()
            feedback_rows = self._connection.execute(FEEDBACK_SINCE, (start,)).fetchall()
        return logged_questions(rows, feedback_rows)

    def purge(self, older_than_days: int) -> None:
        """Delete the questions asked more than `older_than_days` days ago, and their
        feedback."""
        cutoff = time.time() - older_than_days * DAY_SECONDS
        with self._lock, self._transaction():
            self._connection.execute(PURGE_FEEDBACK, (cutoff,))
            removed = self._connection.execute(PURGE_QUESTIONS, (cutoff,)).rowcount
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
    connection = sqlite3.connect(target, timeout=busy_timeout, isolation_level=None,
                                 check_same_thread=False, uri=read_only)
    # Deleted rows (retention) are overwritten, not just unlinked, whatever the SQLite build.
    connection.execute("PRAGMA secure_delete=ON")
    return connection


def logged_questions(rows: Sequence[Sequence[object]],
                     feedback_rows: Sequence[Sequence[object]]) -> list[LoggedQuestion]:
    """The questions read back by either store: `rows` are (id, QUESTION_COLUMNS...), and
    `feedback_rows` (question id, at, user, verdict, choice), oldest first."""
    feedback: defaultdict[int, list[Feedback]] = defaultdict(list)
    for question_id, at, user, verdict, choice in feedback_rows:
        feedback[int(str(question_id))].append(Feedback(
            at=datetime.fromtimestamp(float(str(at)), UTC), user=str(user),
            verdict=str(verdict), choice=None if choice is None else str(choice)))
    return [_entry(tuple(row[1:]), tuple(feedback.get(int(str(row[0])), ()))) for row in rows]


def _entry(row: tuple[object, ...], feedback: tuple[Feedback, ...]) -> LoggedQuestion:
    (at, platform, chat, user, lang, question, kind, intent, confidence, suggestions,
     latency_ms, choice, ref) = row
    return LoggedQuestion(
        at=datetime.fromtimestamp(float(str(at)), UTC), platform=str(platform), chat=str(chat),
        user=str(user), lang=str(lang), question=None if question is None else str(question),
        kind=str(kind), intent=None if intent is None else str(intent),
        confidence=float(str(confidence)), suggestions=tuple(json.loads(str(suggestions))),
        latency_ms=float(str(latency_ms)), choice=None if choice is None else str(choice),
        ref=None if ref is None else str(ref), feedback=feedback)


# ---------------------------------------------------------------------------------------------
# Writing off the caller's thread


# A write to run on the writer's thread, with the store.
_Task = Callable[[QuestionLogStore], None]


@dataclass(frozen=True)
class _Asked:
    """A question waiting to be written, with the raw ids its pseudonyms are made from: the
    key is in the store, which may not be open yet when the question is asked."""

    entry: LoggedQuestion
    chat_id: RawId
    user_id: RawId

    def pseudonymised(self, store: QuestionLogStore) -> LoggedQuestion:
        platform = self.entry.platform
        return replace(self.entry, chat=store.pseudonym(platform, self.chat_id),
                       user=store.pseudonym(platform, self.user_id))

    def write(self, store: QuestionLogStore) -> None:
        store.record(self.pseudonymised(store))


# What the writer's queue holds: a question, another write, a flush marker, or None to stop.
_Queued = _Asked | _Task | threading.Event | None
# The writer thread waits this long after a first write arrives, then does everything queued
# by then at once, the questions in one transaction: during a burst the thread wakes (and takes
# Python's global lock from the event loop) once per pause instead of once per question.
WRITE_PAUSE = 0.02
# A store that cannot be opened is tried again after FIRST_REOPEN_DELAY seconds, then after
# twice as long each time, up to MAX_REOPEN_DELAY.
FIRST_REOPEN_DELAY = 0.5
MAX_REOPEN_DELAY = 30.0


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

    `store` is the storage, or a function that opens it. The thread then opens it, and while
    that fails (a database locked by another process, a directory missing) it tries again with a
    growing delay: meanwhile `up` is False, `problem` says why, and each question is lost and
    counted. `record`, `record_choice`, `record_feedback` and `purge` return at once. A full
    queue or a database error (locked, read-only, disk full) loses that write only: it is
    counted (`failures`, and `on_failure` for metrics) and logged, and the next writes are tried
    as usual. With `retention_days`, questions older than that are purged once the store is
    open, then daily.
    """

    def __init__(self, store: QuestionLogStore | Callable[[], QuestionLogStore], *,
                 retention_days: int | None = None, on_failure: Callable[[], None] | None = None,
                 capacity: int = 10_000) -> None:
        self._store = None if callable(store) else store
        self._open_store = store if callable(store) else None
        self._open_error: str | None = None  # why the last attempt to open failed
        self._next_open = 0.0  # time.monotonic() of the next attempt
        self._reopen_delay = FIRST_REOPEN_DELAY
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

    @property
    def up(self) -> bool:
        """True once the store is open (each write may still fail on its own)."""
        return self._store is not None

    def problem(self) -> str | None:
        """Why questions are not being recorded, or None while the store is open."""
        if self._store is not None:
            return None
        return (f"question log not open, trying again ({self._open_error or 'opening'}); "
                f"{self.failures} writes lost so far")

    def record(self, entry: LoggedQuestion, chat_id: RawId, user_id: RawId) -> None:
        """Queue the insertion of one question; `entry.chat` and `entry.user` are replaced
        by the pseudonyms of the ids."""
        self._submit(_Asked(entry, chat_id, user_id))

    def record_choice(self, platform: str, chat_id: RawId, user_id: RawId, choice: str,
                      at: datetime) -> None:
        """Queue a clarification choice (after the question it answers: one queue, in order)."""

        def attach(store: QuestionLogStore) -> None:
            store.record_choice(platform, store.pseudonym(platform, chat_id),
                                store.pseudonym(platform, user_id), choice, at)

        self._submit(attach)

    def record_feedback(self, platform: str, chat_id: RawId, user_id: RawId, question_ref: str,
                        feedback: Feedback) -> None:
        """Queue feedback (after the question it rates: one queue, in order)."""

        def attach(store: QuestionLogStore) -> None:
            store.record_feedback(platform, store.pseudonym(platform, chat_id), question_ref,
                                  replace(feedback, user=store.pseudonym(platform, user_id)))

        self._submit(attach)

    def purge(self, older_than_days: int) -> None:
        """Queue a purge."""
        self._submit(lambda store: store.purge(older_than_days))

    def entries(self, since: datetime | None = None) -> list[LoggedQuestion]:
        """The stored questions, once every write queued so far is done."""
        self.flush()
        if self._store is None:
            raise QuestionLogError(self.problem() or "question log not open")
        return self._store.entries(since)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every write queued so far is done; False on timeout."""
        done = threading.Event()
        try:
            self._tasks.put(done, timeout=timeout)
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
        if not self._thread.is_alive() and self._store is not None:
            self._store.close()

    def _submit(self, task: _Asked | _Task) -> None:
        try:
            self._tasks.put_nowait(task)
        except queue.Full:
            self._failed("queue full")

    def _failed(self, problem: str) -> None:
        self._failures.add(problem)
        if self._on_failure is not None:
            self._on_failure()

    # -- the writer's thread ------------------------------------------------------------------

    def _work(self) -> None:
        next_purge = time.monotonic()
        days = self.retention_days
        while True:
            self._try_to_open()
            if self._store is not None and days is not None and time.monotonic() >= next_purge:
                self._run(lambda store: store.purge(days))
                next_purge = time.monotonic() + DAY_SECONDS
            try:
                first = self._tasks.get(timeout=self._idle_wait(next_purge))
            except queue.Empty:
                continue
            time.sleep(WRITE_PAUSE)
            self._try_to_open()
            if not self._run_all([first, *self._queued()]):
                return

    def _idle_wait(self, next_purge: float) -> float | None:
        """How long the thread may wait for work: until the next attempt to open, or the next
        purge; None (for ever) when there is neither."""
        if self._store is None:
            return max(0.0, self._next_open - time.monotonic())
        if self.retention_days is None:
            return None
        return max(0.0, next_purge - time.monotonic())

    def _try_to_open(self) -> None:
        """Open the store if it is not open and the delay since the last attempt is over."""
        if self._open_store is None or self._store is not None:
            return
        if time.monotonic() < self._next_open:
            return
        try:
            self._store = self._open_store()
        except Exception as error:  # whatever the reason, try again later and keep answering
            if self._open_error is None:
                logger.error("question log: %s; trying again, the questions asked meanwhile "
                             "are lost (counted)", error)
            self._open_error = str(error)
            self._next_open = time.monotonic() + self._reopen_delay
            self._reopen_delay = min(self._reopen_delay * 2, MAX_REOPEN_DELAY)
            return
        if self._open_error is not None:
            logger.warning("question log: open at last; %d writes were lost meanwhile",
                           self.failures)
        self._open_error = None

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
        questions: list[_Asked] = []
        for task in tasks:
            if isinstance(task, _Asked):
                questions.append(task)
                continue
            self._insert(questions)
            questions = []
            if task is None:
                return False
            if isinstance(task, threading.Event):
                task.set()
            else:
                self._run(task)
        self._insert(questions)
        return True

    def _insert(self, questions: list[_Asked]) -> None:
        """One transaction for all; if it fails, one each, so that only a bad one is lost."""
        if not questions:
            return
        store = self._store
        if store is not None:
            try:
                store.record_many([question.pseudonymised(store) for question in questions])
                return
            except Exception:  # retried one by one just below, where failures are counted
                pass
        for question in questions:
            self._run(question.write)

    def _run(self, task: _Task) -> None:
        store = self._store
        if store is None:
            self._failed(self._open_error or "not open")
            return
        try:
            task(store)
        except Exception as error:  # the writer must outlive any one bad write
            self._failed(f"{type(error).__name__}: {error}")
