"""What the adapters share through the front door: message splitting, the per-user rate limit,
secrets kept out of logs."""

from __future__ import annotations

import logging

import pytest

from bots.frontdoor import admission
from bots.frontdoor.admission import RateLimiter, Verdict
from bots.frontdoor.replies import split_message
from bots.logs import SecretFilter

ADMITTED, NOTIFY, SILENT = Verdict.ADMITTED, Verdict.NOTIFY, Verdict.SILENT

TOKEN = "123456789:AAFakeTokenForTestsOnly-0123456789"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- split_message -------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "court", "x" * 20])
def test_text_within_the_limit_is_one_piece(text: str) -> None:
    assert split_message(text, 20) == [text]


def test_cuts_at_the_latest_paragraph_then_line_then_word_break() -> None:
    # Breaks in the second half of the limit only, so that no piece is tiny.
    assert split_message("aaaa bbbb cc\n\ncccc\ndddd eeee", 20) == ["aaaa bbbb cc",
                                                                    "cccc\ndddd eeee"]
    assert split_message("aaaa bbbb cc\ncccc dddd eeee", 20) == ["aaaa bbbb cc",
                                                                "cccc dddd eeee"]
    assert split_message("aaaa bbbb cccc dddd eeee", 20) == ["aaaa bbbb cccc dddd", "eeee"]
    assert split_message("aa\n\nbbbb cccc dddd eeee", 20) == ["aa\n\nbbbb cccc dddd", "eeee"]


def test_long_text_loses_no_word_and_no_piece_is_too_long() -> None:
    text = "\n\n".join(" ".join(f"mot{n}x{m}" for m in range(n % 17 + 1)) for n in range(300))
    pieces = split_message(text, 100)
    assert all(0 < len(piece) <= 100 for piece in pieces)
    assert " ".join(pieces).split() == text.split()


def test_a_word_longer_than_the_limit_is_cut_where_the_limit_falls() -> None:
    assert split_message("y" * 45, 20) == ["y" * 20, "y" * 20, "y" * 5]


# -- RateLimiter -------------------------------------------------------------------------------


def test_one_notice_per_flood_then_silence() -> None:
    clock = Clock()
    limiter = RateLimiter(3, 10.0, clock=clock)
    assert [limiter.check(7) for _ in range(6)] == [ADMITTED] * 3 + [NOTIFY, SILENT, SILENT]
    assert limiter.check(8) == ADMITTED  # each user has a window of their own


def test_the_window_slides_and_a_new_flood_gets_a_new_notice() -> None:
    clock = Clock()
    limiter = RateLimiter(2, 10.0, clock=clock)
    assert limiter.check(7) == ADMITTED
    clock.now += 6
    assert [limiter.check(7) for _ in range(3)] == [ADMITTED, NOTIFY, SILENT]
    clock.now += 4  # the first message leaves the window; the second is still in it
    assert [limiter.check(7) for _ in range(3)] == [ADMITTED, NOTIFY, SILENT]
    clock.now += 10
    assert [limiter.check(7) for _ in range(2)] == [ADMITTED, ADMITTED]


def test_forgetting_idle_users_keeps_the_busy_ones_limited(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(admission, "SWEEP_EVERY", 1)  # every check sweeps the idle users
    clock = Clock()
    limiter = RateLimiter(2, 10.0, clock=clock)
    limiter.check(7)
    clock.now += 9
    limiter.check(7)
    clock.now += 1  # the first message has left the window, the second has not
    assert [limiter.check(7), limiter.check(7)] == [ADMITTED, NOTIFY]


# -- SecretFilter --------------------------------------------------------------------------------


def record(message: str, *args: object, error: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(error), error, error.__traceback__) if error else None
    return logging.LogRecord("httpx", logging.ERROR, __file__, 1, message, args, exc_info)


def test_secrets_in_messages_and_their_arguments_are_redacted() -> None:
    secret_filter = SecretFilter([TOKEN, "", "webhook-secret"])
    line = record("POST https://api.telegram.org/bot%s/getUpdates %s", TOKEN, "webhook-secret")
    assert secret_filter.filter(line) is True  # redacted, never dropped
    assert line.getMessage() == "POST https://api.telegram.org/bot[redacted]/getUpdates [redacted]"
    untouched = record("polling %d updates", 3)
    secret_filter.filter(untouched)
    assert untouched.getMessage() == "polling 3 updates"  # the empty secret matches nothing


def test_a_traceback_keeps_its_type_and_loses_the_secret() -> None:
    try:
        raise ConnectionError(f"cannot reach https://api.telegram.org/bot{TOKEN}/getMe")
    except ConnectionError as error:
        line = record("request failed", error=error)
    SecretFilter([TOKEN]).filter(line)
    formatted = logging.Formatter().format(line)
    assert "ConnectionError: cannot reach https://api.telegram.org/bot[redacted]/getMe" in (
        formatted)
    assert TOKEN not in formatted
