"""The question log's storage: rows, pseudonyms, choices, retention, migrations, failures."""

from __future__ import annotations

import logging
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from core.config import Settings
from core.questionlog.factory import open_store_for_reading
from core.questionlog.interface import (
    HELPFUL,
    NONE_OF_THESE,
    NOT_HELPFUL,
    SCHEMA_VERSION,
    Feedback,
    LoggedQuestion,
    QuestionLogError,
    QuestionLogStore,
)
from core.questionlog.sqlite import SQLiteQuestionLog
from core.questionlog.writer import BackgroundQuestionLog

NOW = datetime.now(UTC)
CHAT, USER = -100200300, 987654321  # raw ids, as an adapter hands them to the writer


def entry(question: str = "horaires ?", *, at: datetime = NOW, kind: str = "answer",
          chat: str = "c1", user: str = "u1", suggestions: tuple[str, ...] = (),
          platform: str = "telegram") -> LoggedQuestion:
    return LoggedQuestion(at=at, platform=platform, chat=chat, user=user, lang="fr",
                          question=question, kind=kind,
                          intent="opening_hours" if kind == "answer" else None,
                          confidence=0.9, suggestions=suggestions, latency_ms=1.5)


@pytest.fixture
def store(tmp_path: Path) -> SQLiteQuestionLog:
    log = SQLiteQuestionLog(tmp_path / "log" / "questions.sqlite3")
    yield log
    log.close()


def test_rows_read_back_as_written(store: SQLiteQuestionLog) -> None:
    written = [entry("horaires ?", at=NOW - timedelta(days=3)),
               entry("adresse horaires", kind="clarify", suggestions=("opening_hours", "address")),
               entry("", kind="fallback")]
    for row in written:
        store.record(row)
    read = store.entries()
    assert [row.question for row in read] == ["horaires ?", "adresse horaires", ""]
    assert read[1] == written[1]
    assert read[1].at == written[1].at  # times survive to the microsecond
    assert [row.question for row in store.entries(since=NOW - timedelta(days=1))] == [
        "adresse horaires", ""]


def test_file_is_private_and_holds_pseudonyms_only(tmp_path: Path) -> None:
    path = tmp_path / "new-dir" / "questions.sqlite3"
    store = SQLiteQuestionLog(path)
    raw_user = 987654321
    pseudonym = store.pseudonym("telegram", raw_user)
    store.record(entry(user=pseudonym, chat=store.pseudonym("telegram", -100200300)))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert len(pseudonym) == 16 and str(raw_user) not in pseudonym
    assert store.pseudonym("telegram", raw_user) == pseudonym  # stable within a database
    assert store.pseudonym("discord", raw_user) != pseudonym  # ids of two platforms differ
    files = list(path.parent.iterdir())  # the database, its WAL and shared-memory files
    assert len(files) == 3
    assert all(stat.S_IMODE(part.stat().st_mode) == 0o600 for part in files)
    stored = b"".join(part.read_bytes() for part in files)
    assert str(raw_user).encode() not in stored and b"100200300" not in stored
    store.close()
    reopened = SQLiteQuestionLog(path)
    assert reopened.pseudonym("telegram", raw_user) == pseudonym
    reopened.close()
    other = SQLiteQuestionLog(tmp_path / "other.sqlite3")
    assert other.pseudonym("telegram", raw_user) != pseudonym  # each database has its salt
    other.close()


def test_choice_goes_to_the_open_clarification_that_offered_it(store: SQLiteQuestionLog) -> None:
    offered = ("opening_hours", "address")
    store.record(entry("vieux", kind="clarify", suggestions=offered, at=NOW - timedelta(hours=2)))
    store.record(entry("adresse horaires", kind="clarify", suggestions=offered))
    store.record(entry("autre", kind="clarify", suggestions=offered, user="u2"))
    store.record_choice("telegram", "c1", "u1", "delivery", NOW)  # not offered: ignored
    store.record_choice("telegram", "c1", "u1", "address", NOW)
    store.record_choice("telegram", "c1", "u1", "opening_hours", NOW)  # nothing open is left
    store.record_choice("telegram", "c1", "u2", NONE_OF_THESE, NOW)
    choices = {row.question: row.choice for row in store.entries()}
    assert choices == {"vieux": None, "adresse horaires": "address", "autre": NONE_OF_THESE}


def test_feedback_is_linked_to_its_question_once_per_user(store: SQLiteQuestionLog) -> None:
    store.record_many([replace(entry("horaires ?"), ref="Ab3_-x9Z"),
                       replace(entry("adresse ?"), ref="Qq000000"),
                       replace(entry("adresse ?", chat="c2"), ref="Zz111111")])
    later = NOW + timedelta(seconds=5)

    def click(platform: str, ref: str, user: str, verdict: str, choice: str | None = None) -> None:
        store.record_feedback(platform, "c1", ref, Feedback(later, user, verdict, choice))

    click("telegram", "Ab3_-x9Z", "u1", HELPFUL)
    click("telegram", "Ab3_-x9Z", "u1", NOT_HELPFUL)  # a second verdict changes nothing
    click("telegram", "Ab3_-x9Z", "u2", NOT_HELPFUL)
    click("telegram", "Ab3_-x9Z", "u2", NOT_HELPFUL, "address")
    click("telegram", "Ab3_-x9Z", "u2", NOT_HELPFUL, "delivery")  # the first choice stays
    # A choice without a verdict counts as "not helpful"; another chat's reference is not ours.
    click("telegram", "Qq000000", "u3", NOT_HELPFUL, NONE_OF_THESE)
    click("telegram", "Zz111111", "u3", HELPFUL)
    click("discord", "Qq000000", "u3", HELPFUL)
    # A question gone with retention (or never logged): nothing is recorded, nothing fails.
    click("telegram", "gone0000", "u1", HELPFUL)
    rows = store.entries()
    assert [row.ref for row in rows] == ["Ab3_-x9Z", "Qq000000", "Zz111111"]
    assert rows[0].feedback == (Feedback(later, "u1", HELPFUL),
                                Feedback(later, "u2", NOT_HELPFUL, "address"))
    assert rows[1].feedback == (Feedback(later, "u3", NOT_HELPFUL, NONE_OF_THESE),)
    assert rows[2].feedback == ()


def test_question_is_logged_once_per_reference_in_its_chat(store: QuestionLogStore) -> None:
    first = replace(entry("horaires ?"), ref="upd00001")
    store.record(first)
    # The same update answered again by another process after a crash, in one batch with
    # others: only the repeat is skipped.
    store.record_many([replace(first, at=NOW + timedelta(seconds=5)),
                       replace(entry("horaires ?", chat="c2"), ref="upd00001"),
                       replace(entry("horaires ?", platform="discord"), ref="upd00001"),
                       replace(entry("adresse ?"), ref="upd00002")])
    store.record(first)
    for _ in range(2):  # without a reference (console, CLI), every question is logged
        store.record(entry("sans reference"))
    assert [(row.platform, row.chat, row.question, row.ref) for row in store.entries()] == [
        ("telegram", "c1", "horaires ?", "upd00001"), ("telegram", "c2", "horaires ?", "upd00001"),
        ("discord", "c1", "horaires ?", "upd00001"), ("telegram", "c1", "adresse ?", "upd00002"),
        ("telegram", "c1", "sans reference", None), ("telegram", "c1", "sans reference", None)]
    assert store.entries()[0].at == NOW  # the first answer's row is the one kept


def test_purge_takes_the_feedback_of_old_questions(store: SQLiteQuestionLog) -> None:
    store.record_many([replace(entry("old", at=NOW - timedelta(days=40)), ref="old00000"),
                       replace(entry("new"), ref="new00000")])
    for ref in ("old00000", "new00000"):
        store.record_feedback("telegram", "c1", ref, Feedback(NOW, "u1", HELPFUL))
    store.purge(30)
    assert store._connection.execute("SELECT count(*) FROM feedback").fetchone() == (1,)
    assert [(row.question, len(row.feedback)) for row in store.entries()] == [("new", 1)]


def test_feedback_is_written_in_order_by_the_background_writer(tmp_path: Path) -> None:
    store = SQLiteQuestionLog(tmp_path / "q.sqlite3")
    log = BackgroundQuestionLog(store)
    log.record(replace(entry(), ref="abcdefgh"), CHAT, USER)  # queued: feedback comes after
    log.record_feedback("telegram", CHAT, 9, "abcdefgh", Feedback(NOW, "", NOT_HELPFUL))
    stored = Feedback(NOW, store.pseudonym("telegram", 9), NOT_HELPFUL)
    assert log.entries()[0].feedback == (stored,)
    log.close()


def test_purge_removes_only_old_questions(store: SQLiteQuestionLog) -> None:
    store.record(entry("ancien", at=NOW - timedelta(days=10)))
    store.record(entry("recent", at=NOW - timedelta(days=1)))
    store.purge(older_than_days=5)
    assert [row.question for row in store.entries()] == ["recent"]


def test_retention_is_enforced_when_the_writer_starts(store: SQLiteQuestionLog) -> None:
    store.record(entry("ancien", at=NOW - timedelta(days=100)))
    log = BackgroundQuestionLog(store, retention_days=90)
    log.record(entry("nouveau"), CHAT, USER)
    assert [row.question for row in log.entries()] == ["nouveau"]
    log.close()


# The first schema, as faqbot 0.1 wrote it: no clarification choice, no latency.
VERSION_1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE questions (id INTEGER PRIMARY KEY, at REAL NOT NULL, platform TEXT NOT NULL,
    chat TEXT NOT NULL, user TEXT NOT NULL, lang TEXT NOT NULL, question TEXT,
    kind TEXT NOT NULL, intent TEXT, confidence REAL NOT NULL,
    suggestions TEXT NOT NULL DEFAULT '[]');
CREATE INDEX questions_at ON questions (at);
INSERT INTO meta VALUES ('schema_version', '1'), ('salt', 'ab12');
"""


def test_version_1_database_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as old:
        old.executescript(VERSION_1)
        old.executemany("INSERT INTO questions (at, platform, chat, user, lang, question, kind, "
                        "intent, confidence, suggestions) VALUES (?, 'discord', 'c', 'u', 'en', "
                        "?, ?, NULL, 0.4, ?)",
                        [(NOW.timestamp() - 60, "where and when", "clarify",
                          '["address", "opening_hours"]'),
                         (NOW.timestamp() - 30, "bitcoin price", "fallback", "[]")])
    old.close()
    with pytest.raises(QuestionLogError, match="older than"):
        SQLiteQuestionLog(path, read_only=True)
    reader = open_store_for_reading(path)  # upgrades first, then reads
    rows = reader.entries()
    reader.close()
    assert [(row.question, row.kind, row.choice, row.latency_ms) for row in rows] == [
        ("where and when", "clarify", None, 0.0), ("bitcoin price", "fallback", None, 0.0)]
    store = SQLiteQuestionLog(path)
    assert store.pseudonym("discord", 1) == SQLiteQuestionLog(path).pseudonym("discord", 1)
    store.record_choice("discord", "c", "u", "address", NOW)
    store.record(replace(entry("new row"), ref="r0000000"))
    store.record(replace(entry("new row"), ref="r0000000"))  # version 4: logged once
    store.record_feedback("telegram", "c1", "r0000000", Feedback(NOW, "u1", HELPFUL))
    assert [row.choice for row in store.entries()] == ["address", None, None]
    assert [len(row.feedback) for row in store.entries()] == [0, 0, 1]
    store.close()
    with sqlite3.connect(path) as check:
        version = check.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    check.close()
    assert version == (str(SCHEMA_VERSION),)


def test_database_from_a_newer_faqbot_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.sqlite3"
    SQLiteQuestionLog(path).close()
    with sqlite3.connect(path) as future:
        future.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    future.close()
    with pytest.raises(QuestionLogError, match="newer faqbot"):
        SQLiteQuestionLog(path)


def test_missing_log_is_not_created_for_reading(tmp_path: Path) -> None:
    with pytest.raises(QuestionLogError, match="no question log"):
        open_store_for_reading(tmp_path / "absent.sqlite3")
    assert not (tmp_path / "absent.sqlite3").exists()


WRITER_PROCESS = """
import sys
from datetime import UTC, datetime
from core.questionlog.interface import LoggedQuestion
from core.questionlog.sqlite import SQLiteQuestionLog
store = SQLiteQuestionLog(sys.argv[1])
for n in range(100):
    store.record(LoggedQuestion(at=datetime.now(UTC), platform="discord", chat="p", user="p",
                                lang="en", question=f"process {n}", kind="fallback",
                                intent=None, confidence=0.0))
store.close()
"""


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite3"
    stores = [SQLiteQuestionLog(path), SQLiteQuestionLog(path)]  # two connections
    process = subprocess.Popen([sys.executable, "-c", WRITER_PROCESS, str(path)],
                               cwd=Path(__file__).resolve().parents[2])

    def write(store: SQLiteQuestionLog, name: str) -> None:
        for number in range(100):
            store.record(entry(f"{name} {number}"))

    threads = [threading.Thread(target=write, args=(stores[n % 2], f"thread{n}"))
               for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert process.wait(timeout=60) == 0
    questions = [row.question for row in stores[0].entries()]
    assert len(questions) == len(set(questions)) == 500
    for store in stores:
        store.close()


def test_locked_database_loses_those_writes_only(tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "locked.sqlite3"
    failures: list[int] = []
    log = BackgroundQuestionLog(SQLiteQuestionLog(path, busy_timeout=0.5), capacity=2,
                                on_failure=lambda: failures.append(1))
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    with caplog.at_level(logging.ERROR, logger="core.questionlog"):
        for number in range(4):  # returns at once, though the database is locked
            log.record(entry(f"while locked {number}"), CHAT, USER)
        assert log.flush(timeout=30)
    blocker.execute("ROLLBACK")
    blocker.close()
    log.record(entry("after"), CHAT, USER)
    assert [row.question for row in log.entries()] == ["after"]
    assert log.failures == len(failures) == 4  # one or two dropped at once, the rest timed out
    lost = [record for record in caplog.records if "lost" in record.getMessage()]
    assert len(lost) == 1  # reported once, not once a question
    log.close()


def test_writer_batches_questions_and_loses_only_a_bad_one(tmp_path: Path) -> None:
    store = SQLiteQuestionLog(tmp_path / "batch.sqlite3")
    batches: list[int] = []
    record_many = store.record_many

    def counted(entries: list[LoggedQuestion]) -> None:
        batches.append(len(entries))
        record_many(entries)

    store.record_many = counted  # type: ignore[method-assign]
    log = BackgroundQuestionLog(store)
    for number in range(200):
        log.record(entry(f"question {number}"), CHAT, USER)
    assert [row.question for row in log.entries()] == [f"question {n}" for n in range(200)]
    assert len(batches) < 20  # a few transactions for 200 questions, not 200

    bad = entry("unserialisable", suggestions=(object(),))  # type: ignore[arg-type]
    for question in (entry("before"), bad, entry("after")):
        log.record(question, CHAT, USER)
    assert [row.question for row in log.entries()][200:] == ["before", "after"]
    assert log.failures == 1
    log.record(entry("later"), CHAT, USER)  # the writer survived the bad write
    assert log.entries()[-1].question == "later"
    log.close()


def test_read_only_database_never_raises_into_the_caller(tmp_path: Path) -> None:
    path = tmp_path / "ro.sqlite3"
    SQLiteQuestionLog(path).close()
    log = BackgroundQuestionLog(SQLiteQuestionLog(path, read_only=True))
    log.record(entry(), CHAT, USER)
    log.record(entry(kind="fallback"), CHAT, USER)
    assert log.flush(timeout=30)
    assert log.failures == 2
    log.close()


def test_database_locked_at_start_is_opened_once_released(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "locked-at-start.sqlite3"
    SQLiteQuestionLog(path).close()
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # another process holds the lock as faqbot starts
    failures: list[int] = []
    with caplog.at_level(logging.ERROR, logger="core.questionlog"):
        log = BackgroundQuestionLog(partial(SQLiteQuestionLog, path, busy_timeout=0.2),
                                    on_failure=lambda: failures.append(1))
        for number in range(5):  # returns at once, though nothing can be written
            log.record(entry(f"during the outage {number}"), CHAT, USER)
        assert log.flush(timeout=30)
    assert not log.up and log.failures == len(failures) == 5
    assert "database is locked" in caplog.text
    assert "5 writes lost so far" in (log.problem() or "")
    blocker.execute("ROLLBACK")
    blocker.close()
    assert _eventually(lambda: log.up)  # tried again by itself, with no question to write
    log.record(entry("after the outage"), CHAT, USER)
    assert [row.question for row in log.entries()] == ["after the outage"]
    assert log.problem() is None and log.failures == 5
    log.close()


def _eventually(condition: Callable[[], bool], seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# -- pseudonym key and erasure ---------------------------------------------------------------


def _stored(path: Path) -> bytes:
    return b"".join(part.read_bytes() for part in path.parent.glob(path.name + "*"))


def _salt_of(path: Path) -> str | None:
    with sqlite3.connect(path) as connection:
        row = connection.execute("SELECT value FROM meta WHERE key = 'salt'").fetchone()
    connection.close()
    return None if row is None else str(row[0])


def test_key_from_outside_is_shared_by_two_databases_and_stored_in_neither(
        tmp_path: Path) -> None:
    secret = "correct horse battery staple"
    key = Settings(id_key=secret).pseudonym_key()
    assert key is not None
    paths = [tmp_path / "a.sqlite3", tmp_path / "b.sqlite3"]
    stores = [SQLiteQuestionLog(path, key=key) for path in paths]
    assert stores[0].pseudonym("telegram", 42) == stores[1].pseudonym("telegram", 42)
    assert stores[0].pseudonym("telegram", 42) != SQLiteQuestionLog(
        tmp_path / "own-salt.sqlite3").pseudonym("telegram", 42)
    for store, path in zip(stores, paths, strict=True):
        store.record(entry(chat=store.pseudonym("telegram", 42)))
        assert _salt_of(path) is None
        store.close()
        stored = _stored(path)
        assert key not in stored and key.hex().encode() not in stored
        assert secret.encode() not in stored


def salt_moved_out_keeps_the_pseudonyms(open_store: Callable[..., QuestionLogStore],
                                        salt_of: Callable[[], str | None]) -> None:
    """A store opened with a key from outside deletes its stored salt, and the salt's hex as
    that key gives the same pseudonyms (run on both stores)."""
    store = open_store()
    before = store.pseudonym("discord", 7)
    store.close()
    salt = salt_of()
    assert salt is not None
    moved = open_store(key=Settings(id_key=salt).pseudonym_key())
    assert moved.pseudonym("discord", 7) == before  # the salt, moved out of the store
    moved.close()
    assert salt_of() is None


def test_key_from_outside_deletes_the_stored_salt_and_its_hex_keeps_the_pseudonyms(
        tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite3"
    salt_moved_out_keeps_the_pseudonyms(partial(SQLiteQuestionLog, path), partial(_salt_of, path))


def test_purged_text_is_erased_from_the_file(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    connect = sqlite3.connect

    def connect_as_most_builds(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        connection = connect(*args, **kwargs)
        connection.execute("PRAGMA secure_delete=OFF")  # SQLite's default; some builds differ
        return connection

    monkeypatch.setattr(sqlite3, "connect", connect_as_most_builds)
    path = tmp_path / "q.sqlite3"
    store = SQLiteQuestionLog(path)
    store.record(entry("an-old-question-to-forget", at=NOW - timedelta(days=100)))
    store.record(entry("a recent question"))
    store.purge(older_than_days=90)
    store.close()
    assert b"a recent question" in _stored(path)
    assert b"an-old-question-to-forget" not in _stored(path)  # overwritten, not just unlinked
