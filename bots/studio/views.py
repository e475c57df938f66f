"""The studio's pages: inbox, try, knowledge base, before saving, stats.

Pages only read (GET); every change is a POST that edits the session's draft (or the dismissed
list, or saves) and redirects to a page, which shows the outcome once.
"""

from __future__ import annotations

import asyncio
import difflib
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import jinja2
from aiohttp import web
from multidict import MultiMapping

from bots.studio import charts
from bots.studio.state import Draft, Session, Studio
from bots.studio.texts import LANGUAGES, texts_for
from core import FAQBot, KnowledgeBaseError, Reply
from core.encoder import meaning_embedder
from core.errors import FaqbotError
from core.evaluation import IN_SCOPE_OUTCOMES, OOS_OUTCOMES
from core.kbedit import IntentFields, KbDraft, StaleFileError, content_hash, save
from core.knowledge import Intent, KnowledgeBase
from core.lint import lint_knowledge_base
from core.questionlog.interface import NONE_OF_THESE, LoggedQuestion
from core.review import build_review
from core.stats import KINDS, compute_stats
from core.text import normalize

STUDIO = web.AppKey("studio", Studio)
SESSION = "faqbot_studio_session"
PERIODS = (7, 30, 90, 0)  # days; 0 is the whole log
DEFAULT_PERIOD = 30
TOP_RANKING = 5
SHOWN_CHANGED_REPLIES = 200
# The field a `faqbot validate` message names: "intent 'x', field 'answer.fr': ...".
_FIELD = re.compile(r"intent '(?P<intent>[^']*)', field '(?P<field>[^']*)'")
_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("bots.studio", "templates"),
    autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


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


# -- rendering ----------------------------------------------------------------------------------


def _render(request: web.Request, template: str, page: str, **context: Any) -> web.Response:
    studio, session = request.app[STUDIO], _session(request)
    html = _TEMPLATES.get_template(template).render(
        t=texts_for(session.lang), lang=session.lang, csrf=session.csrf, page=page,
        here=request.path_qs, notices=session.take_notices(),
        pending=len(session.draft.changes) if session.draft else 0,
        base=studio.base_hash(session), **context)
    return web.Response(text=html, content_type="text/html")


def problem(request: web.Request, error: FaqbotError) -> web.Response:
    """The page shown when the knowledge-base file on disk cannot be read or validated."""
    return _render(request, "problem.html", "", problem=str(error))


def _session(request: web.Request) -> Session:
    session: Session = request[SESSION]
    return session


def _period(request: web.Request) -> tuple[int, datetime | None]:
    """The period chosen with ?days= (one of PERIODS), and its start."""
    try:
        days = int(request.query.get("days", DEFAULT_PERIOD))
    except ValueError:
        days = DEFAULT_PERIOD
    days = days if days in PERIODS else DEFAULT_PERIOD
    return days, datetime.now(UTC) - timedelta(days=days) if days else None


async def _logged(studio: Studio, since: datetime | None) -> tuple[list[LoggedQuestion], str]:
    """The logged questions, or none and the reason the log cannot be read."""
    try:
        return await studio.logged_questions(since), ""
    except FaqbotError as error:
        return [], str(error)


async def home(_: web.Request) -> web.StreamResponse:
    """The inbox is the first page."""
    raise web.HTTPSeeOther("/inbox")


# -- inbox --------------------------------------------------------------------------------------


async def inbox(request: web.Request) -> web.Response:
    """The groups of `faqbot review`, less what the knowledge base or the curator handled."""
    studio, session = request.app[STUDIO], _session(request)
    days, since = _period(request)
    entries, log_problem = await _logged(studio, since)
    bot = await studio.versions.bot(studio.working_text(session))
    handled = {normalize(text) for text in bot.kb.training_data()[0]} | studio.dismissed.load()
    waiting = [entry for entry in entries
               if entry.question is None or normalize(entry.question) not in handled]
    review = await asyncio.to_thread(build_review, waiting, bot, since,
                                     embed=meaning_embedder(bot.kb.encoder))
    return _render(request, "inbox.html", "inbox", review=review, log_problem=log_problem,
                   days=days, periods=PERIODS, kb=bot.kb, total=len(entries),
                   none_of_these=NONE_OF_THESE,
                   instead=[_chosen_most(group.chosen) for group in review.unhelpful])


def _chosen_most(chosen: dict[str, int]) -> str | None:
    """The intent users chose most often instead of a not-helpful answer, if any."""
    intents = {choice: count for choice, count in chosen.items() if choice != NONE_OF_THESE}
    return max(intents, key=intents.__getitem__) if intents else None


async def inbox_action(request: web.Request) -> web.StreamResponse:
    """Add a group's chosen questions as examples, mark them out of scope, or dismiss them."""
    studio, session = request.app[STUDIO], _session(request)
    form = await request.post()
    texts = [str(text) for text in form.getall("question", [])]
    action, lang = str(form.get("action", "")), str(form.get("lang", ""))
    t = texts_for(session.lang)
    if not texts:
        session.notify("error", t["nothing_selected"])
    elif action == "dismiss":
        session.notify("ok", t["dismissed"].format(n=studio.dismissed.add(texts)))
    elif _fresh(studio, session, form):
        owner = str(form.get("intent", "")) if action == "examples" else None
        name = owner or t["out_of_scope"]
        added: list[int] = []
        error = _edit(studio, session,
                      lambda draft: added.append(draft.add_examples(owner, lang, texts)),
                      lambda: t["change_examples"].format(owner=name, n=added[0], lang=lang),
                      lambda: t["added_examples"].format(n=added[0], owner=name, lang=lang))
        if error:
            session.notify("error", error)
    raise web.HTTPSeeOther(f"/inbox?days={request.query.get('days', DEFAULT_PERIOD)}")


def _fresh(studio: Studio, session: Session, form: MultiMapping[Any]) -> bool:
    """Whether the page the form came from was built on the file as it is (or on the
    session's draft); if not, say so and change nothing."""
    if str(form.get("base", "")) == studio.base_hash(session):
        return True
    session.notify("error", texts_for(session.lang)["stale"])
    return False


def _edit(studio: Studio, session: Session, change: Callable[[KbDraft], object],
          describe: Callable[[], str], done: Callable[[], str]) -> str | None:
    """Apply a change to the session's draft if the result validates; else return the error
    (in `faqbot validate`'s words) and keep the draft as it was."""
    before = studio.working_text(session)
    try:
        draft = KbDraft(before)
        change(draft)
        text = draft.text()
        studio.versions.kb(text)
    except KnowledgeBaseError as error:
        return str(error)
    if text != before:
        if session.draft is None:
            session.draft = Draft(base_text=before, text=text)
        session.draft.text = text
        session.draft.changes.append(describe())
    session.notify("ok", done())
    return None


# -- try ----------------------------------------------------------------------------------------


async def try_question(request: web.Request) -> web.Response:
    """What a user would get for a question, and the scores behind it."""
    studio, session = request.app[STUDIO], _session(request)
    question = request.query.get("q", "")
    lang = request.query.get("lang", "")
    bot = await studio.versions.bot(studio.working_text(session))
    reply: Reply | None = None
    ranking: list[tuple[str, float]] = []
    if question.strip():
        reply = bot.answer(question, lang if lang in bot.kb.languages else None)
        if reply.question.strip():
            ranking = bot.classifier.predict_one(reply.question).ranking[:TOP_RANKING]
    return _render(request, "try.html", "try", question=question, chosen_lang=lang, reply=reply,
                   ranking=ranking, kb=bot.kb, threshold=bot.classifier.threshold_,
                   margin=bot.classifier.margin_, on_draft=session.draft is not None)


# -- knowledge base -----------------------------------------------------------------------------


async def knowledge_base(request: web.Request) -> web.Response:
    """Every intent, with the warnings `faqbot validate` prints."""
    studio, session = request.app[STUDIO], _session(request)
    kb = studio.versions.kb(studio.working_text(session))
    warnings = lint_knowledge_base(kb)
    return _render(request, "kb.html", "kb", kb=kb, path=studio.kb_path,
                   warnings=warnings, intent_warnings=_warnings_by_intent(kb, warnings))


def _warnings_by_intent(kb: KnowledgeBase, warnings: list[str]) -> dict[str, list[str]]:
    """The warnings that name each intent ('id' or (id))."""
    return {intent.id: [warning for warning in warnings
                        if f"'{intent.id}'" in warning or f"({intent.id})" in warning]
            for intent in kb.intents}


async def new_intent(request: web.Request) -> web.Response:
    """The form for a new intent, and its submission."""
    return await _intent_form(request, None)


async def edit_intent(request: web.Request) -> web.Response:
    """The form of one intent, and its submission."""
    return await _intent_form(request, request.match_info["id"])


async def _intent_form(request: web.Request, intent_id: str | None) -> web.Response:
    studio, session = request.app[STUDIO], _session(request)
    kb = studio.versions.kb(studio.working_text(session))
    intent = kb.intent(intent_id) if intent_id else None
    if intent_id and intent is None:
        raise web.HTTPNotFound(text=f"no intent {intent_id}")
    values = _intent_values(intent, kb)
    error = None
    if request.method == "POST":
        form = await request.post()
        values = _submitted(form, kb, intent_id)
        if _fresh(studio, session, form):
            error = _save_intent(studio, session, values, creating=intent is None)
            if error is None:
                raise web.HTTPSeeOther(f"/kb/intent/{values['id']}")
    warnings = _warnings_by_intent(kb, lint_knowledge_base(kb)).get(intent_id or "", [])
    return _render(request, "intent.html", "kb", kb=kb, values=values, creating=intent is None,
                   error=error, error_field=_field_of(error),
                   warnings=_by_field(warnings, kb.languages),
                   others=[other.id for other in kb.intents if other.id != intent_id])


def _field_of(error: str | None) -> str:
    """The field a validation error names ("answer.fr"), or "" when it names none."""
    located = _FIELD.search(error or "")
    return located["field"] if located else ""


def _by_field(warnings: list[str], languages: list[str]) -> dict[str, list[str]]:
    """Warnings about the examples of one language go next to that field; others on top."""
    placed: dict[str, list[str]] = {}
    for warning in warnings:
        field = next((f"examples.{lang}" for lang in languages if f"in '{lang}'" in warning),
                     "")
        placed.setdefault(field, []).append(warning)
    return placed


def _intent_values(intent: Intent | None, kb: KnowledgeBase) -> dict[str, Any]:
    """The form's fields for an intent (empty for a new one)."""
    languages = kb.languages
    if intent is None:
        return {"id": "", "kind": "faq", "question": dict.fromkeys(languages, ""),
                "answer": dict.fromkeys(languages, ""),
                "examples": dict.fromkeys(languages, ""), "related": []}
    return {"id": intent.id, "kind": intent.kind,
            "question": {lang: intent.question.get(lang, "") for lang in languages},
            "answer": {lang: intent.answer.get(lang, "") for lang in languages},
            "examples": {lang: "\n".join(intent.examples.get(lang, [])) for lang in languages},
            "related": list(intent.related)}


def _submitted(form: MultiMapping[Any], kb: KnowledgeBase, intent_id: str | None,
               ) -> dict[str, Any]:
    def text(name: str) -> str:
        return str(form.get(name, "")).replace("\r\n", "\n").strip()

    return {"id": intent_id or text("id"), "kind": text("kind") or "faq",
            "question": {lang: text(f"question.{lang}") for lang in kb.languages},
            "answer": {lang: text(f"answer.{lang}") for lang in kb.languages},
            "examples": {lang: text(f"examples.{lang}") for lang in kb.languages},
            "related": [str(related) for related in form.getall("related", [])]}


def _save_intent(studio: Studio, session: Session, values: dict[str, Any], *,
                 creating: bool) -> str | None:
    fields = IntentFields(
        kind=values["kind"], question=values["question"], answer=values["answer"],
        examples={lang: [line.strip() for line in text.splitlines() if line.strip()]
                  for lang, text in values["examples"].items()},
        related=values["related"])
    t, intent_id = texts_for(session.lang), values["id"]
    return _edit(studio, session,
                 lambda draft: draft.set_intent(intent_id, fields, create=creating),
                 lambda: t["change_new_intent" if creating else "change_intent"].format(
                     id=intent_id),
                 lambda: t["intent_saved"].format(id=intent_id))


async def out_of_scope(request: web.Request) -> web.Response:
    """The out-of-scope examples of each language, and their submission."""
    studio, session = request.app[STUDIO], _session(request)
    kb = studio.versions.kb(studio.working_text(session))
    values = {lang: "\n".join(kb.out_of_scope.get(lang, [])) for lang in kb.languages}
    error = None
    if request.method == "POST":
        form = await request.post()
        values = {lang: str(form.get(lang, "")).replace("\r\n", "\n") for lang in kb.languages}
        if _fresh(studio, session, form):
            t = texts_for(session.lang)
            examples = {lang: [line.strip() for line in text.splitlines() if line.strip()]
                        for lang, text in values.items()}
            error = _edit(studio, session, lambda draft: draft.set_out_of_scope(examples),
                          lambda: t["change_out_of_scope"], lambda: t["out_of_scope_saved"])
            if error is None:
                raise web.HTTPSeeOther("/kb/out_of_scope")
    return _render(request, "out_of_scope.html", "kb", kb=kb, values=values, error=error,
                   error_field=_field_of(error))


async def delete_intent(request: web.Request) -> web.StreamResponse:
    """Delete an intent from the draft."""
    studio, session = request.app[STUDIO], _session(request)
    form = await request.post()
    intent_id, t = request.match_info["id"], texts_for(session.lang)
    if _fresh(studio, session, form):
        error = _edit(studio, session, lambda draft: draft.delete_intent(intent_id),
                      lambda: t["change_delete"].format(id=intent_id),
                      lambda: t["intent_deleted"].format(id=intent_id))
        if error:
            session.notify("error", error)
            raise web.HTTPSeeOther(f"/kb/intent/{intent_id}")
    raise web.HTTPSeeOther("/kb")


# -- before saving ------------------------------------------------------------------------------


async def changes(request: web.Request) -> web.Response:
    """The pending changes and their effect: evaluation before and after, changed replies."""
    studio, session = request.app[STUDIO], _session(request)
    draft = session.draft
    if draft is None:
        return _render(request, "changes.html", "changes", draft=None)
    versions = studio.versions
    before, after = (await versions.evaluation(draft.base_text),
                     await versions.evaluation(draft.text))
    entries, _ = await _logged(studio, None)
    changed = await _changed_replies(entries, await versions.bot(draft.base_text),
                                     await versions.bot(draft.text))
    diff = difflib.unified_diff(draft.base_text.splitlines(), draft.text.splitlines(),
                                str(studio.kb_path), "draft", lineterm="", n=1)
    return _render(request, "changes.html", "changes", draft=draft,
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
    studio, session = request.app[STUDIO], _session(request)
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
    session = _session(request)
    session.draft = None
    session.notify("ok", texts_for(session.lang)["discarded"])
    raise web.HTTPSeeOther("/changes")


# -- stats --------------------------------------------------------------------------------------


async def stats(request: web.Request) -> web.Response:
    """Questions per day and platform, reply kinds over time, most asked intents."""
    studio = request.app[STUDIO]
    days, since = _period(request)
    entries, log_problem = await _logged(studio, since)
    summary = compute_stats(entries, since)
    pictures = []
    if entries:
        t = texts_for(_session(request).lang)
        day_names, per_platform = charts.daily_series(entries, "platform")
        _, per_kind = charts.daily_series(entries, "kind")
        per_kind = {t[f"kind_{kind}"]: per_kind.get(kind, [0] * len(day_names))
                    for kind in KINDS}
        pictures = [("per_day_platform", charts.stacked_columns(day_names, per_platform)),
                    ("kinds_over_time", charts.stacked_columns(day_names, per_kind)),
                    ("top_intents", charts.horizontal_bars(summary.top_intents))]
    return _render(request, "stats.html", "stats", summary=summary, pictures=pictures,
                   log_problem=log_problem, days=days, periods=PERIODS)


async def switch_language(request: web.Request) -> web.StreamResponse:
    """Show the pages in another language."""
    session = _session(request)
    form = await request.post()
    if form.get("lang") in LANGUAGES:
        session.lang = str(form["lang"])
    back = str(form.get("next", "/"))
    local = back.startswith("/") and not back.startswith("//") and "\\" not in back
    raise web.HTTPSeeOther(back if local else "/")  # never to another site
