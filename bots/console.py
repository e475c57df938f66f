"""The console chat: the same engine as the platforms, in a terminal, for curators and newcomers."""

from __future__ import annotations

from collections.abc import Callable

from core import FAQBot, Reply

PROMPT = "> "
QUIT_WORDS = frozenset({"quit", "exit", "q", "quitter"})
BANNER_TOPICS = 3  # the banner names this many of the knowledge base's topics


def banner(bot: FAQBot, lang: str | None = None) -> str:
    """What the loaded knowledge base covers (its first topics) and how to use the chat."""
    topics = bot.topics(lang)
    named = "; ".join(topic.question for topic in topics[:BANNER_TOPICS])
    languages = ", ".join(bot.kb.languages)
    return (f"faqbot: {len(topics)} topics, such as: {named}\n"
            f"Ask in {languages}; type a number to pick a suggestion, 'quit' to leave.")


def render_reply(reply: Reply) -> str:
    """The answer, then its suggestions numbered so the user can pick one by typing its number."""
    lines = [reply.answer]
    lines += [f"  {number}. {s.question}" for number, s in enumerate(reply.suggestions, 1)]
    return "\n".join(lines)


def chat(bot: FAQBot, lang: str | None = None, read: Callable[[str], str] = input,
         write: Callable[[str], None] = print) -> None:
    """Run the conversation until end of input, Ctrl-C or a quit word."""
    write(banner(bot, lang))
    last: Reply | None = None
    while True:
        try:
            line = read(PROMPT)
        except (EOFError, KeyboardInterrupt):
            write("")
            return
        if line.strip().casefold() in QUIT_WORDS:
            return
        last = _respond(bot, line, lang, last)
        write(render_reply(last))


def _respond(bot: FAQBot, line: str, lang: str | None, last: Reply | None) -> Reply:
    choice = line.strip()
    if last and choice.isdigit() and 1 <= int(choice) <= len(last.suggestions):
        return bot.reply_for(last.suggestions[int(choice) - 1].intent, lang or last.lang)
    return bot.answer(line, lang)
