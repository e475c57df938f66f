"""Telegram configuration: the token's shape, the Bot API address, the webhook options, and the
secrets kept out of library logs.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from telegram.ext import (
    Application,
    ContextTypes,
)

from bots.logs import SecretFilter
from core import ConfigurationError, Settings

logger = logging.getLogger(__name__)

Context = ContextTypes.DEFAULT_TYPE
TelegramApp = Application[Any, Any, Any, Any, Any, Any]

TOKEN_PATTERN = re.compile(r"\d+:[A-Za-z0-9_-]{20,}")

# Updates are handled concurrently, up to this many at once (those of one chat stay in order).
CONCURRENT_UPDATES = 256

REQUEST_TIMEOUTS = {"connect_timeout": 5.0, "read_timeout": 10.0, "pool_timeout": 5.0}

# PTB logs request URLs (which hold the token) and parameters (the webhook secret) here.
LIBRARY_LOGGERS = ("httpx", "telegram.Bot", "telegram.ext.ExtBot")


def check_token(token: str) -> None:
    """Raise ConfigurationError if `token` does not look like a bot token; never echo it."""
    if not TOKEN_PATTERN.fullmatch(token):
        raise ConfigurationError("TELEGRAM_BOT_TOKEN is malformed: expected <digits>:<secret>")


def token(settings: Settings) -> str:
    """The bot token of `settings`; ConfigurationError when it is missing or malformed."""
    if settings.telegram_bot_token is None:
        raise ConfigurationError("TELEGRAM_BOT_TOKEN is not set")
    value = settings.telegram_bot_token.get_secret_value()
    check_token(value)
    return value


@dataclass(frozen=True)
class WebhookOptions:
    """Receive updates by webhook: Telegram posts to `url`, a proxy forwards to listen:port."""

    url: str
    listen: str = "127.0.0.1"
    port: int = 8443


def api_base_url(url: str) -> str:
    """The Bot API base the token is appended to: "http://host:8081/" gives ".../bot"."""
    base = url.rstrip("/")
    return base if base.endswith("/bot") else f"{base}/bot"


_HIDDEN_SECRETS: set[str] = set()


def _hide_secrets_in_library_logs(*secrets_to_hide: str) -> None:
    """Mask secrets in the records of the loggers that print request URLs and parameters.

    The CLI also filters its handlers; this covers every other way of running the adapter.
    """
    new = [secret for secret in secrets_to_hide if secret not in _HIDDEN_SECRETS]
    if not new:
        return
    _HIDDEN_SECRETS.update(new)
    secret_filter = SecretFilter(new)
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).addFilter(secret_filter)
