"""The question log in PostgreSQL, against a real server: the same rows, pseudonyms, choices,
retention and migrations as SQLite, one key per deployment, and a writer that outlives the
server going away."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from functools import partial
from pathlib import Path

import psycopg
import pytest

from bots.cli import main
from bots.metrics import Metrics
from bots.operations import open_question_log
from core import FAQBot, Settings
from core.questionlog.factory import MISSING_DRIVER, open_question_log_store
from core.questionlog.interface import (
    HELPFUL,
    SCHEMA_VERSION,
    Feedback,
    OutdatedSchemaError,
    QuestionLogError,
    keyed_pseudonym,
)
from core.questionlog.postgres import PostgresQuestionLog
from core.questionlog.writer import BackgroundQuestionLog
from core.review import build_review
from core.stats import compute_stats
from tests.auxil.postgres import PostgresServer
from tests.auxil.telegram import TOKEN as TELEGRAM_TOKEN
from tests.core.test_questionlog import (
    CHAT,
    NOW,
    USER,
    entry,
    salt_moved_out_keeps_the_pseudonyms,
)
from tests.core.test_questionlog import (
    test_choice_goes_to_the_open_clarification_that_offered_it as check_choices,
)
from tests.core.test_questionlog import (
    test_feedback_is_linked_to_its_question_once_per_user as check_feedback,
)
from tests.core.test_questionlog import (
    test_question_is_logged_once_per_reference_in_its_chat as check_logged_once,
)
from tests.core.test_review import LOG


@pytest.fixture
def store(postgres_url: str) -> Iterator[PostgresQuestionLog]:
    log = PostgresQuestionLog(postgres_url)
    yield log
    log.close()


def test_rows_read_back_as_written(store: PostgresQuestionLog) -> None:
    rows = [entry("horaires ?"), entry(None, kind="fallback"),
            entry("adresse horaires", kind="clarify", suggestions=("address", "opening_hours"))]
    store.record_many(rows)
    store.record(entry("encore", platform="discord"))
    assert store.entries() == [*rows, entry("encore", platform="discord")]
    assert [row.question for row in store.entries(NOW + timedelta(seconds=1))] == []


def test_every_process_of_a_deployment_shares_the_key(postgres: PostgresServer,
                                                     postgres_url: str) -> None:
    first, second = PostgresQuestionLog(postgres_url), PostgresQuestionLog(postgres_url)
    other_deployment = PostgresQuestionLog(postgres.new_database())
    given_key = PostgresQuestionLog(postgres_url, key=b"k" * 32)
    try:
        alice = first.pseudonym("telegram", 42)
        assert len(alice) == 16 and alice == second.pseudonym("telegram", 42)
        assert alice not in {other_deployment.pseudonym("telegram", 42),
                             given_key.pseudonym("telegram", 42),
                             first.pseudonym("discord", 42)}
        assert first.pseudonym("telegram", None) == ""
    finally:
        for log in (first, second, other_deployment, given_key):
            log.close()


def test_choice_goes_to_the_open_clarification_that_offered_it(
        store: PostgresQuestionLog) -> None:
    check_choices(store)  # the SQLite test, on PostgreSQL


def test_feedback_is_linked_to_its_question_once_per_user(store: PostgresQuestionLog) -> None:
    check_feedback(store)  # the SQLite test, on PostgreSQL


def test_question_is_logged_once_per_reference_in_its_chat(store: PostgresQuestionLog) -> None:
    check_logged_once(store)  # the SQLite test, on PostgreSQL


def test_processes_logging_one_update_at_once_log_it_once(postgres_url: str) -> None:
    stores = [PostgresQuestionLog(postgres_url) for _ in range(4)]
    batch = [replace(entry(f"question {number}", chat=f"c{number % 10}"), ref=f"upd{number:05}")
             for number in range(200)]
    writers = [threading.Thread(target=store.record_many, args=(batch,)) for store in stores]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    try:
        assert sorted(row.question for row in stores[0].entries()) == sorted(
            row.question for row in batch)
    finally:
        for store in stores:
            store.close()


def test_purge_takes_the_feedback_of_old_questions(store: PostgresQuestionLog,
                                                   postgres_url: str) -> None:
    store.record_many([replace(entry("old", at=NOW - timedelta(days=40)), ref="old00000"),
                       replace(entry("new"), ref="new00000")])
    for ref in ("old00000", "new00000"):
        store.record_feedback("telegram", "c1", ref, Feedback(NOW, "u1", HELPFUL))
    store.purge(30)  # the old question's feedback first, or its reference would refuse
    with psycopg.connect(postgres_url) as connection:
        assert connection.execute("SELECT count(*) FROM feedback").fetchone() == (1,)
    assert [(row.question, len(row.feedback)) for row in store.entries()] == [("new", 1)]


def test_retention_purges_only_old_questions(store: PostgresQuestionLog) -> None:
    store.record(entry("ancien", at=NOW - timedelta(days=100)))
    store.record(entry("recent", at=NOW - timedelta(days=1)))
    log = BackgroundQuestionLog(store, retention_days=90)
    log.record(entry("nouveau"), CHAT, USER)
    assert [row.question for row in log.entries()] == ["recent", "nouveau"]
    log.close()


# -- schema ---------------------------------------------------------------------------------------


VERSION_1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE questions (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at DOUBLE PRECISION NOT NULL, platform TEXT NOT NULL, chat TEXT NOT NULL,
    "user" TEXT NOT NULL, lang TEXT NOT NULL, question TEXT, kind TEXT NOT NULL, intent TEXT,
    confidence DOUBLE PRECISION NOT NULL, suggestions TEXT NOT NULL DEFAULT '[]');
CREATE INDEX questions_at ON questions (at);
INSERT INTO meta VALUES ('schema_version', '1'), ('salt', 'ab12');
INSERT INTO questions (at, platform, chat, "user", lang, question, kind, intent, confidence)
    VALUES (1700000000, 'telegram', 'c', 'u', 'fr', 'ancienne', 'answer', 'address', 0.8);
"""


def _run(url: str, sql: str) -> None:
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(sql.encode())


def test_version_1_database_is_upgraded_in_place(postgres_url: str) -> None:
    _run(postgres_url, VERSION_1)
    with pytest.raises(OutdatedSchemaError):
        PostgresQuestionLog(postgres_url, read_only=True)
    main_log = PostgresQuestionLog(postgres_url)
    try:
        assert main_log.pseudonym("telegram", 1) == PostgresQuestionLog(
            postgres_url, key=bytes.fromhex("ab12")).pseudonym("telegram", 1)
        old = main_log.entries()[0]
        assert (old.question, old.choice, old.latency_ms) == ("ancienne", None, 0.0)
        for _ in range(2):  # version 4: one row per reference in a chat
            main_log.record(replace(entry("nouvelle"), ref="r0000000"))
        assert [row.question for row in main_log.entries()] == ["ancienne", "nouvelle"]
    finally:
        main_log.close()
    with psycopg.connect(postgres_url) as connection:
        version = connection.execute(
            "SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    assert version == (str(SCHEMA_VERSION),)


def test_database_from_a_newer_faqbot_is_refused(postgres_url: str) -> None:
    PostgresQuestionLog(postgres_url).close()
    _run(postgres_url, "UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(QuestionLogError, match="newer faqbot"):
        PostgresQuestionLog(postgres_url)


def test_empty_database_is_not_created_for_reading(postgres_url: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", "--db", postgres_url]) == 2
    assert "no question log (nothing recorded yet)" in capsys.readouterr().err
    with psycopg.connect(postgres_url) as connection:
        assert connection.execute("SELECT to_regclass('meta')").fetchone() == (None,)


def test_openings_at_once_make_one_schema_and_one_key(postgres_url: str) -> None:
    """Threads here; tests/reliability/test_postgres_processes.py does it with processes."""
    keys: list[str] = []
    start = threading.Barrier(8)

    def open_and_read_key() -> None:
        start.wait()
        log = PostgresQuestionLog(postgres_url)
        keys.append(log.pseudonym("telegram", 1))
        log.close()

    threads = [threading.Thread(target=open_and_read_key) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(keys) == 8 and len(set(keys)) == 1


# -- failures -------------------------------------------------------------------------------------


def test_password_never_appears_in_errors(postgres: PostgresServer) -> None:
    url = f"postgresql://faqbot:s3cret-word@127.0.0.1:{postgres.port}/missing_database"
    with pytest.raises(QuestionLogError) as raised:
        PostgresQuestionLog(url)
    assert "s3cret-word" not in str(raised.value)
    assert "postgresql://faqbot@127.0.0.1" in str(raised.value)


@pytest.mark.parametrize("command", [["stats", "--db", "postgresql://127.0.0.1/faqbot"],
                                     ["run", "telegram"]])
def test_missing_driver_names_the_extra(command: list[str], monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # `import psycopg` now fails
    for module in ("core.questionlog.postgres", "bots.leadership"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    monkeypatch.setenv("FAQBOT_DB", "postgresql://127.0.0.1/faqbot")
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TELEGRAM_TOKEN)
    assert main(command) == 2
    assert capsys.readouterr().err == f"faqbot: error: {MISSING_DRIVER}\n"


def test_settings_take_a_path_or_a_url(tmp_path: Path) -> None:
    url = "postgresql://faqbot@db.internal/faqbot"
    assert Settings(db=url).db == url
    assert Settings(db=tmp_path / "q.sqlite3").db == str(tmp_path / "q.sqlite3")


def test_key_from_outside_deletes_the_stored_salt_and_its_hex_keeps_the_pseudonyms(
        postgres_url: str) -> None:
    salt_moved_out_keeps_the_pseudonyms(partial(PostgresQuestionLog, postgres_url),
                                        partial(_salt_of, postgres_url))


def _salt_of(url: str) -> str | None:
    with psycopg.connect(url) as connection:
        row = connection.execute("SELECT value FROM meta WHERE key = 'salt'").fetchone()
    return None if row is None else str(row[0])


def test_faqbot_run_keys_the_pseudonyms_with_faqbot_id_key(postgres_url: str) -> None:
    key = "0f" * 32
    log = open_question_log(Settings(db=postgres_url, id_key=key), Metrics())
    try:
        log.record(entry(), CHAT, USER)
        assert log.entries()[0].user == keyed_pseudonym(bytes.fromhex(key), "telegram", USER)
    finally:
        log.close()
    assert _salt_of(postgres_url) is None


def test_writer_opens_the_log_once_the_server_is_up(postgres: PostgresServer) -> None:
    """A server down when `faqbot run` starts: the questions of that time are lost and counted,
    and the writer opens the log by itself when the server comes."""
    url = postgres.new_database()
    postgres.stop()
    try:
        log = BackgroundQuestionLog(partial(open_question_log_store, url))
        log.record(entry("pendant"), CHAT, USER)
        assert log.flush(30)
        assert (log.up, log.failures) == (False, 1)
        assert "question log not open" in (log.problem() or "")
    finally:
        postgres.start()
    try:
        for _ in range(300):  # the delay between attempts grew while the server was down
            if log.up:
                break
            threading.Event().wait(0.2)
        assert log.up, "the writer never opened the log"
        log.record(entry("apres"), CHAT, USER)
        assert [row.question for row in log.entries()] == ["apres"]
    finally:
        log.close()


def test_writer_outlives_the_server_going_away(postgres: PostgresServer) -> None:
    """While the server is down, the rows are lost and counted, the writer keeps going; when
    it is back, the store reconnects by itself and the next rows are written."""
    log = BackgroundQuestionLog(PostgresQuestionLog(postgres.new_database()))
    try:
        log.record(entry("avant"), CHAT, USER)
        assert log.flush(10)
        postgres.stop()
        for number in range(20):
            log.record(entry(f"pendant {number}"), CHAT, USER)
        assert log.flush(30)
        assert log.failures == 20
        postgres.start()
        written = False
        for attempt in range(100):  # the reconnection delay grew while the server was down
            log.record(entry(f"apres {attempt}"), CHAT, USER)
            assert log.flush(10)
            if log.failures == 20 + attempt:
                written = True
                break
            threading.Event().wait(0.2)
        assert written, "the writer never reconnected"
        questions = [row.question for row in log.entries()]
        assert questions[0] == "avant" and questions[-1].startswith("apres")
        assert not any(question.startswith("pendant") for question in questions)
    finally:
        if not postgres.running:
            postgres.start()
        log.close()


# -- the curators' figures, whichever the store ---------------------------------------------------


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_review_and_stats_give_the_same_figures_on_both_stores(
        kind: str, postgres_url: str, tmp_path: Path, tiny_kb_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "q.sqlite3") if kind == "sqlite" else postgres_url
    store = open_question_log_store(db)
    for row in LOG:
        store.record(row)
    store.close()
    expected_review = build_review(LOG, FAQBot.from_path(tiny_kb_path)).as_dict()
    expected_stats = compute_stats(LOG).as_dict()

    assert main(["review", "--db", db, "--kb", str(tiny_kb_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(expected_review))
    assert main(["stats", "--db", db, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(expected_stats))
