"""Leader election on a real PostgreSQL server: one process serves, a standby takes over when
the leader goes, and a database blink never moves the lead away from a healthy leader."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest

from bots.leadership import ElectionTiming, elected, platform_lock
from bots.metrics import Metrics
from core import Settings
from tests.auxil.postgres import PostgresServer

# Quick, with the proportions of the defaults: grace well above poll plus a reconnection.
TIMING = ElectionTiming(poll=0.1, grace=1.0, query_timeout=1.0)


class Replica:
    """One process's elected server: records when it served, and its metrics."""

    def __init__(self, name: str, url: str, timeline: list[tuple[float, str, str]]) -> None:
        self.name = name
        self.metrics = Metrics()
        self.stop = asyncio.Event()
        self.timeline = timeline
        self.serving = False
        serve = elected(self._serve, "telegram", url, TIMING)
        self.task = asyncio.create_task(serve(SimpleNamespace(metrics=self.metrics),  # type: ignore[arg-type]
                                              Settings(), self.stop))

    async def _serve(self, service: Any, settings: Settings, stop: asyncio.Event) -> None:
        self.serving = True
        self.timeline.append((time.monotonic(), self.name, "start"))
        await stop.wait()
        self.timeline.append((time.monotonic(), self.name, "stop"))
        self.serving = False

    async def close(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 10)


async def _until(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def _overlaps(timeline: list[tuple[float, str, str]]) -> int:
    """How many times two replicas served at once."""
    serving: set[str] = set()
    overlaps = 0
    for _, name, event in sorted(timeline):
        if event == "start":
            overlaps += bool(serving)
            serving.add(name)
        else:
            serving.discard(name)
    return overlaps


async def _leader_then_standby(url: str, timeline: list[tuple[float, str, str]]
                               ) -> tuple[Replica, Replica]:
    leader = Replica("leader", url, timeline)
    await _until(lambda: leader.serving)
    return leader, Replica("standby", url, timeline)


async def test_one_serves_and_a_standby_takes_over_when_it_goes(postgres_url: str) -> None:
    timeline: list[tuple[float, str, str]] = []
    first, second = await _leader_then_standby(postgres_url, timeline)
    try:
        await asyncio.sleep(TIMING.grace * 2)
        assert first.serving and not second.serving
        assert first.metrics.leader.labels("telegram")._value.get() == 1
        assert second.metrics.leader.labels("telegram")._value.get() == 0
        assert second.metrics.healthy  # standing by is healthy
        assert "telegram: standby (leader: faqbot telegram " in second.metrics.health_detail()
        gone = time.monotonic()
        await first.close()
        await _until(lambda: second.serving)
        took_over = time.monotonic() - gone
        assert TIMING.grace <= took_over < TIMING.grace + 5  # the rest: one poll, under load
        assert second.metrics.health_detail().startswith("telegram: leader (faqbot telegram")
    finally:
        await first.close()
        await second.close()
    assert _overlaps(timeline) == 0


async def test_database_blink_leaves_the_leader_serving(postgres: PostgresServer,
                                                        postgres_url: str) -> None:
    timeline: list[tuple[float, str, str]] = []
    leader, standby = await _leader_then_standby(postgres_url, timeline)
    try:
        await asyncio.sleep(TIMING.poll * 3)
        for outage in (0.0, 2 * TIMING.grace):  # a restart, then a longer outage
            await asyncio.to_thread(postgres.stop)
            assert leader.serving  # no database: the leader serves on
            await asyncio.sleep(outage)
            await asyncio.to_thread(postgres.start)
            await asyncio.sleep(TIMING.grace * 2)  # the standby would have taken over by now
            assert leader.serving and not standby.serving
            assert leader.metrics.leader.labels("telegram")._value.get() == 1
    finally:
        if not postgres.running:
            postgres.start()
        await leader.close()
        await standby.close()
    assert [name for _, name, _ in timeline] == ["leader", "leader"]


async def test_leader_that_finds_the_lock_taken_stops_serving(postgres_url: str) -> None:
    """Its session ended (cut by an administrator, or a network partition that the standby did
    not share) and another process took the lock: the old leader must stop polling."""
    timeline: list[tuple[float, str, str]] = []
    leader = Replica("leader", postgres_url, timeline)
    await _until(lambda: leader.serving)
    try:
        async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as other, \
                await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as admin:
            # Another process queues for the lock: PostgreSQL hands it over the moment the
            # leader's session ends, before the leader can reconnect.
            queued = asyncio.create_task(other.execute("SELECT pg_advisory_lock(%s, %s)",
                                                       platform_lock("telegram")))
            while not await (await admin.execute(
                    "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
                    ).fetchone():
                await asyncio.sleep(0.02)
            await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE application_name LIKE 'faqbot telegram %%'")
            await asyncio.wait_for(queued, 10)
            await _until(lambda: not leader.serving)
            assert leader.metrics.leader.labels("telegram")._value.get() == 0
        # The lock is free again once that session ends: the old leader comes back.
        await _until(lambda: leader.serving, timeout=TIMING.grace + 5)
    finally:
        await leader.close()


@pytest.mark.parametrize("replicas", [4])
async def test_replicas_started_together_elect_one(postgres_url: str, replicas: int) -> None:
    timeline: list[tuple[float, str, str]] = []
    started = [Replica(f"r{n}", postgres_url, timeline) for n in range(replicas)]
    try:
        await _until(lambda: any(replica.serving for replica in started))
        await asyncio.sleep(TIMING.grace)
        assert sum(replica.serving for replica in started) == 1
    finally:
        for replica in started:
            await replica.close()
    assert _overlaps(timeline) == 0
