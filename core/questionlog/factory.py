"""Which question-log store a FAQBOT_DB value names: a path is SQLite, a URL is PostgreSQL.

Every reader and writer of the log opens it here, so that `faqbot run`, `review`, `stats` and
`--export` behave the same on both. The PostgreSQL driver is an extra (`faqbot[postgres]`),
imported only when a URL asks for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core.errors import ConfigurationError
from core.questionlog.interface import OutdatedSchemaError, QuestionLogStore, default_db_path
from core.questionlog.sqlite import SQLiteQuestionLog

URL_SCHEMES = ("postgresql://", "postgres://")
MISSING_DRIVER = ("FAQBOT_DB is a PostgreSQL URL but the PostgreSQL driver is not installed: "
                  "pip install 'faqbot[postgres]'")


def is_postgres_url(db: str | Path) -> bool:
    """True when `db` names a PostgreSQL database rather than a file."""
    return isinstance(db, str) and db.startswith(URL_SCHEMES)


def describe(db: str | Path) -> str:
    """`db` as it may be shown in messages and logs (a URL without its password)."""
    if not is_postgres_url(db):
        return str(db)
    with postgres_driver():
        from core.questionlog.postgres import display_url
    return display_url(str(db))


def open_question_log_store(db: str | Path | None, *, create: bool = True,
                            read_only: bool = False, key: bytes | None = None) -> QuestionLogStore:
    """The store `db` names (None: the SQLite file in the user's data directory); `key`, when
    given, keys the pseudonyms instead of a salt kept in the database (FAQBOT_ID_KEY).

    Raises QuestionLogError when it cannot be opened, ConfigurationError when a URL is given
    and the PostgreSQL driver is missing.
    """
    if db is not None and is_postgres_url(db):
        with postgres_driver():
            from core.questionlog.postgres import PostgresQuestionLog
        return PostgresQuestionLog(str(db), create=create, read_only=read_only, key=key)
    return SQLiteQuestionLog(Path(db or default_db_path()), create=create, read_only=read_only,
                             key=key)


def open_store_for_reading(db: str | Path | None) -> QuestionLogStore:
    """The store opened for reading (review, stats, the studio); an older schema is upgraded
    first (that needs write access)."""
    try:
        return open_question_log_store(db, read_only=True)
    except OutdatedSchemaError:
        open_question_log_store(db, create=False).close()
    return open_question_log_store(db, read_only=True)


@contextmanager
def postgres_driver() -> Iterator[None]:
    """Around an import of the PostgreSQL driver (or of a module that needs it): its absence
    becomes a ConfigurationError naming the extra that brings it."""
    try:
        yield
    except ImportError as error:
        if (error.name or "").partition(".")[0] == "psycopg":
            raise ConfigurationError(MISSING_DRIVER) from None
        raise
