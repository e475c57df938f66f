"""The front door, platform by none: admission verdicts, the rate limiter's idle sweep, order
per conversation, the retry policy, and the reply's layout and payloads."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from bots import feedback
from bots.feedback import FeedbackTicket
from bots.frontdoor import admission as admission_module
from bots.frontdoor.admission import AccessPolicy, Admission, RateLimiter, Verdict
from bots.frontdoor.door import Arrival, Batches, FeedbackOutcome, FrontDoor
from bots.frontdoor.ordering import Turns
from bots.frontdoor.replies import (
    Choice,
    FeedbackControl,
    ReplyLayout,
    layout,
    parse_choice,
)
from bots.frontdoor.retry import Retry, RetryPolicy
from bots.frontdoor.texts import ui_text
from bots.service import Asked, Asker, FAQService
from core import FAQBot


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def gate(allowed: tuple[int, ...] = (), messages: int = 2, *,
         open_without_place: bool = False) -> tuple[Admission, list[str]]:
    refusals: list[str] = []
    admission = Admission(AccessPolicy(allowed, open_without_place=open_without_place),
                          RateLimiter(messages, 60.0, clock=Clock()), allow_list="THE_LIST",
                          count_refusal=lambda: refusals.append("refused"))
    return admission, refusals


# -- admission -------------------------------------------------------------------------------


def test_a_flood_gets_one_notice_then_silence() -> None:
    admission, _ = gate(messages=2)
    verdicts = [admission.admit(1, 7) for _ in range(5)]
    assert verdicts == [Verdict.ADMITTED, Verdict.ADMITTED, Verdict.NOTIFY, Verdict.SILENT,
                        Verdict.SILENT]
    assert admission.admit(1, 8) is Verdict.ADMITTED  # another user is not held back


def test_a_refusal_is_counted_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    admission, refusals = gate(allowed=(1,))
    with caplog.at_level(logging.INFO, logger="bots.frontdoor.admission"):
        assert admission.admit(2, 7) is Verdict.REFUSED
    assert refusals == ["refused"]
    assert [r.getMessage() for r in caplog.records] == ["refused 2: not in THE_LIST"]
    assert admission.admit(1, 7) is Verdict.ADMITTED


def test_a_place_less_event_follows_the_policy() -> None:
    closed, _ = gate(allowed=(1,))
    open_, _ = gate(allowed=(1,), open_without_place=True)
    assert closed.admit(None, 7) is Verdict.REFUSED
    assert open_.admit(None, 7) is Verdict.ADMITTED
    everyone, _ = gate()
    assert everyone.admit(None, 7) is Verdict.ADMITTED


def test_an_event_delivered_twice_is_dropped() -> None:
    admission, _ = gate()
    assert admission.admit(1, 7, event_id=42) is Verdict.ADMITTED
    assert admission.admit(1, 7, event_id=42) is Verdict.DUPLICATE
    assert admission.admit(1, 7, event_id=43) is Verdict.ADMITTED


def test_searches_are_not_rate_limited_but_refused_outside_the_list() -> None:
    admission, refusals = gate(allowed=(1,), messages=1)
    assert all(admission.admit(1, 7, rate_limited=False) is Verdict.ADMITTED for _ in range(9))
    assert admission.admit(2, 7, rate_limited=False) is Verdict.REFUSED
    assert refusals == ["refused"]


def test_a_user_unknown_is_never_admitted_when_rate_limited() -> None:
    admission, _ = gate()
    assert admission.admit(1, None) is Verdict.SILENT


def test_the_rate_limiter_forgets_idle_users_by_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(admission_module, "SWEEP_EVERY", 10)
    clock = Clock()
    limiter = RateLimiter(3, 60.0, clock=clock)
    for user in range(9):
        limiter.check(user)
    assert len(limiter) == 9
    clock.now = 61.0  # every user idle for a whole window
    limiter.check(100)  # the tenth check sweeps
    assert len(limiter) == 1


# -- order per conversation --------------------------------------------------------------------


async def test_one_conversation_in_order_others_at_once() -> None:
    turns = Turns()
    done: list[str] = []
    release = asyncio.Event()

    async def event(key: str, name: str, wait: bool = False) -> None:
        async with turns.turn(key) as served:
            assert served
            if wait:
                await release.wait()
            done.append(name)

    first = asyncio.create_task(event("a", "a1", wait=True))
    second = asyncio.create_task(event("a", "a2"))
    other = asyncio.create_task(event("b", "b1"))
    await other
    assert done == ["b1"]  # "b" did not wait for "a"
    release.set()
    await asyncio.gather(first, second)
    assert done == ["b1", "a1", "a2"]
    assert len(turns) == 0  # idle conversations are forgotten


async def test_a_conversation_with_too_many_waiting_drops_and_counts(
        caplog: pytest.LogCaptureFixture) -> None:
    dropped: list[None] = []
    turns = Turns(per_key=2, on_overflow=lambda: dropped.append(None))
    release = asyncio.Event()
    served: list[bool] = []

    async def event() -> None:
        async with turns.turn("a") as got:
            served.append(got)
            if got:
                await release.wait()

    with caplog.at_level(logging.WARNING, logger="bots.frontdoor.ordering"):
        tasks = [asyncio.create_task(event()) for _ in range(5)]
        await asyncio.sleep(0.01)
        release.set()
        await asyncio.gather(*tasks)
    assert served.count(True) == 2 and served.count(False) == 3
    assert len(dropped) == 3
    assert len(caplog.records) == 1  # one line per flood


async def test_slots_bound_the_conversations_served_at_once() -> None:
    turns = Turns(slots=1)
    inside = 0
    most = 0

    async def event(key: int) -> None:
        nonlocal inside, most
        async with turns.turn(key):
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0)
            inside -= 1

    await asyncio.gather(*(event(key) for key in range(5)))
    assert most == 1


# -- batches ---------------------------------------------------------------------------------


def recording_batches() -> tuple[Batches[int, int], list[list[int]]]:
    calls: list[list[int]] = []

    def double_all(items: Sequence[int]) -> list[int]:
        if 13 in items:
            raise ValueError("unlucky")
        calls.append(list(items))
        return [2 * item for item in items]

    return Batches(double_all), calls


async def test_items_awaited_together_are_answered_in_one_call_in_order() -> None:
    batches, calls = recording_batches()
    assert await asyncio.gather(*(batches.answer(item) for item in range(5))) == [0, 2, 4, 6, 8]
    assert await batches.answer(7) == 14  # alone, it waits for no one
    assert calls == [[0, 1, 2, 3, 4], [7]]


async def test_a_bad_item_fails_alone_and_the_next_batch_works() -> None:
    batches, calls = recording_batches()
    results = await asyncio.gather(batches.answer(1), batches.answer(13), batches.answer(3),
                                   return_exceptions=True)
    assert results[0::2] == [2, 6]
    assert isinstance(results[1], ValueError)
    assert await batches.answer(2) == 4
    assert calls == [[1], [3], [2]]  # the failed batch, then each of its items alone


async def test_a_cancelled_caller_leaves_the_others_their_answers() -> None:
    batches, calls = recording_batches()
    first = asyncio.create_task(batches.answer(1))
    second = asyncio.create_task(batches.answer(2))
    await asyncio.sleep(0)  # both joined the batch
    first.cancel()
    assert await second == 4
    assert calls == [[1, 2]]
    with pytest.raises(asyncio.CancelledError):
        await first


# -- retry policy ----------------------------------------------------------------------------


class Flaky:
    def __init__(self, failures: list[Exception]) -> None:
        self.failures = failures
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "sent"


def transient(error: Exception) -> Retry | None:
    return Retry() if isinstance(error, ConnectionError) else None


async def test_transient_failures_are_retried_until_sent() -> None:
    call = Flaky([ConnectionError(), ConnectionError()])
    policy = RetryPolicy("Test", attempts=3, backoff=0.001)
    assert await policy.run(call, transient, "send") == "sent"
    assert call.calls == 3


async def test_a_final_failure_or_the_last_attempt_is_raised() -> None:
    policy = RetryPolicy("Test", attempts=2, backoff=0.001)
    with pytest.raises(ValueError, match="final"):
        await policy.run(Flaky([ValueError("final")]), transient, "send")
    out_of_attempts = Flaky([ConnectionError(), ConnectionError(), ConnectionError()])
    with pytest.raises(ConnectionError):
        await policy.run(out_of_attempts, transient, "send")
    assert out_of_attempts.calls == 2


def test_backoff_doubles_and_a_long_asked_wait_is_final() -> None:
    policy = RetryPolicy("Test", attempts=6, backoff=0.5, max_backoff=1.5, max_wait=60.0)
    assert [policy.delay(attempt, Retry()) for attempt in (1, 2, 3, 4)] == [0.5, 1.0, 1.5, 1.5]
    assert policy.delay(1, Retry(after=30.0)) == 30.0
    assert policy.delay(1, Retry(after=61.0)) is None
    assert policy.delay(6, Retry()) is None


async def test_stop_waiting_ends_a_long_wait_at_once() -> None:
    policy = RetryPolicy("Test", attempts=3, max_wait=100.0)

    def flood(error: Exception) -> Retry | None:
        return Retry(after=50.0)

    running = asyncio.create_task(policy.run(Flaky([ConnectionError()]), flood, "send"))
    await asyncio.sleep(0.01)
    policy.stop_waiting()
    with pytest.raises(ConnectionError):
        await asyncio.wait_for(running, 2.0)


# -- the reply's layout and payloads -----------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_bot(tiny_kb_path: Path) -> FAQBot:
    return FAQBot.from_path(tiny_kb_path)


def test_choice_payloads_round_trip_and_fit() -> None:
    for choice in (Choice("Q", "fr", "opening_hours"), Choice("Aucune", "en")):
        parsed = parse_choice(choice.payload)
        assert parsed is not None
        assert (parsed.intent, parsed.lang) == (choice.intent, choice.lang)
    longest = Choice("Q", "fr", "i" * 32)
    assert len(longest.payload.encode()) <= 64
    assert parse_choice("f:y:abcdefgh:0123abcd:fr") is None
    assert parse_choice("a::") is None


def test_a_clarification_ends_with_none_of_these(tiny_bot: FAQBot) -> None:
    reply = tiny_bot.answer("adresse horaires", "fr")
    if reply.kind != "clarify":  # the classifier's hesitation is not what is tested here
        reply = reply.model_copy(update={"kind": "clarify",
                                         "suggestions": tiny_bot.topics("fr")[:2]})
    shown = layout(reply)
    assert shown.choices[-1] == Choice(ui_text("none_of_these", "fr"), "fr")
    assert [c.intent for c in shown.answers] == [s.intent for s in reply.suggestions]
    assert shown.related_title is None and not shown.feedback


def test_a_curated_answer_gets_its_feedback_controls(tiny_bot: FAQBot) -> None:
    reply = tiny_bot.reply_for("opening_hours", "en")
    ticket = FeedbackTicket(ref="abcdefgh", asker="0123abcd", lang="en", alternatives="")
    shown = layout(reply, ticket, title="When?")
    assert [c.label for c in shown.feedback] == [ui_text("helpful", "en"),
                                                 ui_text("not_helpful", "en")]
    clicks = [feedback.parse(control.payload) for control in shown.feedback]
    assert [click.action if click else None for click in clicks] == ["y", "n"]
    assert shown.title == "When?"
    assert (shown.related_title is not None) == bool(reply.suggestions)


# -- the door, with a platform of nothing but lists --------------------------------------------


class Recorded:
    tells_refusal = True
    private_buttons = False

    def __init__(self) -> None:
        self.sent: list[ReplyLayout] = []
        self.notices: list[str | None] = []

    async def send(self, shown: ReplyLayout) -> None:
        self.sent.append(shown)

    async def notice(self, text: str | None) -> None:
        self.notices.append(text)

    async def replace_feedback(self, instead: tuple[FeedbackControl, ...]) -> None:
        raise AssertionError("no click here")

    async def feedback_recorded(self, outcome: FeedbackOutcome) -> None:
        raise AssertionError("no click here")


def door_for(bot: FAQBot, allowed: tuple[int, ...] = ()) -> FrontDoor:
    admission, _ = gate(allowed=allowed, messages=1)
    return FrontDoor(FAQService(bot), admission, Turns())


async def test_the_door_answers_then_notices_a_flood_once(tiny_bot: FAQBot) -> None:
    door = door_for(tiny_bot)
    replies = Recorded()
    came = Arrival(Asker("test", 1, 7), place=1, conversation=1, lang_hint="en")
    for _ in range(3):
        await door.ask(came, "opening hours", replies)
    assert [shown.kind for shown in replies.sent] == ["answer"]
    assert replies.sent[0].feedback  # the service gave it a ticket
    assert replies.notices == [ui_text("rate_limited", "en"), None]


async def test_questions_of_several_conversations_at_once_are_answered_in_one_batch(
        tiny_bot: FAQBot, monkeypatch: pytest.MonkeyPatch) -> None:
    door = door_for(tiny_bot)
    batch_sizes: list[int] = []
    answer_many = door.service.answer_many_with_feedback

    def recorded(questions: Sequence[Asked], *, feedback: bool = True) -> Any:
        batch_sizes.append(len(questions))
        return answer_many(questions, feedback=feedback)

    monkeypatch.setattr(door.service, "answer_many_with_feedback", recorded)
    replies = [Recorded() for _ in range(4)]
    questions = ["horaires", "adresse", "blague", "where is your shop?"]
    await asyncio.gather(*(
        door.ask(Arrival(Asker("test", chat, chat), place=chat, conversation=chat), question,
                 replies[chat])
        for chat, question in enumerate(questions)))
    assert batch_sizes == [4]
    alone = [tiny_bot.answer(question) for question in questions]
    assert [(shown.kind, shown.text) for recorded in replies for shown in recorded.sent] == [
        (reply.kind, reply.answer) for reply in alone]


async def test_the_door_tells_a_refused_place_when_the_platform_does(tiny_bot: FAQBot) -> None:
    door = door_for(tiny_bot, allowed=(1,))
    replies = Recorded()
    came = Arrival(Asker("test", 2, 7), place=2, conversation=2, lang_hint="fr")
    await door.ask(came, "horaires", replies)
    assert not replies.sent
    assert replies.notices == [ui_text("not_here", "fr")]


async def test_a_stale_button_is_said_so(tiny_bot: FAQBot) -> None:
    door = door_for(tiny_bot)
    replies = Recorded()
    came = Arrival(Asker("test", 1, 7), place=1, conversation=1, lang_hint="en")
    await door.click(came, Choice("", "fr", "vanished_topic").payload, replies)
    assert replies.notices == [ui_text("stale_button", "en")]
    assert not replies.sent
