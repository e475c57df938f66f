"""The `faqbot` command: the only place that reads flags, wires objects and picks exit codes
(with bots/launch.py, which starts the platforms of `faqbot run`).

Exit codes: 0 success, 2 bad input or bad knowledge base (one line on stderr), 1 anything else.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from core import FAQBot, FaqbotError, Reply, Settings, load_settings
from core.encoder import meaning_embedder
from core.knowledge import load_knowledge_base
from core.text import json_line
from intents import DEFAULT_KB_PATH

# Each command imports what only it uses, so that `faqbot ask` starts fast (docs/performance.md).
if TYPE_CHECKING:
    from datetime import datetime

    from core.questionlog.interface import LoggedQuestion

logger = logging.getLogger("faqbot")
EXIT_OK, EXIT_ERROR, EXIT_BAD_INPUT = 0, 1, 2
PLATFORMS = ("telegram", "discord", "all")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except FaqbotError as error:
        print(f"faqbot: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return EXIT_OK
    except Exception as error:
        logger.debug("unexpected failure", exc_info=True)
        print(f"faqbot: unexpected error: {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_ERROR


class _Parser(argparse.ArgumentParser):
    """argparse with the one-line error of every other bad input (`--help` shows the usage)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="faqbot", description="A curated, offline FAQ bot.")
    commands = parser.add_subparsers(dest="command", required=True)
    ask = _command(commands, "ask", _ask, "answer one question, or one per line of stdin")
    ask.add_argument("question", nargs="?", help="the question; without it, read stdin")
    ask.add_argument("--json", action="store_true", help="one JSON object per reply")
    _add_lang(ask)
    _add_lang(_command(commands, "chat", _chat, "chat in the console"))
    _command(commands, "validate", _validate, "check a knowledge base; exit 2 if invalid")
    evaluate = _command(commands, "evaluate", _evaluate, "cross-validate a knowledge base")
    evaluate.add_argument("--json", action="store_true")
    evaluate.add_argument("--folds", type=int, default=5, choices=range(2, 11), metavar="K")
    _add_run(commands)
    _add_curation(commands)
    _add_studio(commands)
    return parser


def _command(commands: Any, name: str, handler: Callable[[argparse.Namespace], int],
             help_text: str, kb: bool = True) -> argparse.ArgumentParser:
    sub: argparse.ArgumentParser = commands.add_parser(name, help=help_text,
                                                       description=help_text)
    sub.set_defaults(handler=handler)
    if kb:
        sub.add_argument("--kb", type=Path, help="knowledge-base YAML (default: FAQBOT_KB, "
                                                 "else the shipped one)")
    return sub


def _add_lang(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--lang", choices=["fr", "en"], help="reply language (default: guessed)")


def _add_run(commands: Any) -> None:
    run = _command(commands, "run", _run, "serve Telegram and/or Discord (console chat "
                                          "when no token is set)")
    run.add_argument("platform", nargs="?", choices=PLATFORMS, default="all")
    run.add_argument("--webhook-url", help="Telegram: receive updates by webhook at this URL")
    run.add_argument("--listen", default="127.0.0.1", help="Telegram webhook: address to bind")
    run.add_argument("--port", type=_port, default=8443, help="Telegram webhook: port to bind")
    run.add_argument("--shards", type=_shard_count, metavar="N|auto",
                     help="Discord: total shard count, or 'auto' for Discord's recommendation")
    run.add_argument("--shard-ids", help="Discord: comma-separated shard ids of this process")
    run.add_argument("--metrics-port", type=_port, metavar="PORT",
                     help="serve Prometheus /metrics and /healthz on this port")
    run.add_argument("--metrics-host", default="127.0.0.1",
                     help="address of the metrics endpoint (default: 127.0.0.1)")
    run.add_argument("--log-json", action="store_true", help="log one JSON object per line")


def _add_curation(commands: Any) -> None:
    review = _command(commands, "review", _review, "the questions the bot could not answer "
                                                   "well, grouped, with their nearest intents")
    review.add_argument("--export", type=Path, metavar="FILE.yaml",
                        help="also write them as candidate examples in the knowledge-base format")
    stats = _command(commands, "stats", _stats, "questions per day and platform, reply rates, "
                                                "most asked intents, median time to reply",
                     kb=False)
    for sub in (review, stats):
        sub.add_argument("--since", type=_days, metavar="DAYS", help="only the last DAYS days")
        sub.add_argument("--json", action="store_true", help="one JSON object")
        sub.add_argument("--db", help="question log: a file or a postgresql:// URL (default: "
                                      "FAQBOT_DB, else the user data directory)")


def _add_studio(commands: Any) -> None:
    studio = _command(commands, "studio", _studio, "a local web page to review, fix and test "
                                                   "the knowledge base (docs/studio.md)")
    studio.add_argument("--db", help="question log, a SQLite file (default: FAQBOT_DB, else "
                                     "the user data directory)")
    studio.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default: 127.0.0.1, this machine only)")
    studio.add_argument("--port", type=_port_or_any, default=8765,
                        help="port (default: 8765; 0: any free port, printed in the URL)")


def _studio(args: argparse.Namespace) -> int:
    from bots.studio.server import run
    from core.questionlog.interface import default_db_path

    settings = load_settings()
    run(_kb_path(args, settings), args.db or settings.db or default_db_path(), args.host,
        args.port)
    return EXIT_OK


# --since goes back at most this far: further, dates leave what Python's datetime holds.
MAX_DAYS = 36_500


def _days(text: str) -> float:
    try:
        days = float(text)
    except ValueError:
        days = float("nan")  # refused just below, with the same message
    if not 0 < days <= MAX_DAYS:  # also refuses nan and inf
        raise argparse.ArgumentTypeError(f"must be a number of days above 0, at most {MAX_DAYS}")
    return days


def _port(text: str) -> int:
    port = int(text) if text.isdigit() else 0
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError("must be a TCP port, from 1 to 65535")
    return port


def _port_or_any(text: str) -> int:
    """A port, or 0 for any free one (the studio prints the URL it got)."""
    return 0 if text == "0" else _port(text)


def _kb_path(args: argparse.Namespace, settings: Settings | None = None) -> Path:
    settings = settings or load_settings()
    return Path(args.kb or settings.kb or DEFAULT_KB_PATH)


def _ask(args: argparse.Namespace) -> int:
    bot = FAQBot.from_path(_kb_path(args))
    if args.question is not None:
        _print_reply(bot.answer(args.question, args.lang), args.json)
        return EXIT_OK
    stdin: TextIO = sys.stdin
    if hasattr(stdin, "reconfigure"):
        stdin.reconfigure(errors="replace")  # binary garbage must not stop the stream
    for line in stdin:
        _print_reply(bot.answer(line.rstrip("\r\n"), args.lang), args.json)
    return EXIT_OK


def _print_reply(reply: Reply, as_json: bool) -> None:
    if as_json:
        print(json_line(reply.model_dump()), flush=True)
        return
    line = " ".join(reply.answer.split())
    if reply.kind == "clarify":
        line += " " + " | ".join(s.question for s in reply.suggestions)
    print(line, flush=True)


def _chat(args: argparse.Namespace) -> int:
    from bots.console import chat

    chat(FAQBot.from_path(_kb_path(args)), args.lang)
    return EXIT_OK


def _validate(args: argparse.Namespace) -> int:
    from core.lint import lint_knowledge_base

    path = _kb_path(args)
    kb = load_knowledge_base(path)
    for warning in lint_knowledge_base(kb, embed=meaning_embedder(kb.encoder)):
        print(f"faqbot: warning: {path}: {warning}", file=sys.stderr)
    print(f"{path}: valid ({len(kb.faq_intents)} FAQ intents, {len(kb.intents)} in all)")
    return EXIT_OK


def _evaluate(args: argparse.Namespace) -> int:
    from core.evaluation import cross_validate, format_report

    report = cross_validate(load_knowledge_base(_kb_path(args)), folds=args.folds)
    print(json.dumps(report.as_dict(), ensure_ascii=False) if args.json else format_report(report))
    return EXIT_OK


def _review(args: argparse.Namespace) -> int:
    from core.review import build_review
    from core.review_report import export_candidates, format_review

    settings = load_settings()
    since, entries = _logged_questions(args, settings)
    kb_path = _kb_path(args, settings)
    bot = FAQBot.from_path(kb_path)
    review = build_review(entries, bot, since, embed=meaning_embedder(bot.kb.encoder))
    print(json_line(review.as_dict()) if args.json else format_review(review))
    if args.export:
        candidates = export_candidates(review, bot.kb, source=str(kb_path))
        if candidates is None:
            print("faqbot: nothing to export", file=sys.stderr)
        else:
            args.export.write_text(candidates, encoding="utf-8")
            print(f"faqbot: candidate examples written to {args.export}", file=sys.stderr)
    return EXIT_OK


def _stats(args: argparse.Namespace) -> int:
    from core.stats import compute_stats, format_stats

    since, entries = _logged_questions(args, load_settings())
    stats = compute_stats(entries, since)
    print(json_line(stats.as_dict()) if args.json else format_stats(stats))
    return EXIT_OK


def _logged_questions(args: argparse.Namespace,
                      settings: Settings) -> tuple[datetime | None, list[LoggedQuestion]]:
    """The period asked with --since, and the questions logged in it."""
    import sqlite3
    from datetime import UTC, datetime, timedelta

    from core.questionlog.factory import describe, open_store_for_reading
    from core.questionlog.interface import default_db_path

    since = datetime.now(UTC) - timedelta(days=args.since) if args.since else None
    db = args.db or settings.db or default_db_path()
    log = open_store_for_reading(db)
    try:
        return since, log.entries(since)
    except sqlite3.Error as error:
        raise FaqbotError(f"{describe(db)}: cannot read the question log: {error}") from None
    finally:
        log.close()


def _run(args: argparse.Namespace) -> int:
    from bots import launch

    settings = load_settings()
    launch.configure_logging(settings, json_lines=args.log_json)
    servers = launch.servers(args, settings)
    if servers:
        settings.pseudonym_key()  # a bad key stops `run` at once, as a bad token does
    kb_path = _kb_path(args, settings)
    bot = FAQBot.from_path(kb_path)
    # A model read from the cache has not loaded the encoder yet: the first questions would
    # wait about a second for it.
    bot.classifier.load_encoder()
    if not servers:
        from bots.console import chat

        logger.info("no platform token set: starting the console chat")
        chat(bot)
        return EXIT_OK
    import asyncio

    from bots.operations import RunOptions

    options = RunOptions(kb_path=kb_path, metrics_host=args.metrics_host,
                         metrics_port=args.metrics_port)
    asyncio.run(launch.serve_until_signal(bot, settings, servers, options))
    return EXIT_OK


def _shard_count(text: str) -> int:
    """`auto` is 0, which the Discord adapter reads as "as many as Discord recommends"."""
    if text == "auto":
        return 0
    count = int(text)
    if count < 1:
        raise argparse.ArgumentTypeError("must be a positive number or 'auto'")
    return count


if __name__ == "__main__":
    sys.exit(main())
