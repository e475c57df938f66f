"""Metrics a test can wait on."""

from __future__ import annotations

import asyncio
from typing import Any

from bots.metrics import Metrics


class WatchedMetrics(Metrics):
    """Metrics that remember every time a platform goes up or down, and wake a waiting test."""

    def __init__(self) -> None:
        super().__init__()
        self.changed = asyncio.Event()
        self.changes: list[tuple[str, bool]] = []

    def set_connected(self, platform: str, connected: bool) -> None:
        super().set_connected(platform, connected)
        self.changes.append((platform, connected))
        self.changed.set()

    async def until_healthy(self) -> None:
        await self.until(lambda: self.healthy)

    async def until(self, condition: Any) -> None:
        async with asyncio.timeout(15):
            while not condition():
                self.changed.clear()
                await self.changed.wait()
