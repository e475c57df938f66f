"""Telegram front door: turns updates into questions for FAQBot and its Replies into messages.

The adapter decides nothing about meaning. It extracts the text and its context (private chat or
group, was the bot addressed, the user's language), screens the update (duplicates, allow-list,
per-user rate limit), asks `FAQBot` (through `FAQService`, which logs and counts the question),
and renders the `Reply` as HTML with inline buttons; under a curated answer, two feedback
buttons (bots/feedback.py). A feedback click is acknowledged with a toast; only the asker's
click edits the message (a group shares it): the buttons go, or "not helpful" puts the
closest other topics in their place.
"""

from __future__ import annotations

from bots.telegram.app import build_application, serve
from bots.telegram.config import WebhookOptions, check_token, token

__all__ = ["WebhookOptions", "build_application", "check_token", "serve", "token"]
