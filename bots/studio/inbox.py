"""The studio's inbox: the groups of `faqbot review` a curator has not handled yet.

A curator adds a group's chosen questions as examples of an intent or as out of scope, or
dismisses them.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from bots.studio.pages import (
    DEFAULT_PERIOD,
    PERIODS,
    STUDIO,
    edit,
    fresh,
    logged,
    period,
    render,
    session_of,
)
from bots.studio.texts import texts_for
from core.encoder import meaning_embedder
from core.questionlog.interface import NONE_OF_THESE
from core.review import build_review
from core.text import normalize


async def inbox(request: web.Request) -> web.Response:
    """The groups of `faqbot review`, less what the knowledge base or the curator handled."""
    studio, session = request.app[STUDIO], session_of(request)
    days, since = period(request)
    entries, log_problem = await logged(studio, since)
    bot = await studio.versions.bot(studio.working_text(session))
    handled = {normalize(text) for text in bot.kb.training_data()[0]} | studio.dismissed.load()
    waiting = [entry for entry in entries
               if entry.question is None or normalize(entry.question) not in handled]
    review = await asyncio.to_thread(build_review, waiting, bot, since,
                                     embed=meaning_embedder(bot.kb.encoder))
    return render(request, "inbox.html", "inbox", review=review, log_problem=log_problem,
                  days=days, periods=PERIODS, kb=bot.kb, total=len(entries),
                  none_of_these=NONE_OF_THESE,
                  instead=[_chosen_most(group.chosen) for group in review.unhelpful])


def _chosen_most(chosen: dict[str, int]) -> str | None:
    """The intent users chose most often instead of a not-helpful answer, if any."""
    intents = {choice: count for choice, count in chosen.items() if choice != NONE_OF_THESE}
    return max(intents, key=intents.__getitem__) if intents else None


async def inbox_action(request: web.Request) -> web.StreamResponse:
    """Add a group's chosen questions as examples, mark them out of scope, or dismiss them."""
    studio, session = request.app[STUDIO], session_of(request)
    form = await request.post()
    texts = [str(text) for text in form.getall("question", [])]
    action, lang = str(form.get("action", "")), str(form.get("lang", ""))
    t = texts_for(session.lang)
    if not texts:
        session.notify("error", t["nothing_selected"])
    elif action == "dismiss":
        session.notify("ok", t["dismissed"].format(n=studio.dismissed.add(texts)))
    elif fresh(studio, session, form):
        owner = str(form.get("intent", "")) if action == "examples" else None
        name = owner or t["out_of_scope"]
        added: list[int] = []
        error = edit(studio, session,
                     lambda draft: added.append(draft.add_examples(owner, lang, texts)),
                     lambda: t["change_examples"].format(owner=name, n=added[0], lang=lang),
                     lambda: t["added_examples"].format(n=added[0], owner=name, lang=lang))
        if error:
            session.notify("error", error)
    raise web.HTTPSeeOther(f"/inbox?days={request.query.get('days', DEFAULT_PERIOD)}")
