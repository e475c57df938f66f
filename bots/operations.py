"""What `faqbot run` puts around the platform adapters: question log, metrics, live reload.

`serve_platforms` opens the question log, builds the FAQService the adapters share, starts the
metrics endpoint and the knowledge-base watcher, runs every adapter until `stop` is set, then
closes it all in order (the log last, so that the last replies are written).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from bots.metrics import Metrics, MetricsServer
from bots.reload import KnowledgeBaseWatcher
from bots.service import FAQService, Server
from core import ConfigurationError, FAQBot, Settings
from core.questionlog.factory import describe, open_question_log_store
from core.questionlog.interface import default_db_path
from core.questionlog.writer import BackgroundQuestionLog

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOptions:
    """How to run around the adapters: the file to watch, the metrics address."""

    kb_path: Path
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = None  # None: no metrics endpoint
    reload_interval: float = 2.0


def open_question_log(settings: Settings, metrics: Metrics) -> BackgroundQuestionLog:
    """The question log of FAQBOT_DB (a path or a PostgreSQL URL; else the default path),
    opened on the writer's thread.

    A database that cannot be opened (locked by another process, an unusable path, a
    PostgreSQL server down) does not stop the bot: the writer tries again with a growing
    delay, the questions meanwhile are counted as lost, and the metrics and /healthz say so.
    A bad FAQBOT_ID_KEY(_FILE), or a PostgreSQL URL without the driver installed, raises
    ConfigurationError before anything starts.
    """
    db = settings.db or default_db_path()
    key = settings.pseudonym_key()
    logger.info("question log: %s (question text %s, kept %d days, pseudonym key %s)",
                describe(db), "recorded" if settings.log_text else "not recorded",
                settings.retention_days, "from outside the database" if key else "in the database")
    log = BackgroundQuestionLog(partial(open_question_log_store, db, key=key),
                                retention_days=settings.retention_days,
                                on_failure=metrics.log_failures.inc)
    metrics.follow_question_log(log.problem)
    return log


async def serve_platforms(bot: FAQBot, settings: Settings, servers: Sequence[Server],
                          options: RunOptions, *, stop: asyncio.Event,
                          reload_requests: asyncio.Event | None = None) -> None:
    """Serve every platform with one FAQService until `stop` is set."""
    metrics = Metrics()
    endpoint = await _start_metrics(metrics, options)  # first: a taken port stops everything
    log = open_question_log(settings, metrics)
    service = FAQService(bot, log=log, metrics=metrics, log_text=settings.log_text)
    watcher = KnowledgeBaseWatcher(options.kb_path, service, interval=options.reload_interval,
                                   requests=reload_requests,
                                   on_outcome=lambda outcome: metrics.reloads.labels(outcome).inc())
    logger.info("serving knowledge base %s, fingerprint %s", options.kb_path,
                bot.kb.fingerprint())
    try:
        await asyncio.gather(watcher.run(stop),
                             *(serve(service, settings, stop) for serve in servers))
    finally:
        if endpoint is not None:
            await endpoint.close()
        await asyncio.to_thread(log.close)


async def _start_metrics(metrics: Metrics, options: RunOptions) -> MetricsServer | None:
    if options.metrics_port is None:
        return None
    endpoint = MetricsServer(metrics, options.metrics_host, options.metrics_port)
    try:
        await endpoint.start()
    except OSError as error:
        raise ConfigurationError(f"--metrics-port {options.metrics_port}: cannot listen on "
                                 f"{options.metrics_host}: {error.strerror or error}") from None
    return endpoint
