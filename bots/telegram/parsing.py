"""Reading Telegram updates: was the bot addressed, the question's text, who asked, where to
reply.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from telegram import (
    Message,
    MessageEntity,
    Update,
)
from telegram.constants import ChatType

from bots.frontdoor.door import Arrival
from bots.service import Asker

OUR_COMMANDS = ("start", "help", "faq", "ask")


def is_addressed(message: Message, bot_id: int, bot_username: str) -> bool:
    """Private chats always; in groups a @mention, a reply to the bot, or a command for it."""
    if message.chat.type == ChatType.PRIVATE:
        return True
    replied = message.reply_to_message
    if replied and replied.from_user and replied.from_user.id == bot_id:
        return True
    kinds: list[str | None] = [MessageEntity.MENTION, MessageEntity.BOT_COMMAND]
    entities = {**message.parse_entities(kinds), **message.parse_caption_entities(kinds)}
    mention = f"@{bot_username}".casefold()
    for entity, text in entities.items():
        if entity.type == MessageEntity.MENTION and text.casefold() == mention:
            return True
        if entity.type == MessageEntity.BOT_COMMAND and entity.offset == 0:
            command, _, target = text[1:].partition("@")
            if target.casefold() == bot_username.casefold() or (
                    not target and command.casefold() in OUR_COMMANDS):
                return True
    return False


def question_text(message: Message, bot_username: str) -> str:
    """The text or caption of a message, without the @mention of the bot."""
    text = message.text or message.caption or ""
    return re.sub(rf"@{re.escape(bot_username)}\b", " ", text, flags=re.IGNORECASE).strip()


def command_argument(message: Message) -> str:
    """What follows "/ask" (or "/ask@bot") in a command message."""
    parts = (message.text or "").split(maxsplit=1)
    return parts[1].strip() if len(parts) > 1 else ""


def arrival(update: Update) -> Arrival:
    """The front door's view of an update: the chat is the allow-list's place and the
    conversation kept in order; an inline query has no chat: its user's private chat is the
    place, and there is no conversation."""
    chat, user, message = update.effective_chat, update.effective_user, update.effective_message
    asker = Asker("telegram", chat.id if chat else None, user.id if user else None,
                  message.message_id if message else None)
    lang = user.language_code if user else None
    if update.inline_query is not None:
        return Arrival(asker, update.inline_query.from_user.id, None, lang, update.update_id)
    chat_id = chat.id if chat else None
    return Arrival(asker, chat_id, chat_id, lang, update.update_id)


def chat_for_logs(chat_id: int | None) -> str:
    # A private chat's id is its user's id: logs name group chats (negative ids) only.
    if chat_id is not None and chat_id < 0:
        return f"group {chat_id}"
    return "a private chat"


@dataclass(frozen=True)
class Target:
    """Where a reply goes: the chat, the message to quote (groups only), the forum topic."""

    chat_id: int
    quote_id: int | None = None
    thread_id: int | None = None

    @classmethod
    def replying_to(cls, message: Message) -> Target:
        in_group = message.chat.type != ChatType.PRIVATE
        return cls(chat_id=message.chat_id,
                   quote_id=message.message_id if in_group else None,
                   thread_id=message.message_thread_id if message.is_topic_message else None)
