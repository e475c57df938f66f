"""The studio's web server: access token, session cookie, CSRF check, security headers.

At start it prints one URL holding a random token. Opening it creates a session, sets its id
in an HttpOnly, SameSite=Strict cookie and redirects to the same page without the token; every
other request without a known session gets 403, and every POST must carry the session's CSRF
token. Pages are Jinja2 templates with autoescaping, styled by one local stylesheet, with no
script at all, under a Content-Security-Policy that allows nothing from anywhere else.
"""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TextIO

from aiohttp import web

from bots.studio import pages, views
from bots.studio.state import Session, Studio
from core import FaqbotError, KnowledgeBaseError

COOKIE = "faqbot_studio"
STATIC = Path(__file__).parent / "static"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
                               "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the first URL holds the token
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def create_app(studio: Studio) -> web.Application:
    """The web application, its routes behind the access and CSRF checks."""
    app = web.Application(middlewares=[_security_headers, _access, _problems],
                          client_max_size=1 << 20)
    app[pages.STUDIO] = studio
    views.add_routes(app)
    app.router.add_static("/static/", STATIC)
    return app


@web.middleware
async def _security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as error:
        response = error
    response.headers.update(SECURITY_HEADERS)
    return response


@web.middleware
async def _access(request: web.Request, handler: Handler) -> web.StreamResponse:
    studio = request.app[pages.STUDIO]
    if "token" in request.query:
        return _open_session(request, studio)
    session = studio.sessions.get(request.cookies.get(COOKIE, ""))
    if session is None:
        raise web.HTTPForbidden(text="403: open the URL faqbot studio printed at start.\n")
    if request.method == "POST" and not await _csrf_ok(request, session):
        raise web.HTTPForbidden(text="403: missing or wrong CSRF token; reload the page.\n")
    request[pages.SESSION] = session
    return await handler(request)


@web.middleware
async def _problems(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A knowledge-base file broken on disk (edited by hand meanwhile) gets a page saying so."""
    try:
        return await handler(request)
    except KnowledgeBaseError as error:
        return pages.problem(request, error)


def _open_session(request: web.Request, studio: Studio) -> web.StreamResponse:
    """The token in the URL opens a session, then the same page is shown without it."""
    if not _same(request.query["token"], studio.token):
        raise web.HTTPForbidden(text="403: wrong access token.\n")
    query = {key: value for key, value in request.query.items() if key != "token"}
    response = web.HTTPSeeOther(str(request.rel_url.with_query(query)))
    response.set_cookie(COOKIE, studio.new_session(), httponly=True, samesite="Strict",
                        path="/")
    return response


async def _csrf_ok(request: web.Request, session: Session) -> bool:
    form = await request.post()
    return _same(str(form.get("csrf", "")), session.csrf)


def _same(given: str, expected: str) -> bool:
    return secrets.compare_digest(given.encode(), expected.encode())


# -- start and stop ---------------------------------------------------------------------------


def run(kb_path: Path, db: str | Path, host: str, port: int, out: TextIO = sys.stdout) -> None:
    """Serve until SIGINT or SIGTERM; prints the URL to open (KnowledgeBaseError if the file
    does not validate, FaqbotError if the address cannot be bound)."""
    asyncio.run(_serve(Studio(kb_path, db, secrets.token_urlsafe(32)), host, port, out))


async def _serve(studio: Studio, host: str, port: int, out: TextIO) -> None:
    studio.versions.kb(studio.file_text())  # a broken file stops here, with validate's words
    stop = _stop_on_signal()
    runner = web.AppRunner(create_app(studio), access_log=None)
    await runner.setup()
    try:
        listener = _listen(host, port)
        await web.SockSite(runner, listener).start()
        if not _is_loopback(host):
            print(f"faqbot studio: warning: listening on {host}, not on this machine only: "
                  "anyone who can reach it and gets the URL can edit the knowledge base",
                  file=sys.stderr, flush=True)
        shown = f"[{host}]" if ":" in host else host
        print(f"faqbot studio: open http://{shown}:{listener.getsockname()[1]}/"
              f"?token={studio.token}", file=out, flush=True)
        await stop.wait()
    finally:
        await runner.cleanup()


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family)
    except OSError as error:
        raise FaqbotError(f"--host {host} --port {port}: cannot listen: "
                          f"{error.strerror or error}") from None


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _stop_on_signal() -> asyncio.Event:
    """An event SIGINT and SIGTERM set (handled before the URL is printed: whoever reads it
    may stop the studio at once)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    return stop
