"""What the studio tests share: a knowledge base with comments, a question log to review, and
`faqbot studio` started as a user starts it, its printed URL read back."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from core.questionlog.interface import LoggedQuestion
from core.questionlog.sqlite import SQLiteQuestionLog

REPO = Path(__file__).resolve().parents[2]
TINY_KB = REPO / "tests" / "data" / "tiny_kb.yaml"
CURATOR_COMMENT = "# Curator's note: keep the delivery answer short."
# Asked several times with small differences, refused each time: one group in the inbox.
OFF_TOPIC = ("c'est quoi la meteo demain", "c'est quoi la météo demain ?",
             "cest quoi la meteo demain", "c'est quoi la meteo de demain")
HOSTILE = "<script>document.title='pwned'</script> horaires ?"
_URL = re.compile(r"open (http://\S+)")


def write_kb(directory: Path) -> Path:
    """The tiny knowledge base with a curator's comment above the delivery intent."""
    path = directory / "faq.yaml"
    text = TINY_KB.read_text(encoding="utf-8")
    text = text.replace("  - id: delivery\n", f"  {CURATOR_COMMENT}\n  - id: delivery\n")
    path.write_text(text, encoding="utf-8")
    shutil.copymode(TINY_KB, path)
    return path


def write_log(path: Path, now: datetime | None = None) -> None:
    """A question log over two weeks: answers on two platforms, the off-topic group, a
    clarification and a question holding a script."""
    now = now or datetime.now(UTC)
    entries = []
    for day in range(14):
        at = now - timedelta(days=day, hours=1)
        for number in range(day % 4 + 1):
            platform = "telegram" if number % 2 == 0 else "discord"
            entries.append(_entry(at, platform, "horaires", "answer", "opening_hours",
                                  confidence=0.9))
        entries.append(_entry(at, "telegram", "livraison", "answer", "delivery", confidence=0.85))
    for number, text in enumerate(OFF_TOPIC):
        entries.append(_entry(now - timedelta(hours=number + 2), "telegram", text, "fallback",
                              None, confidence=0.1))
    entries.append(_entry(now - timedelta(hours=3), "discord", HOSTILE, "fallback", None,
                              confidence=0.2))
    entries.append(_entry(now - timedelta(hours=4), "telegram", "ouvert dimanche livraison",
                          "clarify", None, confidence=0.5))
    log = SQLiteQuestionLog(path)
    try:
        log.record_many(entries)
    finally:
        log.close()


def _entry(at: datetime, platform: str, question: str, kind: str, intent: str | None, *,
           confidence: float) -> LoggedQuestion:
    return LoggedQuestion(at=at, platform=platform, chat="c", user="u", lang="fr",
                          question=question, kind=kind, intent=intent, confidence=confidence,
                          latency_ms=3.0)


@dataclass(frozen=True)
class RunningStudio:
    """A `faqbot studio` process and the URL it printed."""

    url: str
    process: asyncio.subprocess.Process

    @property
    def origin(self) -> str:
        """http://host:port, without the token."""
        return self.url.split("/?")[0]


@asynccontextmanager
async def studio(kb: Path, db: str | Path, *extra: str) -> AsyncIterator[RunningStudio]:
    """`faqbot studio --port 0` on these files, until the block ends."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bots.cli", "studio", "--kb", str(kb), "--db", str(db),
        "--port", "0", *extra, cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), timeout=60)).decode()
        found = _URL.search(line)
        assert found, f"no URL printed: {line!r}"
        yield RunningStudio(found[1], process)
    finally:
        if process.returncode is None:
            process.terminate()
            await asyncio.wait_for(process.wait(), timeout=30)
