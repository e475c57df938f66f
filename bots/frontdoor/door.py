"""The front door: what every platform does with an event once its adapter has parsed it.

An adapter turns a platform event into an `Arrival` (who, where, which conversation) and hands
it, with what was asked, to `FrontDoor`, along with its `Replies`: the door admits the event
(bots/frontdoor/admission.py), waits for the conversation's turn (ordering.py), asks
`FAQService` (with the questions of the other conversations whose turn came at the same
moment: `Batches`), describes the reply (replies.py) and gives that description to `Replies`,
which renders and sends it on the platform.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from bots import feedback
from bots.feedback import FeedbackClick
from bots.frontdoor.admission import Admission, Verdict
from bots.frontdoor.ordering import Turns
from bots.frontdoor.replies import (
    FeedbackControl,
    ReplyLayout,
    choices_instead,
    layout,
    parse_choice,
    text_layout,
    topics_layout,
)
from bots.frontdoor.texts import ui_text
from bots.service import Asked, Asker, FAQService
from core import Reply, Suggestion, UnknownIntentError

logger = logging.getLogger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass(frozen=True)
class Arrival:
    """An event as the front door sees it: who asked, where, and in which conversation.

    `place` is what the allow-list names (a chat, a server); `conversation` the key of the
    events kept in order (None: none to keep); `event_id` the platform's id of the event when
    the platform may deliver it twice.
    """

    asker: Asker
    place: int | None
    conversation: Hashable | None
    lang_hint: str | None = None
    event_id: int | None = None

    @property
    def user(self) -> int | None:
        return self.asker.user if isinstance(self.asker.user, int) else None


class Replies(Protocol):
    """An adapter's way back to the platform, for one event."""

    tells_refusal: bool  # whether a refused event gets a "not here" notice
    # Whether buttons can be shown to one user only: then the topics to choose instead after
    # "not helpful" are offered to anyone who clicks it, else to the asker only.
    private_buttons: bool

    async def send(self, layout: ReplyLayout) -> None:
        """Render the reply and send it."""

    async def notice(self, text: str | None) -> None:
        """A short notice to the asker; None: only acknowledge (a click waiting for it)."""

    async def replace_feedback(self, instead: tuple[FeedbackControl, ...]) -> None:
        """Replace the feedback buttons of the clicked message by `instead`."""

    async def feedback_recorded(self, outcome: FeedbackOutcome) -> None:
        """Thank for a feedback click; the asker's first one also changes the message."""


@dataclass(frozen=True)
class FeedbackOutcome:
    """A feedback click, recorded: whether it was the asker's and the first, and what to say."""

    mine: bool
    first: bool
    thanks: str
    instead: tuple[FeedbackControl, ...]  # the topics offered instead, as buttons


class FrontDoor:
    """Admission, order, the call to FAQService and the reply's layout, for one platform."""

    def __init__(self, service: FAQService, admission: Admission, turns: Turns, *,
                 feedback_buttons: bool = True) -> None:
        self.service = service
        self.admission = admission
        self.turns = turns
        self.feedback_buttons = feedback_buttons
        self._batches: Batches[Asked, ReplyLayout] = Batches(self._answer_all)

    def language(self, hint: str | None) -> str:
        """The reply language for a platform's language hint."""
        return self.service.language(hint)

    @contextlib.asynccontextmanager
    async def entered(self, arrival: Arrival, replies: Replies) -> AsyncIterator[bool]:
        """Admit the event and hold its conversation's turn; yields whether it may go on. A
        refusal, a duplicate or a flood's silence is dealt with at once; a rate-limit notice
        waits for the conversation's turn, after the replies before it."""
        verdict = self.admission.admit(arrival.place, arrival.user, event_id=arrival.event_id)
        if verdict not in {Verdict.ADMITTED, Verdict.NOTIFY}:
            await self._turn_away(verdict, arrival, replies)
            yield False
            return
        async with self.turns.turn(arrival.conversation) as served:
            if served and verdict is not Verdict.ADMITTED:
                await self._turn_away(verdict, arrival, replies)
            yield served and verdict is Verdict.ADMITTED

    async def ask(self, arrival: Arrival, question: str, replies: Replies) -> None:
        """A question: its reply, with feedback buttons under a curated answer."""
        async with self.entered(arrival, replies) as admitted:
            if admitted:
                asked = Asked(question, arrival.lang_hint, arrival.asker)
                await replies.send(await self._batches.answer(asked))

    def _answer_all(self, questions: Sequence[Asked]) -> list[ReplyLayout]:
        """The layouts of the replies to admitted questions, answered in one batch."""
        answered = self.service.answer_many_with_feedback(questions,
                                                          feedback=self.feedback_buttons)
        return [layout(reply, ticket, self._title(reply)) for reply, ticket in answered]

    async def show_topics(self, arrival: Arrival, intro_key: str, replies: Replies) -> None:
        """An interface text (`intro_key`) followed by every topic as a choice."""
        async with self.entered(arrival, replies) as admitted:
            if admitted:
                lang = self.language(arrival.lang_hint)
                await replies.send(self.topics(ui_text(intro_key, lang), lang))

    def topics(self, intro: str, lang: str) -> ReplyLayout:
        """`intro`, then every topic as a choice."""
        return topics_layout(intro, self.service.topics(lang), lang)

    async def say(self, arrival: Arrival, text: str, replies: Replies) -> None:
        """An interface text (usage, help) in reply."""
        async with self.entered(arrival, replies) as admitted:
            if admitted:
                await replies.send(text_layout(text, self.language(arrival.lang_hint)))

    async def click(self, arrival: Arrival, payload: str, replies: Replies) -> None:
        """A button: a choice (its answer), or a feedback click; a stale or unknown one says
        so."""
        async with self.entered(arrival, replies) as admitted:
            if not admitted:
                return
            click = feedback.parse(payload)
            if click is not None:
                await self._feedback(arrival, click, replies)
                return
            reply = self._chosen(payload, arrival.asker)
            if reply is None:
                await replies.notice(ui_text("stale_button", self.language(arrival.lang_hint)))
                return
            await replies.notice(None)
            await replies.send(layout(reply, title=self._title(reply)))

    def search(self, arrival: Arrival, text: str, lang: str | None,
               limit: int) -> list[Suggestion] | None:
        """The topics closest to `text` (typed so far), or None when the place is refused;
        searches are not rate limited (they come letter by letter)."""
        verdict = self.admission.admit(arrival.place, arrival.user, event_id=arrival.event_id,
                                       rate_limited=False)
        if verdict is not Verdict.ADMITTED:
            return None
        return self.service.suggest(text, self.language(lang), limit)

    def _chosen(self, payload: str, asker: Asker) -> Reply | None:
        choice = parse_choice(payload)
        if choice is None:
            return None
        if choice.intent is None:
            return self.service.none_of_these(choice.lang, asker=asker)
        try:
            return self.service.choose(choice.intent, choice.lang, asker=asker)
        except UnknownIntentError:  # the knowledge base changed since the button was sent
            return None

    async def _feedback(self, arrival: Arrival, click: FeedbackClick, replies: Replies) -> None:
        if click.action == "c":
            await self._chosen_instead(arrival, click, replies)
            return
        await replies.feedback_recorded(
            self.record_feedback(click, arrival.asker, offer_to_others=replies.private_buttons))

    def record_feedback(self, click: FeedbackClick, asker: Asker, *,
                        offer_to_others: bool) -> FeedbackOutcome:
        """Record a "helpful" or "not helpful" click; after a first "not helpful" (the asker's
        only, unless `offer_to_others`), the topics to choose instead."""
        mine = click.asker == self.service.asker_tag(click.ref, asker)
        first = self.service.record_feedback(click, asker)
        offered = click.action == "n" and first and (mine or offer_to_others)
        topics = self.service.alternatives(click) if offered else []
        thanks = ui_text("feedback_alternatives" if topics else "feedback_thanks", click.lang)
        tag = click.asker if mine else self.service.asker_tag(click.ref, asker)
        return FeedbackOutcome(mine, first, thanks, choices_instead(click, topics, tag))

    async def _chosen_instead(self, arrival: Arrival, click: FeedbackClick,
                              replies: Replies) -> None:
        """A topic chosen after "not helpful": its answer, like a clarification's choice; the
        asker's choice also takes the choices off the message."""
        try:
            reply = self.service.choose_instead(click, arrival.asker)
        except UnknownIntentError:  # the knowledge base changed since the message was sent
            await replies.notice(ui_text("stale_button", click.lang))
            return
        await replies.notice(None)
        if click.asker == self.service.asker_tag(click.ref, arrival.asker):
            await replies.replace_feedback(())
        await replies.send(layout(reply, title=self._title(reply)))

    async def _turn_away(self, verdict: Verdict, arrival: Arrival, replies: Replies) -> None:
        lang = self.language(arrival.lang_hint)
        if verdict is Verdict.NOTIFY:
            await replies.notice(ui_text("rate_limited", lang))
        elif verdict is Verdict.REFUSED and replies.tells_refusal:
            await replies.notice(ui_text("not_here", lang))
        elif verdict is Verdict.SILENT:
            await replies.notice(None)

    def _title(self, reply: Reply) -> str | None:
        # A curated answer's title is its intent's question, as the knowledge base words it.
        if reply.kind != "answer":
            return None
        intent = self.service.kb.intent(reply.intent or "")
        return intent.question[reply.lang] if intent else reply.question


# -- batches --------------------------------------------------------------------------------
# In a burst, many conversations reach their turn in the same pass of the event loop.
# Answering their questions in one call lets the classifier run the sentence encoder once for
# all those its n-gram model is unsure of, at a fraction of the cost per question of one pass
# each (docs/performance.md). A question alone waits for nothing more than the next pass.


class Batches(Generic[Item, Result]):
    """Gathers the items awaited in one pass of the event loop and hands them, in the order
    they came, to `answer_all` (a plain function: one result per item, in order)."""

    def __init__(self, answer_all: Callable[[Sequence[Item]], Sequence[Result]]) -> None:
        self._answer_all = answer_all
        self._pending: list[tuple[Item, asyncio.Future[Result]]] = []

    async def answer(self, item: Item) -> Result:
        """The result for `item`, computed with the items that joined in the same pass."""
        loop = asyncio.get_running_loop()
        if not self._pending:
            loop.call_soon(self._answer_pending)
        # One future per item: a caller cancelled (its event abandoned) leaves the others be.
        result: asyncio.Future[Result] = loop.create_future()
        self._pending.append((item, result))
        return await result

    def _answer_pending(self) -> None:
        pending, self._pending = self._pending, []
        try:
            results = self._answer_all([item for item, _ in pending])
        except Exception as error:
            if len(pending) == 1:
                _fail(pending[0][1], error)
                return
            # One bad item must not fail the others: each is answered alone, as it would
            # have been without batches.
            for item, result in pending:
                self._answer_alone(item, result)
            return
        for (_, result), value in zip(pending, results, strict=True):
            _succeed(result, value)

    def _answer_alone(self, item: Item, result: asyncio.Future[Result]) -> None:
        try:
            value = self._answer_all([item])[0]
        except Exception as error:
            _fail(result, error)
            return
        _succeed(result, value)


# A future already done was cancelled: its caller has gone, and nobody reads it.
def _succeed(result: asyncio.Future[Result], value: Result) -> None:
    if not result.done():
        result.set_result(value)


def _fail(result: asyncio.Future[Result], error: Exception) -> None:
    if not result.done():
        result.set_exception(error)
