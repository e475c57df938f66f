"""The studio's knowledge-base editor: the intents with their warnings, one intent's form,
the out-of-scope examples, deleting an intent. Every submission edits the session's draft.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from multidict import MultiMapping

from bots.studio.pages import STUDIO, edit, fresh, render, session_of
from bots.studio.state import Session, Studio
from bots.studio.texts import texts_for
from core.kbedit import IntentFields
from core.knowledge import Intent, KnowledgeBase
from core.lint import lint_knowledge_base

# The field a `faqbot validate` message names: "intent 'x', field 'answer.fr': ...".
_FIELD = re.compile(r"intent '(?P<intent>[^']*)', field '(?P<field>[^']*)'")


async def knowledge_base(request: web.Request) -> web.Response:
    """Every intent, with the warnings `faqbot validate` prints."""
    studio, session = request.app[STUDIO], session_of(request)
    kb = studio.versions.kb(studio.working_text(session))
    warnings = lint_knowledge_base(kb)
    return render(request, "kb.html", "kb", kb=kb, path=studio.kb_path,
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
    studio, session = request.app[STUDIO], session_of(request)
    kb = studio.versions.kb(studio.working_text(session))
    intent = kb.intent(intent_id) if intent_id else None
    if intent_id and intent is None:
        raise web.HTTPNotFound(text=f"no intent {intent_id}")
    values = _intent_values(intent, kb)
    error = None
    if request.method == "POST":
        form = await request.post()
        values = _submitted(form, kb, intent_id)
        if fresh(studio, session, form):
            error = _save_intent(studio, session, values, creating=intent is None)
            if error is None:
                raise web.HTTPSeeOther(f"/kb/intent/{values['id']}")
    warnings = _warnings_by_intent(kb, lint_knowledge_base(kb)).get(intent_id or "", [])
    return render(request, "intent.html", "kb", kb=kb, values=values, creating=intent is None,
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
    return edit(studio, session,
                lambda draft: draft.set_intent(intent_id, fields, create=creating),
                lambda: t["change_new_intent" if creating else "change_intent"].format(
                     id=intent_id),
                lambda: t["intent_saved"].format(id=intent_id))


async def out_of_scope(request: web.Request) -> web.Response:
    """The out-of-scope examples of each language, and their submission."""
    studio, session = request.app[STUDIO], session_of(request)
    kb = studio.versions.kb(studio.working_text(session))
    values = {lang: "\n".join(kb.out_of_scope.get(lang, [])) for lang in kb.languages}
    error = None
    if request.method == "POST":
        form = await request.post()
        values = {lang: str(form.get(lang, "")).replace("\r\n", "\n") for lang in kb.languages}
        if fresh(studio, session, form):
            t = texts_for(session.lang)
            examples = {lang: [line.strip() for line in text.splitlines() if line.strip()]
                        for lang, text in values.items()}
            error = edit(studio, session, lambda draft: draft.set_out_of_scope(examples),
                         lambda: t["change_out_of_scope"], lambda: t["out_of_scope_saved"])
            if error is None:
                raise web.HTTPSeeOther("/kb/out_of_scope")
    return render(request, "out_of_scope.html", "kb", kb=kb, values=values, error=error,
                  error_field=_field_of(error))


async def delete_intent(request: web.Request) -> web.StreamResponse:
    """Delete an intent from the draft."""
    studio, session = request.app[STUDIO], session_of(request)
    form = await request.post()
    intent_id, t = request.match_info["id"], texts_for(session.lang)
    if fresh(studio, session, form):
        error = edit(studio, session, lambda draft: draft.delete_intent(intent_id),
                     lambda: t["change_delete"].format(id=intent_id),
                     lambda: t["intent_deleted"].format(id=intent_id))
        if error:
            session.notify("error", error)
            raise web.HTTPSeeOther(f"/kb/intent/{intent_id}")
    raise web.HTTPSeeOther("/kb")
