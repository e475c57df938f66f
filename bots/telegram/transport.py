"""Bot API requests over aiohttp, for python-telegram-bot.

python-telegram-bot sends Bot API calls through httpx by default. Under load that client costs
the bot more than everything else it does (profiled in docs/performance.md): for every request
its connection pool (httpcore) checks each pooled connection several times, once with a system
call, which grows with the square of the connections in use, and it retries a failed import of
sniffio, an optional package, a dozen times a request. aiohttp, which faqbot already depends on,
hands out a pooled connection in constant time and parses HTTP in C.

`AiohttpRequest` plugs into `ApplicationBuilder.request()`; python-telegram-bot still builds the
requests, parses the answers and raises its own errors (RetryAfter, BadRequest...) from the
status and body returned here. Only failures to get an answer at all are mapped here: a timeout
becomes `TimedOut`, any other client error `NetworkError`. Their messages name the error type
and never the URL, which holds the token.
"""

from __future__ import annotations

import warnings
from typing import Any

import aiohttp
from telegram import Bot
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput
from telegram.error import EndPointNotFound, InvalidToken, NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData
from telegram.warnings import PTBUserWarning

# call_unparsed goes through the call python-telegram-bot warns is meant for the methods it
# lacks; pyproject.toml says the same to pytest, which resets the filters for each test.
warnings.filterwarnings("ignore", message=r"Please use 'Bot\.(sendMessage|getUpdates)'",
                        category=PTBUserWarning)


class AiohttpRequest(BaseRequest):
    """A pool of up to `pool_size` connections and default timeouts, in seconds.

    `pool_timeout` bounds the wait for a free connection, `connect_timeout` the connection
    itself, `read_timeout` each wait for data from Telegram. aiohttp has no write timeout:
    the bot sends short forms, and a stalled write ends at the read timeout of the reply.
    """

    def __init__(self, *, pool_size: int, connect_timeout: float, read_timeout: float,
                 pool_timeout: float) -> None:
        self._pool_size = pool_size
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._pool_timeout = pool_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        """The read timeout used when a call does not give one."""
        return self._read_timeout

    async def initialize(self) -> None:
        """Open the session (it must be created inside the running event loop)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size),
                headers={"User-Agent": self.USER_AGENT},
                trust_env=True)  # honour HTTPS_PROXY / NO_PROXY, as httpx does

    async def shutdown(self) -> None:
        """Close the session and its connections."""
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def do_request(  # noqa: PLR0917 (signature fixed by BaseRequest)
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """Send one request; return Telegram's HTTP status and body."""
        if self._session is None or self._session.closed:
            raise RuntimeError("AiohttpRequest is not initialized")
        connect = _chosen(connect_timeout, self._connect_timeout)
        pool = _chosen(pool_timeout, self._pool_timeout)
        timeout = aiohttp.ClientTimeout(
            sock_connect=connect,
            connect=None if connect is None or pool is None else connect + pool,
            sock_read=_chosen(read_timeout, self._read_timeout))
        try:
            async with self._session.request(method, url, data=_body(request_data),
                                             timeout=timeout) as response:
                return response.status, await response.read()
        except TimeoutError as error:
            raise TimedOut from error
        except aiohttp.ClientError as error:
            raise NetworkError(f"aiohttp.{type(error).__name__}") from error


async def call_unparsed(bot: Bot, method: str, parameters: dict[str, Any],
                        read_timeout: float | None = None) -> Any:
    """A Bot API call whose answer stays Telegram's JSON: python-telegram-bot's own methods
    turn every answer into objects, which for a sent message nobody reads, and for a poll
    of a busy bot repeats the updates in hand (docs/performance.md). None values are left out."""
    sent = {name: value for name, value in parameters.items() if value is not None}
    timeout = BaseRequest.DEFAULT_NONE if read_timeout is None else read_timeout
    try:
        return await bot.do_api_request(method, sent, read_timeout=timeout)
    except EndPointNotFound as error:
        # What do_api_request makes of a refused token, as the methods used here exist.
        raise InvalidToken("Telegram refused the token") from error


def _chosen(value: ODVInput[float], default: float) -> float | None:
    """A timeout given for one call, else the default (None means no limit)."""
    return default if isinstance(value, DefaultValue) else value


def _body(request_data: RequestData | None) -> aiohttp.FormData | dict[str, str] | None:
    """A urlencoded form, or a multipart one when the call uploads files."""
    if request_data is None:
        return None
    files = request_data.multipart_data
    if not files:
        return request_data.json_parameters
    form = aiohttp.FormData()
    for name, value in request_data.json_parameters.items():
        form.add_field(name, value)
    for name, (filename, content, mimetype) in files.items():
        form.add_field(name, content, filename=filename, content_type=mimetype)
    return form


__all__ = ["AiohttpRequest", "call_unparsed"]
