"""The question log in one SQLite file: the embedded default, for one machine.

`SQLiteQuestionLog` keeps the log in WAL mode, with a schema upgraded in place by numbered
migrations and deleted text overwritten. It is safe to share between threads and processes.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

from core.questionlog.interface import (
    CHOICE_WINDOW,
    DAY_SECONDS,
    FEEDBACK_INSERT,
    FEEDBACK_SINCE,
    NONE_OF_THESE,
    PURGE_FEEDBACK,
    PURGE_QUESTIONS,
    QUESTION_INSERT,
    QUESTIONS_SINCE,
    SCHEMA_VERSION,
    Feedback,
    LoggedQuestion,
    QuestionLogError,
    check_schema_version,
    feedback_row,
    keyed_pseudonym,
    logged_questions,
    question_row,
)

logger = logging.getLogger(__name__)

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
    # Version 4 logs a question once per reference in its chat: a platform update answered
    # again by another process (at least once) is not logged twice.
    4: (
        "DROP INDEX questions_ref",
        "CREATE UNIQUE INDEX questions_ref ON questions (platform, chat, ref) "
        "WHERE ref IS NOT NULL",
    ),
}


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
        """Insert questions in one transaction: all of them, or none on error; one whose
        reference is logged already in its chat is skipped (QUESTION_INSERT)."""
        rows = [question_row(entry) for entry in entries]
        with self._lock, self._transaction():
            self._connection.executemany(QUESTION_INSERT, rows)

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

