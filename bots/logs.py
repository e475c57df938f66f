"""Structured logs for `faqbot run --log-json`: one JSON object per line, one line per event.

Tracebacks go into the "error" field instead of spreading over lines, so a log collector never
splits an event. Secrets are masked before formatting (SecretFilter), ids never logged raw.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection
from datetime import UTC, datetime


class JsonFormatter(logging.Formatter):
    """time (UTC, ISO 8601), level, logger, message and, for failures, error (the traceback)."""

    def format(self, record: logging.LogRecord) -> str:
        event = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            # exc_text is the traceback SecretFilter already masked, when it ran.
            event["error"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(event, ensure_ascii=False)


class SecretFilter(logging.Filter):
    """Replaces every known secret in a log record by "[redacted]" before any handler sees it.

    Libraries log request URLs, and Telegram puts the bot token in the URL path; masking at the
    record level covers every logger and every handler at once.
    """

    def __init__(self, secrets: Collection[str]) -> None:
        super().__init__()
        self._secrets = [secret for secret in secrets if secret]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = self.redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            # Tracebacks are formatted later from exc_info: keep the type, mask the text.
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
        return True

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        return text


def install_secret_filter(secrets: Collection[str]) -> SecretFilter:
    """Attach a SecretFilter to every handler of the root logger."""
    secret_filter = SecretFilter(secrets)
    for handler in logging.getLogger().handlers:
        handler.addFilter(secret_filter)
    return secret_filter
