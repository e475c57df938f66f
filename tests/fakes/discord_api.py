"""A fake Discord on 127.0.0.1: the gateway websocket and the REST API, for the real discord.py.

Point discord.py at it with `discord.http.Route.BASE = fake.api_url` and
`DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)`. The gateway says HELLO, answers
IDENTIFY with READY and one GUILD_CREATE per guild of the shard, acknowledges heartbeats,
answers RESUME with the missed events and RESUMED, and sends whatever the test pushes
(`dispatch`, `push_interaction`, `push_message`, `send_reconnect`, `drop_gateway`). The REST API
records every call (`calls`), answers what a bot needs (login, command sync, interaction
callbacks, follow-ups, channel messages, /gateway/bot) and fails on request (`add_fault`, or
`fault_picker` for random faults): 429 with retry_after, any 5xx, a slow answer or a dropped
connection, a number of times or with a probability.

Responses carry `Content-Type: application/json` exactly: discord.py parses nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import json
import random
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from aiohttp import WSMsgType, web

API_PREFIX = "/api/v10"
DISCORD_EPOCH_MS = 1_420_070_400_000

# Gateway opcodes and interaction types (https://discord.com/developers/docs/topics/opcodes-and-status-codes).
DISPATCH, HEARTBEAT, IDENTIFY, RESUME, RECONNECT = 0, 1, 2, 6, 7
INVALID_SESSION, HELLO, HEARTBEAT_ACK = 9, 10, 11
APPLICATION_COMMAND, MESSAGE_COMPONENT, AUTOCOMPLETE = 2, 3, 4
EPHEMERAL = 1 << 6
# Interaction callback types that create a message.
_MESSAGE_CALLBACKS = {4, 5}

Json = dict[str, Any]


@dataclass
class RecordedCall:
    """One REST request as the fake received it, with what it answered."""

    method: str
    path: str  # without the /api/v10 prefix, e.g. "/interactions/1/abc/callback"
    query: dict[str, str]
    body: Any  # the JSON body (or a multipart's payload_json); None when empty
    authorization: str | None
    status: int = 200  # 0: the connection was dropped before the call took effect
    response: Any = None
    received_at: float = field(default_factory=time.perf_counter)
    # The bot got no answer although the call took effect: it cannot know that it did.
    client_gone: bool = False


@dataclass
class Fault:
    """Makes matching REST calls fail: 429 carries `retry_after`, other statuses a plain error.

    `path` is a regular expression searched in the path; `times` None means forever;
    `probability` below 1 makes the fault random (seeded by the fake's `seed`). The answer
    comes after `delay` seconds; status 200 answers normally (a slow call). `drop` closes the
    connection without any answer: "before" the call takes effect, or "after".
    """

    status: int
    method: str | None = None
    path: str | None = None
    times: int | None = 1
    retry_after: float = 0.05
    probability: float = 1.0
    delay: float = 0.0
    drop: Literal["before", "after"] | None = None

    def matches(self, method: str, path: str) -> bool:
        return ((self.times is None or self.times > 0)
                and (self.method is None or self.method == method)
                and (self.path is None or re.search(self.path, path) is not None))


@dataclass
class GatewayFrame:
    """One frame the bot sent on the gateway (tokens replaced by "[token]")."""

    op: int
    data: Any
    session_id: str | None


@dataclass
class GatewaySession:
    """A gateway session: it outlives its websocket so that RESUME can replay missed events."""

    session_id: str
    shard: list[int] | None
    intents: int
    socket: web.WebSocketResponse | None
    sequence: int = 0
    events: list[Json] = field(default_factory=list)
    resumed: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def shard_id(self) -> int:
        return self.shard[0] if self.shard else 0


@dataclass(frozen=True)
class PushedInteraction:
    """An interaction the fake sent to the bot: its id and token name its callback URL."""

    id: int
    token: str
    payload: Json

    @property
    def callback_path(self) -> str:
        return f"/interactions/{self.id}/{self.token}/callback"


Handler = Callable[[RecordedCall, dict[str, str]], Awaitable[tuple[int, Any]]]


class FakeDiscord:
    """The fake gateway and REST API; use `async with FakeDiscord() as fake:`."""

    def __init__(self, *, token: str | None = None, guild_ids: tuple[int, ...] = (),
                 application_id: int = 4242 << 22, user_id: int = 4243 << 22,
                 recommended_shards: int = 1, heartbeat_interval_ms: int = 41_250,
                 seed: int = 0) -> None:
        self.token = token
        self.application_id = application_id
        self.bot_user = make_user(user_id, "faqbot", bot=True)
        self.guild_ids = guild_ids or (1001 << 22,)
        self.recommended_shards = recommended_shards
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.calls: list[RecordedCall] = []
        self._calls_by_path: dict[str, list[RecordedCall]] = {}
        self.gateway_frames: list[GatewayFrame] = []
        self.sessions: dict[str, GatewaySession] = {}
        self.commands: dict[int | None, list[Json]] = {}  # by guild id; None is global
        self.messages: dict[int, Json] = {}  # every message the bot created
        self.faults: list[Fault] = []
        # Asked for every REST call no listed fault matches: a Fault, or None to answer.
        self.fault_picker: Callable[[RecordedCall], Fault | None] | None = None
        self.interactions: dict[str, PushedInteraction] = {}  # by token
        self._answered: set[int] = set()
        self._by_nonce: dict[tuple[int, str], Json] = {}  # posts made with enforce_nonce
        self._random = random.Random(seed)
        self._ids = itertools.count(1)
        self._changed: asyncio.Condition | None = None
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = [
            ("GET", re.compile(r"/users/@me"), self._get_me),
            ("GET", re.compile(r"/oauth2/applications/@me"), self._get_application),
            ("GET", re.compile(r"/gateway(/bot)?"), self._get_gateway),
            ("PUT", re.compile(r"/applications/\d+(/guilds/(?P<guild>\d+))?/commands"),
             self._put_commands),
            ("POST", re.compile(r"/interactions/(?P<id>\d+)/(?P<token>[^/]+)/callback"),
             self._post_callback),
            ("POST", re.compile(r"/webhooks/\d+/(?P<token>[^/]+)"), self._post_followup),
            ("POST", re.compile(r"/channels/(?P<channel>\d+)/messages"), self._post_message),
        ]

    # -- life cycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on a free port of 127.0.0.1."""
        self._changed = asyncio.Condition()
        app = web.Application()
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", API_PREFIX + "/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = self._runner.addresses[0][1]

    async def close(self) -> None:
        """Close every gateway socket, then the server."""
        for session in self.sessions.values():
            if session.socket is not None:
                await session.socket.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def api_url(self) -> str:
        """The value for `discord.http.Route.BASE` (FAQBOT_DISCORD_API_URL)."""
        return f"http://127.0.0.1:{self._port}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        """The value for `DiscordWebSocket.DEFAULT_GATEWAY` (FAQBOT_DISCORD_GATEWAY_URL)."""
        return f"ws://127.0.0.1:{self._port}/gateway"

    # -- what a test does ---------------------------------------------------------------------

    def add_fault(self, fault: Fault) -> None:
        """Make the next matching REST calls fail (see `Fault`)."""
        self.faults.append(fault)

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 15.0) -> None:
        """Wait until `predicate()` holds; it is checked after every call, frame and event."""
        assert self._changed is not None, "start() the fake first"
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(predicate), timeout)

    async def wait_for_call(self, predicate: Callable[[RecordedCall], bool],
                            timeout: float = 15.0) -> RecordedCall:
        """The first recorded REST call matching `predicate`, waiting for it if needed."""
        await self.wait_until(lambda: any(predicate(call) for call in self.calls), timeout)
        return next(call for call in self.calls if predicate(call))

    async def wait_for_callback(self, interaction: PushedInteraction,
                                timeout: float = 15.0) -> RecordedCall:
        """The successful callback the bot made for `interaction`."""
        # Looked up by path, so that thousands of waiting interactions stay cheap.
        def answered() -> list[RecordedCall]:
            return [c for c in self._calls_by_path.get(interaction.callback_path, [])
                    if c.status < 300]

        await self.wait_until(lambda: bool(answered()), timeout)
        return answered()[0]

    async def wait_for_session(self, shard_id: int = 0, timeout: float = 15.0) -> GatewaySession:
        """The live gateway session of a shard, once its IDENTIFY was answered."""
        await self.wait_until(lambda: self.live_session(shard_id) is not None, timeout)
        session = self.live_session(shard_id)
        assert session is not None
        return session

    def live_session(self, shard_id: int = 0) -> GatewaySession | None:
        """The newest session of a shard that has an open websocket."""
        live = [s for s in self.sessions.values()
                if s.shard_id == shard_id and s.socket is not None and not s.socket.closed]
        return live[-1] if live else None

    def shard_of(self, guild_id: int | None, shard_count: int | None = None) -> int:
        """The shard Discord sends a guild's events to (direct messages go to shard 0).

        `shard_count` defaults to the count the bot identified with.
        """
        if shard_count is None:
            shard_count = next((s.shard[1] for s in self.sessions.values() if s.shard), 1)
        return 0 if guild_id is None else (guild_id >> 22) % shard_count

    def channel_of(self, guild_id: int) -> int:
        """The one text channel of a guild."""
        return guild_id + 1

    async def dispatch(self, event: str, data: Json, *, shard_id: int = 0) -> None:
        """Send a DISPATCH event on a shard's session (kept for replay if it is disconnected)."""
        await self._dispatch_on(self._newest_session(shard_id), event, data)

    async def send_reconnect(self, shard_id: int = 0) -> GatewaySession:
        """Send op 7 RECONNECT: the bot should reconnect and RESUME this session."""
        session = self._newest_session(shard_id)
        async with session.lock:
            assert session.socket is not None, "the session has no open websocket"
            await session.socket.send_str(json.dumps({"op": RECONNECT, "d": None}))
        return session

    async def drop_gateway(self, shard_id: int = 0, code: int = 4000) -> GatewaySession:
        """Close a shard's websocket as a failing gateway does: the bot should RESUME."""
        session = self._newest_session(shard_id)
        socket = session.socket
        assert socket is not None, "the session has no open websocket"
        await socket.close(code=code, message=b"injected failure")
        return session

    async def push_interaction(self, kind: int, data: Json, *, guild_id: int | None = None,
                               user_id: int = 77 << 22, locale: str = "fr",
                               message: Json | None = None) -> PushedInteraction:
        """Send INTERACTION_CREATE; `guild_id` None means a direct message with the bot."""
        interaction_id = self.next_id()
        token = "itok_" + secrets.token_hex(8)
        payload: Json = {
            "id": str(interaction_id), "application_id": str(self.application_id),
            "type": kind, "data": data, "token": token, "version": 1, "locale": locale,
            "app_permissions": "0", "entitlements": [], "authorizing_integration_owners": {},
            "attachment_size_limit": 10_485_760,
        }
        user = make_user(user_id, f"user{user_id}")
        if guild_id is None:
            channel = {"id": str(self.dm_channel_of(user_id)), "type": 1, "recipients": [user]}
            payload |= {"user": user, "channel": channel, "channel_id": channel["id"],
                        "context": 1}
        else:
            channel = {"id": str(self.channel_of(guild_id)), "type": 0, "name": "general",
                       "guild_id": str(guild_id), "position": 0, "permission_overwrites": []}
            payload |= {"guild_id": str(guild_id), "guild_locale": "fr", "channel": channel,
                        "channel_id": channel["id"], "member": make_member(user),
                        "context": 0}
        if message is not None:
            payload["message"] = message
        pushed = PushedInteraction(interaction_id, token, payload)
        self.interactions[token] = pushed
        await self.dispatch("INTERACTION_CREATE", payload, shard_id=self.shard_of(guild_id))
        return pushed

    async def push_message(self, content: str, *, guild_id: int | None = None,
                           author_id: int = 77 << 22, mention_bot: bool = False,
                           author_is_bot: bool = False) -> Json:
        """Send MESSAGE_CREATE from a user; `guild_id` None means a direct message."""
        author = make_user(author_id, f"user{author_id}", bot=author_is_bot)
        mentions = []
        if mention_bot:
            content = f"<@{self.bot_user['id']}> {content}"
            mentions.append(self.bot_user)
        if guild_id is None:
            channel_id = self.dm_channel_of(author_id)
        else:
            channel_id = self.channel_of(guild_id)
        message = make_message(self.next_id(), channel_id, author, content, guild_id=guild_id,
                               mentions=mentions)
        if guild_id is not None:
            message["member"] = {key: value for key, value in make_member(author).items()
                                 if key != "user"}
        await self.dispatch("MESSAGE_CREATE", message, shard_id=self.shard_of(guild_id))
        return message

    def dm_channel_of(self, user_id: int) -> int:
        """The direct-message channel between a user and the bot."""
        return user_id + 2

    def next_id(self) -> int:
        """A fresh snowflake."""
        now_ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
        return (now_ms << 22) | (next(self._ids) & 0x3FFFFF)

    # -- gateway ------------------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        await socket.send_str(json.dumps(
            {"op": HELLO, "d": {"heartbeat_interval": self.heartbeat_interval_ms}}))
        session: GatewaySession | None = None
        async for message in socket:
            if message.type is not WSMsgType.TEXT:
                break
            frame = json.loads(message.data)
            session = await self._on_frame(socket, frame, session) or session
        if session is not None and session.socket is socket:
            session.socket = None
        await self._notify()
        return socket

    async def _on_frame(self, socket: web.WebSocketResponse, frame: Json,
                        session: GatewaySession | None) -> GatewaySession | None:
        op, data = int(frame["op"]), frame.get("d") or {}
        recorded = copy.deepcopy(data)
        if isinstance(recorded, dict) and "token" in recorded:
            recorded["token"] = "[token]"
        self.gateway_frames.append(
            GatewayFrame(op, recorded, session.session_id if session else None))
        result = None
        if op == HEARTBEAT:
            await socket.send_str(json.dumps({"op": HEARTBEAT_ACK}))
        elif op == IDENTIFY:
            result = await self._identify(socket, data)
        elif op == RESUME:
            result = await self._resume(socket, data)
        await self._notify()
        return result

    async def _identify(self, socket: web.WebSocketResponse, data: Json) -> GatewaySession | None:
        if self.token is not None and data.get("token") != self.token:
            await socket.close(code=4004, message=b"Authentication failed.")
            return None
        session = GatewaySession(secrets.token_hex(16), data.get("shard"), data.get("intents", 0),
                                 socket)
        self.sessions[session.session_id] = session
        shard_count = session.shard[1] if session.shard else 1
        guilds = [guild for guild in self.guild_ids
                  if self.shard_of(guild, shard_count) == session.shard_id]
        ready: Json = {
            "v": 10, "user": self.bot_user, "session_id": session.session_id,
            "resume_gateway_url": self.gateway_url, "private_channels": [],
            "guilds": [{"id": str(guild), "unavailable": True} for guild in guilds],
            "application": {"id": str(self.application_id), "flags": 0},
        }
        if session.shard:
            ready["shard"] = session.shard
        await self._dispatch_on(session, "READY", ready)
        for guild in guilds:
            await self._dispatch_on(session, "GUILD_CREATE", self._guild(guild))
        return session

    async def _resume(self, socket: web.WebSocketResponse, data: Json) -> GatewaySession | None:
        session = self.sessions.get(data.get("session_id", ""))
        if session is None or (self.token is not None and data.get("token") != self.token):
            await socket.send_str(json.dumps({"op": INVALID_SESSION, "d": False}))
            return None
        async with session.lock:
            session.socket = socket
            missed = [event for event in session.events if event["s"] > (data.get("seq") or 0)]
            for event in missed:
                await socket.send_str(json.dumps(event))
        await self._dispatch_on(session, "RESUMED", {})
        session.resumed += 1
        return session

    async def _dispatch_on(self, session: GatewaySession, event: str, data: Json) -> None:
        async with session.lock:
            session.sequence += 1
            frame = {"op": DISPATCH, "t": event, "s": session.sequence, "d": data}
            session.events.append(frame)
            if session.socket is not None and not session.socket.closed:
                # A socket closing under us loses the frame in transit, as on a real network;
                # the bot gets it again when it resumes the session.
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await session.socket.send_str(json.dumps(frame))

    def _newest_session(self, shard_id: int) -> GatewaySession:
        sessions = [s for s in self.sessions.values() if s.shard_id == shard_id]
        assert sessions, f"no gateway session for shard {shard_id}: wait_for_session() first"
        return sessions[-1]

    def _guild(self, guild_id: int) -> Json:
        channel = {"id": str(self.channel_of(guild_id)), "type": 0, "name": "general",
                   "position": 0, "permission_overwrites": [], "guild_id": str(guild_id)}
        everyone = {"id": str(guild_id), "name": "@everyone", "permissions": "68608",
                    "position": 0, "color": 0, "hoist": False, "managed": False,
                    "mentionable": False, "flags": 0}
        return {
            "id": str(guild_id), "name": f"guild {guild_id}", "unavailable": False,
            "owner_id": str(77 << 22), "member_count": 2, "large": False,
            "preferred_locale": "fr", "features": [], "roles": [everyone], "emojis": [],
            "stickers": [], "channels": [channel], "threads": [], "members":
            [make_member(self.bot_user)], "stage_instances": [], "guild_scheduled_events": [],
            "soundboard_sounds": [], "voice_states": [], "presences": [],
        }

    async def _notify(self) -> None:
        assert self._changed is not None
        async with self._changed:
            self._changed.notify_all()

    # -- REST ---------------------------------------------------------------------------------

    async def _rest(self, request: web.Request) -> web.Response:
        path = request.path.removeprefix(API_PREFIX)
        call = RecordedCall(request.method, path, dict(request.query),
                            await _read_body(request), request.headers.get("Authorization"))
        fault = self._fault_for(call)
        if fault is not None and fault.drop == "before":
            call.status = 0
            return await self._drop(request, call)
        if fault is not None:
            await asyncio.sleep(fault.delay)
        status, body, headers = await self._answer(call, fault)
        call.status, call.response = status, body
        if fault is not None and fault.drop == "after":
            call.client_gone = True
            return await self._drop(request, call)
        call.client_gone = request.transport is None
        await self._keep(call)
        return web.Response(status=status, body=json.dumps(body).encode(),
                            headers={"Content-Type": "application/json", **headers})

    async def _keep(self, call: RecordedCall) -> None:
        self.calls.append(call)
        self._calls_by_path.setdefault(call.path, []).append(call)
        await self._notify()

    async def _drop(self, request: web.Request, call: RecordedCall) -> web.Response:
        """Record `call`, then close the connection: the bot gets no answer at all."""
        await self._keep(call)
        if request.transport is not None:
            request.transport.close()
        return web.Response()  # written to a closed connection: never read

    async def _answer(self, call: RecordedCall,
                      fault: Fault | None) -> tuple[int, Any, dict[str, str]]:
        if fault is not None and fault.status != 200:
            return _fault_response(fault)
        for method, pattern, handler in self._routes:
            match = pattern.fullmatch(call.path)
            if method == call.method and match:
                if self._needs_bot_token(call) and call.authorization != f"Bot {self.token}":
                    return 401, {"message": "401: Unauthorized", "code": 0}, {}
                status, body = await handler(call, match.groupdict())
                return status, body, {}
        return 404, {"message": "404: Not Found", "code": 0}, {}

    def _fault_for(self, call: RecordedCall) -> Fault | None:
        for fault in self.faults:
            if fault.matches(call.method, call.path) and (
                    self._random.random() < fault.probability):
                if fault.times is not None:
                    fault.times -= 1
                return fault
        return self.fault_picker(call) if self.fault_picker else None

    def _needs_bot_token(self, call: RecordedCall) -> bool:
        # Interaction callbacks and follow-ups are authorised by the interaction token.
        return self.token is not None and not call.path.startswith(("/interactions/",
                                                                    "/webhooks/"))

    async def _get_me(self, call: RecordedCall, params: dict[str, str]) -> tuple[int, Any]:
        return 200, self.bot_user

    async def _get_application(self, call: RecordedCall,
                               params: dict[str, str]) -> tuple[int, Any]:
        return 200, {
            "id": str(self.application_id), "name": "faqbot", "description": "", "icon": None,
            "bot_public": True, "bot_require_code_grant": False, "verify_key": "0" * 64,
            "owner": make_user(77 << 22, "owner"), "flags": 0, "summary": "",
            "rpc_origins": [], "team": None, "interactions_endpoint_url": None,
        }

    async def _get_gateway(self, call: RecordedCall, params: dict[str, str]) -> tuple[int, Any]:
        return 200, {"url": self.gateway_url, "shards": self.recommended_shards,
                     "session_start_limit": {"total": 1000, "remaining": 1000,
                                             "reset_after": 0, "max_concurrency": 1}}

    async def _put_commands(self, call: RecordedCall, params: dict[str, str]) -> tuple[int, Any]:
        guild = int(params["guild"]) if params.get("guild") else None
        commands = []
        for command in call.body or []:
            stored = {"default_member_permissions": None, "nsfw": False, "type": 1,
                      **command, "id": str(self.next_id()),
                      "application_id": str(self.application_id), "version": "1"}
            if guild is not None:
                stored["guild_id"] = str(guild)
            commands.append(stored)
        self.commands[guild] = commands
        return 200, commands

    async def _post_callback(self, call: RecordedCall, params: dict[str, str]) -> tuple[int, Any]:
        interaction = self.interactions.get(params["token"])
        if interaction is None or str(interaction.id) != params["id"]:
            return 404, {"message": "Unknown interaction", "code": 10062}
        if interaction.id in self._answered:
            return 400, {"message": "Interaction has already been acknowledged.", "code": 40060}
        self._answered.add(interaction.id)
        kind = call.body["type"]
        result: Json = {"interaction": {"id": str(interaction.id),
                                        "type": interaction.payload["type"]},
                        "resource": {"type": kind}}
        if kind in _MESSAGE_CALLBACKS:
            message = self._bot_message(interaction, call.body.get("data") or {})
            result["interaction"] |= {
                "response_message_id": message["id"], "response_message_loading": kind == 5,
                "response_message_ephemeral": bool(message["flags"] & EPHEMERAL)}
            result["resource"]["message"] = message
        return 200, result

    async def _post_followup(self, call: RecordedCall, params: dict[str, str]) -> tuple[int, Any]:
        interaction = self.interactions.get(params["token"])
        if interaction is None or interaction.id not in self._answered:
            return 404, {"message": "Unknown Webhook", "code": 10015}
        return 200, self._bot_message(interaction, call.body or {})

    async def _post_message(self, call: RecordedCall, params: dict[str, str]) -> tuple[int, Any]:
        channel_id = int(params["channel"])
        body = call.body or {}
        # With enforce_nonce, Discord answers a post made twice with the first message.
        nonce = (channel_id, str(body["nonce"])) if body.get("enforce_nonce") else None
        if nonce in self._by_nonce:
            return 200, self._by_nonce[nonce]
        guild_id = next((g for g in self.guild_ids if self.channel_of(g) == channel_id), None)
        message = make_message(self.next_id(), channel_id, self.bot_user,
                               body.get("content") or "", guild_id=guild_id, body=body)
        self.messages[int(message["id"])] = message
        if nonce is not None:
            self._by_nonce[nonce] = message
        return 200, message

    def _bot_message(self, interaction: PushedInteraction, body: Json) -> Json:
        payload = interaction.payload
        guild = payload.get("guild_id")
        message = make_message(self.next_id(), int(payload["channel_id"]), self.bot_user,
                               body.get("content") or "", guild_id=int(guild) if guild else None,
                               body=body)
        message["webhook_id"] = str(self.application_id)
        message["application_id"] = str(self.application_id)
        self.messages[int(message["id"])] = message
        return message


# -- payload builders (also useful to tests) ---------------------------------------------------


def make_user(user_id: int, name: str, *, bot: bool = False) -> Json:
    """A Discord user object."""
    return {"id": str(user_id), "username": name, "discriminator": "0", "global_name": None,
            "avatar": None, "bot": bot, "public_flags": 0}


def make_member(user: Json) -> Json:
    """A guild member object for `user`."""
    return {"user": user, "roles": [], "joined_at": _now(), "deaf": False, "mute": False,
            "flags": 0, "pending": False, "permissions": "2248473465835073"}


def make_message(message_id: int, channel_id: int, author: Json, content: str, *,
                 guild_id: int | None = None, mentions: list[Json] | None = None,
                 body: Json | None = None) -> Json:
    """A message object; `body` (what a bot sent) adds embeds, components, flags, reference."""
    body = body or {}
    message: Json = {
        "id": str(message_id), "channel_id": str(channel_id), "author": author,
        "content": content, "timestamp": _now(), "edited_timestamp": None, "tts": False,
        "mention_everyone": False, "mentions": mentions or [], "mention_roles": [],
        "attachments": [], "embeds": body.get("embeds", []),
        "components": body.get("components", []), "pinned": False,
        "type": 19 if body.get("message_reference") else 0, "flags": body.get("flags", 0),
    }
    if body.get("message_reference"):
        message["message_reference"] = body["message_reference"]
    if guild_id is not None:
        message["guild_id"] = str(guild_id)
    return message


def _fault_response(fault: Fault) -> tuple[int, Any, dict[str, str]]:
    if fault.status == 429:
        # discord.py trusts a 429 only when it comes through Discord's proxy (a Via header).
        return 429, {"message": "You are being rate limited.", "retry_after": fault.retry_after,
                     "global": False}, {"Via": "1.1 google",
                                        "Retry-After": str(fault.retry_after)}
    return fault.status, {"message": f"{fault.status}: injected fault", "code": 0}, {}


async def _read_body(request: web.Request) -> Any:
    if not request.can_read_body:
        return None
    if request.content_type.startswith("multipart/"):
        form = await request.post()
        payload = form.get("payload_json")
        return json.loads(str(payload)) if payload is not None else None
    text = await request.text()
    return json.loads(text) if text else None


def _now() -> str:
    return datetime.now(UTC).isoformat()
