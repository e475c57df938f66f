"""Settings from the environment (FAQBOT_* and the platform token variables).

Tokens are `SecretStr`: their repr is masked, so a logged Settings object leaks nothing.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from core.errors import ConfigurationError

IdSet = Annotated[frozenset[int], NoDecode]
# A pseudonym key shorter than this is refused: anyone who guesses it can name every user.
MIN_ID_KEY_CHARS = 16
# A key file is a line of text; anything much longer is not one.
MAX_ID_KEY_FILE_BYTES = 4096
_HEX = re.compile("(?:[0-9a-fA-F]{2})+")


class Settings(BaseSettings):
    """Every setting faqbot reads; the README lists them with their defaults."""

    model_config = SettingsConfigDict(env_prefix="FAQBOT_", frozen=True, extra="ignore")

    kb: Path | None = None
    db: str | None = None  # a SQLite file's path, or a postgresql:// URL
    cache_dir: Path | None = None  # trained models (core.cache); None: the user's cache directory
    telegram_bot_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("TELEGRAM_BOT_TOKEN")
    )
    discord_bot_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("DISCORD_BOT_TOKEN")
    )
    telegram_api_url: str = "https://api.telegram.org/bot"
    discord_api_url: str | None = None
    discord_gateway_url: str | None = None
    discord_guild: int | None = None
    allowed_chats: IdSet = frozenset()
    allowed_guilds: IdSet = frozenset()
    rate_limit_messages: int = Field(default=5, ge=1)
    rate_limit_seconds: float = Field(default=10.0, gt=0)
    log_text: bool = True  # FAQBOT_LOG_TEXT=0: the question log keeps no question text
    retention_days: int = Field(default=90, ge=1)
    feedback: bool = True  # FAQBOT_FEEDBACK=0: no feedback buttons under the answers
    # The key of the question log's pseudonyms, kept out of the database (see pseudonym_key).
    id_key: SecretStr | None = None
    id_key_file: Path | None = None

    @field_validator("allowed_chats", "allowed_guilds", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        # "123, -456" in the environment; an empty value means "everyone".
        if isinstance(value, str):
            return frozenset(int(part) for part in value.split(",") if part.strip())
        return value

    @field_validator("db", mode="before")
    @classmethod
    def _path_as_text(cls, value: object) -> object:
        return str(value) if isinstance(value, Path) else value

    def pseudonym_key(self) -> bytes | None:
        """The question log's key from FAQBOT_ID_KEY or the file FAQBOT_ID_KEY_FILE names;
        None when neither is set (the log then keeps a random key in its database).

        Hex digits are taken as the bytes they spell (so that the salt of an existing log
        keeps its pseudonyms); any other text is hashed into a key. Raises ConfigurationError,
        which never quotes the key.
        """
        if self.id_key is not None and self.id_key_file is not None:
            raise ConfigurationError("FAQBOT_ID_KEY and FAQBOT_ID_KEY_FILE: set one, not both")
        if self.id_key is not None:
            return _key_bytes(self.id_key.get_secret_value(), "FAQBOT_ID_KEY")
        if self.id_key_file is not None:
            return _key_bytes(_read_key_file(self.id_key_file), "FAQBOT_ID_KEY_FILE")
        return None

    @field_validator("telegram_bot_token", "discord_bot_token", "id_key", mode="before")
    @classmethod
    def _empty_token_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value


def _key_bytes(secret: str, name: str) -> bytes:
    secret = secret.strip()
    if len(secret) < MIN_ID_KEY_CHARS:
        raise ConfigurationError(f"{name}: the key must be at least {MIN_ID_KEY_CHARS} "
                                 "characters long")
    if _HEX.fullmatch(secret):
        return bytes.fromhex(secret)
    return hashlib.sha256(secret.encode()).digest()


def _read_key_file(path: Path) -> str:
    try:
        with path.open("rb") as file:
            data = file.read(MAX_ID_KEY_FILE_BYTES + 1)
        if len(data) > MAX_ID_KEY_FILE_BYTES:
            raise ConfigurationError(f"FAQBOT_ID_KEY_FILE: {path} is larger than "
                                     f"{MAX_ID_KEY_FILE_BYTES} bytes: not a key")
        return data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or "not UTF-8 text"
        raise ConfigurationError(f"FAQBOT_ID_KEY_FILE: cannot read {path}: {reason}") from None


def load_settings() -> Settings:
    """Read the environment; raise ConfigurationError naming the variable, never its value."""
    try:
        return Settings()
    except ValidationError as error:
        first = error.errors(include_url=False, include_input=False)[0]
        name = "FAQBOT_" + str(first["loc"][0]).upper() if first["loc"] else "environment"
        raise ConfigurationError(f"{name}: {first['msg']}") from None
    except ValueError as error:  # a comma-separated id that is not a number
        raise ConfigurationError(f"bad setting: {error}") from None
