"""The Discord front door: slash commands, autocomplete, buttons, mentions and direct messages.

The adapter extracts the text and its context (user, server, locale), asks `FAQBot` (through
`FAQService`, which logs and counts the question), and renders the `Reply`: an embed for a
curated answer, plain text with buttons or a select menu for the rest. Buttons and menus carry
only an intent id and a language in their custom id, so they keep working after a restart
(`discord.ui.DynamicItem`). Under a curated answer, two feedback buttons (bots/feedback.py):
the asker's click edits the message (the buttons go, or "not helpful" puts the closest other
topics in their place) and thanks privately; anyone else is thanked privately (with those
topics, after "not helpful"), and the message stays as everyone sees it.
"""

from bots.discord.client import build_client, check_token, serve, token

__all__ = ["build_client", "check_token", "serve", "token"]
