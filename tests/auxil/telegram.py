"""Build Telegram updates (as the Bot API sends them) for the fake Bot API.

Entities are computed the way Telegram does: a bot command at the start, @mentions anywhere,
with offsets and lengths in UTF-16 code units.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from bots.service import FAQService
from bots.telegram.app import serve
from bots.telegram.config import WebhookOptions
from core import FAQBot, Settings
from tests.fakes.telegram_api import BOT_ID, BOT_USERNAME, FakeTelegramAPI

# A well-formed fake token; tests assert it never shows in a log line.
TOKEN = "123456789:AAFakeTokenForTestsOnly-0123456789abcdef"

_message_ids = itertools.count(1)
_query_ids = itertools.count(1)


def settings_for(api: FakeTelegramAPI, **overrides: Any) -> Settings:
    """Settings pointing at the fake; a generous rate limit unless a test sets one."""
    values: dict[str, Any] = {"telegram_bot_token": TOKEN, "telegram_api_url": api.base_url,
                              "rate_limit_messages": 1000} | overrides
    return Settings(**values)


@asynccontextmanager
async def serving(api: FakeTelegramAPI, faq: FAQBot | FAQService,
                  webhook: WebhookOptions | None = None, *,
                  ready_timeout: float = 15.0, stop_timeout: float = 30.0,
                  **overrides: Any) -> AsyncIterator[asyncio.Event]:
    """Run `serve` with `settings_for(api, **overrides)` until the block ends
    (yields its stop event); ready once the last (default) command menu is published, that is
    once updates flow."""
    stop = asyncio.Event()
    task = asyncio.create_task(serve(faq, settings_for(api, **overrides), stop,
                                                  webhook))
    ready = asyncio.create_task(
        api.wait_for("setMyCommands", lambda call: "language_code" not in call.params,
                     timeout=ready_timeout))
    await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        ready.cancel()
        task.result()  # raises what made serve fail
    await ready
    try:
        yield stop
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=stop_timeout)


BOT_USER = {"id": BOT_ID, "is_bot": True, "first_name": "FAQ", "username": BOT_USERNAME}


def user(user_id: int = 1001, language_code: str | None = "fr") -> dict[str, Any]:
    """A human Telegram user."""
    data: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": f"User{user_id}"}
    if language_code:
        data["language_code"] = language_code
    return data


def private_chat(user_id: int = 1001) -> dict[str, Any]:
    """The private chat with a user (its id is the user's)."""
    return {"id": user_id, "type": "private", "first_name": f"User{user_id}"}


def group_chat(chat_id: int = -100_200, kind: str = "supergroup") -> dict[str, Any]:
    """A group or supergroup (negative id)."""
    return {"id": chat_id, "type": kind, "title": "Test group"}


def entities(text: str) -> list[dict[str, Any]]:
    """The bot_command and mention entities Telegram would attach to `text`."""
    found = []
    command = re.match(r"/[A-Za-z0-9_]+(@[A-Za-z0-9_]+)?", text)
    if command:
        found.append(_entity("bot_command", text, command.start(), command.end()))
    for mention in re.finditer(r"(?<![\w/])@[A-Za-z0-9_]{3,}", text):
        found.append(_entity("mention", text, mention.start(), mention.end()))
    return found


def _entity(kind: str, text: str, start: int, end: int) -> dict[str, Any]:
    def utf16(part: str) -> int:
        # A lone surrogate (a broken client's text) is one UTF-16 unit too.
        return len(part.encode("utf-16-le", "surrogatepass")) // 2

    return {"type": kind, "offset": utf16(text[:start]), "length": utf16(text[start:end])}


def message(text: str, *, chat: dict[str, Any] | None = None, sender: dict[str, Any] | None = None,
            reply_to: dict[str, Any] | None = None) -> dict[str, Any]:
    """A text message (private chat with `sender` by default)."""
    sender = sender or user()
    data: dict[str, Any] = {
        "message_id": next(_message_ids), "date": int(time.time()),
        "chat": chat or private_chat(sender["id"]), "from": sender, "text": text,
    }
    if found := entities(text):
        data["entities"] = found
    if reply_to is not None:
        data["reply_to_message"] = reply_to
    return data


def message_update(text: str, **kwargs: Any) -> dict[str, Any]:
    """An update carrying `message(text, **kwargs)`."""
    return {"message": message(text, **kwargs)}


def bot_message(chat: dict[str, Any], text: str = "…") -> dict[str, Any]:
    """A message the bot sent earlier (to reply to, or holding buttons)."""
    return {"message_id": next(_message_ids), "date": int(time.time()), "chat": chat,
            "from": BOT_USER, "text": text}


def callback_update(data: str, *, chat: dict[str, Any] | None = None,
                    sender: dict[str, Any] | None = None,
                    clicked: dict[str, Any] | None = None) -> dict[str, Any]:
    """A click on an inline button of a bot message (`clicked`, else a new one in `chat`)."""
    sender = sender or user()
    return {"callback_query": {
        "id": f"cb{next(_query_ids)}", "from": sender, "chat_instance": "instance",
        "data": data, "message": clicked or bot_message(chat or private_chat(sender["id"])),
    }}


def inline_update(query: str, *, sender: dict[str, Any] | None = None) -> dict[str, Any]:
    """An inline query: the user typed "@bot <query>" in some chat."""
    return {"inline_query": {"id": f"iq{next(_query_ids)}", "from": sender or user(),
                             "query": query, "offset": "", "chat_type": "private"}}
