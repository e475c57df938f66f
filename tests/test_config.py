"""Settings from the environment; errors name the variable, never a secret."""

import pytest

from core.config import load_settings
from core.errors import ConfigurationError

SECRET = "123456:SECRET-token-value-never-shown-anywhere"


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TELEGRAM_BOT_TOKEN", "DISCORD_BOT_TOKEN", "FAQBOT_ALLOWED_CHATS"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.telegram_bot_token is None
    assert settings.telegram_api_url == "https://api.telegram.org/bot"
    assert settings.allowed_chats == frozenset()


def test_ids_and_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", SECRET)
    monkeypatch.setenv("FAQBOT_ALLOWED_CHATS", "12, -100345,")
    monkeypatch.setenv("FAQBOT_ALLOWED_GUILDS", "")
    settings = load_settings()
    assert settings.allowed_chats == frozenset({12, -100345})
    assert settings.allowed_guilds == frozenset()
    assert settings.telegram_bot_token is not None
    assert settings.telegram_bot_token.get_secret_value() == SECRET
    assert SECRET not in repr(settings)


def test_blank_token_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISCORD_BOT_TOKEN", "  ")
    assert load_settings().discord_bot_token is None


@pytest.mark.parametrize(("name", "value"), [("FAQBOT_ALLOWED_CHATS", "12,abc"),
                                             ("FAQBOT_RATE_LIMIT_MESSAGES", "0")])
def test_bad_value_is_configuration_error(monkeypatch: pytest.MonkeyPatch, name: str,
                                          value: str) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", SECRET)
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert name in str(caught.value)
    assert SECRET not in str(caught.value)
