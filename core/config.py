"""Settings from the environment (FAQBOT_* and the platform token variables).

Tokens are `SecretStr`: their repr is masked, so a logged Settings object leaks nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from core.errors import ConfigurationError

IdSet = Annotated[frozenset[int], NoDecode]


class Settings(BaseSettings):
    """Every setting faqbot reads; the README lists them with their defaults."""

    model_config = SettingsConfigDict(env_prefix="FAQBOT_", frozen=True, extra="ignore")

    kb: Path | None = None
    db: str | None = None  # a SQLite file's path, or a postgresql:// URL
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

    @field_validator("telegram_bot_token", "discord_bot_token", mode="before")
    @classmethod
    def _empty_token_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value


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
