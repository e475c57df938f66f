"""What every page of the studio shares: rendering, the session, the period, the log, edits.

Pages only read (GET); every change is a POST that edits the session's draft (or the dismissed
list, or saves) and redirects to a page, which shows the outcome once. Every page calls
`edit` to change the draft, which keeps a change only if the knowledge base still validates.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import jinja2
from aiohttp import web
from multidict import MultiMapping

from bots.studio.state import Draft, Session, Studio
from bots.studio.texts import texts_for
from core import KnowledgeBaseError
from core.errors import FaqbotError
from core.kbedit import KbDraft
from core.questionlog.interface import LoggedQuestion

STUDIO = web.AppKey("studio", Studio)
SESSION = "faqbot_studio_session"
PERIODS = (7, 30, 90, 0)  # days; 0 is the whole log
DEFAULT_PERIOD = 30
_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("bots.studio", "templates"),
    autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)

# -- rendering ----------------------------------------------------------------------------------


def render(request: web.Request, template: str, page: str, **context: Any) -> web.Response:
    studio, session = request.app[STUDIO], session_of(request)
    html = _TEMPLATES.get_template(template).render(
        t=texts_for(session.lang), lang=session.lang, csrf=session.csrf, page=page,
        here=request.path_qs, notices=session.take_notices(),
        pending=len(session.draft.changes) if session.draft else 0,
        base=studio.base_hash(session), **context)
    return web.Response(text=html, content_type="text/html")


def problem(request: web.Request, error: FaqbotError) -> web.Response:
    """The page shown when the knowledge-base file on disk cannot be read or validated."""
    return render(request, "problem.html", "", problem=str(error))


def session_of(request: web.Request) -> Session:
    session: Session = request[SESSION]
    return session


def period(request: web.Request) -> tuple[int, datetime | None]:
    """The period chosen with ?days= (one of PERIODS), and its start."""
    try:
        days = int(request.query.get("days", DEFAULT_PERIOD))
    except ValueError:
        days = DEFAULT_PERIOD
    days = days if days in PERIODS else DEFAULT_PERIOD
    return days, datetime.now(UTC) - timedelta(days=days) if days else None


async def logged(studio: Studio, since: datetime | None) -> tuple[list[LoggedQuestion], str]:
    """The logged questions, or none and the reason the log cannot be read."""
    try:
        return await studio.logged_questions(since), ""
    except FaqbotError as error:
        return [], str(error)



def fresh(studio: Studio, session: Session, form: MultiMapping[Any]) -> bool:
    """Whether the page the form came from was built on the file as it is (or on the
    session's draft); if not, say so and change nothing."""
    if str(form.get("base", "")) == studio.base_hash(session):
        return True
    session.notify("error", texts_for(session.lang)["stale"])
    return False


def edit(studio: Studio, session: Session, change: Callable[[KbDraft], object],
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
