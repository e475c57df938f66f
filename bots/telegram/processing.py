"""Updates handled at once, each counted in hand until it is finished.

python-telegram-bot starts one task per update in arrival order; each runs its handler at once
(the front door keeps the updates of one chat in order and bounds how many are served at a
time). The updates in hand are what a stop drains and confirms (bots/telegram/receiving.py).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor

if TYPE_CHECKING:
    from bots.telegram.receiving import UpdatesInHand


class InHandProcessor(BaseUpdateProcessor):
    """Runs every update at once, counted in `in_hand` from its arrival to its end."""

    def __init__(self, in_hand: UpdatesInHand) -> None:
        # No bound here: the front door's turns bound the updates served at once, and an
        # update waiting for its chat's turn must not hold a slot.
        super().__init__(2**31 - 1)
        self.in_hand = in_hand

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        """Await the update's handling, counted in hand meanwhile."""
        update_id = update.update_id if isinstance(update, Update) else None
        if update_id is not None:
            self.in_hand.take(update_id)
        try:
            await coroutine
        finally:
            if update_id is not None:
                self.in_hand.finish(update_id)

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to release."""
