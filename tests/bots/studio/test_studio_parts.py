"""faqbot studio's parts without a browser: texts in both languages, the start-up checks and
messages of `faqbot studio`, the stats pictures."""

from __future__ import annotations

import asyncio
import contextlib
import io
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from bots.cli import main
from bots.studio import charts, server
from bots.studio.state import DismissedQuestions, Studio
from bots.studio.texts import TEXTS
from core.questionlog.factory import open_question_log_store
from core.questionlog.interface import NOT_HELPFUL, Feedback, LoggedQuestion
from tests.auxil.studio import studio, write_kb, write_log


def test_both_languages_have_every_text() -> None:
    assert TEXTS["fr"].keys() == TEXTS["en"].keys()
    for lang, texts in TEXTS.items():
        assert all(text.strip() for text in texts.values()), lang


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("::1", True),
                                                ("localhost", True), ("0.0.0.0", False),
                                                ("192.168.1.10", False), ("studio.lan", False)])
def test_only_loopback_addresses_go_without_a_warning(host: str, loopback: bool) -> None:
    assert server._is_loopback(host) is loopback


async def test_an_address_other_than_loopback_is_warned_about(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    # Binding a real outside address would leave the machine; the check is what is replaced.
    monkeypatch.setattr(server, "_is_loopback", lambda host: False)
    out = io.StringIO()
    running = asyncio.create_task(server._serve(
        Studio(write_kb(tmp_path), tmp_path / "q.sqlite3", "token"), "127.0.0.1", 0, out))
    async with asyncio.timeout(30):
        while "open http" not in out.getvalue():
            await asyncio.sleep(0.05)
    running.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await running
    assert capsys.readouterr().err == (
        "faqbot studio: warning: listening on 127.0.0.1, not on this machine only: anyone who "
        "can reach it and gets the URL can edit the knowledge base\n")
    assert len(out.getvalue().splitlines()) == 1


def test_an_invalid_knowledge_base_stops_the_start_with_validate_s_words(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kb = write_kb(tmp_path)
    kb.write_text(kb.read_text(encoding="utf-8").replace("default_language: fr",
                                                         "default_language: de"))
    assert main(["studio", "--kb", str(kb), "--db", str(tmp_path / "q.sqlite3")]) == 2
    assert main(["validate", "--kb", str(kb)]) == 2
    studio_error, validate_error = capsys.readouterr().err.splitlines()
    assert studio_error == validate_error
    assert "default_language 'de' is not in languages" in studio_error


def test_a_taken_port_is_one_clear_error(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["studio", "--kb", str(write_kb(tmp_path)), "--port", str(port)]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"faqbot: error: --host 127.0.0.1 --port {port}: cannot listen")
    assert len(error.splitlines()) == 1


async def test_the_start_prints_one_url_with_a_fresh_token_each_time(tmp_path: Path) -> None:
    kb, db = write_kb(tmp_path), tmp_path / "q.sqlite3"
    write_log(db)
    urls = []
    for _ in range(2):
        async with studio(kb, db) as running:
            urls.append(running.url)
            assert running.url.startswith("http://127.0.0.1:")
        assert running.process.returncode == 0  # SIGTERM stops it cleanly
        stderr = await running.process.stderr.read()  # type: ignore[union-attr]
        assert b"warning" not in stderr and b"Traceback" not in stderr
    tokens = [url.split("token=")[1] for url in urls]
    assert tokens[0] != tokens[1] and all(len(token) >= 40 for token in tokens)


def test_dismissed_questions_are_kept_normalised_in_a_private_file(tmp_path: Path) -> None:
    store = DismissedQuestions(tmp_path / "log" / "q.sqlite3.dismissed.json")
    assert store.add(["Quelle est la MÉTÉO ?", "quelle est la meteo"]) == 1
    assert store.add(["quelle est la météo ?"]) == 0
    assert store.load() == {"quelle est la meteo"}
    assert store.path.stat().st_mode & 0o777 == 0o600


def test_stacked_columns_fill_missing_days_and_scale_to_the_busiest() -> None:
    start = datetime(2026, 3, 1, 12, tzinfo=UTC)

    def asked(day: int, platform: str) -> LoggedQuestion:
        return LoggedQuestion(at=start + timedelta(days=day), platform=platform, chat="c",
                              user="u", lang="fr", question="q", kind="answer", intent="x",
                              confidence=1.0)

    entries = [asked(0, "telegram"), asked(0, "discord"), asked(0, "discord"),
               asked(3, "telegram")]
    days, series = charts.daily_series(entries, "platform")
    assert days == ["03-01", "03-02", "03-03", "03-04"]
    assert series == {"discord": [2, 0, 0, 0], "telegram": [1, 0, 0, 1]}
    chart = charts.stacked_columns(days, series)
    first_day = [bar for bar in chart.bars if bar.title.startswith("03-01")]
    plot_height = charts.HEIGHT - charts.BOTTOM - charts.TOP
    assert sum(bar.height for bar in first_day) == pytest.approx(plot_height)
    assert len(chart.bars) == 3 and chart.legend == [(0, "discord"), (1, "telegram")]


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
async def test_the_inbox_shows_answers_marked_not_helpful_with_the_choice_preselected(
        store: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    kb = write_kb(tmp_path)
    db = (str(tmp_path / "q.sqlite3") if store == "sqlite"
          else request.getfixturevalue("postgres_url"))
    now = datetime.now(UTC)
    log = open_question_log_store(db)
    try:
        log.record_many([LoggedQuestion(
            at=now, platform="telegram", chat="c", user="u", lang="fr",
            question="vous êtes là le lundi matin ?", kind="answer", intent="delivery",
            confidence=0.9, ref="r1")])
        log.record_feedback("telegram", "c", "r1", Feedback(
            at=now, user="u", verdict=NOT_HELPFUL, choice="opening_hours"))
    finally:
        log.close()
    jar = aiohttp.CookieJar(unsafe=True)  # the cookie of an IP address, 127.0.0.1
    async with studio(kb, db) as running, aiohttp.ClientSession(cookie_jar=jar) as client:
        async with client.get(running.url) as response:  # the token sets the session cookie
            assert response.status == 200
        async with client.get(f"{running.origin}/inbox") as response:
            page = await response.text()
    section = page[page.index('id="unhelpful-1"'):]
    assert "vous êtes là le lundi matin ?" in section
    assert "delivery ×1" in section and "opening_hours ×1" in section
    assert '<option value="opening_hours" selected>' in section
