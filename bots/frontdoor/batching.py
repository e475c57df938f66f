"""Questions that reach their turn together are answered together.

In a burst, many conversations reach their turn in the same pass of the event loop. Answering
them in one call lets the classifier run the sentence encoder once for all those its n-gram
model is unsure of, which costs a fraction per question of one pass each (docs/performance.md).
A question alone waits for nothing more than the next pass of the loop: the batch is answered
as soon as every question already running in this pass has joined it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class Batches(Generic[Item, Result]):
    """Gathers the items awaited in one pass of the event loop and hands them, in the order
    they came, to `answer_all` (a plain function: one result per item, in order)."""

    def __init__(self, answer_all: Callable[[Sequence[Item]], Sequence[Result]]) -> None:
        self._answer_all = answer_all
        self._pending: list[Item] = []
        self._answered: asyncio.Future[Sequence[Result]] | None = None

    async def answer(self, item: Item) -> Result:
        """The result for `item`, computed with the items that joined in the same pass."""
        if self._answered is None:
            loop = asyncio.get_running_loop()
            self._answered = loop.create_future()
            loop.call_soon(self._answer_pending)
        index = len(self._pending)
        self._pending.append(item)
        # Shielded: one caller cancelled (its platform event abandoned) must not cancel the
        # answers of the others.
        results = await asyncio.shield(self._answered)
        return results[index]

    def _answer_pending(self) -> None:
        items, answered = self._pending, self._answered
        self._pending, self._answered = [], None
        assert answered is not None
        try:
            answered.set_result(self._answer_all(items))
        except Exception as error:  # every caller of the batch gets it, as alone it would
            answered.set_exception(error)
