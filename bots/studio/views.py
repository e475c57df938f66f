"""The studio's routes, and its small pages: try a question, stats, the language switch.

The inbox is in inbox.py, the knowledge-base editor in editor.py, the page "before saving" in
changes.py; what they all share in pages.py.
"""

from __future__ import annotations

from aiohttp import web

from bots.studio import charts
from bots.studio.changes import changes, discard_changes, save_changes
from bots.studio.editor import delete_intent, edit_intent, knowledge_base, new_intent, out_of_scope
from bots.studio.inbox import inbox, inbox_action
from bots.studio.pages import PERIODS, STUDIO, logged, period, render, session_of
from bots.studio.texts import LANGUAGES, texts_for
from core import Reply
from core.stats import KINDS, compute_stats

TOP_RANKING = 5


def add_routes(app: web.Application) -> None:
    """Every page and action."""
    app.router.add_get("/", home)
    app.router.add_get("/inbox", inbox)
    app.router.add_post("/inbox", inbox_action)
    app.router.add_get("/try", try_question)
    app.router.add_get("/kb", knowledge_base)
    app.router.add_get("/kb/out_of_scope", out_of_scope)
    app.router.add_post("/kb/out_of_scope", out_of_scope)
    app.router.add_get("/kb/new", new_intent)
    app.router.add_post("/kb/new", new_intent)
    app.router.add_get("/kb/intent/{id}", edit_intent)
    app.router.add_post("/kb/intent/{id}", edit_intent)
    app.router.add_post("/kb/intent/{id}/delete", delete_intent)
    app.router.add_get("/changes", changes)
    app.router.add_post("/changes/save", save_changes)
    app.router.add_post("/changes/discard", discard_changes)
    app.router.add_get("/stats", stats)
    app.router.add_post("/lang", switch_language)


async def home(_: web.Request) -> web.StreamResponse:
    """The inbox is the first page."""
    raise web.HTTPSeeOther("/inbox")


# -- try ----------------------------------------------------------------------------------------


async def try_question(request: web.Request) -> web.Response:
    """What a user would get for a question, and the scores behind it."""
    studio, session = request.app[STUDIO], session_of(request)
    question = request.query.get("q", "")
    lang = request.query.get("lang", "")
    bot = await studio.versions.bot(studio.working_text(session))
    reply: Reply | None = None
    ranking: list[tuple[str, float]] = []
    if question.strip():
        reply = bot.answer(question, lang if lang in bot.kb.languages else None)
        if reply.question.strip():
            ranking = bot.classifier.predict_one(reply.question).ranking[:TOP_RANKING]
    return render(request, "try.html", "try", question=question, chosen_lang=lang, reply=reply,
                  ranking=ranking, kb=bot.kb, threshold=bot.classifier.threshold_,
                  margin=bot.classifier.margin_, on_draft=session.draft is not None)


# -- stats --------------------------------------------------------------------------------------


async def stats(request: web.Request) -> web.Response:
    """Questions per day and platform, reply kinds over time, most asked intents."""
    studio = request.app[STUDIO]
    days, since = period(request)
    entries, log_problem = await logged(studio, since)
    summary = compute_stats(entries, since)
    pictures = []
    if entries:
        t = texts_for(session_of(request).lang)
        day_names, per_platform = charts.daily_series(entries, "platform")
        _, per_kind = charts.daily_series(entries, "kind")
        per_kind = {t[f"kind_{kind}"]: per_kind.get(kind, [0] * len(day_names))
                    for kind in KINDS}
        pictures = [("per_day_platform", charts.stacked_columns(day_names, per_platform)),
                    ("kinds_over_time", charts.stacked_columns(day_names, per_kind)),
                    ("top_intents", charts.horizontal_bars(summary.top_intents))]
    return render(request, "stats.html", "stats", summary=summary, pictures=pictures,
                  log_problem=log_problem, days=days, periods=PERIODS)


async def switch_language(request: web.Request) -> web.StreamResponse:
    """Show the pages in another language."""
    session = session_of(request)
    form = await request.post()
    if form.get("lang") in LANGUAGES:
        session.lang = str(form["lang"])
    back = str(form.get("next", "/"))
    local = back.startswith("/") and not back.startswith("//") and "\\" not in back
    raise web.HTTPSeeOther(back if local else "/")  # never to another site
