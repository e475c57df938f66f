"""Helpers for the Discord tests: run the real bot against the fake, build interaction data."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from bots.discord import client as discord_client
from core import FAQBot, Settings
from tests.fakes.discord_api import FakeDiscord, RecordedCall

# Shaped like a real bot token (three dot-separated parts) so check_token accepts it.
TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GaBcDe.fake-token-for-tests-only_0123456789"
STRING, BOOLEAN = 3, 5  # application command option types
Json = dict[str, Any]


def settings_for(fake: FakeDiscord, **overrides: Any) -> Settings:
    """Settings pointing the bot at the fake; a generous rate limit unless a test sets one."""
    values: dict[str, Any] = {"discord_bot_token": TOKEN, "discord_api_url": fake.api_url,
                              "discord_gateway_url": fake.gateway_url,
                              "rate_limit_messages": 1000} | overrides
    return Settings(**values)


@asynccontextmanager
async def serving(fake: FakeDiscord, bot: FAQBot, *, shard_count: int | None = None,
                  shard_ids: list[int] | None = None, first_shard: int = 0,
                  **overrides: Any) -> AsyncIterator[Settings]:
    """Run `discord_client.serve` against the fake until the block ends, then stop it cleanly."""
    settings = settings_for(fake, **overrides)
    stop = asyncio.Event()
    server = asyncio.create_task(discord_client.serve(bot, settings, stop, shard_count=shard_count,
                                                   shard_ids=shard_ids))
    try:
        await _first_of(server, fake.wait_for_session(first_shard))
        yield settings
    finally:
        stop.set()
        await asyncio.wait_for(server, 15)


async def _first_of(server: asyncio.Task[None], waiting: Any) -> None:
    # If the bot dies while starting, fail with its error rather than a vague timeout.
    waiter = asyncio.ensure_future(waiting)
    await asyncio.wait({server, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if server.done():
        waiter.cancel()
        server.result()
        raise AssertionError("the bot stopped before connecting")
    waiter.result()


def slash(fake: FakeDiscord, name: str, **options: Any) -> Json:
    """The data of a slash command invocation, for a command the bot synced."""
    command = _synced_command(fake, name)
    data: Json = {"id": command["id"], "name": name, "type": 1, "options": [
        {"name": key, "type": BOOLEAN if isinstance(value, bool) else STRING, "value": value}
        for key, value in options.items()]}
    if "guild_id" in command:
        data["guild_id"] = command["guild_id"]
    return data


def autocomplete(fake: FakeDiscord, name: str, option: str, typed: str) -> Json:
    """The data of an autocomplete request while the user types `typed` into `option`."""
    data = slash(fake, name, **{option: typed})
    data["options"][0]["focused"] = True
    return data


def click(custom_id: str) -> Json:
    """The data of a button click."""
    return {"custom_id": custom_id, "component_type": 2}


def choose(custom_id: str, value: str) -> Json:
    """The data of a select-menu choice."""
    return {"custom_id": custom_id, "component_type": 3, "values": [value]}


def sent(call: RecordedCall) -> Json:
    """The message a REST call sent: a callback's data, or the body of a message post."""
    if call.path.endswith("/callback"):
        return dict(call.body.get("data") or {})
    return dict(call.body or {})


def sends_message(call: RecordedCall) -> bool:
    """True for every REST call that posts a message to users."""
    if call.method != "POST":
        return False
    if call.path.endswith("/callback"):
        return call.body.get("type") in {4, 7}
    return call.path.startswith(("/channels/", "/webhooks/"))


def custom_ids(message: Json) -> list[str]:
    """Every component custom id of a message, in order."""
    return [component["custom_id"] for row in message.get("components", [])
            for component in row.get("components", []) if "custom_id" in component]


def select_options(message: Json) -> list[Json]:
    """The options of every select menu of a message, in order."""
    return [option for row in message.get("components", [])
            for component in row.get("components", []) if component.get("type") == 3
            for option in component.get("options", [])]


def _synced_command(fake: FakeDiscord, name: str) -> Json:
    for commands in fake.commands.values():
        for command in commands:
            if command["name"] == name:
                return command
    raise AssertionError(f"the bot did not sync a /{name} command")
