"""Settings from the environment; errors name the variable, never a secret."""

import hashlib
from pathlib import Path

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


def test_pseudonym_key_from_the_environment_or_a_file(monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    monkeypatch.delenv("FAQBOT_ID_KEY_FILE", raising=False)
    monkeypatch.delenv("FAQBOT_ID_KEY", raising=False)
    assert load_settings().pseudonym_key() is None  # the log keeps its own salt
    salt = "ab" * 32
    monkeypatch.setenv("FAQBOT_ID_KEY", salt)
    assert load_settings().pseudonym_key() == bytes.fromhex(salt)  # hex: the bytes it spells
    monkeypatch.setenv("FAQBOT_ID_KEY", " a passphrase that is long enough\n")
    key = load_settings().pseudonym_key()
    assert key == hashlib.sha256(b"a passphrase that is long enough").digest()
    key_file = tmp_path / "id.key"
    key_file.write_text("a passphrase that is long enough\n", encoding="utf-8")
    monkeypatch.delenv("FAQBOT_ID_KEY")
    monkeypatch.setenv("FAQBOT_ID_KEY_FILE", str(key_file))
    assert load_settings().pseudonym_key() == key


@pytest.mark.parametrize(("variables", "message"), [
    ({"FAQBOT_ID_KEY": "short-secret"}, "FAQBOT_ID_KEY: the key must be at least 16"),
    ({"FAQBOT_ID_KEY_FILE": "/nonexistent/id.key"}, "FAQBOT_ID_KEY_FILE: cannot read"),
    ({"FAQBOT_ID_KEY": SECRET, "FAQBOT_ID_KEY_FILE": "/etc/hostname"}, "set one, not both"),
])
def test_bad_pseudonym_key_is_named_never_shown(monkeypatch: pytest.MonkeyPatch,
                                                variables: dict[str, str], message: str) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=message) as caught:
        load_settings().pseudonym_key()
    assert "short-secret" not in str(caught.value) and SECRET not in str(caught.value)
