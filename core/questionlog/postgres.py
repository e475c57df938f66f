"""The question log in PostgreSQL: one log shared by every `faqbot run` of a deployment.

`PostgresQuestionLog` keeps the promises of `SQLiteQuestionLog` (same interface, same numbered
migrations, same pseudonyms from a key stored once in the database) over a database that
several processes on several machines write at once. Schema upgrades run in one transaction
under an advisory lock, so that processes starting together on an empty or older database take
turns and end with one schema and one key. When the server goes away, each call fails at once
with QuestionLogError (BackgroundQuestionLog counts the lost rows) and the store reconnects by
itself, waiting longer after each failed attempt.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

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
    RawId,
    check_schema_version,
    feedback_row,
    keyed_pseudonym,
    logged_questions,
    question_row,
)

logger = logging.getLogger(__name__)

# The advisory lock held while the schema is checked and upgraded: any fixed number that no
# other application of the database uses ("faqbot" in ASCII).
SCHEMA_LOCK = 0x666171626F74
# After a failed connection attempt the next one waits this long, doubled each time up to the
# maximum: a server that is down costs one attempt per delay, not one per question.
RECONNECT_DELAY = 0.5
RECONNECT_MAX_DELAY = 30.0

# The statements of each version, as in core/questionlog/sqlite.py (`user` is a keyword here).
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE questions (
               id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
               at DOUBLE PRECISION NOT NULL,
               platform TEXT NOT NULL,
               chat TEXT NOT NULL,
               "user" TEXT NOT NULL,
               lang TEXT NOT NULL,
               question TEXT,
               kind TEXT NOT NULL,
               intent TEXT,
               confidence DOUBLE PRECISION NOT NULL,
               suggestions TEXT NOT NULL DEFAULT '[]')""",
        "CREATE INDEX questions_at ON questions (at)",
    ),
    2: (
        "ALTER TABLE questions ADD COLUMN choice TEXT",
        "ALTER TABLE questions ADD COLUMN latency_ms DOUBLE PRECISION NOT NULL DEFAULT 0",
        'CREATE INDEX questions_asker ON questions (platform, chat, "user", kind)',
    ),
    3: (
        "ALTER TABLE questions ADD COLUMN ref TEXT",
        "CREATE INDEX questions_ref ON questions (ref) WHERE ref IS NOT NULL",
        """CREATE TABLE feedback (
               id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
               question BIGINT NOT NULL REFERENCES questions (id),
               at DOUBLE PRECISION NOT NULL,
               "user" TEXT NOT NULL,
               verdict TEXT NOT NULL,
               choice TEXT,
               UNIQUE (question, "user"))""",
    ),
    # Version 4 logs a question once per reference in its chat: a platform update answered
    # again by another process (at least once) is not logged twice.
    4: (
        "DROP INDEX questions_ref",
        "CREATE UNIQUE INDEX questions_ref ON questions (platform, chat, ref) "
        "WHERE ref IS NOT NULL",
    ),
}


def display_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://(malformed URL)"
    user = f"{parts['user']}@" if parts.get("user") else ""
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"postgresql://{user}{parts.get('host', '')}{port}/{parts.get('dbname', '')}"


class PostgresQuestionLog:
    """The question log in a PostgreSQL database; safe to share between threads.

    With `create`, an empty database gets the schema (and a missing key); `read_only` opens
    it for reading (review and stats) and refuses an older schema, as SQLiteQuestionLog does.
    With `key`, pseudonyms are keyed with it and no key is kept in the database (a salt an
    earlier run stored there is deleted), as in SQLiteQuestionLog. Every method raises
    QuestionLogError when the database fails or is unreachable.
    """

    def __init__(self, url: str, *, create: bool = True, read_only: bool = False,
                 key: bytes | None = None, connect_timeout: float = 5.0) -> None:
        self.url = url
        self.name = display_url(url)
        self._read_only = read_only
        self._connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._delay = RECONNECT_DELAY
        self._retry_at = float("-inf")
        self._connection: psycopg.Connection[Any] | None = None
        try:
            with self._session() as connection:
                stored_key = self._prepare(connection, create, outside_key=key is not None)
        except QuestionLogError:
            self.close()
            raise
        self._key = key or bytes.fromhex(stored_key)

    # -- connection ---------------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        # Keepalives: a server that vanished without closing the socket is noticed in seconds.
        return psycopg.connect(self.url, autocommit=True, application_name="faqbot",
                               connect_timeout=max(1, round(self._connect_timeout)),
                               keepalives=1, keepalives_idle=5, keepalives_interval=2,
                               keepalives_count=3,
                               options="-c default_transaction_read_only=on"
                               if self._read_only else None)

    def _connected(self) -> psycopg.Connection[Any]:
        """The open connection, or a new one; fails at once while the reconnection delay runs."""
        if self._connection is not None and not self._connection.closed:
            return self._connection
        now = time.monotonic()
        if now < self._retry_at:
            raise QuestionLogError(f"{self.name}: database unreachable, next attempt in "
                                   f"{self._retry_at - now:.1f} s")
        try:
            self._connection = self._connect()
        except psycopg.Error as error:
            self._retry_at = now + self._delay
            self._delay = min(self._delay * 2, RECONNECT_MAX_DELAY)
            raise QuestionLogError(f"{self.name}: cannot connect: {error}") from None
        if self._delay > RECONNECT_DELAY:
            logger.info("question log %s: connected again", self.name)
        self._delay = RECONNECT_DELAY
        return self._connection

    @contextmanager
    def _session(self) -> Iterator[psycopg.Connection[Any]]:
        """The connection for one call, under the lock. A connection the server dropped is
        closed, so that the next call reconnects; every database error is a QuestionLogError."""
        with self._lock:
            connection = self._connected()
            try:
                yield connection
            except psycopg.Error as error:
                if connection.broken:
                    connection.close()
                raise QuestionLogError(f"{self.name}: {type(error).__name__}: "
                                       f"{str(error).strip()}") from None

    # -- schema -------------------------------------------------------------------------------

    def _prepare(self, connection: psycopg.Connection[Any], create: bool,
                 outside_key: bool) -> str:
        """Check the schema; when writing, apply the missing migrations and make the salt (or,
        when the key comes from outside, delete any salt stored earlier), all in one
        transaction under SCHEMA_LOCK. Returns the stored salt (hex; empty when none)."""
        if self._read_only or not create:
            version = _version(connection)
            if version == 0:
                raise QuestionLogError(f"{self.name}: no question log (nothing recorded yet)")
            check_schema_version(self.name, version, upgradable=not self._read_only)
            if self._read_only:
                return _meta(connection, "salt") or ""
        with connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            version = _version(connection)
            check_schema_version(self.name, version, upgradable=True)
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[target]:
                    connection.execute(statement)
                logger.info("question log %s: schema upgraded to version %d", self.name, target)
            _set_meta(connection, "schema_version", str(SCHEMA_VERSION))
            if outside_key:
                self._forget_salt(connection)
            else:
                connection.execute("INSERT INTO meta (key, value) VALUES ('salt', %s) "
                                   "ON CONFLICT (key) DO NOTHING", (secrets.token_hex(32),))
            return _meta(connection, "salt") or ""

    def _forget_salt(self, connection: psycopg.Connection[Any]) -> None:
        if connection.execute("DELETE FROM meta WHERE key = 'salt'").rowcount:
            logger.warning("question log %s: the pseudonym key now comes from outside; the "
                           "salt stored in the database was deleted", self.name)

    # -- the QuestionLog interface ------------------------------------------------------------

    def pseudonym(self, platform: str, raw_id: RawId) -> str:
        """16 hex digits of HMAC-SHA256(key, "platform:id"); empty for a missing id."""
        return keyed_pseudonym(self._key, platform, raw_id)

    def record(self, entry: LoggedQuestion) -> None:
        """Insert one question."""
        self.record_many([entry])

    def record_many(self, entries: list[LoggedQuestion]) -> None:
        """Insert questions in one transaction: all of them, or none on error; one whose
        reference is logged already in its chat is skipped (QUESTION_INSERT)."""
        rows = [question_row(entry) for entry in entries]
        with self._session() as connection, connection.transaction(), \
                connection.cursor() as cursor:
            cursor.executemany(_pg(QUESTION_INSERT), rows)

    def record_choice(self, platform: str, chat: str, user: str, choice: str,
                      at: datetime) -> None:
        """Attach `choice` to the latest open clarification of this chat and user that offered
        it (any clarification for NONE_OF_THESE), if one was shown within CHOICE_WINDOW."""
        since = (at - CHOICE_WINDOW).timestamp()
        with self._session() as connection, connection.transaction():
            rows = connection.execute(
                'SELECT id, suggestions FROM questions WHERE platform = %s AND chat = %s '
                'AND "user" = %s AND kind = \'clarify\' AND choice IS NULL AND at >= %s '
                "ORDER BY id DESC LIMIT 10 FOR UPDATE", (platform, chat, user, since)).fetchall()
            for row_id, suggestions in rows:
                if choice == NONE_OF_THESE or choice in json.loads(suggestions):
                    connection.execute("UPDATE questions SET choice = %s WHERE id = %s",
                                       (choice, row_id))
                    return

    def record_feedback(self, platform: str, chat: str, question_ref: str,
                        feedback: Feedback) -> None:
        """Attach feedback to the referenced question, as QuestionLog says."""
        with self._session() as connection:
            connection.execute(_pg(FEEDBACK_INSERT),
                               feedback_row(platform, chat, question_ref, feedback))

    def entries(self, since: datetime | None = None) -> list[LoggedQuestion]:
        """The questions asked at or after `since`, oldest first, with their feedback."""
        start = since.timestamp() if since else float("-inf")
        with self._session() as connection:
            rows = connection.execute(_pg(QUESTIONS_SINCE), (start,)).fetchall()
            feedback_rows = connection.execute(_pg(FEEDBACK_SINCE), (start,)).fetchall()
        return logged_questions(rows, feedback_rows)

    def purge(self, older_than_days: int) -> None:
        """Delete the questions asked more than `older_than_days` days ago, and their
        feedback."""
        cutoff = time.time() - older_than_days * DAY_SECONDS
        with self._session() as connection, connection.transaction():
            connection.execute(_pg(PURGE_FEEDBACK), (cutoff,))
            removed = connection.execute(_pg(PURGE_QUESTIONS), (cutoff,)).rowcount
        if removed:
            logger.info("question log: removed %d questions older than %d days", removed,
                        older_than_days)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            if self._connection is not None:
                self._connection.close()
            self._retry_at = float("inf")  # a closed store stays closed


def _version(connection: psycopg.Connection[Any]) -> int:
    has_meta = connection.execute("SELECT to_regclass('meta') IS NOT NULL").fetchone()
    return int(_meta(connection, "schema_version") or 0) if has_meta and has_meta[0] else 0


def _meta(connection: psycopg.Connection[Any], key: str) -> str | None:
    row = connection.execute("SELECT value FROM meta WHERE key = %s", (key,)).fetchone()
    return str(row[0]) if row else None


def _set_meta(connection: psycopg.Connection[Any], key: str, value: str) -> None:
    connection.execute("INSERT INTO meta (key, value) VALUES (%s, %s) "
                       "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value))


def _pg(statement: str) -> str:
    """A statement shared with the SQLite store, with PostgreSQL's placeholders."""
    return statement.replace("?", "%s")
