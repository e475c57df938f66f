"""Prometheus metrics and the health check of `faqbot run --metrics-port`.

One registry per `Metrics` object (not prometheus-client's global one), so that tests and
several services in one process never collide. The HTTP endpoint serves `/metrics` and
`/healthz` on the event loop already running the bots (aiohttp), on 127.0.0.1 by default.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)

from core import FAQBot

logger = logging.getLogger(__name__)

# Choosing a reply takes about a millisecond; the upper buckets catch a struggling machine.
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)


class Metrics:
    """Everything `faqbot run` reports, and whether every started platform is connected."""

    def __init__(self, platforms: Iterable[str] = ()) -> None:
        self.registry = CollectorRegistry()
        self.replies = Counter("faqbot_replies", "Replies sent, by platform and kind",
                               ["platform", "kind"], registry=self.registry)
        self.answer_seconds = Histogram("faqbot_answer_seconds",
                                        "Time the engine took to choose a reply",
                                        buckets=LATENCY_BUCKETS, registry=self.registry)
        self.knowledge_base = Info("faqbot_knowledge_base", "The knowledge base being served",
                                   registry=self.registry)
        self.intents = Gauge("faqbot_knowledge_base_intents",
                             "Intents in the knowledge base being served", registry=self.registry)
        self.reloads = Counter("faqbot_knowledge_base_reloads",
                               "Knowledge-base reloads, by outcome (reloaded or refused)",
                               ["outcome"], registry=self.registry)
        self.log_failures = Counter("faqbot_question_log_failures",
                                    "Question-log writes lost (database error or full queue)",
                                    registry=self.registry)
        self.feedback = Counter("faqbot_feedback",
                                "Clicks on the feedback buttons under answers, by platform and "
                                "verdict (helpful or not_helpful)", ["platform", "verdict"],
                                registry=self.registry)
        self.log_up = Gauge("faqbot_question_log_up",
                            "1 while the question log is open for writing", registry=self.registry)
        self._log_problem: Callable[[], str | None] = lambda: None
        self.refusals = Counter("faqbot_refusals",
                                "Messages and interactions from chats or servers outside the "
                                "allow-lists, by platform", ["platform"], registry=self.registry)
        self.dropped = Counter("faqbot_dropped",
                               "Messages dropped unanswered because their chat already had "
                               "too many waiting (a flood), by platform", ["platform"],
                               registry=self.registry)
        self.connected = Gauge("faqbot_platform_connected",
                               "1 while the platform's connection is up", ["platform"],
                               registry=self.registry)
        self.leader = Gauge("faqbot_leader",
                            "1 while this process is the one serving the platform among those "
                            "sharing a PostgreSQL database, 0 on standby", ["platform"],
                            registry=self.registry)
        self._leaders: dict[str, tuple[bool, str]] = {}  # platform -> (leading, who leads)
        self._up = dict.fromkeys(platforms, False)
        for platform in self._up:
            self.connected.labels(platform).set(0)

    def serving(self, bot: FAQBot) -> None:
        """Describe the knowledge base now being served."""
        self.knowledge_base.info({"fingerprint": bot.kb.fingerprint()})
        self.intents.set(len(bot.kb.intents))

    def set_connected(self, platform: str, connected: bool) -> None:
        """Record that a platform's connection went up or down."""
        self._up[platform] = connected
        self.connected.labels(platform).set(1 if connected else 0)

    def set_leader(self, platform: str, leading: bool, leader: str) -> None:
        """Record whether this process leads `platform`, and which process does."""
        self._leaders[platform] = (leading, leader)
        self.leader.labels(platform).set(1 if leading else 0)

    def follow_question_log(self, problem: Callable[[], str | None]) -> None:
        """Report the question log through `problem` (None while it is open): in the
        faqbot_question_log_up gauge and in /healthz's text, which it does not turn to 503,
        since the bot keeps answering without it."""
        self._log_problem = problem
        self.log_up.set_function(lambda: 0.0 if problem() else 1.0)

    def notes(self) -> list[str]:
        """Problems worth a line in /healthz that do not stop the bot answering."""
        problem = self._log_problem()
        return [problem] if problem else []

    @property
    def healthy(self) -> bool:
        """True once every started platform is connected, or standing by for another process."""
        platforms = self._up.keys() | self._leaders.keys()
        return bool(platforms) and all(self._up.get(platform) or self._standing_by(platform)
                                       for platform in platforms)

    def health_detail(self) -> str:
        """One line per elected platform: whether this process leads it, or which one does."""
        return "".join(f"{platform}: leader ({leader})\n" if leading
                       else f"{platform}: standby (leader: {leader})\n"
                       for platform, (leading, leader) in sorted(self._leaders.items()))

    def _standing_by(self, platform: str) -> bool:
        return platform in self._leaders and not self._leaders[platform][0]

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return generate_latest(self.registry)


class MetricsServer:
    """`/metrics` and `/healthz` over HTTP; `port` is the bound port (useful with port 0)."""

    def __init__(self, metrics: Metrics, host: str = "127.0.0.1", port: int = 0) -> None:
        self.metrics = metrics
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Listen; raises OSError when the address is taken."""
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._health)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        logger.info("metrics on http://%s:%d/metrics, health on /healthz", self.host, self.port)

    async def close(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=self.metrics.exposition(),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _health(self, request: web.Request) -> web.Response:
        detail = self.metrics.health_detail() + "".join(f"{note}\n"
                                                        for note in self.metrics.notes())
        if self.metrics.healthy:
            return web.Response(text="ok\n" + detail)
        return web.Response(status=503,
                            text="starting: not every platform is connected\n" + detail)
