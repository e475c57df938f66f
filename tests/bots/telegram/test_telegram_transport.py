"""AiohttpRequest: python-telegram-bot's Bot API calls over aiohttp, against the fake Bot API."""

from __future__ import annotations

import pytest
from telegram import Bot, InputFile
from telegram.error import BadRequest, InvalidToken, NetworkError, RetryAfter, TimedOut

from bots.telegram.transport import AiohttpRequest, call_unparsed
from tests.auxil.network import free_port
from tests.fakes.telegram_api import FakeTelegramAPI, Fault

TOKEN = "123456789:AAFakeTokenForTransportTests-0123456789ab"


def _request(read_timeout: float = 10.0) -> AiohttpRequest:
    return AiohttpRequest(pool_size=4, connect_timeout=2.0, read_timeout=read_timeout,
                          pool_timeout=2.0)


@pytest.fixture
def telegram_token() -> str:
    """This module's token for the fake Bot API (tests/conftest.py's `api`)."""
    return TOKEN


def _bot(base_url: str, read_timeout: float = 10.0) -> Bot:
    return Bot(TOKEN, base_url=base_url, request=_request(read_timeout),
               get_updates_request=_request(read_timeout))


async def test_calls_and_answers(api: FakeTelegramAPI) -> None:
    async with _bot(api.base_url) as bot:
        sent = await bot.send_message(42, "Bonjour <b>à</b> vous", parse_mode="HTML")
    call = api.calls_to("sendMessage")[0]
    assert (call.params["chat_id"], call.params["text"]) == (42, "Bonjour <b>à</b> vous")
    assert sent.text == "Bonjour <b>à</b> vous"
    assert bot.username == "faq_test_bot"  # getMe went through the same transport


async def test_an_unparsed_call_gives_telegram_json_and_leaves_out_nones(
        api: FakeTelegramAPI) -> None:
    async with _bot(api.base_url) as bot:
        sent = await call_unparsed(bot, "sendMessage", {"chat_id": 42, "text": "Bonjour",
                                                         "message_thread_id": None})
        api.revoke_token()
        with pytest.raises(InvalidToken):  # not "endpoint not found"
            await call_unparsed(bot, "getUpdates", {"offset": 0})
    assert sent["text"] == "Bonjour"
    assert "message_thread_id" not in api.calls_to("sendMessage")[0].params


async def test_platform_errors_keep_their_meaning(api: FakeTelegramAPI) -> None:
    api.inject("sendMessage", Fault(status=429, retry_after=3))
    api.inject("sendMessage", Fault(status=400, description="Bad Request: chat not found"))
    async with _bot(api.base_url) as bot:
        with pytest.raises(RetryAfter):
            await bot.send_message(42, "a")
        with pytest.raises(BadRequest, match=r"(?i)chat not found"):
            await bot.send_message(42, "b")


async def test_files_go_as_multipart(api: FakeTelegramAPI) -> None:
    async with _bot(api.base_url) as bot:
        assert await bot.set_chat_photo(7, InputFile(b"not really a photo", filename="a.jpg"))
    assert api.calls_to("setChatPhoto")[0].params["chat_id"] == 7


async def test_slow_answer_is_a_timeout(api: FakeTelegramAPI) -> None:
    async with _bot(api.base_url) as bot:
        api.inject("sendMessage", Fault(status=200, delay=2.0))
        with pytest.raises(TimedOut):
            await bot.send_message(42, "a", read_timeout=0.2)


async def test_unreachable_server_is_a_network_error_without_the_token() -> None:
    port = free_port()  # nobody listens on it
    request = _request()
    await request.initialize()
    try:
        with pytest.raises(NetworkError) as caught:
            await request.post(f"http://127.0.0.1:{port}/bot{TOKEN}/getMe")
    finally:
        await request.shutdown()
    assert TOKEN not in str(caught.value)
    assert "aiohttp" in str(caught.value)


async def test_unused_request_refuses_to_send() -> None:
    with pytest.raises(RuntimeError, match="not initialized"):
        await _request().do_request("http://127.0.0.1:9/x", "POST")
