"""The studio's page "before saving": the pending changes and their effect, saving, discarding.
"""

from __future__ import annotations

import asyncio
import difflib

from aiohttp import web

from bots.studio.pages import STUDIO, logged, render, session_of
from bots.studio.texts import texts_for
from core import FAQBot, KnowledgeBaseError, Reply
from core.evaluation import IN_SCOPE_OUTCOMES, OOS_OUTCOMES
from core.kbedit import StaleFileError, content_hash, save
from core.questionlog.interface import LoggedQuestion
from core.text import normalize

SHOWN_CHANGED_REPLIES = 200


async def changes(request: web.Request) -> web.Response:
    """The pending changes and their effect: evaluation before and after, changed replies."""
    studio, session = request.app[STUDIO], session_of(request)
    draft = session.draft
    if draft is None:
        return render(request, "changes.html", "changes", draft=None)
    versions = studio.versions
    before, after = (await versions.evaluation(draft.base_text),
                     await versions.evaluation(draft.text))
    entries, _ = await logged(studio, None)
    changed = await _changed_replies(entries, await versions.bot(draft.base_text),
                                     await versions.bot(draft.text))
    diff = difflib.unified_diff(draft.base_text.splitlines(), draft.text.splitlines(),
                                str(studio.kb_path), "draft", lineterm="", n=1)
    return render(request, "changes.html", "changes", draft=draft,
                  stale=content_hash(studio.file_text()) != draft.base_hash,
                  outcomes=[("in_scope", IN_SCOPE_OUTCOMES, before.in_scope_replies,
                             after.in_scope_replies),
                            ("out_of_scope_examples", OOS_OUTCOMES, before.oos_replies,
                             after.oos_replies)],
                  changed=changed,
                  shown=SHOWN_CHANGED_REPLIES, diff=list(diff))


async def _changed_replies(entries: list[LoggedQuestion], before: FAQBot, after: FAQBot,
                           ) -> list[tuple[str, Reply, Reply]]:
    """The distinct logged questions whose reply differs between the two bots."""
    texts = list({normalize(entry.question): entry.question for entry in entries
                  if entry.question and normalize(entry.question)}.values())

    def compare() -> list[tuple[str, Reply, Reply]]:
        pairs = zip(texts, before.answer_many(texts), after.answer_many(texts), strict=True)
        return [(text, old, new) for text, old, new in pairs
                if (old.kind, old.intent, old.answer) != (new.kind, new.intent, new.answer)]

    return await asyncio.to_thread(compare)


async def save_changes(request: web.Request) -> web.StreamResponse:
    """Write the draft to the file (refused if the file changed since the draft began)."""
    studio, session = request.app[STUDIO], session_of(request)
    t = texts_for(session.lang)
    if session.draft is not None:
        try:
            previous = await asyncio.to_thread(save, studio.kb_path, session.draft.text,
                                               session.draft.base_hash)
        except StaleFileError:
            session.notify("error", t["stale"])
        except KnowledgeBaseError as error:
            session.notify("error", str(error))
        else:
            session.draft = None
            session.notify("ok", t["saved"].format(path=studio.kb_path, previous=previous))
    raise web.HTTPSeeOther("/changes")


async def discard_changes(request: web.Request) -> web.StreamResponse:
    """Forget the draft."""
    session = session_of(request)
    session.draft = None
    session.notify("ok", texts_for(session.lang)["discarded"])
    raise web.HTTPSeeOther("/changes")
