"""A fake Telegram Bot API on 127.0.0.1, against which the real python-telegram-bot runs.

It answers `/bot{token}/{method}` as Telegram does (`{"ok": true, "result": ...}`), records
every call, serves `getUpdates` as a real long poll fed by the test (`push`), delivers updates
to a registered webhook (`push_webhook`), and injects faults on demand: an error status (429
with `retry_after`, 5xx, 400), a delay, a call held until released, a connection dropped
without an answer (before or after the call took effect), an error answered for a call that
took effect, or an update delivered twice. After `revoke_token`, every call answers 401, as
after a token is revoked.

    api = FakeTelegramAPI(token)
    await api.start()                       # base_url: http://127.0.0.1:<port>/bot
    api.push(update)                        # the next getUpdates returns it
    api.inject("sendMessage", Fault(status=429, retry_after=1))
    call = await api.wait_for("sendMessage", lambda c: c.params["chat_id"] == 42)
    await api.close()

For random faults under load, set `fault_picker`: it is asked for every call that has no
queued fault and returns a Fault or None.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Literal

import aiohttp
from aiohttp import web

BOT_ID = 4242
BOT_USERNAME = "faq_test_bot"

# Parameters PTB sends as JSON text inside the form, and those holding integers.
JSON_FIELDS = frozenset({"reply_markup", "reply_parameters", "results", "commands", "scope",
                         "allowed_updates", "entities", "link_preview_options", "button"})
INTEGER_FIELDS = frozenset({"chat_id", "offset", "limit", "timeout", "message_id",
                            "message_thread_id", "cache_time", "user_id", "max_connections"})


@dataclass(frozen=True)
class Call:
    """One request the bot made: the method, its decoded parameters, the status answered."""

    method: str
    params: dict[str, Any]
    status: int  # 0: the connection was dropped before the call took effect
    at: float  # time.monotonic() when it was answered
    # The bot had stopped waiting (timed out, or the connection was dropped) when the call
    # took effect, or was answered an error although it did: it cannot know that it did, so
    # it may well send it again.
    client_gone: bool = False


@dataclass(frozen=True)
class Fault:
    """What to do instead of a normal answer: wait, then answer `status`.

    The wait is `delay` seconds, then until `hold` is set (if given). `status=200` gives a slow
    but successful answer; 429 carries `retry_after`. `drop` closes the connection without any
    answer: "before" the call takes effect, or "after" (a sent message is then delivered).
    `applied` makes the call take effect and still answer `status` (Telegram applied a send
    but answered 502): the bot is told it failed.
    """

    status: int = 500
    description: str | None = None  # default: the HTTP reason phrase
    retry_after: int | None = None
    delay: float = 0.0
    hold: asyncio.Event | None = None
    drop: Literal["before", "after"] | None = None
    applied: bool = False


@dataclass(frozen=True)
class Webhook:
    """What the bot registered with setWebhook."""

    url: str
    secret: str | None


class FakeTelegramAPI:
    """The fake server; one per test, started and closed in the test's event loop."""

    def __init__(self, token: str, bot_id: int = BOT_ID,
                 bot_username: str = BOT_USERNAME) -> None:
        self.token = token
        self.bot_id = bot_id
        self.bot_username = bot_username
        self.calls: list[Call] = []
        self.webhook: Webhook | None = None
        self.fault_picker: Callable[[str, dict[str, Any]], Fault | None] | None = None
        self.port = 0
        self._pending: list[dict[str, Any]] = []
        self._faults: dict[str, deque[Fault]] = defaultdict(deque)
        self._chats: dict[int, dict[str, Any]] = {}
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(10_000)
        self._changed = asyncio.Event()
        self._closing = False
        self._runner: web.AppRunner | None = None

    # -- life cycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on a free port of 127.0.0.1."""
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        # No access log: request paths carry the token.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def close(self) -> None:
        """Wake the parked long polls (they answer an empty list), then stop listening."""
        self._closing = True
        self._notify()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        """The Bot API base to give the bot (the token is appended to it)."""
        return f"http://127.0.0.1:{self.port}/bot"

    # -- feeding updates ----------------------------------------------------------------------

    def push(self, update: dict[str, Any], *, duplicate: bool = False) -> int:
        """Queue an update for getUpdates (twice in a row with `duplicate`); returns its id."""
        update = self._numbered(update)
        self._pending.append(update)
        if duplicate:
            self._pending.append(update)
        self._notify()
        return int(update["update_id"])

    async def push_webhook(self, update: dict[str, Any], *, secret: str | None) -> int:
        """POST an update to the registered webhook as Telegram does; returns the HTTP status.

        Pass `secret=api.webhook.secret` to act as Telegram, None or another value to act as
        an intruder.
        """
        assert self.webhook is not None, "no webhook registered (setWebhook not called)"
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
        async with aiohttp.ClientSession() as session, session.post(
                self.webhook.url, json=self._numbered(update), headers=headers) as response:
            return response.status

    def _numbered(self, update: dict[str, Any]) -> dict[str, Any]:
        update = {"update_id": next(self._update_ids), **update}
        self._remember_chats(update)
        return update

    def _remember_chats(self, update: dict[str, Any]) -> None:
        # sendMessage answers a Message, whose chat type we learn from the updates.
        for message in (update.get("message"), update.get("callback_query", {}).get("message")):
            if message and "chat" in message:
                self._chats[message["chat"]["id"]] = message["chat"]

    # -- faults -------------------------------------------------------------------------------

    def inject(self, method: str, fault: Fault, times: int = 1) -> None:
        """Answer the next `times` calls of `method` with `fault` instead of success."""
        self._faults[method].extend([fault] * times)

    def _next_fault(self, method: str, params: dict[str, Any]) -> Fault | None:
        if self._faults[method]:
            return self._faults[method].popleft()
        return self.fault_picker(method, params) if self.fault_picker else None

    def revoke_token(self) -> None:
        """Refuse the bot's token from now on (401), as Telegram does once it is revoked; a
        long poll parked meanwhile answers at once."""
        self.token = f"{self.token}-revoked"
        self._notify()

    # -- observing ----------------------------------------------------------------------------

    def calls_to(self, method: str) -> list[Call]:
        """The calls of one method so far, in arrival order."""
        return [call for call in self.calls if call.method == method]

    async def wait_for(self, method: str, where: Callable[[Call], bool] | None = None, *,
                       since: int = 0, status: int = 200, timeout: float = 15.0) -> Call:
        """The first call of `method` answered with `status` and matching `where` among
        calls[since:], waiting for it if needed (TimeoutError after `timeout` seconds)."""

        def found() -> Call | None:
            return next((call for call in self.calls[since:]
                         if call.method == method and call.status == status
                         and (where is None or where(call))), None)

        async with asyncio.timeout(timeout):
            await self._until(lambda: found() is not None)
        result = found()
        assert result is not None
        return result

    async def wait_until(self, condition: Callable[[], bool], timeout: float = 15.0) -> None:
        """Wait until `condition()` holds; it is checked after every call and every push."""
        async with asyncio.timeout(timeout):
            await self._until(condition)

    def _notify(self) -> None:
        # Wake every waiter; each one checks its condition again on a fresh event.
        self._changed.set()
        self._changed = asyncio.Event()

    async def _until(self, condition: Callable[[], bool]) -> None:
        while not condition():
            await self._changed.wait()

    # -- serving ------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await _parameters(request)
        if request.match_info["token"] != self.token:
            return self._record(method, params, _error(401, "Unauthorized"))
        fault = self._next_fault(method, params)
        if fault is not None:
            if fault.drop == "before":
                return self._drop(request, Call(method, params, 0, time.monotonic()))
            await asyncio.sleep(fault.delay)
            if fault.hold is not None:
                await fault.hold.wait()
            await _close_reaches_us()
            if fault.status != 200 and not fault.applied:
                return self._record(method, params, _error(fault.status, fault.description,
                                                           fault.retry_after))
        if method == "getUpdates":
            result: Any = await self._get_updates(params, self.token)
            if result is None:
                return self._record(method, params, _error(409, "Conflict: can't use getUpdates "
                                                                "method while webhook is active"))
        else:
            result = self._result(method, params)
        return self._took_effect(request, method, params, result, fault)

    def _took_effect(self, request: web.Request, method: str, params: dict[str, Any],
                     result: Any, fault: Fault | None) -> web.Response:
        """Answer a call that took effect: with its result, or as `fault` says (no answer at
        all, or an error although it took effect: either way the bot cannot know it did)."""
        if fault is not None and fault.drop == "after":
            return self._drop(request, Call(method, params, 200, time.monotonic(), True))
        if fault is not None and fault.applied:
            self.calls.append(Call(method, params, 200, time.monotonic(), client_gone=True))
            self._notify()
            return _error(fault.status, fault.description, fault.retry_after)
        return self._record(method, params, web.json_response({"ok": True, "result": result}),
                            client_gone=request.transport is None)

    def _record(self, method: str, params: dict[str, Any], response: web.Response, *,
                client_gone: bool = False) -> web.Response:
        self.calls.append(Call(method, params, response.status, time.monotonic(), client_gone))
        self._notify()
        return response

    def _drop(self, request: web.Request, call: Call) -> web.Response:
        """Record `call`, then close the connection: the bot gets no answer at all."""
        self.calls.append(call)
        self._notify()
        if request.transport is not None:
            request.transport.close()
        return web.Response()  # written to a closed connection: never read

    async def _get_updates(self, params: dict[str, Any],
                           token: str) -> list[dict[str, Any]] | None:
        """Confirm updates below `offset`, then return the rest or wait up to `timeout`."""
        if self.webhook is not None:
            return None
        offset = params.get("offset", 0)
        self._pending = [update for update in self._pending if update["update_id"] >= offset]
        if not self._pending and params.get("timeout", 0) > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(params["timeout"]):
                    await self._until(lambda: bool(self._pending) or self._closing
                                      or token != self.token)
        ready = [update for update in self._pending if update["update_id"] >= offset]
        return ready[:params.get("limit", 100)]

    def _result(self, method: str, params: dict[str, Any]) -> Any:
        if method == "getMe":
            return {"id": self.bot_id, "is_bot": True, "first_name": "FAQ",
                    "username": self.bot_username, "can_join_groups": True,
                    "can_read_all_group_messages": False, "supports_inline_queries": True}
        if method == "setWebhook":
            self.webhook = Webhook(params["url"], params.get("secret_token"))
        if method == "deleteWebhook":
            self.webhook = None
        if method == "getWebhookInfo":
            return {"url": self.webhook.url if self.webhook else "",
                    "has_custom_certificate": False, "pending_update_count": len(self._pending)}
        if method in {"sendMessage", "editMessageText"}:
            return self._message(params)
        return True

    def _message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = params["chat_id"]
        chat = self._chats.get(chat_id, {"id": chat_id,
                                         "type": "private" if chat_id > 0 else "supergroup"})
        message: dict[str, Any] = {
            "message_id": next(self._message_ids), "date": int(time.time()), "chat": chat,
            "from": {"id": self.bot_id, "is_bot": True, "first_name": "FAQ",
                     "username": self.bot_username},
            "text": params.get("text", ""),
        }
        if "reply_markup" in params:
            message["reply_markup"] = params["reply_markup"]
        return message


# Turns of the event loop a connection's close takes to reach the other end (the bot cancels
# its request, closes the socket, this side reads the end of the stream, then drops it).
CLOSE_TURNS = 6


async def _close_reaches_us() -> None:
    """Let a close the bot began before a late answer reach this side.

    On a busy machine the bot's read timeout and a late answer come due in the same turn of the
    loop: without these turns the fake would record the answer as heard (client_gone False)
    although the bot had given up on it, and its resend would count as a second confirmed copy.
    """
    for _ in range(CLOSE_TURNS):
        await asyncio.sleep(0)


async def _parameters(request: web.Request) -> dict[str, Any]:
    """The request's parameters, from the query string and a form or JSON body."""
    raw: dict[str, Any] = dict(request.query)
    if request.content_type == "application/json":
        raw.update(await request.json())
        return raw
    raw.update({key: value for key, value in (await request.post()).items()
                if isinstance(value, str)})
    return {key: _decode(key, value) for key, value in raw.items()}


def _decode(key: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if key in JSON_FIELDS:
        return json.loads(value)
    if key in INTEGER_FIELDS:
        return int(value)
    return value


def _error(status: int, description: str | None = None,
           retry_after: int | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status,
                            "description": description or HTTPStatus(status).phrase}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return web.json_response(body, status=status)
