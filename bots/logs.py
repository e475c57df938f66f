"""Structured logs for `faqbot run --log-json`: one JSON object per line, one line per event.

Tracebacks go into the "error" field instead of spreading over lines, so a log collector never
splits an event. Secrets are masked before formatting (SecretFilter), ids never logged raw.
"""

from __future__ import annotations

import json
import logging
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
